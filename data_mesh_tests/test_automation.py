"""Automation conditions and sensors built from the store, exercised with Dagster's own
testing APIs."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from dagster import (
    AssetKey,
    AutomationConditionSensorDefinition,
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorDefinition,
    build_run_status_sensor_context,
    build_sensor_context,
    evaluate_automation_conditions,
)
from sqlalchemy import text, update

from data_mesh.catalog.automation import quartz_to_cron
from data_mesh.catalog.current import lake_storage, load_catalog, read_catalog
from data_mesh.catalog.errors import MetadataError
from data_mesh.component.automation import (
    ALL_PRODUCTS_JOB,
    DAILY_PRODUCTS_JOB,
    METADATA_SENSOR,
    RUN_FAILURE_SENSOR,
)
from data_mesh.component.definitions import build_definitions
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.audit import latest_audit
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import add_config_item, engines_opened, pooled_connections

ACTIVE_ACCOUNTS = AssetKey(["mdm", "ddz", "active_accounts"])
# Published from ACTIVE_ACCOUNTS in the same step: scheduled and run with it.
ACTIVE_ACCOUNTS_TOPIC = AssetKey(["mdm", "ddz", "active_accounts_topic"])
SOR1_PAYMENTS = AssetKey(["payments", "ddz", "sor1_payments"])


@pytest.mark.parametrize(
    ("written", "cron"),
    [
        ("0 0 2 * * ?", "0 2 * * *"),  # seed 001's Databricks schedule
        ("0 30 6 ? * 2-6", "30 6 * * 1-5"),  # Quartz Monday-Friday is 2-6
        ("0 0 0 1 * ? *", "0 0 1 * *"),
        ("0 15 3 ? * MON,FRI", "15 3 * * MON,FRI"),
        ("*/15 * * * *", "*/15 * * * *"),  # already cron
    ],
)
def test_quartz_expressions_become_dagster_cron(written: str, cron: str) -> None:
    assert quartz_to_cron(written, "row") == cron


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("30 0 2 * * ?", "second 30"),
        ("0 0 2 L * ?", "no cron equivalent"),
        ("0 0 2 * * ? 2027", "year"),
        ("0 0 2 ? * 9", "between 1 and 7"),
        ("0 2 * *", "neither"),
        ("0 2 * * ;drop", "not a valid schedule expression"),
    ],
)
def test_bad_schedule_expressions_are_named(written: str, problem: str) -> None:
    with pytest.raises(MetadataError, match="row 7") as error:
        quartz_to_cron(written, "row 7")
    assert problem in str(error.value)


def _definitions(settings: Settings) -> Definitions:
    return build_definitions(load_catalog(settings), resources_for(settings))


def _automation_sensors(defs: Definitions) -> dict[str, AutomationConditionSensorDefinition]:
    return {
        s.name: s for s in defs.sensors or [] if isinstance(s, AutomationConditionSensorDefinition)
    }


def _condition(defs: Definitions, key: AssetKey) -> str | None:
    condition = defs.resolve_asset_graph().get(key).automation_condition
    return None if condition is None else condition.get_label()


def _switch_on_locally(settings: Settings) -> None:
    engine = make_engine(settings.resolved_metadata_url)
    add_config_item(engine, "product.mdm_accounts@LOCAL", "schedule.enabled", "true")


def test_cron_from_the_product_file(loaded: Settings) -> None:
    defs = _definitions(loaded)
    # No ScheduleDefinition: a product's cron is an automation condition of its DDZ assets,
    # evaluated by one sensor per domain with scheduled products.
    assert not defs.schedules
    sensors = _automation_sensors(defs)
    assert set(sensors) == {"mdm_automation"}
    sensor = sensors["mdm_automation"]
    graph = defs.resolve_asset_graph()
    assert sensor.asset_selection.resolve(graph) == {ACTIVE_ACCOUNTS, ACTIVE_ACCOUNTS_TOPIC}
    assert sensor.run_tags == {"data_mesh/trigger": "schedule", "data_mesh/domain": "mdm"}
    # Off by default in LOCAL: the sensor is stopped and the product has no condition ...
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    assert _condition(defs, ACTIVE_ACCOUNTS) is None
    # ... and products without a schedule row never get one.
    assert _condition(defs, SOR1_PAYMENTS) is None


def test_schedules_run_in_cloud_environments_and_can_be_switched_on_locally(
    loaded: Settings,
) -> None:
    prod = read_catalog(loaded.model_copy(update={"env": "PROD"}))
    assert prod.product("mdm_accounts").schedule.enabled  # type: ignore[union-attr]
    assert prod.product("mdm_accounts").sensors.enabled
    prod_defs = build_definitions(prod, resources_for(loaded))
    assert _automation_sensors(prod_defs)["mdm_automation"].default_status == (
        DefaultSensorStatus.RUNNING
    )
    assert _condition(prod_defs, ACTIVE_ACCOUNTS) == "on_cron(0 2 * * *, Asia/Kolkata) at the tick"
    _switch_on_locally(loaded)
    defs = _definitions(loaded)
    assert _automation_sensors(defs)["mdm_automation"].default_status == (
        DefaultSensorStatus.RUNNING
    )
    assert _condition(defs, ACTIVE_ACCOUNTS) == "on_cron(0 2 * * *, Asia/Kolkata) at the tick"
    # PROD keeps its own setting when LOCAL's is changed.
    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "product.mdm_accounts@PROD", "schedule.enabled", "maybe")
    catalog = read_catalog(loaded.model_copy(update={"env": "PROD"}))
    assert "mdm_accounts" not in {p.name for p in catalog.products}
    assert any("'maybe' is not true or false" in str(p) for p in catalog.problems)


# Dagster's evaluation helper itself calls a beta parameter (not our call).
@pytest.mark.filterwarnings("ignore:Parameter `include_sources`")
def test_scheduled_run_takes_the_day_of_the_tick_in_its_time_zone(loaded: Settings) -> None:
    """The condition requests the product's assets at its cron tick, not before and not again
    until the next tick, for the day of the tick in the schedule's time zone."""
    _switch_on_locally(loaded)
    defs = _definitions(loaded)

    def utc(day: int, hour: int, minute: int) -> dt.datetime:
        return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)

    # 20:30 UTC on the 20th is 02:00 on the 21st in Kolkata.
    expected = [
        (utc(20, 20, 0), set()),  # first evaluation: nothing is due
        (utc(20, 20, 29), set()),  # a minute before the tick
        (utc(20, 20, 31), {"2026-11-21"}),  # the tick passed: the 21st, not the 20th (UTC)
        (utc(20, 21, 0), set()),  # requested once per tick
        (utc(21, 20, 29), set()),
        (utc(21, 20, 31), {"2026-11-22"}),  # the next tick, the next day
    ]
    with DagsterInstance.ephemeral() as instance:
        cursor = None
        for when, days in expected:
            result = evaluate_automation_conditions(
                defs=defs, instance=instance, cursor=cursor, evaluation_time=when
            )
            cursor = result.cursor
            assert result.get_requested_partitions(ACTIVE_ACCOUNTS) == days, when
            assert result.get_requested_partitions(ACTIVE_ACCOUNTS_TOPIC) == days, when
            # Only the scheduled product's assets: unscheduled products are not run.
            assert result.total_requested == 2 * len(days), when


