"""Quarantined rows in the lake: `quarantine/<domain>/<dataset>/load_id=<load id>/` (Parquet).

Rows a `drop` rule rejected land here with the rule, the reason and the load id, so they can
be inspected (`data-mesh quarantine show`) and fixed at the source. One folder per load: a
retried load overwrites its own folder and never mixes with another load's rows.
"""

from __future__ import annotations

import re

from pyspark.sql import DataFrame

from data_mesh.catalog.models import DataSetModel

QUARANTINE_CONTAINER = "quarantine"
_LOAD_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def quarantine_folder(dataset: DataSetModel) -> str:
    return f"{QUARANTINE_CONTAINER}/{dataset.domain}/{dataset.name}"


def quarantine_path(dataset: DataSetModel, load_id: str) -> str:
    if not _LOAD_ID.fullmatch(load_id):
        raise ValueError(f"load id {load_id!r} is not usable in a lake path")
    return f"{quarantine_folder(dataset)}/load_id={load_id}"


def write_quarantine(rows: DataFrame, uri: str) -> int:
    """Write the quarantined rows (replacing an earlier attempt of the same load); returns how
    many were written, read back from what was written, not counted a second time upstream."""
    rows.write.mode("overwrite").parquet(uri)
    return rows.sparkSession.read.parquet(uri).count()
