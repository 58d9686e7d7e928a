"""The lake: local folder or ADLS Gen2, addressed `<container>/<path>`, and what changed in it."""
