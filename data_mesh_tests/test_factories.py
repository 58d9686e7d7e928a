"""Generated Dagster definitions: a snapshot of every spec (a metadata change shows as a diff),
and the store read once, at load time, not at import time."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    AutomationConditionSensorDefinition,
    Definitions,
)
from syrupy.assertion import SnapshotAssertion

from data_mesh.catalog.current import load_catalog, read_catalog
from data_mesh.component.definitions import ALL_PRODUCTS_JOB, build_definitions
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings


def _plain(value: Any) -> Any:
    inner = getattr(value, "value", value)
    return inner if isinstance(inner, str | int | float | bool | type(None)) else str(inner)


def _spec_view(spec: AssetSpec) -> dict[str, Any]:
    return {
        "key": spec.key.to_user_string(),
        "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
        "group": spec.group_name,
        "owners": list(spec.owners),
        "kinds": sorted(spec.kinds),
        "tags": dict(sorted(spec.tags.items())),
        "description": spec.description,
        "metadata": {k: _plain(v) for k, v in sorted(spec.metadata.items())},
        "partitions": str(spec.partitions_def) if spec.partitions_def else None,
    }


def _definitions(settings: Settings) -> Definitions:
    return build_definitions(load_catalog(settings), resources_for(settings))


def test_generated_specs_snapshot(loaded: Settings, snapshot: SnapshotAssertion) -> None:
    defs = _definitions(loaded)
    specs = sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string())
    assert [_spec_view(s) for s in specs] == snapshot


def test_generated_check_specs_snapshot(loaded: Settings, snapshot: SnapshotAssertion) -> None:
    defs = _definitions(loaded)
    specs = sorted(
        (
            spec
            for a in defs.assets or []
            if isinstance(a, AssetsDefinition)
            for spec in a.check_specs
        ),
        key=lambda s: (s.asset_key.to_user_string(), s.name),
    )
    view = [
        {
            "asset": spec.asset_key.to_user_string(),
            "name": spec.name,
            "blocking": spec.blocking,
            "description": spec.description,
            "additional_deps": sorted(d.asset_key.to_user_string() for d in spec.additional_deps),
            "metadata": {k: _plain(v) for k, v in sorted(spec.metadata.items())},
        }
        for spec in specs
    ]
    assert view == snapshot


def _automation_view(defs: Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    return {
        "jobs": sorted(
            (job.name, sorted(k.to_user_string() for k in job.asset_layer.executable_asset_keys))
            for job in (defs.resolve_job_def(j.name) for j in defs.jobs or [])
        ),
        "schedules": sorted(
            (s.name, s.cron_schedule, s.execution_timezone, s.job_name, s.default_status.value)
            for s in defs.schedules or []
        ),
        "sensors": sorted(
            (s.name, s.minimum_interval_seconds, s.default_status.value, s.description)
            for s in defs.sensors or []
        ),
        # The automation condition sensors: their assets and run tags.
        "automation_sensors": sorted(
            (
                s.name,
                sorted(k.to_user_string() for k in s.asset_selection.resolve(graph)),
                dict(s.run_tags),
            )
            for s in defs.sensors or []
            if isinstance(s, AutomationConditionSensorDefinition)
        ),
        # A scheduled product's cron, as the automation condition of its DDZ assets.
        "conditions": sorted(
            (key.to_user_string(), condition.get_label())
            for key in graph.materializable_asset_keys
            if (condition := graph.get(key).automation_condition) is not None
        ),
        # Concurrency pools of the DDZ steps: one load of a product at a time.
        "pools": sorted(
            (a.node_def.name, a.op.pool)
            for a in defs.assets or []
            if isinstance(a, AssetsDefinition) and a.is_executable and a.op.pool
        ),
    }


def test_generated_automation_snapshot(loaded: Settings, snapshot: SnapshotAssertion) -> None:
    """Jobs, schedules, sensors, conditions and pools: a schedule or sensor row change shows as
    a diff. LOCAL (schedules and sensors off by default) and PROD (on)."""
    prod = read_catalog(loaded.model_copy(update={"env": "PROD"}))
    view = {
        "LOCAL": _automation_view(_definitions(loaded)),
        "PROD": _automation_view(build_definitions(prod, resources_for(loaded))),
    }
    assert view == snapshot


def test_lineage_and_checks_of_sample_products(loaded: Settings) -> None:
    graph = _definitions(loaded).resolve_asset_graph()
    payments = AssetKey(["payments", "ddz", "sor1_payments"])
    assert graph.get(payments).parent_keys == {
        AssetKey(["payments", "cdz", "sor1_driver_table"]),
        AssetKey(["payments", "cdz", "sor1_payments_table"]),
    }
    revenue = AssetKey(["sales", "ddz", "country_revenue"])
    assert graph.get(revenue).parent_keys == {AssetKey(["sales", "ddz", "customer_orders"])}
    assert graph.get(AssetKey(["sales", "ddz", "customer_orders"])).parent_keys == {
        AssetKey(["sales", "ddz", "completed_orders"]),
        AssetKey(["sales", "cdz", "customers"]),
    }
    assert not graph.get(AssetKey(["sales", "cdz", "orders"])).is_materializable
    assert graph.get(revenue).is_materializable


def test_explicit_dependency_rows_become_lineage(loaded: Settings) -> None:
    from sqlalchemy import select

    from data_mesh.store import schema
    from data_mesh.store.database import make_engine

    engine = make_engine(loaded.resolved_metadata_url)
    table = schema.transformations
    with engine.begin() as connection:
        ids = dict(connection.execute(select(table.c.Name, table.c.TransformationID)).all())
        connection.execute(
            schema.transformation_dependencies.insert().values(
                TransformationID=ids["select_customer_directory"],
                DependsOnTransformationID=ids["filter_completed_orders"],
            )
        )
    graph = _definitions(loaded).resolve_asset_graph()
    assert graph.get(AssetKey(["sales", "ddz", "customer_directory"])).parent_keys == {
        AssetKey(["sales", "cdz", "customers"]),
        AssetKey(["sales", "ddz", "completed_orders"]),
    }


def test_one_job_for_unpartitioned_products(loaded: Settings) -> None:
    defs = _definitions(loaded)
    job = defs.resolve_job_def(ALL_PRODUCTS_JOB)
    assert job.asset_layer.executable_asset_keys == {
        AssetKey(["payments", "ddz", "sor1_payments"]),
        *(
            AssetKey(["sales", "ddz", name])
            for name in (
                "completed_orders",
                "customer_orders",
                "country_revenue",
                "top_customers",
                "customer_directory",
            )
        ),
    }


def test_broken_product_is_skipped_and_reported(loaded: Settings) -> None:
    (loaded.resolved_lake_root / "queries/sor1_payments/sor1_payments_sequence.properties").unlink()
    defs = _definitions(loaded)
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert "payments/ddz/sor1_payments" not in keys
    assert "sales/ddz/country_revenue" in keys
    assert "sor1_payments" in str(defs.metadata["data_mesh/products_skipped"])


def test_importing_definitions_does_no_io(tmp_path) -> None:
    # A store URL that cannot be opened: importing must still work, because nothing is read.
    code = (
        "import os; os.environ['DATA_MESH_METADATA_URL']='postgresql+psycopg://nobody@127.0.0.1:1/x';"
        "import data_mesh.definitions, data_mesh.cli.app; print('imported')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "imported" in result.stdout
    assert not (tmp_path / ".data_mesh").exists()


def test_a_product_mixing_partitionings_gets_one_step_per_partitioning(
    loaded: Settings, tmp_path
) -> None:
    from data_mesh_tests.conftest import SAMPLE_PRODUCTS, load_product_file

    text = (SAMPLE_PRODUCTS / "mdm_accounts" / "product.yaml").read_text()
    text = text.replace(
        "transformations:\n",
        "  - {name: accounts_per_day, source: ddz, layer: DDZ, target_table: ACCOUNTS_PER_DAY}\n"
        "  - name: weekly_accounts\n    source: ddz\n    layer: DDZ\n"
        "    target_table: WEEKLY_ACCOUNTS\n"
        "    partition: {column: LOAD_DATE, start: 2026-11-16}\n"
        "transformations:\n"
        "  - name: count_accounts_per_day\n    type: aggregate\n    inputs: [accounts]\n"
        "    output: accounts_per_day\n    configuration:\n      input_dataset: accounts\n"
        "      groupby_columns: [load_date]\n      agg_functions: {accounts: count(*)}\n"
        "  - name: copy_weekly\n    type: select\n    inputs: [accounts]\n"
        "    output: weekly_accounts\n    configuration:\n      input_dataset: accounts\n"
        "      columns: [account_id]\n",
        1,
    )
    assert load_product_file(tmp_path, "mdm_accounts", text).exit_code == 0
    defs = _definitions(loaded)
    steps = {
        a.node_def.name: sorted(k.to_user_string() for k in a.keys)
        for a in defs.assets or []
        if isinstance(a, AssetsDefinition) and a.node_def.name.startswith("mdm_accounts")
    }
    assert steps == {
        "mdm_accounts": ["mdm/ddz/accounts_per_day"],
        "mdm_accounts_daily_1": ["mdm/ddz/active_accounts", "mdm/ddz/active_accounts_topic"],
        "mdm_accounts_daily_2": ["mdm/ddz/weekly_accounts"],
    }
    jobs = {j.name for j in defs.jobs or []}
    assert {"all_data_products", "daily_data_products_from_2026_11_14_asia_kolkata"} <= jobs
    assert "daily_data_products_from_2026_11_16_asia_kolkata" in jobs
    # No schedule per partitioning any more: the domain's automation sensor runs all three.
    assert not defs.schedules
    sensor = defs.resolve_sensor_def("mdm_automation")
    assert isinstance(sensor, AutomationConditionSensorDefinition)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in sensor.asset_selection.resolve(graph)} == {
        "mdm/ddz/accounts_per_day",
        "mdm/ddz/active_accounts",
        "mdm/ddz/active_accounts_topic",
        "mdm/ddz/weekly_accounts",
    }
    defs.get_repository_def()  # resolves: each job has one partitioning
    # Switched on, each of them carries the product's cron.
    from data_mesh.store.database import make_engine
    from data_mesh_tests.conftest import add_config_item

    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "product.mdm_accounts@LOCAL", "schedule.enabled", "true")
    graph = _definitions(loaded).resolve_asset_graph()
    assert {
        key.to_user_string(): graph.get(key).automation_condition.get_label()  # type: ignore[union-attr]
        for key in graph.materializable_asset_keys
        if key.path[0] == "mdm"
    } == dict.fromkeys(
        [
            "mdm/ddz/accounts_per_day",
            "mdm/ddz/active_accounts",
            "mdm/ddz/active_accounts_topic",
            "mdm/ddz/weekly_accounts",
        ],
        "on_cron(0 2 * * *, Asia/Kolkata) at the tick",
    )