def _evaluate(
    sensor: SensorDefinition,
    defs: Definitions,
    instance: DagsterInstance,
    cursor: str | None,
    resource_keys: tuple[str, ...] = ("lake",),
) -> tuple[list[RunRequest], str | None, str | None]:
    """One tick with a fresh context, as after a daemon restart: only the cursor carries over."""
    resources = {key: defs.resources[key] for key in resource_keys}  # type: ignore[index]
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=defs
    )
    data = sensor.evaluate_tick(context)
    return list(data.run_requests or []), data.cursor, data.skip_message


def test_storage_sensor_one_change_one_run(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "global", "sensor.storage.per", "product")
    defs = _definitions(loaded)
    names = {s.name for s in defs.sensors or [] if s.name.endswith("_storage_sensor")}
    assert names == {
        "sor1_payments_storage_sensor",
        "mdm_accounts_storage_sensor",
        "customer_orders_storage_sensor",
    }
    sensor = defs.resolve_sensor_def("sor1_payments_storage_sensor")
    assert sensor.default_status == DefaultSensorStatus.STOPPED  # LOCAL
    storage = lake_storage(loaded)
    landing = "cdz/analytics_sor1_cdz/sor1_payments_table"
    storage.write_bytes(f"{landing}/part-0000.parquet", b"first landing")
    with DagsterInstance.ephemeral() as instance:
        requests, cursor, skipped = _evaluate(sensor, defs, instance, None)
        assert requests == [] and cursor and "recorded" in (skipped or "")
        # No change: no run, however often it is evaluated.
        for _ in range(2):
            requests, cursor, skipped = _evaluate(sensor, defs, instance, cursor)
            assert requests == [] and skipped == "no changes"

        # A changed query file: exactly one run of the product's assets.
        query = "queries/sor1_payments/sor1_payments_query.properties"
        storage.write_bytes(query, storage.read_text(query).encode() + b"\n# reviewed\n")
        before = cursor
        requests, cursor, _ = _evaluate(sensor, defs, instance, cursor)
        assert len(requests) == 1
        assert requests[0].job_name == ALL_PRODUCTS_JOB
        assert list(requests[0].asset_selection or []) == [SOR1_PAYMENTS]
        # A tick retried from the old cursor asks for the same run key (Dagster runs it once),
        # and the saved cursor means no second run after a restart.
        again, _, _ = _evaluate(sensor, defs, instance, before)
        assert [r.run_key for r in again] == [requests[0].run_key]
        assert _evaluate(sensor, defs, instance, cursor)[0] == []

        # A Spark writer in progress is not a change; its _SUCCESS marker is, once.
        storage.write_bytes(f"{landing}/_temporary/0/part-0001.parquet", b"half")
        assert _evaluate(sensor, defs, instance, cursor)[0] == []
        storage.write_bytes(f"{landing}/part-0001.parquet", b"second landing")
        storage.write_bytes(f"{landing}/_SUCCESS", b"")
        requests, cursor, _ = _evaluate(sensor, defs, instance, cursor)
        assert len(requests) == 1
        # With a marker present, further part files alone do not trigger until it is rewritten.
        storage.write_bytes(f"{landing}/part-0002.parquet", b"late file")
        assert _evaluate(sensor, defs, instance, cursor)[0] == []


