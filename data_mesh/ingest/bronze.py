"""What every bronze load shares: its error type and the lineage columns it adds to each row."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from data_mesh.catalog.errors import DataMeshError

BRONZE_COLUMNS = ("LOAD_TIMESTAMP", "SOURCE_SYSTEM", "RUN_ID")


class IngestError(DataMeshError):
    """A bronze read that cannot run; the message names the table, file or dataset and the
    problem, never a password."""


def add_bronze_columns(
    frame: DataFrame,
    source_system: str,
    run_id: str,
    load_timestamp: datetime | None = None,
) -> DataFrame:
    """`frame` with LOAD_TIMESTAMP, SOURCE_SYSTEM and RUN_ID appended.

    LOAD_TIMESTAMP is one literal for the whole load (not `current_timestamp()` per row), so
    every row of a load carries the same value and the load can be found by it. A naive
    `load_timestamp` is taken as UTC.
    """
    # Spark resolves names case-insensitively: `run_id` would clash with RUN_ID as well.
    clashes = [c for c in frame.columns if c.upper() in BRONZE_COLUMNS]
    if clashes:
        raise IngestError(
            f"the source already has column(s) {', '.join(clashes)}: the bronze layer adds "
            f"{', '.join(BRONZE_COLUMNS)} itself; rename them in the source query"
        )
    stamp = load_timestamp or datetime.now(UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return frame.withColumns(
        {
            "LOAD_TIMESTAMP": F.lit(stamp),
            "SOURCE_SYSTEM": F.lit(source_system),
            "RUN_ID": F.lit(run_id),
        }
    )
