"""Configuration rows resolved by effective date and environment; per-dataset overrides reach
the assets and the DDZ write; `data-mesh config show` masks secrets."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from dagster import AssetsDefinition, Backoff, RetryPolicy
from sqlalchemy import Engine
from typer.testing import CliRunner

from data_mesh.catalog.configuration import resolve_configuration, scoped_values
from data_mesh.catalog.current import load_catalog
from data_mesh.cli.app import app
from data_mesh.component.definitions import build_definitions
from data_mesh.resources.ddz_io_manager import MAX_CONNECTIONS, SPARK_CONFIG, target_from_metadata
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings
from data_mesh.store.database import make_engine
from data_mesh.store.rows import read_store
from data_mesh_tests.conftest import add_config_item

NOW = dt.datetime(2026, 6, 1, 12, 0)
DAY = dt.timedelta(days=1)


def test_the_version_valid_at_the_time_wins(store: Engine) -> None:
    add_config_item(store, "global", "ddz.max_connections", "4")
    add_config_item(
        store,
        "global",
        "ddz.max_chunk_rows",
        "1000",
        [
            (1, "2000", NOW - 10 * DAY, None),
            (2, "3000", NOW - DAY, None),  # the highest valid version
            (3, "9000", NOW + DAY, None),  # future-dated
            (4, "7000", NOW - 5 * DAY, NOW - 2 * DAY),  # expired
        ],
    )
    add_config_item(store, "global", "ddz.batch_bytes", "4096", [(1, "8192", NOW + DAY, None)])
    resolved = resolve_configuration(read_store(store), NOW)["global"]
    assert resolved["ddz.max_connections"].value == "4"
    assert resolved["ddz.max_connections"].source == "item"
    assert resolved["ddz.max_chunk_rows"].value == "3000"
    assert resolved["ddz.max_chunk_rows"].source.startswith("version 2")
    assert resolved["ddz.batch_bytes"].value == "4096"  # its only version is future-dated
    later = resolve_configuration(read_store(store), NOW + 2 * DAY)["global"]
    assert later["ddz.max_chunk_rows"].value == "9000"
    assert later["ddz.batch_bytes"].value == "8192"


def test_environment_and_dataset_scopes(store: Engine) -> None:
    add_config_item(store, "global", "spark.sql.shuffle.partitions", "200")
    add_config_item(store, "global@PROD", "spark.sql.shuffle.partitions", "400")
    add_config_item(store, "dataset.sor1_payments", "spark.sql.shuffle.partitions", "16")
    add_config_item(store, "dataset.sor1_payments@DEV", "spark.sql.shuffle.partitions", "2")
    resolved = resolve_configuration(read_store(store), NOW)

    def partitions(env: str, dataset: str | None) -> str:
        return scoped_values(resolved, env, dataset)["spark.sql.shuffle.partitions"].value

    assert partitions("LOCAL", None) == "200"
    assert partitions("PROD", None) == "400"
    assert partitions("PROD", "sor1_payments") == "16"
    assert partitions("DEV", "sor1_payments") == "2"
    assert partitions("DEV", "completed_orders") == "200"


def test_overrides_reach_the_asset_and_its_ddz_write(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    add_config_item(
        engine,
        "dataset.sor1_payments",
        "ddz.max_connections",
        "2",
        [(1, "7", now + 30 * DAY, None)],  # not valid yet
    )
    add_config_item(engine, "dataset.sor1_payments@LOCAL", "spark.sql.shuffle.partitions", "3")
    add_config_item(engine, "dataset.sor1_payments@PROD", "spark.sql.shuffle.partitions", "300")
    defs = build_definitions(load_catalog(loaded), resources_for(loaded))
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key.path[-1] == "sor1_payments")
    metadata = dict(spec.metadata)
    assert metadata[MAX_CONNECTIONS] == 2
    # The product file says 8 partitions; the LOCAL configuration row wins.
    assert json.loads(metadata[SPARK_CONFIG])["spark.sql.shuffle.partitions"] == "3"
    assert target_from_metadata(metadata, "payments/ddz/sor1_payments").max_connections == 2


def test_bad_override_breaks_only_its_product(loaded: Settings) -> None:
    add_config_item(
        make_engine(loaded.resolved_metadata_url),
        "dataset.sor1_payments",
        "ddz.max_connections",
        "many",
    )
    catalog = load_catalog(loaded)
    assert [p.product for p in catalog.problems] == ["sor1_payments"]
    assert "dataset.sor1_payments/ddz.max_connections (item): 'many' is not an integer" in (
        catalog.problems[0].message
    )


def test_config_show_masks_secrets_and_validate_rejects_them(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    key = "spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net"
    add_config_item(engine, "global", key, "c2VjcmV0LWtleQ==")
    add_config_item(
        engine, "global", "spark.hadoop.fs.azure.sas.token", "keyvault://kv-dm/lake-sas"
    )
    add_config_item(engine, "global@DEV", "ddz.max_connections", "8")
    # DEV's required settings (its store here is the LOCAL one, by URL).
    dev = {
        "COLUMNS": "250",
        "DATA_MESH_METADATA_URL": loaded.resolved_metadata_url,
        "DATA_MESH_DDZ_JDBC_URL": loaded.resolved_ddz_jdbc_url,
        "DATA_MESH_LAKE": "local",
    }
    result = CliRunner().invoke(app, ["config", "show", "--env", "DEV"], env=dev)
    assert result.exit_code == 0, result.output
    assert "c2VjcmV0LWtleQ==" not in result.output and "***" in result.output
    assert "keyvault://kv-dm/lake-sas" in result.output  # a reference is not a secret
    assert "global@DEV" in result.output and "DATA_MESH_ENV" in result.output
    validate = CliRunner().invoke(app, ["validate"], env={"COLUMNS": "250"})
    assert validate.exit_code == 1
    assert f"global/{key} (item) holds a literal secret" in validate.output
    assert "c2VjcmV0LWtleQ==" not in validate.output


def test_config_show_rejects_an_unknown_environment(loaded: Settings) -> None:
    result = CliRunner().invoke(app, ["config", "show", "--env", "STAGING"])
    assert result.exit_code == 1 and "unknown environment 'STAGING'" in result.output


@pytest.mark.parametrize("category", ["datasets.x", "global@TEST", "dataset.a;b"])
def test_bad_category_names_are_reported(loaded: Settings, category: str) -> None:
    add_config_item(make_engine(loaded.resolved_metadata_url), category, "ddz.max_connections", "2")
    catalog = load_catalog(loaded)
    assert any(category in message for message in catalog.configuration_problems)
    assert CliRunner().invoke(app, ["validate"]).exit_code == 1


def test_product_scope_sits_between_global_and_dataset(store: Engine) -> None:
    add_config_item(store, "global", "ddz.max_connections", "4")
    add_config_item(store, "product.sor1_payments", "ddz.max_connections", "3")
    add_config_item(store, "product.sor1_payments@PROD", "ddz.max_connections", "6")
    add_config_item(store, "dataset.sor1_payments@PROD", "ddz.batch_bytes", "2048")
    resolved = resolve_configuration(read_store(store), NOW)

    def value(env: str, product: str | None, dataset: str | None, key: str) -> str:
        return scoped_values(resolved, env, dataset, product)[key].value

    assert value("DEV", None, None, "ddz.max_connections") == "4"
    assert value("DEV", "sor1_payments", "sor1_payments", "ddz.max_connections") == "3"
    assert value("PROD", "sor1_payments", "sor1_payments", "ddz.max_connections") == "6"
    assert value("PROD", "customer_orders", "completed_orders", "ddz.max_connections") == "4"
    assert value("PROD", "sor1_payments", "sor1_payments", "ddz.batch_bytes") == "2048"


def test_retry_policy_per_data_product(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "product.customer_orders", "dagster.max_retries", "3")
    add_config_item(engine, "product.customer_orders", "dagster.retry_delay_s", "0.5")
    defs = build_definitions(load_catalog(loaded), resources_for(loaded))
    policies = {
        key.to_user_string(): assets.op.retry_policy
        for assets in defs.assets or []
        if isinstance(assets, AssetsDefinition)
        for key in assets.keys
    }
    expected = RetryPolicy(max_retries=3, delay=0.5, backoff=Backoff.EXPONENTIAL)
    assert policies["sales/ddz/completed_orders"] == expected
    assert policies["sales/ddz/country_revenue"] == expected
    assert policies["payments/ddz/sor1_payments"] is None


def test_bad_retry_setting_breaks_only_its_product(loaded: Settings) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    add_config_item(engine, "product.customer_orders", "dagster.max_retries", "-1")
    catalog = load_catalog(loaded)
    assert [p.product for p in catalog.problems] == ["customer_orders"]
    assert "dagster.max_retries (item): must be at least 0, got -1" in catalog.problems[0].message


def test_scoped_lookups_parse_each_category_once(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mesh has a category per product: looking up every product's values must not scan
    every category each time (quadratic at 10,000 products)."""
    from data_mesh.catalog import configuration

    for number in range(40):
        add_config_item(store, f"product.p{number}", "schedule.timezone", f"Zone/{number}")
    add_config_item(store, "product.p7@PROD", "schedule.timezone", "Zone/prod")
    resolved = resolve_configuration(read_store(store), NOW)
    parsed: list[str] = []
    real_scope = configuration.category_scope

    def counting_scope(category: str) -> tuple[str, str | None]:
        parsed.append(category)
        return real_scope(category)

    monkeypatch.setattr(configuration, "category_scope", counting_scope)
    zones = {
        n: scoped_values(resolved, "PROD", f"d{n}", f"p{n}")["schedule.timezone"].value
        for n in range(40)
    }
    assert zones == {n: "Zone/prod" if n == 7 else f"Zone/{n}" for n in range(40)}
    assert sorted(parsed) == sorted(resolved)  # 41 categories parsed once, for 40 lookups
