"""Anomaly rules: the judgement on synthetic histories (a step change is flagged, noise is not,
too short a history is not judged), each metric against independently computed figures, and the
metric history in the store."""

from __future__ import annotations

import datetime as dt
import json
import random
import statistics
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from sqlalchemy import Engine

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.models import DataSetModel, QualityRuleModel
from data_mesh.catalog.rule_configs import AnomalyRule, parse_rule_config
from data_mesh.quality.anomaly import history_markdown, judge
from data_mesh.quality.evaluate import evaluate_rules
from data_mesh.quality.history import metric_rows
from data_mesh.store.metrics import metric_history, record_metrics
from data_mesh_tests.conftest import ddz_dataset

START = dt.datetime(2026, 1, 1, 6, 0)
NOW = dt.datetime(2026, 3, 1, 12, 0)


def _config(**options: Any) -> AnomalyRule:
    config = parse_rule_config(
        7, "volume", "anomaly", json.dumps({"metric": "row_count", **options})
    )
    assert isinstance(config, AnomalyRule)
    return config


def _dated(values: list[float]) -> list[tuple[dt.datetime, float]]:
    return [(START + dt.timedelta(days=i), v) for i, v in enumerate(values)]


def _flagged_days(series: list[float], config: AnomalyRule) -> list[int]:
    """Each day judged against the days before it, as the runs would be."""
    flagged = []
    for day, value in enumerate(series):
        history = _dated(series[:day])[-config.history_runs :]
        if judge(value, history, config).anomalous:
            flagged.append(day)
    return flagged


def test_a_step_change_is_flagged_and_noise_alone_is_not() -> None:
    """200 synthetic series of 40 runs, normal noise of 2% around 1,000 rows (seeded)."""
    noise = random.Random(19)
    config = _config()
    false_alarms = judged = 0
    steps_flagged = 0
    for _ in range(200):
        quiet = [1000 + noise.gauss(0, 20) for _ in range(40)]
        false_alarms += len(_flagged_days(quiet, config))
        judged += len(quiet) - config.min_history
        # Then the volume drops by 30% (a half-delivered export): that run is flagged.
        series = [*quiet, 700.0]
        steps_flagged += _flagged_days(series, config)[-1:] == [40]
    assert steps_flagged == 200
    # Noise alone: about 1 run in 120 early on and fewer later (see AnomalyRule's defaults).
    assert false_alarms / judged < 0.01


def test_the_band_is_the_median_plus_minus_k_scaled_mads() -> None:
    values = [10.0, 12.0, 11.0, 13.0, 9.0, 30.0]  # one outlier in the history
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    config = _config(max_deviations=2, min_history=5)
    verdict = judge(17.0, _dated(values), config)
    assert verdict.median == median
    assert verdict.low == pytest.approx(median - 2 * 1.4826 * mad)
    assert verdict.high == pytest.approx(median + 2 * 1.4826 * mad)
    # The outlier (30) barely moves the band: 17 is out, 15 is in.
    assert verdict.anomalous
    assert judge(15.0, _dated(values), config).passed


def test_a_constant_history_uses_the_minimum_relative_band() -> None:
    history = _dated([500.0] * 6)
    assert judge(501.0, history, _config(min_history=5)).anomalous
    banded = _config(min_history=5, min_relative_band=0.05)
    assert judge(510.0, history, banded).passed
    assert judge(530.0, history, banded).anomalous


def test_too_short_a_history_is_not_judged() -> None:
    verdict = judge(1.0e9, _dated([10.0, 11.0]), _config(min_history=3))
    assert not verdict.judged and verdict.passed
    assert "not enough history: 2 of 3 runs" in verdict.observed(_config(min_history=3))


def test_the_markdown_shows_the_history_newest_first_and_flags_this_run() -> None:
    history = _dated([10.0, 11.0, 10.0, 12.0, 11.0])
    config = _config(min_history=5)
    text = history_markdown(judge(40.0, history, config), config)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert lines[1] == "| this run | 40 | outside the band |"
    assert lines[2].startswith(f"| {history[-1][0]:%Y-%m-%d %H:%M} | 11 |")
    assert "Expected band:" in text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"column": "amount"}, "metric 'row_count' takes no 'column'"),
        ({"metric": "mean"}, "metric 'mean' needs a 'column'"),
        ({"min_history": 10, "history_runs": 5}, "'min_history' (10) is greater than"),
        ({"metric": "median"}, "metric"),
        ({"action": "drop"}, "action 'drop' applies to rules that judge single rows only"),
    ],
)
def test_a_bad_anomaly_rule_is_named_by_its_row(options: dict[str, Any], message: str) -> None:
    with pytest.raises(MetadataError) as error:
        parse_rule_config(7, "volume", "anomaly", json.dumps({"metric": "row_count", **options}))
    assert "DataQualityRules row 7 (volume)" in str(error.value)
    assert message in str(error.value)


def test_the_default_severity_is_warn_and_blocking_needs_error() -> None:
    assert _config().severity == "WARN"
    assert _config(severity="ERROR", blocking=True).stops_load
    with pytest.raises(MetadataError, match="'blocking' applies to severity ERROR only"):
        _config(blocking=True)


