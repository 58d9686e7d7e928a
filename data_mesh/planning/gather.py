"""What a plan is made from: the sizes of a transformation's inputs in the lake (for one day, if
daily), its shape, and its output's run history in the audit log."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from sqlalchemy import Engine

from data_mesh.catalog.models import DataSetModel, TransformationModel
from data_mesh.lake.storage import Storage
from data_mesh.planning.plan import (
    DEFAULT_ASSUMPTIONS,
    Assumptions,
    DatabaseTier,
    InputSize,
    ResourcePlan,
    RunHistory,
    plan_resources,
)
from data_mesh.planning.shape import transformation_shape
from data_mesh.store.audit import SUCCESS, latest_audit

# Bytes of a value of a declared type in a DDZ row (text: an assumed average).
_TYPE_BYTES = {
    "boolean": 1,
    "tinyint": 1,
    "smallint": 2,
    "int": 4,
    "integer": 4,
    "date": 4,
    "bigint": 8,
    "long": 8,
    "double": 8,
    "float": 4,
    "timestamp": 8,
    "decimal": 17,
}
TEXT_BYTES = 32
HISTORY_RUNS = 10


def declared_row_bytes(dataset: DataSetModel) -> int | None:
    """A row's bytes from the declared column types; None without a declared schema."""
    if not dataset.columns:
        return None
    return sum(
        _TYPE_BYTES.get((c.type or "string").split("(")[0].strip().lower(), TEXT_BYTES)
        for c in dataset.columns
    )


def run_history(engine: Engine, asset: str) -> RunHistory:
    rows = latest_audit(engine, HISTORY_RUNS, assets=[asset], status=SUCCESS)
    counted = [r.RowCount for r in rows if r.RowCount is not None]
    return RunHistory(
        runs=len(rows),
        rows=int(statistics.median(counted)) if counted else None,
        seconds=statistics.median(r.ProcessingTime for r in rows) if rows else None,
    )


def lake_input(storage: Storage, dataset: DataSetModel, day: str | None) -> InputSize:
    """Data files under the DataSet's location; of a daily DataSet, the folder of `day`, or
    without a day the newest day's (what one run reads)."""
    location = (dataset.location or "").rstrip("/")
    sizes = storage.file_sizes(location)
    if not sizes:  # a single file, or nothing there
        parent = location.rsplit("/", 1)[0]
        sizes = {p: n for p, n in storage.file_sizes(parent).items() if p == location}
    # Not data: Spark's markers, Delta's log and hidden files (any segment under the location).
    data = {
        p: n
        for p, n in sizes.items()
        if not any(part.startswith(("_", ".")) for part in p[len(location) :].split("/"))
    }
    if dataset.partition is not None:
        folder = f"{dataset.partition.column}="
        days = sorted({p[len(location) + 1 :].split("/")[0] for p in data if folder in p})
        wanted = f"{folder}{day}" if day is not None else (days[-1] if days else "")
        data = {p: n for p, n in data.items() if p.startswith(f"{location}/{wanted}/")}
    return InputSize(dataset.name, len(data), sum(data.values()))


def input_size(
    storage: Storage,
    engine: Engine,
    dataset: DataSetModel,
    day: str | None,
    asset_key: Callable[[DataSetModel], str],
) -> InputSize:
    if dataset.layer == "CDZ":
        return lake_input(storage, dataset, day)
    history = run_history(engine, asset_key(dataset))
    row_bytes = declared_row_bytes(dataset)
    if history.rows is None or row_bytes is None:
        return InputSize(dataset.name, 0, 0, "unknown")
    # A DDZ table is read over JDBC into rows: sized as if it were columnar on disk.
    return InputSize(dataset.name, 1, int(history.rows * row_bytes / 3), "history")


def plan_transformation(
    transformation: TransformationModel,
    storage: Storage,
    engine: Engine,
    day: str | None,
    tier: DatabaseTier,
    asset_key: Callable[[DataSetModel], str],
    assume: Assumptions = DEFAULT_ASSUMPTIONS,
) -> tuple[list[InputSize], ResourcePlan]:
    inputs = [input_size(storage, engine, d, day, asset_key) for d in transformation.inputs]
    output = transformation.output
    plan = plan_resources(
        inputs,
        transformation_shape(transformation, storage),
        run_history(engine, asset_key(output)),
        declared_row_bytes(output),
        tier,
        kafka_output=output.is_kafka,
        assume=assume,
    )
    return inputs, plan