def test_storage_sensor_runs_the_day_that_landed(loaded: Settings) -> None:
    defs = _definitions(loaded)
    sensor = defs.resolve_sensor_def("mdm_storage_sensor")  # the domain's, by default
    storage = lake_storage(loaded)
    accounts = "cdz/mdm_cdz/accounts"
    storage.write_bytes(f"{accounts}/load_date=2026-11-20/part-0.parquet", b"day 20")
    with DagsterInstance.ephemeral() as instance:
        _, cursor, _ = _evaluate(sensor, defs, instance, None)
        storage.write_bytes(f"{accounts}/load_date=2026-11-21/part-0.parquet", b"day 21")
        storage.write_bytes(f"{accounts}/load_date=2026-11-21/_SUCCESS", b"")
        requests, cursor, _ = _evaluate(sensor, defs, instance, cursor)
        assert [(r.job_name, r.partition_key) for r in requests] == [
            (DAILY_PRODUCTS_JOB, "2026-11-21")
        ]
        assert list(requests[0].asset_selection or []) == [ACTIVE_ACCOUNTS, ACTIVE_ACCOUNTS_TOPIC]
        # A re-export of an older day reruns that day only.
        storage.write_bytes(f"{accounts}/load_date=2026-11-20/part-0.parquet", b"day 20 fixed")
        requests, cursor, _ = _evaluate(sensor, defs, instance, cursor)
        assert [r.partition_key for r in requests] == ["2026-11-20"]
        # A folder of a day before the partitions start is not a day to run.
        storage.write_bytes(f"{accounts}/load_date=2026-11-01/part-0.parquet", b"old")
        assert _evaluate(sensor, defs, instance, cursor)[0] == []


def test_metadata_sensor_reports_changed_products(loaded: Settings) -> None:
    defs = _definitions(loaded)
    sensor = defs.resolve_sensor_def(METADATA_SENSOR)
    engine = make_engine(loaded.resolved_metadata_url)
    keys = ("metadata_store",)
    with DagsterInstance.ephemeral() as instance:
        requests, cursor, skipped = _evaluate(sensor, defs, instance, None, keys)
        assert requests == [] and "3 data products" in (skipped or "")
        assert _evaluate(sensor, defs, instance, cursor, keys)[2] == "no changes"
        with engine.begin() as connection:
            connection.execute(
                update(schema.data_quality_rules)
                .where(schema.data_quality_rules.c.Name == "positive_amount")
                .values(Description="changed threshold")
            )
        requests, cursor, skipped = _evaluate(sensor, defs, instance, cursor, keys)
        assert requests == []  # reporting only, by default
        assert skipped == "changed: modified: customer_orders"
        # A product's configuration rows belong to it too.
        add_config_item(engine, "dataset.sor1_payments", "ddz.max_chunk_rows", "5000")
        skipped = _evaluate(sensor, defs, instance, cursor, keys)[2]
        assert skipped == "changed: modified: sor1_payments"

    add_config_item(engine, "global", "sensor.metadata.request_runs", "true")
    defs = _definitions(loaded)
    sensor = defs.resolve_sensor_def(METADATA_SENSOR)
    with DagsterInstance.ephemeral() as instance:
        _, cursor, _ = _evaluate(sensor, defs, instance, None, keys)
        with engine.begin() as connection:
            connection.execute(
                text('UPDATE "DataProducts" SET "Owner" = :o WHERE "Name" = :n'),
                {"o": "new-owner@example.com", "n": "sor1_payments"},
            )
        requests, _, _ = _evaluate(sensor, defs, instance, cursor, keys)
        assert [(r.job_name, list(r.asset_selection or [])) for r in requests] == [
            (ALL_PRODUCTS_JOB, [SOR1_PAYMENTS])
        ]


