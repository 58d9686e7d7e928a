"""Metrics of a dataset as Spark aggregates: what anomaly rules judge and profiles keep.

A metric is a few partial aggregates over rows, a way to merge each partial across groups (the
rule engine's single pass aggregates per key first when a `unique` rule is folded in), and a
final expression over the merged partials. The distinct count is Spark's HyperLogLog++
(`approx_count_distinct`), which cannot be merged: a pass that measures it does not fold a
`unique` rule in. (Spark's mergeable `hll_sketch_agg` is DataSketches', whose library prints a
warning on stderr of every Java newer than 11.)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from data_mesh.catalog.rule_configs import AnomalyMetric

# Relative standard deviation of the distinct count.
DISTINCT_RSD = 0.02


@dataclass(frozen=True)
class Partial:
    name: str
    over_rows: Column
    # How per-group values of the partial combine; None: they cannot.
    merge: Callable[[str], Column] | None


@dataclass(frozen=True)
class Metric:
    partials: tuple[Partial, ...]
    # The metric from the merged partials (by name); None when there is no value (no rows).
    final: Column

    @property
    def mergeable(self) -> bool:
        return all(p.merge is not None for p in self.partials)


def _summed(name: str) -> Column:
    return F.coalesce(F.sum(name), F.lit(0))


def _newest(name: str) -> Column:
    return F.max(name)


def metric(
    kind: AnomalyMetric, column: str | None, prefix: str, now: dt.datetime | None = None
) -> Metric:
    """The aggregates of one metric; partial names start with `prefix` (unique per metric)."""
    rows = Partial(f"{prefix}_rows", F.count(F.lit(1)), _summed)
    if kind == "row_count":
        return Metric((rows,), F.col(rows.name).cast("double"))
    assert column is not None, "the catalog requires a column for this metric"
    value = F.col(f"`{column}`")
    if kind == "null_share":
        nulls = Partial(f"{prefix}_nulls", F.count_if(value.isNull()), _summed)
        final = F.when(F.col(rows.name) > 0, F.col(nulls.name) / F.col(rows.name))
        return Metric((rows, nulls), final)
    if kind in ("sum", "mean"):
        total = Partial(f"{prefix}_sum", F.sum(value.cast("double")), lambda n: F.sum(n))
        present = Partial(f"{prefix}_present", F.count(value), _summed)
        if kind == "sum":
            return Metric((total,), F.col(total.name))
        final = F.when(F.col(present.name) > 0, F.col(total.name) / F.col(present.name))
        return Metric((total, present), final)
    if kind == "distinct_count":
        distinct = Partial(f"{prefix}_hll", F.approx_count_distinct(value, DISTINCT_RSD), None)
        return Metric((distinct,), F.col(distinct.name).cast("double"))
    if kind == "freshness_lag_hours":
        newest = Partial(f"{prefix}_newest", F.max(value.cast("timestamp")), _newest)
        clock = F.lit(now) if now else F.current_timestamp()
        age = (F.unix_seconds(clock) - F.unix_seconds(F.col(newest.name))) / 3600.0
        return Metric((newest,), age)
    raise AssertionError(f"unknown metric {kind}")
