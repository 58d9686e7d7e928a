"""The spool: the data of one load written once, one folder per chunk.

Spark writes it with `partitionBy(chunk)` (no shuffle: every task writes its rows straight into
their chunk's folder), so the upstream plan runs once for the load, in parallel, streaming. The
chunks are then loaded one transaction each; a resumed load reuses a complete spool.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyspark.sql import DataFrame

from data_mesh.ddz.chunks import CHUNK_COLUMN

COMPLETE_MARKER = "_DATA_MESH_LOAD"

# CSV exactly as PostgreSQL's COPY (FORMAT csv) reads it: NULL is an unquoted empty field, an
# empty string is "", quotes are doubled, values keep their spaces.
CSV_OPTIONS = {
    "header": "false",
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "nullValue": "",
    "emptyValue": '""',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "dateFormat": "yyyy-MM-dd",
    "timestampFormat": "yyyy-MM-dd HH:mm:ss.SSSSSS",
    "encoding": "UTF-8",
    "lineSep": "\n",
}


def is_complete(directory: Path, load_id: str) -> bool:
    marker = directory / COMPLETE_MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == load_id


def write_spool(frame: DataFrame, directory: Path, file_format: str, load_id: str) -> None:
    """Write `frame` (with the chunk column) to `directory`, replacing what was there."""
    writer = frame.write.mode("overwrite").partitionBy(CHUNK_COLUMN)
    if file_format == "csv":
        writer.options(**CSV_OPTIONS).csv(str(directory))
    else:
        writer.parquet(str(directory))
    (directory / COMPLETE_MARKER).write_text(load_id, encoding="utf-8")


def chunk_folder(directory: Path, chunk_id: int) -> Path:
    return directory / f"{CHUNK_COLUMN}={chunk_id}"


def chunk_files(directory: Path, chunk_id: int) -> list[Path]:
    folder = chunk_folder(directory, chunk_id)
    return sorted(p for p in folder.glob("part-*") if p.stat().st_size > 0)


def remove_spool(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