def test_metadata_sensor_ticks_leave_no_store_connection_open(loaded: Settings) -> None:
    defs = _definitions(loaded)
    sensor = defs.resolve_sensor_def(METADATA_SENSOR)
    with (
        DagsterInstance.ephemeral() as instance,
        engines_opened(loaded.resolved_metadata_url) as engines,
    ):
        _, cursor, _ = _evaluate(sensor, defs, instance, None, ("metadata_store",))
        _evaluate(sensor, defs, instance, cursor, ("metadata_store",))
    assert len(engines) == 2  # one engine per tick ...
    assert [pooled_connections(engine) for engine in engines] == [0, 0]  # ... disposed after it


class _Webhook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Webhook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.mark.slow
def test_run_failure_sensor_audits_and_alerts(
    loaded: Settings, webhook: str, monkeypatch: pytest.MonkeyPatch, spark: object
) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    monkeypatch.setenv("DATA_MESH_TEST_ALERT_URL", webhook)
    add_config_item(engine, "global", "alerts.webhook_url", "env:DATA_MESH_TEST_ALERT_URL")
    defs = _definitions(loaded)
    with DagsterInstance.ephemeral() as instance:
        # No CDZ data was generated: the run fails reading the lake.
        result = defs.resolve_job_def(ALL_PRODUCTS_JOB).execute_in_process(
            instance=instance, asset_selection=[SOR1_PAYMENTS], raise_on_error=False
        )
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE")
        sensor = defs.resolve_sensor_def(RUN_FAILURE_SENSOR)
        with build_run_status_sensor_context(
            sensor_name=RUN_FAILURE_SENSOR,
            dagster_event=failure,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            resources={"audit_log": defs.resources["audit_log"]},  # type: ignore[index]
        ) as status_context:
            context = status_context.for_run_failure()
            sensor(context)  # type: ignore[operator]
            rows = [r for r in latest_audit(engine) if r.AssetKey == f"run:{ALL_PRODUCTS_JOB}"]
            assert len(rows) == 1 and rows[0].Status == "FAILED"
            assert rows[0].JobRunID == result.run_id
            # The step's error, naming the DataSet it could not read.
            details = rows[0].ErrorDetails or ""
            assert "sor1_payments: data_mesh.transforms.execute.TransformationError" in details
            assert "(analytics_sor1_cdz.sor1_driver_table): cannot read its parquet data" in details
            assert len(_Webhook.received) == 1
            alert = _Webhook.received[0]
            assert alert["run_id"] == result.run_id and alert["job"] == ALL_PRODUCTS_JOB
            assert alert["error"] == rows[0].ErrorDetails

            # A webhook that is down is logged; the sensor itself does not fail.
            monkeypatch.setenv("DATA_MESH_TEST_ALERT_URL", "http://127.0.0.1:9/down")
            sensor(context)  # type: ignore[operator]
    assert len([r for r in latest_audit(engine) if r.JobRunID == result.run_id]) >= 2
    assert len(_Webhook.received) == 1


def test_the_query_file_check_keeps_the_environment(loaded: Settings) -> None:
    from data_mesh.catalog.validation import check_query_files

    prod = read_catalog(loaded.model_copy(update={"env": "PROD"}))
    checked = check_query_files(prod, lake_storage(loaded))
    assert checked.env == "PROD"
    assert checked.product("mdm_accounts").schedule.enabled  # type: ignore[union-attr]


def test_storage_sensors_per_domain_by_default(loaded: Settings) -> None:
    defs = _definitions(loaded)
    names = {s.name for s in defs.sensors or [] if s.name.endswith("_storage_sensor")}
    assert names == {"mdm_storage_sensor", "payments_storage_sensor", "sales_storage_sensor"}
    sensor = defs.resolve_sensor_def("sales_storage_sensor")
    storage = lake_storage(loaded)
    with DagsterInstance.ephemeral() as instance:
        _, cursor, skipped = _evaluate(sensor, defs, instance, None)
        assert "customer_orders" in (skipped or "")
        storage.write_bytes("cdz/analytics_sales_cdz/orders/part-0.parquet", b"orders")
        requests, cursor, _ = _evaluate(sensor, defs, instance, cursor)
        assert [r.tags["data_mesh/product"] for r in requests] == ["customer_orders"]
        assert _evaluate(sensor, defs, instance, cursor)[0] == []


def test_a_bad_global_sensor_row_is_reported_not_fatal(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "global", "sensor.storage.per", "team")
    catalog = load_catalog(loaded)
    assert catalog.products == []
    assert catalog.problems
    assert all("'team' is not 'product' or 'domain'" in p.message for p in catalog.problems)
    defs = build_definitions(catalog, resources_for(loaded))
    assert defs.resolve_sensor_def(METADATA_SENSOR).default_status == DefaultSensorStatus.STOPPED
