"""The metadata store: schema, migrations, rows, connection, audit log, quality results,
watermarks, change digests.
"""
