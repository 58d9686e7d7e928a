"""Each rule type on Spark: NULLs, empty data, all failing, thresholds exactly met; quarantine
contents; PII masking; one pass; and bad rule configurations named by their row."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.models import DataSetModel, DeclaredColumn, QualityRuleModel
from data_mesh.catalog.rule_configs import parse_rule_config
from data_mesh.quality.evaluate import (
    MASK,
    QualityReport,
    QualityRuleError,
    RuleOutcome,
    evaluate_rules,
)

pytestmark = pytest.mark.slow

SCHEMA = "id int, customer int, email string, status string, amount double, ts timestamp"
ROWS = [
    (1, 10, "a@example.com", "NEW", 5.0, dt.datetime(2026, 1, 2, 0, 0)),
    (2, 10, None, "OLD", -1.0, dt.datetime(2026, 1, 1, 0, 0)),
    (3, 99, "c@example.com", "BAD", None, None),
    (3, 11, "not-an-email", "NEW", 100.0, None),
]
NOW = dt.datetime(2026, 1, 2, 12, 0)


def _dataset(name: str = "orders", layer: str = "DDZ", pii: tuple[str, ...] = ()) -> DataSetModel:
    return DataSetModel(
        id=1 if layer == "DDZ" else 2,
        name=name,
        product="p",
        domain="d",
        layer=layer,
        source_name="ddz" if layer == "DDZ" else "cdz",
        source_type="ddz" if layer == "DDZ" else "lake",
        source_format="table" if layer == "DDZ" else "parquet",
        location=None if layer == "DDZ" else f"cdz/{name}",
        target_schema="ddz" if layer == "DDZ" else None,
        target_table=name.upper() if layer == "DDZ" else None,
        write_mode="replace" if layer == "DDZ" else None,
        key_columns=(),
        description=None,
        columns=tuple(DeclaredColumn(c, pii=True) for c in pii),
    )


CUSTOMERS = _dataset("customers", layer="CDZ")


def _rule(kind: str, rule_id: int = 1, dataset: DataSetModel | None = None, **config: Any):
    return QualityRuleModel(
        id=rule_id,
        name=f"rule_{rule_id}",
        description=None,
        type=kind,
        config=parse_rule_config(rule_id, f"rule_{rule_id}", kind, json.dumps(config)),
        dataset=dataset or _dataset(),
        reference=CUSTOMERS if kind == "referential_integrity" else None,
    )


@pytest.fixture(scope="module")
def orders(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.fixture(scope="module")
def empty(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], SCHEMA)


@pytest.fixture(scope="module")
def customers(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([(10,), (11,), (None,)], "customer_id int")


def _one(spark: SparkSession, frame: DataFrame, rule: QualityRuleModel, **kw: Any) -> RuleOutcome:
    return evaluate_rules(spark, frame, [rule], now=NOW, **kw).outcomes[0]


@pytest.mark.parametrize(
    ("kind", "config", "failing"),
    [
        ("not_null", {"column": "email"}, 1),
        ("accepted_values", {"column": "status", "values": ["NEW", "OLD"]}, 1),
        ("range", {"column": "amount", "min": 0, "max": 100}, 1),
        ("range", {"column": "amount", "min": 0, "max": 100, "max_inclusive": False}, 2),
        ("range", {"column": "amount", "min": 5, "min_inclusive": False}, 2),
        ("regex", {"column": "email", "pattern": r"[^@\s]+@[a-z]+\.com"}, 1),
        ("regex", {"column": "email", "pattern": "example", "full_match": False}, 1),
        ("length", {"column": "status", "min": 3, "max": 3}, 0),
        ("length", {"column": "email", "max": 12}, 2),
        ("expression", {"expression": "amount < 50 OR status = 'OLD'"}, 1),
        ("unique", {"columns": ["id"]}, 2),
        ("unique", {"columns": ["id", "customer"]}, 0),
        ("custom_sql", {"query": "select * from orders where amount > 4"}, 2),
    ],
)
def test_failing_rows_per_rule_type_with_nulls_passing(
    spark: SparkSession, orders: DataFrame, kind: str, config: dict[str, Any], failing: int
) -> None:
    outcome = _one(spark, orders, _rule(kind, **config))
    assert outcome.failing_rows == failing
    assert outcome.total_rows == len(ROWS)
    assert outcome.passed is (failing == 0)
    assert len(outcome.samples) == (min(failing, 10) if kind != "unique" else int(failing > 0))


def test_referential_integrity_ignores_nulls_and_reports_missing_keys(
    spark: SparkSession, orders: DataFrame, customers: DataFrame
) -> None:
    rule = _rule(
        "referential_integrity",
        column="customer",
        reference_dataset="customers",
        reference_column="customer_id",
    )
    outcome = _one(spark, orders, rule, references={CUSTOMERS.id: customers})
    assert outcome.failing_rows == 1
    assert [s["customer"] for s in outcome.samples] == [99]
    assert "NOT IN (SELECT `customer_id` FROM cdz.customers)" in outcome.sql


def test_every_rule_type_passes_on_an_empty_dataset_except_row_count(
    spark: SparkSession, empty: DataFrame, customers: DataFrame
) -> None:
    rules = [
        _rule("not_null", 1, column="email"),
        _rule("unique", 2, columns=["id"]),
        _rule("accepted_values", 3, column="status", values=["NEW"]),
        _rule("range", 4, column="amount", min=0),
        _rule("regex", 5, column="email", pattern="x"),
        _rule("length", 6, column="email", min=1),
        _rule("expression", 7, expression="amount > 0"),
        _rule(
            "referential_integrity",
            8,
            column="customer",
            reference_dataset="customers",
            reference_column="customer_id",
        ),
        _rule("custom_sql", 9, query="select * from orders"),
        _rule("row_count", 10, min=1),
        _rule("freshness", 11, column="ts", max_age_hours=1),
        _rule("not_null", 12, column="email", max_failing_percent=0),
    ]
    report = evaluate_rules(spark, empty, rules, {CUSTOMERS.id: customers}, now=NOW)
    failed = {o.rule.id for o in report.outcomes if not o.passed}
    assert failed == {10, 11}  # no rows, and so no timestamp to be fresh
    assert all(o.failing_percent in (None, 0.0) for o in report.outcomes)
    assert report.total_rows == 0


def test_all_rows_failing(spark: SparkSession, orders: DataFrame) -> None:
    outcome = _one(spark, orders, _rule("expression", expression="amount > 1000"))
    # The NULL amount passes (SQL CHECK semantics): 3 of 4 fail.
    assert (outcome.failing_rows, outcome.failing_percent) == (3, 75.0)
    outcome = _one(spark, orders, _rule("accepted_values", column="id", values=[7]))
    assert (outcome.failing_rows, outcome.failing_percent) == (4, 100.0)


@pytest.mark.parametrize(
    ("threshold", "passed"),
    [
        ({"max_failing_percent": 25}, True),  # exactly met
        ({"max_failing_percent": 24.99}, False),
        ({"max_failing_rows": 1}, True),  # exactly met
        ({"max_failing_rows": 0}, False),
        ({}, False),
    ],
)
def test_threshold_exactly_met_passes(
    spark: SparkSession, orders: DataFrame, threshold: dict[str, float], passed: bool
) -> None:
    outcome = _one(spark, orders, _rule("not_null", column="email", **threshold))
    assert outcome.failing_rows == 1
    assert outcome.passed is passed


@pytest.mark.parametrize(
    ("minimum", "maximum", "passed"), [(4, 4, True), (5, None, False), (None, 3, False)]
)
def test_row_count(
    spark: SparkSession, orders: DataFrame, minimum: int | None, maximum: int | None, passed: bool
) -> None:
    config = {k: v for k, v in {"min": minimum, "max": maximum}.items() if v is not None}
    outcome = _one(spark, orders, _rule("row_count", **config))
    assert outcome.passed is passed and outcome.details["rows"] == 4


@pytest.mark.parametrize(("hours", "passed"), [(12, True), (11.9, False)])
def test_freshness_is_the_age_of_the_newest_timestamp(
    spark: SparkSession, orders: DataFrame, hours: float, passed: bool
) -> None:
    outcome = _one(spark, orders, _rule("freshness", column="ts", max_age_hours=hours))
    assert outcome.details["age_hours"] == 12.0
    assert outcome.passed is passed


def test_schema_drift_reports_added_removed_and_retyped(
    spark: SparkSession, orders: DataFrame
) -> None:
    expected = {
        "id": "integer",  # Spark calls it int: no drift
        "customer": "bigint",
        "email": "string",
        "status": "string",
        "amount": "double",
        "created": "date",
    }
    outcome = _one(spark, orders, _rule("schema", columns=expected))
    assert not outcome.passed
    assert outcome.details == {
        "added": ["ts"],
        "removed": ["created"],
        "retyped": ["customer: bigint -> int"],
    }
    expected = {"id": "int", "customer": "int", "email": "string", "status": "string"}
    relaxed = _one(spark, orders, _rule("schema", columns=expected, allow_extra_columns=True))
    assert relaxed.passed and relaxed.details["added"] == ["amount", "ts"]


def test_samples_are_capped_and_pii_masked(spark: SparkSession) -> None:
    frame = spark.range(50).selectExpr("id", "concat('person', id) as email")
    dataset = _dataset(pii=("email",))
    outcome = _one(spark, frame, _rule("expression", dataset=dataset, expression="id < 0"))
    assert outcome.failing_rows == 50 and len(outcome.samples) == 10
    assert {s["email"] for s in outcome.samples} == {MASK}
    inherited = _one(spark, frame, _rule("expression", expression="id < 0"), pii_columns=["EMAIL"])
    assert {s["email"] for s in inherited.samples} == {MASK}
    plain = _one(spark, frame, _rule("expression", expression="id < 0"))
    assert all(s["email"].startswith("person") for s in plain.samples)


def test_a_rare_failure_still_gets_its_samples(spark: SparkSession) -> None:
    frame = spark.range(5000).selectExpr("id", "id % 2 as parity")
    common = _rule("expression", 1, expression="parity = 1")  # fails on half the rows
    rare = _rule("expression", 2, expression="id <> 4321")  # fails on one row
    report = evaluate_rules(spark, frame, [common, rare])
    assert [s["id"] for s in report.outcomes[1].samples] == [4321]


def _report_with_drops(
    spark: SparkSession, orders: DataFrame, customers: DataFrame
) -> QualityReport:
    rules = [
        _rule("accepted_values", 1, column="status", values=["NEW", "OLD"], action="drop"),
        _rule(
            "referential_integrity",
            2,
            column="customer",
            reference_dataset="customers",
            reference_column="customer_id",
            action="drop",
        ),
        _rule("unique", 3, columns=["id"], action="drop", severity="WARN"),
        _rule("not_null", 4, column="email"),  # warn: the row stays
    ]
    return evaluate_rules(spark, orders, rules, {CUSTOMERS.id: customers}, load_id="load-7")


def test_drop_quarantines_one_row_per_failed_rule_and_loads_the_rest(
    spark: SparkSession, orders: DataFrame, customers: DataFrame
) -> None:
    report = _report_with_drops(spark, orders, customers)
    assert sorted(r.id for r in report.clean.collect()) == [1, 2]
    assert report.clean.columns == orders.columns
    assert report.quarantine is not None
    quarantined = sorted(
        (r.id, r.customer, r.dq_rule, r.dq_rule_id, r.dq_load_id)
        for r in report.quarantine.collect()
    )
    assert quarantined == [
        (3, 11, "rule_3", 3, "load-7"),
        (3, 99, "rule_1", 1, "load-7"),
        (3, 99, "rule_2", 2, "load-7"),
        (3, 99, "rule_3", 3, "load-7"),
    ]
    reasons = {r.dq_rule: r.dq_reason for r in report.quarantine.collect()}
    assert reasons["rule_1"].startswith("accepted_values: `status` IS NOT NULL")
    assert report.quarantined_rows == 4


def test_warn_only_rules_leave_the_rows_and_quarantine_nothing(
    spark: SparkSession, orders: DataFrame
) -> None:
    report = evaluate_rules(spark, orders, [_rule("not_null", column="email")])
    assert report.quarantine is None and report.clean is orders
    assert not report.load_stopped


@pytest.mark.parametrize(
    ("config", "stops"),
    [
        ({"blocking": True}, True),
        ({"action": "fail"}, True),
        ({}, False),
        ({"severity": "WARN"}, False),
        ({"blocking": True, "max_failing_rows": 1}, False),  # within threshold: passes
    ],
)
def test_which_failures_stop_the_load(
    spark: SparkSession, orders: DataFrame, config: dict[str, Any], stops: bool
) -> None:
    report = evaluate_rules(spark, orders, [_rule("not_null", column="email", **config)])
    assert report.load_stopped is stops


def test_rules_read_the_data_once(spark: SparkSession, orders: DataFrame) -> None:
    """Row-level rules, row_count, freshness and one `unique` rule: one pass over the rows,
    counted by an accumulator every row that Spark reads passes through."""
    scanned = spark.sparkContext.accumulator(0)

    def count_row() -> bool:
        scanned.add(1)
        return True

    # A lambda: PySpark reads type hints as a pandas UDF declaration.
    counted = orders.where(F.udf(lambda _: count_row(), "boolean")(F.col("id")))
    rules = [
        _rule("not_null", 1, column="id"),
        _rule("accepted_values", 2, column="status", values=["NEW", "OLD", "BAD"]),
        _rule("range", 3, column="amount", min=-10),
        _rule("regex", 4, column="status", pattern="[A-Z]+"),
        _rule("length", 5, column="status", min=3),
        _rule("expression", 6, expression="id > 0"),
        _rule("row_count", 7, min=1),
        _rule("freshness", 8, column="ts", max_age_hours=48),
        _rule("unique", 9, columns=["id", "customer"]),
    ]
    report = evaluate_rules(spark, counted, rules, now=NOW)
    assert all(o.passed for o in report.outcomes)
    assert scanned.value == len(ROWS)


def test_missing_column_at_run_time_names_the_rule(spark: SparkSession, orders: DataFrame) -> None:
    with pytest.raises(QualityRuleError, match=r"row 1 \(rule_1\): column 'amt' is not in"):
        evaluate_rules(spark, orders, [_rule("not_null", column="amt")])
    with pytest.raises(QualityRuleError, match=r"row 1 \(rule_1\): Spark cannot evaluate"):
        evaluate_rules(spark, orders, [_rule("expression", expression="no_such_column > 1")])


@pytest.mark.parametrize(
    ("kind", "config", "fragment"),
    [
        ("completeness", {}, "unknown rule Type 'completeness'"),
        ("not_null", {}, "column: Field required"),
        ("regex", {"column": "a", "pattern": "([a-z"}, "invalid regular expression"),
        ("not_null", {"column": "a", "max_failing_percent": 150}, "less than or equal to 100"),
        ("not_null", {"column": "a", "max_failing_rows": -1}, "greater than or equal to 0"),
        ("not_null", {"column": "a; DROP TABLE x"}, "not a safe identifier"),
        ("not_null", {"column": "a", "severity": "WARN", "blocking": True}, "ERROR only"),
        ("row_count", {"min": 1, "action": "drop"}, "single rows only"),
        ("range", {"column": "a"}, "give 'min', 'max' or both"),
        ("custom_sql", {"query": "delete from orders"}, "only queries (SELECT ...)"),
        ("expression", {"expression": "a >"}, "not Spark SQL that data_mesh can check"),
    ],
)
def test_bad_rule_configuration_names_the_rule_row(
    kind: str, config: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(MetadataError) as error:
        parse_rule_config(42, "my_rule", kind, json.dumps(config))
    assert "DataQualityRules row 42 (my_rule)" in str(error.value)
    assert fragment in str(error.value)
