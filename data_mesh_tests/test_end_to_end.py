"""From metadata rows to DDZ rows: the sample products materialized on the embedded default,
checked against values computed independently from the sample-data formulas."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage
from data_mesh.cli.app import app
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.writer import DdzConnection
from data_mesh.devtools.sample_data import CATEGORIES, COUNTRIES, STATUSES, write_sample_data
from data_mesh.runs.materialize import RunOutcome, materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store.audit import latest_audit
from data_mesh.store.database import make_engine
from data_mesh.store.quality_results import latest_quality_results
from data_mesh_tests.conftest import catalog_tables

pytestmark = pytest.mark.slow
ROWS = 2000
USERS = ROWS // 10


def _table(spark: SparkSession, settings: Settings, name: str):
    schema, table = name.split(".")
    return read_ddz_table(
        spark, DdzConnection(settings.resolved_ddz_jdbc_url), TableName(schema, table)
    )


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture
def materialized_run(loaded: Settings, spark: SparkSession) -> tuple[Settings, RunOutcome]:
    write_sample_data(spark, lake_storage(loaded), ROWS)
    outcome = materialize_products(loaded, instance=DagsterInstance.ephemeral())
    assert outcome.success, outcome.failure
    assert {m.table: m.rows for m in outcome.materializations}["ddz.SOR1_PAYMENTS"] == ROWS
    return loaded, outcome


@pytest.fixture
def materialized(materialized_run: tuple[Settings, RunOutcome]) -> Settings:
    return materialized_run[0]


def _completed_orders() -> list[int]:
    return [
        i
        for i in range(1, ROWS + 1)
        if STATUSES[(i * 17) % len(STATUSES)] == "COMPLETED" and (i * 104_729 % 50_000) > 0
    ]


def _before_go_live(order_id: int) -> bool:
    """Sample orders are dated 2026-01-01 + (id % 300) days; go-live is 2026-02-01."""
    return order_id % 300 < 31


def test_cdz_tables_are_views_and_the_spark_catalog_is_left_alone(
    loaded: Settings, spark: SparkSession
) -> None:
    """A metastore shared with other jobs (Unity Catalog, Hive) is never written: a managed
    table named like a CDZ dataset is neither read nor replaced, and no database or table
    appears; seed 000's `analytics_sor1_cdz.sor1_driver_table` still reads the lake."""
    write_sample_data(spark, lake_storage(loaded), ROWS)
    decoy = "analytics_sor1_cdz.sor1_driver_table"
    spark.sql("CREATE DATABASE analytics_sor1_cdz")
    try:
        spark.sql(f"CREATE TABLE {decoy} (user_id bigint, user_name string) USING parquet")
        spark.sql(f"INSERT INTO {decoy} VALUES (-1, 'catalog row')")
        before = catalog_tables(spark)
        outcome = materialize_products(loaded, ["sor1_payments"], DagsterInstance.ephemeral())
        assert outcome.success, outcome.failure
        assert catalog_tables(spark) == before
        assert spark.catalog.getTable(decoy).tableType == "MANAGED"
        assert [tuple(r) for r in spark.table(decoy).collect()] == [(-1, "catalog row")]
        names = {r.NAME for r in _table(spark, loaded, "ddz.SOR1_PAYMENTS").collect()}
        assert names == {f"user_{i}" for i in range(1, USERS + 1)}
    finally:
        spark.sql("DROP DATABASE IF EXISTS analytics_sor1_cdz CASCADE")


