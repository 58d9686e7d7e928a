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


def is_complete(directory: Path, load_id: str) -> bool:
    marker = directory / COMPLETE_MARKER
    return marker.is_file() and marker.read_text(encoding="utf-8") == load_id


def write_spool(frame: DataFrame, directory: Path, load_id: str) -> None:
    """Write `frame` (with the chunk column) as Parquet to `directory`, replacing it."""
    frame.write.mode("overwrite").partitionBy(CHUNK_COLUMN).parquet(str(directory))
    (directory / COMPLETE_MARKER).write_text(load_id, encoding="utf-8")


def chunk_folder(directory: Path, chunk_id: int) -> Path:
    return directory / f"{CHUNK_COLUMN}={chunk_id}"


def remove_spool(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)
