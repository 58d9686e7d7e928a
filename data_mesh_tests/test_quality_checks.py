"""Quality rules as Dagster asset checks, end to end on the embedded default: a blocking
failure keeps the load out of the DDZ and skips downstream assets; a check rerun alone from the
UI computes and checks without writing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    materialize,
)
from pyspark.sql import SparkSession
from sqlalchemy import update

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.component.definitions import build_definitions
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.writer import DdzConnection
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.quality.history import metric_rows
from data_mesh.resources.environments import resources_for
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.audit import latest_audit
from data_mesh.store.database import make_engine
from data_mesh.store.metrics import metric_history, record_metrics
from data_mesh.store.quality_results import latest_quality_results
from data_mesh_tests.conftest import jdbc_url_of

pytestmark = pytest.mark.slow
COMPLETED = AssetKey(["sales", "ddz", "completed_orders"])


def _rows(spark: SparkSession, settings: Settings, table: str) -> int:
    connection = DdzConnection(settings.resolved_ddz_jdbc_url)
    return read_ddz_table(spark, connection, TableName("ddz", table)).count()


def _set_rule(settings: Settings, name: str, configuration: dict[str, object]) -> None:
    table = schema.data_quality_rules
    with make_engine(settings.resolved_metadata_url).begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.Name == name)
            .values(Configuration=json.dumps(configuration))
        )


def test_blocking_failure_leaves_the_table_untouched_and_skips_downstream(
    loaded: Settings, spark: SparkSession
) -> None:
    storage = lake_storage(loaded)
    write_sample_data(spark, storage, 200)
    first = materialize_products(loaded, ["customer_orders"], DagsterInstance.ephemeral())
    assert first.success, first.failure
    before = {t: _rows(spark, loaded, t) for t in ("COMPLETED_ORDERS", "CUSTOMER_ORDERS")}

    # New data, and a blocking rule every row fails.
    write_sample_data(spark, storage, 400)
    _set_rule(loaded, "positive_amount", {"column": "amount", "min": 10_000, "blocking": True})
    second = materialize_products(loaded, ["customer_orders"], DagsterInstance.ephemeral())

    assert not second.success
    assert "blocking asset check" in second.failure and "positive_amount" in second.failure
    failed = [c for c in second.checks if not c.passed]
    assert [(c.check, c.severity) for c in failed] == [("positive_amount", "ERROR")]
    written = {m.asset for m in second.materializations}
    assert "sales/ddz/completed_orders" not in written
    # Downstream of the blocked asset did not run: no materialization, no check results.
    assert "sales/ddz/customer_orders" not in written
    assert "sales/ddz/country_revenue" not in written
    assert not [c for c in second.checks if c.asset == "sales/ddz/customer_orders"]
    # Unrelated assets of the product still ran on the new data.
    assert "sales/ddz/customer_directory" in written
    after = {t: _rows(spark, loaded, t) for t in before}
    assert after == before
    # The audit log: the blocked load, next to the successful ones of both runs.
    audit = latest_audit(make_engine(loaded.resolved_metadata_url), limit=100)
    blocked = [r for r in audit if r.Status == "BLOCKED"]
    assert [(r.AssetKey, r.SourceTable, r.JobRunID) for r in blocked] == [
        ("sales/ddz/completed_orders", "ddz.COMPLETED_ORDERS", second.run_id)
    ]
    assert "positive_amount" in (blocked[0].ErrorDetails or "")


def test_a_failing_transformation_is_audited_as_failed(
    loaded: Settings, spark: SparkSession
) -> None:
    write_sample_data(spark, lake_storage(loaded), 200)
    table = schema.transformations
    configuration = {"input_dataset": "orders", "condition": "no_such_column > 1"}
    with make_engine(loaded.resolved_metadata_url).begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.Name == "filter_completed_orders")
            .values(Configuration=json.dumps(configuration))
        )
    outcome = materialize_products(loaded, ["customer_orders"], DagsterInstance.ephemeral())
    assert not outcome.success
    audit = latest_audit(make_engine(loaded.resolved_metadata_url), limit=100)
    failed = [r for r in audit if r.Status == "FAILED"]
    assert [(r.AssetKey, r.JobRunID) for r in failed] == [
        ("sales/ddz/completed_orders", outcome.run_id)
    ]
    assert "no_such_column" in (failed[0].ErrorDetails or "")


def test_a_check_rerun_alone_computes_and_checks_without_writing(
    loaded: Settings, spark: SparkSession
) -> None:
    write_sample_data(spark, lake_storage(loaded), 200)
    defs = build_definitions(load_catalog(loaded), resources_for(loaded))
    check = AssetCheckKey(COMPLETED, "positive_amount")
    result = materialize(
        list(defs.assets or []),
        selection=AssetSelection.checks(check),
        resources=resources_for(loaded),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert [(e.check_name, e.passed) for e in evaluations] == [("positive_amount", True)]
    assert result.get_asset_materialization_events() == []
    engine = make_engine(loaded.resolved_metadata_url)
    history = latest_quality_results(engine, rule="positive_amount")
    assert [(h.RunID, h.Passed) for h in history] == [(result.run_id, True)]
    with pytest.raises(Exception, match="COMPLETED_ORDERS"):  # never written
        _rows(spark, loaded, "COMPLETED_ORDERS")


def test_a_failed_ddz_write_is_audited_by_the_io_manager(
    loaded: Settings, spark: SparkSession, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    jdbc, credentials = jdbc_url_of(pg_url)
    monkeypatch.setenv("DATA_MESH_DDZ_JDBC_URL", jdbc)
    monkeypatch.setenv("DATA_MESH_DDZ_USER", credentials["user"])
    monkeypatch.setenv("DATA_MESH_DDZ_PASSWORD", "not-the-password-4711")
    settings = Settings()
    write_sample_data(spark, lake_storage(settings), 200)
    outcome = materialize_products(settings, ["sor1_payments"], DagsterInstance.ephemeral())
    assert not outcome.success
    audit = latest_audit(make_engine(settings.resolved_metadata_url), limit=20)
    assert [(r.AssetKey, r.SourceTable, r.Status) for r in audit] == [
        ("payments/ddz/sor1_payments", "ddz.SOR1_PAYMENTS", "FAILED")
    ]
    details = audit[0].ErrorDetails or ""
    assert "authentication failed" in details and "not-the-password-4711" not in details


def test_an_anomaly_check_shows_its_value_band_and_history_and_records_the_metric(
    loaded: Settings, spark: SparkSession
) -> None:
    write_sample_data(spark, lake_storage(loaded), 200)
    catalog = load_catalog(loaded)
    completed = next(
        d for p in catalog.products for d in p.datasets if d.name == "completed_orders"
    )
    engine = make_engine(loaded.resolved_metadata_url)
    # Twelve earlier runs whose mean order amount was about 1 (the sample data's is far above).
    start = dt.datetime(2026, 1, 1)
    for day in range(12):
        values = {"mean:amount": 1.0 + (day % 3) / 100}
        when = start + dt.timedelta(days=day)
        record_metrics(engine, metric_rows(completed, values, f"earlier-{day}", None, when))
    defs = build_definitions(catalog, resources_for(loaded))
    check = AssetCheckKey(COMPLETED, "usual_order_amount")
    result = materialize(
        list(defs.assets or []),
        selection=AssetSelection.checks(check),
        resources=resources_for(loaded),
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success  # a WARN rule: the run goes on
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["history_runs"] == 12
    assert metadata["expected_high"] < metadata["value"]
    assert "| this run |" in metadata["history"] and "outside the band" in metadata["history"]
    # A check run alone writes no rows: its value does not join the history.
    stored = metric_history(engine, completed.id, ["mean:amount"], 30)["mean:amount"]
    assert len(stored) == 12
    # A materialization that writes its rows adds its value.
    outcome = materialize_products(loaded, ["customer_orders"], DagsterInstance.ephemeral())
    assert outcome.success, outcome.failure
    stored = metric_history(engine, completed.id, ["mean:amount"], 30)["mean:amount"]
    assert len(stored) == 13 and stored[-1][1] == pytest.approx(metadata["value"])


def test_keep_profile_keeps_each_materializations_profile_as_metric_history(
    loaded: Settings, spark: SparkSession
) -> None:
    write_sample_data(spark, lake_storage(loaded), 200)
    configuration = {
        "input_dataset": "orders",
        "condition": "status = 'COMPLETED' and amount > 0",
        "keep_profile": True,
    }
    table = schema.transformations
    engine = make_engine(loaded.resolved_metadata_url)
    with engine.begin() as connection:
        connection.execute(
            update(table)
            .where(table.c.Name == "filter_completed_orders")
            .values(Configuration=json.dumps(configuration))
        )
    outcome = materialize_products(loaded, ["customer_orders"], DagsterInstance.ephemeral())
    assert outcome.success, outcome.failure
    completed = next(
        d for p in load_catalog(loaded).products for d in p.datasets if d.name == "completed_orders"
    )
    rows = _rows(spark, loaded, "COMPLETED_ORDERS")
    kept = metric_history(engine, completed.id, ["row_count", "null_share:status"], 5)
    assert [v for _, v in kept["row_count"]] == [float(rows)]
    assert [v for _, v in kept["null_share:status"]] == [0.0]