# --- on Spark ---------------------------------------------------------------------------------

ROWS = [
    (1, "a", 10.0, dt.datetime(2026, 3, 1, 6, 0)),
    (2, "b", None, dt.datetime(2026, 2, 28, 0, 0)),
    (3, "a", 2.5, None),
    (4, None, 7.5, dt.datetime(2026, 2, 27, 0, 0)),
    (4, "c", 30.0, dt.datetime(2026, 2, 26, 0, 0)),
]
SCHEMA = "id int, code string, amount double, ts timestamp"


def _dataset() -> DataSetModel:
    return ddz_dataset("orders", 31)


def _rule(rule_id: int, kind: str, **config: Any) -> QualityRuleModel:
    return QualityRuleModel(
        id=rule_id,
        name=f"rule_{rule_id}",
        description=None,
        type=kind,
        config=parse_rule_config(rule_id, f"rule_{rule_id}", kind, json.dumps(config)),
        dataset=_dataset(),
    )


METRICS = [
    ("row_count", None),
    ("null_share", "code"),
    ("sum", "amount"),
    ("mean", "amount"),
    ("distinct_count", "code"),
    ("freshness_lag_hours", "ts"),
]


def _expected() -> dict[str, float]:
    """The same metrics computed in Python from ROWS."""
    amounts = [r[2] for r in ROWS if r[2] is not None]
    newest = max(r[3] for r in ROWS if r[3] is not None)
    return {
        "row_count": float(len(ROWS)),
        "null_share:code": sum(r[1] is None for r in ROWS) / len(ROWS),
        "sum:amount": sum(amounts),
        "mean:amount": sum(amounts) / len(amounts),
        "distinct_count:code": float(len({r[1] for r in ROWS if r[1] is not None})),
        "freshness_lag_hours:ts": (NOW - newest).total_seconds() / 3600,
    }


@pytest.fixture(scope="module")
def orders(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.mark.slow
@pytest.mark.parametrize("with_unique", [False, True], ids=["one_aggregation", "per_key_merged"])
def test_each_metric_equals_the_independently_computed_figure(
    spark: SparkSession, orders: DataFrame, with_unique: bool
) -> None:
    # The distinct count cannot be merged across keys: with it, `unique` is not folded in.
    metrics = [m for m in METRICS if not with_unique or m[0] != "distinct_count"]
    rules = [
        _rule(i, "anomaly", metric=kind, **({"column": column} if column else {}))
        for i, (kind, column) in enumerate(metrics, start=1)
    ]
    if with_unique:  # the single pass then aggregates per key and merges the metrics' parts
        rules.append(_rule(99, "unique", columns=["id"]))
    report = evaluate_rules(spark, orders, rules, now=NOW)
    expected = {k: v for k, v in _expected().items() if k in report.metrics}
    assert len(expected) == len(metrics) and report.metrics == pytest.approx(expected)
    outcomes = [o for o in report.outcomes if isinstance(o.rule.config, AnomalyRule)]
    assert all(o.passed and o.details["judged"] is False for o in outcomes)


@pytest.mark.slow
def test_a_run_outside_its_history_fails_with_value_band_and_history(
    spark: SparkSession, orders: DataFrame
) -> None:
    rule = _rule(1, "anomaly", metric="row_count", min_history=5)
    usual = _dated([100.0, 104.0, 98.0, 101.0, 99.0, 102.0])
    report = evaluate_rules(spark, orders, [rule], now=NOW, history={"row_count": usual})
    (outcome,) = report.outcomes
    assert not outcome.passed
    assert outcome.details["value"] == 5.0
    assert outcome.details["expected_low"] > 5.0
    assert outcome.details["history_runs"] == 6
    assert "outside the expected band" in outcome.observed
    assert (
        outcome.markdown is not None and "| this run | 5 | outside the band |" in outcome.markdown
    )
    # The same rows against a history like them pass.
    like = _dated([5.0, 6.0, 5.0, 4.0, 5.0])
    assert (
        evaluate_rules(spark, orders, [rule], now=NOW, history={"row_count": like})
        .outcomes[0]
        .passed
    )


def test_the_store_returns_the_last_runs_oldest_first_without_the_judged_run(store: Engine) -> None:
    dataset = _dataset()
    for day in range(8):
        when = START + dt.timedelta(days=day)
        values = {"row_count": float(100 + day), "mean:amount": None if day == 7 else float(day)}
        record_metrics(store, metric_rows(dataset, values, f"run-{day}", None, when))
    history = metric_history(
        store, dataset.id, ["row_count", "mean:amount"], 3, exclude_run="run-7"
    )
    assert [v for _, v in history["row_count"]] == [104.0, 105.0, 106.0]
    # A run without a value (NULL) is left out, not counted as a run of the history.
    assert [v for _, v in history["mean:amount"]] == [4.0, 5.0, 6.0]
    # A step retry measures again: its row replaces the earlier one of the same run.
    record_metrics(store, metric_rows(dataset, {"row_count": 1.0}, "run-6", None, START))
    again = metric_history(store, dataset.id, ["row_count"], 10)
    assert [v for _, v in again["row_count"]].count(106.0) == 0
    assert len(again["row_count"]) == 8
