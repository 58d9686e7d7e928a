"""`data-mesh quality profile`: the profile's figures against ones computed independently in
Python, the suggestions it makes (and the ones the data refutes), and the round trip: the
suggested rules load from a product file, validate, and pass on the data they came from."""

from __future__ import annotations

import datetime as dt
import random
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance
from pyspark.sql import DataFrame, SparkSession
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage
from data_mesh.cli.app import app
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.quality.profile import (
    ColumnProfile,
    profile_frame,
    suggest_rules,
    suggestions_yaml,
    verified_suggestions,
)
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh_tests.conftest import SAMPLE_PRODUCTS, ddz_dataset

pytestmark = pytest.mark.slow

NOW = dt.datetime(2026, 3, 1, 12, 0)
SCHEMA = "id bigint, code string, status string, amount decimal(18,2), day date, note string"


def _rows() -> list[tuple[Any, ...]]:
    """600 rows: a key, a code like AB12, a small domain, amounts with NULLs, recent days."""
    pick = random.Random(7)
    rows = []
    for i in range(600):
        code = f"{pick.choice('ABC')}{pick.choice('XYZ')}{pick.randint(1, 999)}"
        status = pick.choice(["NEW", "PAID", "SHIPPED"])
        amount = None if i % 9 == 0 else Decimal(pick.randint(100, 99_999)) / 100
        day = dt.date(2026, 2, 20) + dt.timedelta(days=i % 10)
        note = None if i % 4 == 0 else "x" * pick.randint(1, 30)
        rows.append((i + 1, code, status, amount, day, note))
    return rows


