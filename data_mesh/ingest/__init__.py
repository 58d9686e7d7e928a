"""Seed 001's bronze ingestion engine (Spark only): databases over JDBC, files against a
declared schema, and the lineage columns of the bronze layer."""

from data_mesh.ingest.bronze import BRONZE_COLUMNS, IngestError, add_bronze_columns
from data_mesh.ingest.database import (
    DatabaseBatch,
    DatabaseRead,
    JdbcSource,
    read_database,
)
from data_mesh.ingest.files import FORMATS, REJECTED_COLUMNS, FileBatch, read_files
from data_mesh.settings.secrets import redact_url

__all__ = [
    "BRONZE_COLUMNS",
    "FORMATS",
    "REJECTED_COLUMNS",
    "DatabaseBatch",
    "DatabaseRead",
    "FileBatch",
    "IngestError",
    "JdbcSource",
    "add_bronze_columns",
    "read_database",
    "read_files",
    "redact_url",
]
