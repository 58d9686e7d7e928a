"""Secrets: references in rows, literal secrets rejected by `data-mesh validate`, and a real
password that never shows up in logs, run metadata or what the UI shows."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._serdes import serialize_value
from pyspark.sql import SparkSession
from sqlalchemy import text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.cli.app import app
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh.settings.secrets import (
    MASK,
    SecretError,
    literal_secret_in,
    parse_reference,
    redact_url,
    resolve_secret,
    url_secrets,
    without_password,
)
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import jdbc_url_of


@pytest.mark.parametrize(
    "value",
    [
        "Server=tcp:x.database.windows.net;Database=d;User ID=u;Password=Hunter2!",
        "Driver={ODBC Driver 18};PWD=Hunter2!",
        "postgresql://etl:Hunter2!@db.example.com/sales",
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==",
        "https://a.blob.core.windows.net/c?sv=2024&sig=abc%2F123",
        '{"spark_config": {"spark.hadoop.fs.azure.account.key.a.dfs.core.windows.net": "abc"}}',
        '{"client_secret": "abc"}',
        '{"password": "Hunter2!"}',
    ],
)
def test_literal_secrets_are_recognized(value: str) -> None:
    assert literal_secret_in(value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "env:DATA_MESH_DDZ_JDBC_URL",
        "keyvault://kv-data-mesh/sales-db-password",
        "lake://cdz/analytics_sales_cdz",
        "jdbc:postgresql://db.example.com:5432/sales",
        "Server=tcp:x.database.windows.net;Database=d;Authentication=ActiveDirectoryMsi",
        '{"password_env": "DATA_MESH_DDZ_PASSWORD", "user": "etl"}',
        '{"spark.hadoop.fs.azure.account.key.a.dfs.core.windows.net": "keyvault://kv/lake-key"}',
        '{"condition": "status = \'COMPLETED\' and amount > 0"}',
    ],
)
def test_references_and_plain_settings_are_not_secrets(value: str) -> None:
    assert literal_secret_in(value) is None


def test_references_resolve_from_env_and_key_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    assert str(parse_reference("keyvault://kv-dm/db-password")) == "keyvault://kv-dm/db-password"
    monkeypatch.setenv("DM_TEST_SECRET", "value-1")
    assert resolve_secret("env:DM_TEST_SECRET") == "value-1"
    vaults = {("kv-dm", "db-password"): "value-2"}
    assert resolve_secret("keyvault://kv-dm/db-password", lambda v, n: vaults[(v, n)]) == "value-2"
    with pytest.raises(SecretError, match="secret env:DM_TEST_MISSING is not set"):
        resolve_secret("env:DM_TEST_MISSING")
    with pytest.raises(SecretError, match="is not a secret reference"):
        resolve_secret("Hunter2!")


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        (schema.data_sources, "ConnectionString", "Server=db;User ID=u;Password=Hunter2!"),
        (
            schema.transformations,
            "Configuration",
            json.dumps(
                {"query": "select 1 as x", "spark_config": {"fs.azure.sas.token": "Hunter2!"}}
            ),
        ),
    ],
)
def test_validate_rejects_a_literal_secret_without_printing_it(
    loaded: Settings, table: object, column: str, value: str
) -> None:
    engine = make_engine(loaded.resolved_metadata_url)
    with engine.begin() as connection:
        target = table  # type: ignore[assignment]
        name_column = target.c.Name  # type: ignore[attr-defined]
        name = "analytics_sor1_cdz" if column == "ConnectionString" else "build_sor1_payments"
        connection.execute(update(target).where(name_column == name).values({column: value}))  # type: ignore[arg-type]
    catalog = load_catalog(loaded)
    assert [p.product for p in catalog.problems] == ["sor1_payments"]
    message = catalog.problems[0].message
    assert "keyvault://" in message and "Hunter2" not in message
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "sor1_payments" in result.output and "Hunter2" not in result.output


@pytest.mark.slow
def test_ddz_password_never_reaches_logs_run_metadata_or_the_ui(
    loaded: Settings,
    spark: SparkSession,
    pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = f"Pw-{uuid.uuid4().hex}"
    role = f"dm_secret_{uuid.uuid4().hex[:8]}"
    engine = make_engine(pg_url)
    database = make_url(pg_url).database
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'"))
            connection.execute(text(f'GRANT CREATE ON DATABASE "{database}" TO {role}'))
            # Membership lets the test user drop what the role creates, afterwards.
            connection.execute(text(f"GRANT {role} TO CURRENT_USER"))
    except ProgrammingError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the test role cannot create roles (scripts/start-postgres.sh): {error}")
    try:
        jdbc, _ = jdbc_url_of(pg_url)
        monkeypatch.setenv("DATA_MESH_DDZ_JDBC_URL", jdbc)
        monkeypatch.setenv("DATA_MESH_DDZ_USER", role)
        monkeypatch.setenv("DATA_MESH_DDZ_PASSWORD", secret)
        settings = Settings()
        write_sample_data(spark, lake_storage(settings), 200)
        home = settings.dagster_home
        home.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        instance = DagsterInstance.get()
        outcome = materialize_products(settings, ["sor1_payments"], instance)
        assert outcome.success, outcome.failure
        assert outcome.materializations[0].rows == 200  # written as the role, with the secret

        run = instance.get_run_by_id(outcome.run_id)
        assert run is not None
        seen = [serialize_value(record) for record in instance.all_logs(outcome.run_id)]
        seen.append(serialize_value(instance.get_job_snapshot(run.job_snapshot_id)))
        seen.append(serialize_value(run))
        seen.append(caplog.text)
        seen.extend(capfd.readouterr())
        assert not [chunk for chunk in seen if secret in chunk]
        # Compute logs and every file Dagster keeps (event logs, run storage) on disk.
        stored = [p for p in Path(home).rglob("*") if p.is_file()]
        assert stored and not [p for p in stored if secret.encode() in p.read_bytes()]
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role} CASCADE"))
            connection.execute(text(f"DROP ROLE {role}"))


def test_url_maskers() -> None:
    """The one set of maskers serves messages, `config show` and ingestion sources."""
    jdbc = "jdbc:sqlserver://h:1433;user=u;password=p4ss;encrypt=true"
    assert redact_url(jdbc) == f"jdbc:sqlserver://h:1433;user=u;password={MASK};encrypt=true"
    assert redact_url("postgresql://u:p4ss@h/db") == f"postgresql://u:{MASK}@h/db"
    assert url_secrets("postgresql://u:p4ss@h/db?sslpassword=k3y") == ["k3y", "p4ss"]
    assert without_password("postgresql+psycopg://u:p4ss@h/db") == (
        f"postgresql+psycopg://u:{MASK}@h/db"
    )