@pytest.fixture(scope="module")
def frame(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(_rows(), SCHEMA)


def _column(columns: tuple[ColumnProfile, ...], name: str) -> ColumnProfile:
    return next(c for c in columns if c.name == name)


def test_profile_figures_match_independently_computed_ones(frame: DataFrame) -> None:
    rows = _rows()
    profile = profile_frame(frame, "orders", NOW)
    assert profile.rows == len(rows)
    for index, name in enumerate(frame.columns):
        values = [r[index] for r in rows]
        present = [v for v in values if v is not None]
        column = _column(profile.columns, name)
        assert column.nulls == len(values) - len(present), name
        # HyperLogLog: within 2% of the exact distinct count.
        assert column.distinct == pytest.approx(len(set(present)), rel=0.02), name
    amounts = [r[3] for r in rows if r[3] is not None]
    amount = _column(profile.columns, "amount")
    assert (amount.minimum, amount.maximum) == (float(min(amounts)), float(max(amounts)))
    assert amount.mean == pytest.approx(float(sum(amounts)) / len(amounts))
    status = _column(profile.columns, "status")
    counts = {s: sum(r[2] == s for r in rows) for s in {r[2] for r in rows}}
    assert dict(status.values) == counts
    note = _column(profile.columns, "note")
    lengths = [len(r[5]) for r in rows if r[5] is not None]
    assert (note.min_length, note.max_length) == (min(lengths), max(lengths))
    assert note.values == ()  # 30 distinct values: too many to list
    day = _column(profile.columns, "day")
    newest = max(r[4] for r in rows)
    assert day.age_hours == pytest.approx(
        (NOW - dt.datetime.combine(newest, dt.time())).total_seconds() / 3600
    )
    assert _column(profile.columns, "code").pattern == "[A-Z]+[0-9]+"
    assert profile.metrics()["null_share:amount"] == pytest.approx(1 - len(amounts) / len(rows))


def test_suggestions_follow_the_profile(frame: DataFrame) -> None:
    suggested = {
        (s.type, s.configuration.get("column") or tuple(s.configuration.get("columns", ())))
        for s in suggest_rules(profile_frame(frame, "orders", NOW))
    }
    assert ("not_null", "id") in suggested and ("unique", ("id",)) in suggested
    assert ("not_null", "amount") not in suggested  # it has NULLs
    assert ("accepted_values", "status") in suggested
    assert ("regex", "code") in suggested
    assert ("range", "amount") in suggested and ("length", "note") in suggested
    assert ("freshness", "day") in suggested
    assert ("unique", ("code",)) not in suggested  # about 530 distinct codes in 600 rows


def test_values_of_personal_data_are_neither_kept_nor_suggested(frame: DataFrame) -> None:
    profile = profile_frame(frame, "orders", NOW, pii_columns=["STATUS"])
    status = _column(profile.columns, "status")
    assert status.pii and (status.minimum, status.maximum, status.values) == (None, None, ())
    assert status.nulls == 0 and status.min_length == 3  # counts and lengths are kept
    text = suggestions_yaml("orders", profile, suggest_rules(profile), "test")
    assert "status_not_null" in text
    assert not any(value in text for value in ("NEW", "PAID", "SHIPPED"))


def test_nulls_nan_and_wide_decimals_still_give_rules_that_pass(spark: SparkSession) -> None:
    rows = [
        ("A" if i % 3 else None, float("nan") if i == 5 else i / 4, Decimal("1.123456789012345678"))
        for i in range(300)
    ]
    frame = spark.createDataFrame(rows, "code string, ratio double, fine decimal(38,18)")
    profile = profile_frame(frame, "odd", NOW)
    code = _column(profile.columns, "code")
    assert code.values == (("A", 200),)  # NULL is not one of the values
    ratio = _column(profile.columns, "ratio")
    assert ratio.maximum is None and ratio.mean is None  # NaN: no bound, no metric
    assert "mean:ratio" not in profile.metrics()  # nothing to keep as history
    checked = verified_suggestions(spark, frame, ddz_dataset("odd"), suggest_rules(profile))
    kept = {(s.type, s.configuration.get("column")) for s in checked.kept}
    assert ("accepted_values", "code") in kept and ("range", "fine") in kept
    assert checked.rejected == ()


def test_a_suggestion_the_data_refutes_is_reported_not_suggested(spark: SparkSession) -> None:
    # 2,000 distinct ids and one duplicate: the distinct estimate says key; the exact check not.
    ids = [*range(2000), 5]
    frame = spark.createDataFrame([(i,) for i in ids], "id bigint")
    dataset = ddz_dataset("ids")
    checked = verified_suggestions(
        spark, frame, dataset, suggest_rules(profile_frame(frame, "ids"))
    )
    assert [s.type for s, _ in checked.rejected] == ["unique"]
    assert "2 of 2,001 rows fail" in checked.rejected[0][1]
    assert "unique" not in {s.type for s in checked.kept}


def test_suggested_rules_load_validate_and_pass_on_the_data_they_came_from(
    loaded: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    write_sample_data(spark, lake_storage(loaded), 300)
    suggestions = tmp_path / "sor1_payments.suggested.yaml"
    runner = CliRunner()
    result = runner.invoke(
        app, ["quality", "profile", "sor1_payments", "--computed", "--output", str(suggestions)]
    )
    assert result.exit_code == 0, result.output
    assert "sor1_payments: 300 rows of the output of transformation" in result.output
    suggested = yaml.safe_load(suggestions.read_text())["quality_rules"]
    assert {"not_null", "accepted_values", "range", "freshness"} <= {r["type"] for r in suggested}
    assert all(r["description"].startswith("Suggested from a profile: ") for r in suggested)

    # The user copies them into the product file and loads it.
    products = tmp_path / "products"
    shutil.copytree(SAMPLE_PRODUCTS, products)
    product_file = products / "sor1_payments" / "product.yaml"
    product = yaml.safe_load(product_file.read_text())
    product["quality_rules"] += suggested
    product_file.write_text(yaml.safe_dump(product, sort_keys=False))
    result = runner.invoke(app, ["load", str(products)])
    assert result.exit_code == 0, result.output

    outcome = materialize_products(loaded, ["sor1_payments"], DagsterInstance.ephemeral())
    assert outcome.success, outcome.failure
    checks = {c.check: c for c in outcome.checks}
    failed = [
        f"{r['name']}: {checks[r['name']].observed}"
        for r in suggested
        if not checks[r["name"]].passed
    ]
    assert failed == []
    assert {r["name"] for r in suggested} <= set(checks)