def test_seed_000_payments_land_in_the_ddz(materialized: Settings, spark: SparkSession) -> None:
    frame = _table(spark, materialized, "ddz.SOR1_PAYMENTS")
    assert frame.columns == [
        "UNQ_USER_ID",
        "NAME",
        "PAYMENT_AMOUNT",
        "PAYMENT_CATEGORY",
        "LOAD_DATE",
        "SOR_SYS_CD",
    ]
    rows = frame.collect()
    assert len(rows) == ROWS  # every user has ROWS / USERS payments: the left join adds none
    expected_total = sum(_money((i * 7919 % 100_000) / 100.0) for i in range(1, ROWS + 1))
    assert sum(r.PAYMENT_AMOUNT for r in rows) == expected_total
    expected_categories = Counter(
        CATEGORIES[(i * 31) % len(CATEGORIES)] for i in range(1, ROWS + 1)
    )
    assert Counter(r.PAYMENT_CATEGORY for r in rows) == expected_categories
    assert {r.SOR_SYS_CD for r in rows} == {"sor1"}
    assert Counter(r.UNQ_USER_ID for r in rows) == dict.fromkeys(range(1, USERS + 1), ROWS // USERS)
    first = next(r for r in rows if r.UNQ_USER_ID == 2)
    assert first.NAME == "user_2"


def test_seed_004_chain_lands_in_the_ddz(materialized: Settings, spark: SparkSession) -> None:
    completed = _completed_orders()
    assert _table(spark, materialized, "ddz.COMPLETED_ORDERS").count() == len(completed)
    # The `ordered_after_go_live` rule (action drop) quarantines older orders.
    loaded_orders = [i for i in completed if not _before_go_live(i)]
    assert _table(spark, materialized, "ddz.CUSTOMER_ORDERS").count() == len(loaded_orders)

    revenue: dict[str, float] = defaultdict(float)
    orders: Counter[str] = Counter()
    for i in loaded_orders:
        customer = i * 13 % USERS + 1
        country = COUNTRIES[(customer * 7) % len(COUNTRIES)]
        revenue[country] += (i * 104_729 % 50_000) / 100.0
        orders[country] += 1
    rows = {r.country: r for r in _table(spark, materialized, "ddz.COUNTRY_REVENUE").collect()}
    assert set(rows) == set(revenue)
    for country, total in revenue.items():
        assert rows[country].revenue == _money(total)
        assert rows[country].orders == orders[country]

    top = _table(spark, materialized, "ddz.TOP_CUSTOMERS").collect()
    assert len(top) == 100
    directory = _table(spark, materialized, "ddz.CUSTOMER_DIRECTORY").collect()
    assert len(directory) == USERS
    assert {r.name for r in directory} == {f"CUSTOMER {i}" for i in range(1, USERS + 1)}


def test_sample_rules_run_as_checks_with_one_warning(
    materialized_run: tuple[Settings, RunOutcome], spark: SparkSession
) -> None:
    settings, outcome = materialized_run
    results = {(c.asset, c.check): c for c in outcome.checks}
    warning = results[("payments/ddz/sor1_payments", "payment_below_review_limit")]
    assert (warning.passed, warning.severity) == (False, "WARN")
    # Payments are (i * 7919 % 100000) / 100: those of 900 or more fail the review limit.
    over_limit = sum(1 for i in range(1, ROWS + 1) if i * 7919 % 100_000 >= 90_000)
    assert warning.observed.startswith(f"{over_limit:,} of {ROWS:,} rows fail")
    assert [c.check for c in outcome.checks if not c.passed] == ["payment_below_review_limit"]
    assert len(outcome.checks) == 18
    # The anomaly rules of a first run have no history to judge by: they pass, and say so.
    for check in ("payment_volume_as_usual", "usual_order_amount"):
        anomaly = next(c for c in outcome.checks if c.check == check)
        assert anomaly.passed and "not enough history: 0 of 10 runs" in anomaly.observed

    history = latest_quality_results(make_engine(settings.resolved_metadata_url), limit=100)
    assert len(history) == 18 and {h.RunID for h in history} == {outcome.run_id}
    assert {h.RuleName for h in history if not h.Passed} == {"payment_below_review_limit"}


def test_dropped_rows_are_quarantined_with_rule_reason_and_load_id(
    materialized_run: tuple[Settings, RunOutcome], spark: SparkSession
) -> None:
    settings, outcome = materialized_run
    path = f"quarantine/sales/customer_orders/load_id={outcome.run_id}"
    rows = spark.read.parquet(lake_storage(settings).spark_uri(path)).collect()
    expected = sorted(i for i in _completed_orders() if _before_go_live(i))
    assert sorted(r.order_id for r in rows) == expected
    assert {(r.dq_rule, r.dq_load_id) for r in rows} == {("ordered_after_go_live", outcome.run_id)}
    assert all("order_date >= DATE'2026-02-01'" in r.dq_reason for r in rows)


def test_cli_shows_quality_history_and_quarantine(
    materialized_run: tuple[Settings, RunOutcome],
) -> None:
    _, outcome = materialized_run
    runner = CliRunner()
    history = runner.invoke(
        app, ["quality", "history", "--rule", "payment_below_review_limit"], env={"COLUMNS": "250"}
    )
    assert history.exit_code == 0, history.output
    assert "WARN" in history.output and outcome.run_id[:8] in history.output
    quarantined = sum(1 for i in _completed_orders() if _before_go_live(i))
    shown = runner.invoke(
        app, ["quality", "quarantine", "customer_orders", "--load-id", outcome.run_id]
    )
    assert shown.exit_code == 0, shown.output
    assert f"{quarantined:,} quarantined rows" in shown.output
    missing = runner.invoke(app, ["quality", "quarantine", "sor1_payments"])
    assert missing.exit_code == 1 and "nothing quarantined for sor1_payments" in missing.output


def test_every_materialization_is_audited(
    materialized_run: tuple[Settings, RunOutcome],
) -> None:
    settings, outcome = materialized_run
    rows = latest_audit(make_engine(settings.resolved_metadata_url), limit=50)
    assert {r.JobRunID for r in rows} == {outcome.run_id}
    assert {r.Status for r in rows} == {"SUCCESS"}
    audited = {(r.AssetKey, r.SourceTable, r.RowCount) for r in rows}
    assert audited == {(m.asset, m.table, m.rows) for m in outcome.materializations}
    assert all(r.ProcessedBy and r.ProcessingTime >= 0 and r.ErrorDetails is None for r in rows)
    shown = CliRunner().invoke(app, ["runs", "--last", "3"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("SUCCESS") == 3 and outcome.run_id[:8] in shown.output


def test_rerun_gives_the_same_tables(materialized: Settings, spark: SparkSession) -> None:
    before = {
        t: _table(spark, materialized, t).count()
        for t in ("ddz.SOR1_PAYMENTS", "ddz.COMPLETED_ORDERS")
    }
    outcome = materialize_products(materialized, instance=DagsterInstance.ephemeral())
    assert outcome.success
    after = {t: _table(spark, materialized, t).count() for t in before}
    assert after == before


def test_broken_product_is_skipped_and_its_table_untouched(
    materialized: Settings, spark: SparkSession
) -> None:
    before = _table(spark, materialized, "ddz.SOR1_PAYMENTS").count()
    storage = lake_storage(materialized)
    query = "queries/sor1_payments/sor1_payments_query.properties"
    storage.write_bytes(query, b"df_target = DROP TABLE ddz.SOR1_PAYMENTS\n")
    storage.write_bytes("queries/sor1_payments/sor1_payments_sequence.properties", b"df_target\n")
    outcome = materialize_products(materialized, instance=DagsterInstance.ephemeral())
    assert outcome.success
    assert "payments/ddz/sor1_payments" not in {m.asset for m in outcome.materializations}
    assert "sales/ddz/country_revenue" in {m.asset for m in outcome.materializations}
    assert any("DROP" in s and "sor1_payments" in s for s in outcome.skipped)
    assert _table(spark, materialized, "ddz.SOR1_PAYMENTS").count() == before


def test_cli_materialize_one_product_and_show(loaded: Settings, spark: SparkSession) -> None:
    write_sample_data(spark, lake_storage(loaded), 200)
    runner = CliRunner()
    result = runner.invoke(app, ["materialize", "--product", "sor1_payments"])
    assert result.exit_code == 0, result.output
    assert "ddz.SOR1_PAYMENTS" in result.output and "200" in result.output
    assert "ddz.COUNTRY_REVENUE" not in result.output
    shown = runner.invoke(app, ["ddz", "show", "ddz.SOR1_PAYMENTS", "--limit", "3"])
    assert shown.exit_code == 0, shown.output
    assert "200 rows" in shown.output and "UNQ_USER_ID" in shown.output
    bad = runner.invoke(app, ["ddz", "show", "ddz.X;DROP"])
    assert bad.exit_code == 1 and "not a safe identifier" in bad.output


def test_materialization_metadata_in_the_ui(loaded: Settings, spark: SparkSession) -> None:
    from dagster import AssetKey

    write_sample_data(spark, lake_storage(loaded), 500)
    instance = DagsterInstance.ephemeral()
    outcome = materialize_products(loaded, ["sor1_payments"], instance=instance)
    assert outcome.success, outcome.failure
    event = instance.get_latest_materialization_event(
        AssetKey(["payments", "ddz", "sor1_payments"])
    )
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == 500
    assert metadata["target_table"].value == "ddz.SOR1_PAYMENTS"
    for key in (
        "chunks",
        "loaded_chunks",
        "resumed_chunks",
        "retries",
        "estimated_bytes",
        "duration_s",
        "rows_per_s",
        "jdbc_batch_rows",
    ):
        assert key in metadata, key
    assert metadata["resumed_chunks"].value == 0 and metadata["retries"].value == 0
    schema = metadata["dagster/column_schema"].value
    assert [(c.name, c.type) for c in schema.columns] == [
        ("UNQ_USER_ID", "bigint"),
        ("NAME", "string"),
        ("PAYMENT_AMOUNT", "decimal(18,2)"),
        ("PAYMENT_CATEGORY", "string"),
        ("LOAD_DATE", "date"),
        ("SOR_SYS_CD", "string"),
    ]


def test_a_failed_run_is_resumed_by_the_next_run(
    loaded: Settings, spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What re-executing a failed run does: the asset's step runs again, and its DDZ write
    continues from the chunks the failed run committed."""
    from dagster import AssetKey

    from data_mesh.catalog.current import load_catalog
    from data_mesh.component.definitions import ALL_PRODUCTS_JOB, build_definitions
    from data_mesh.ddz.loaders import JdbcChunkLoader
    from data_mesh.resources.ddz_io_manager import DdzIOManager
    from data_mesh.resources.environments import DDZ_IO_MANAGER_KEY, resources_for

    write_sample_data(spark, lake_storage(loaded), 1000)
    resources = resources_for(loaded)
    resources[DDZ_IO_MANAGER_KEY] = DdzIOManager(
        spark=resources["spark"],
        jdbc_url=loaded.resolved_ddz_jdbc_url,
        lake=resources["lake"],
        max_chunk_rows=100,
    )
    job = build_definitions(load_catalog(loaded), resources).resolve_job_def(ALL_PRODUCTS_JOB)
    key = AssetKey(["payments", "ddz", "sor1_payments"])
    instance = DagsterInstance.ephemeral()

    real_load = JdbcChunkLoader.write_rows

    def fail_on_chunk_7(self, chunk_job):
        if chunk_job.chunk.id == 7:
            raise RuntimeError("database went away")
        real_load(self, chunk_job)

    monkeypatch.setattr(JdbcChunkLoader, "write_rows", fail_on_chunk_7)
    failed = job.execute_in_process(instance=instance, asset_selection=[key], raise_on_error=False)
    assert not failed.success
    monkeypatch.undo()

    rerun = job.execute_in_process(instance=instance, asset_selection=[key])
    assert rerun.success
    metadata = instance.get_latest_materialization_event(key).asset_materialization.metadata
    assert metadata["chunks"].value == 10
    assert metadata["resumed_chunks"].value >= 1
    assert metadata["resumed_chunks"].value + metadata["loaded_chunks"].value == 10
    assert _table(spark, loaded, "ddz.SOR1_PAYMENTS").count() == 1000
