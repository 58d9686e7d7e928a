"""The metric history of DataSets in the metadata store (`DataSetMetrics`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, delete, func, select

from data_mesh.store.schema import dataset_metrics


@dataclass(frozen=True)
class MetricRow:
    DataSetID: int
    DataSetName: str
    Metric: str
    RunID: str
    PartitionKey: str | None
    MeasuredAt: dt.datetime
    Value: float | None


def record_metrics(engine: Engine, rows: Sequence[MetricRow]) -> None:
    """Store `rows`, replacing the same metrics of the same run (a retried step measures again),
    in one transaction."""
    if not rows:
        return
    table = dataset_metrics
    with engine.begin() as connection:
        for dataset_id, run_id in {(row.DataSetID, row.RunID) for row in rows}:
            metrics = [r.Metric for r in rows if (r.DataSetID, r.RunID) == (dataset_id, run_id)]
            connection.execute(
                delete(table).where(
                    table.c.DataSetID == dataset_id,
                    table.c.RunID == run_id,
                    table.c.Metric.in_(metrics),
                )
            )
        connection.execute(table.insert(), [asdict(row) for row in rows])


def metric_history(
    engine: Engine,
    dataset_id: int,
    metrics: Sequence[str],
    runs: int,
    exclude_run: str | None = None,
) -> dict[str, list[tuple[dt.datetime, float]]]:
    """The last `runs` values of each metric of a DataSet, oldest first, NULL values left out
    (a metric with no value in a run says nothing about its usual range).

    `exclude_run` leaves out the run being judged, so a retried step compares with the past only.
    """
    table = dataset_metrics.c
    # Newest first, numbered per metric, so one query serves every metric.
    newest = (
        func.row_number()
        .over(partition_by=table.Metric, order_by=(table.MeasuredAt.desc(), table.MetricID.desc()))
        .label("position")
    )
    filters = [
        table.DataSetID == dataset_id,
        table.Metric.in_(list(metrics)),
        table.Value.isnot(None),
    ]
    if exclude_run is not None:
        filters.append(table.RunID != exclude_run)
    ranked = select(table.Metric, table.MeasuredAt, table.Value, newest).where(*filters).subquery()
    query = (
        select(ranked.c.Metric, ranked.c.MeasuredAt, ranked.c.Value)
        .where(ranked.c.position <= runs)
        .order_by(ranked.c.Metric, ranked.c.MeasuredAt, ranked.c.position.desc())
    )
    history: dict[str, list[tuple[dt.datetime, float]]] = {m: [] for m in metrics}
    with engine.connect() as connection:
        for metric, measured_at, value in connection.execute(query):
            history[metric].append((measured_at, float(value)))
    return history
