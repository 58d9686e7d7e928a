"""A quality report as rows of the results history (`DataQualityResults`) and metrics as rows of
the metric history (`DataSetMetrics`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

from data_mesh.catalog.models import DataSetModel
from data_mesh.quality.evaluate import QualityReport
from data_mesh.store.metrics import MetricRow
from data_mesh.store.quality_results import QualityResultRow
from data_mesh.store.rows import store_now


def history_rows(
    report: QualityReport, run_id: str, evaluated_at: dt.datetime | None = None
) -> list[QualityResultRow]:
    """One row per evaluated rule; samples are not stored (they may hold personal data)."""
    when = evaluated_at or store_now()
    return [
        QualityResultRow(
            RuleID=o.rule.id,
            RuleName=o.rule.name,
            DataSetID=o.rule.dataset.id,
            DataSetName=o.rule.dataset.name,
            RunID=run_id,
            EvaluatedAt=when,
            Passed=o.passed,
            Severity=o.rule.config.severity,
            TotalRows=o.total_rows,
            FailingRows=o.failing_rows,
            FailingPercent=o.failing_percent,
            Threshold=o.rule.config.threshold,
            Observed=o.observed,
        )
        for o in report.outcomes
    ]


def metric_rows(
    dataset: DataSetModel,
    metrics: Mapping[str, float | None],
    run_id: str,
    day: str | None = None,
    measured_at: dt.datetime | None = None,
) -> list[MetricRow]:
    """One row per metric of `dataset` measured in run `run_id` (of partition `day`)."""
    when = measured_at or store_now()
    return [
        MetricRow(
            DataSetID=dataset.id,
            DataSetName=dataset.name,
            Metric=name,
            RunID=run_id,
            PartitionKey=day,
            MeasuredAt=when,
            # NaN and infinity are no measure (and SQL Server's float refuses them).
            Value=value if value is None or math.isfinite(value) else None,
        )
        for name, value in sorted(metrics.items())
    ]
