"""Dagster runs outside the UI: the LOCAL Dagster home, and runs whose process died."""
