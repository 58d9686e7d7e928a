"""Metrics of a dataset as Spark aggregates: what anomaly rules judge and profiles keep.

A metric is a few partial aggregates over rows, a way to merge each partial across groups (the
rule engine's single pass aggregates per key first when a `unique` rule is folded in), and a
final expression over the merged partials. The distinct count is a HyperLogLog sketch, merged
with `hll_union_agg`, so both paths give the same estimate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from data_mesh.catalog.rule_configs import AnomalyMetric

# lgConfigK of the distinct-count sketch: 2^12 buckets, about 1.6% relative standard error.
HLL_LG_K = 12


@dataclass(frozen=True)
class Partial:
    name: str
    over_rows: Column
    merge: Callable[[str], Column]


@dataclass(frozen=True)
class Metric:
    partials: tuple[Partial, ...]
    # The metric from the merged partials (by name); None when there is no value (no rows).
    final: Column


def _summed(name: str) -> Column:
    return F.coalesce(F.sum(name), F.lit(0))


def _newest(name: str) -> Column:
    return F.max(name)


def _union(name: str) -> Column:
    return F.hll_union_agg(name)


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
        sketch = Partial(
            f"{prefix}_hll", F.hll_sketch_agg(value.cast("string"), F.lit(HLL_LG_K)), _union
        )
        return Metric((sketch,), F.hll_sketch_estimate(F.col(sketch.name)).cast("double"))
    if kind == "freshness_lag_hours":
        newest = Partial(f"{prefix}_newest", F.max(value.cast("timestamp")), _newest)
        clock = F.lit(now) if now else F.current_timestamp()
        age = (F.unix_seconds(clock) - F.unix_seconds(F.col(newest.name))) / 3600.0
        return Metric((newest,), age)
    raise AssertionError(f"unknown metric {kind}")
