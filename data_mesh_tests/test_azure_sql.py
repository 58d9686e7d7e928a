"""Azure SQL connections over pyodbc: the access-token attribute, SQL authentication as the
fallback, retries on transient errors. No SQL Server runs here, so the ODBC driver's connect
function is replaced by a recorder; what it receives is what msodbcsql would get. The same
store code runs on SQLite and PostgreSQL in the other tests."""

from __future__ import annotations

import os
import struct
from typing import Any

import pyodbc
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.retry import RetryPolicy, error_codes, is_transient
from data_mesh.ddz.sessions import PyodbcSession, azure_sql_target_of, transaction
from data_mesh.resources.environments import QUALITY_HISTORY_KEY, resources_for
from data_mesh.settings.model import Settings
from data_mesh.store.azure_sql import (
    SQL_COPT_SS_ACCESS_TOKEN,
    AzureSqlTarget,
    access_token_struct,
    connect,
    odbc_value,
)
from data_mesh.store.connection import describe_store, store_target
from data_mesh.store.database import make_engine

TARGET = AzureSqlTarget("sql-dm-prod.database.windows.net", "data_mesh_metadata")


def _odbc_error(state: str, number: int) -> pyodbc.Error:
    return pyodbc.OperationalError(
        state,
        f"[{state}] [Microsoft][ODBC Driver 18 for SQL Server]Database unavailable ({number})",
    )


class Recorder:
    """Stands in for pyodbc.connect: fails with the given errors first, then connects."""

    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, connection_string: str, **kwargs: Any) -> str:
        self.calls.append((connection_string, kwargs))
        if self.failures:
            raise self.failures.pop(0)
        return "connection"


def test_access_token_is_packed_as_msodbcsql_expects() -> None:
    packed = access_token_struct("ab")
    assert packed == struct.pack("<I", 4) + "ab".encode("utf-16-le")


def test_token_authentication_passes_a_fresh_token_and_no_secret_in_the_string() -> None:
    tokens = iter(["token-1", "token-2"])
    recorder = Recorder(_odbc_error("08S01", 40613))
    connection = connect(TARGET, recorder, lambda: next(tokens), sleep=lambda _: None)
    assert connection == "connection"
    assert len(recorder.calls) == 2  # the transient 40613 was retried
    (_, first_kwargs), (string, kwargs) = recorder.calls
    assert first_kwargs["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN] == access_token_struct("token-1")
    assert kwargs["attrs_before"][SQL_COPT_SS_ACCESS_TOKEN] == access_token_struct("token-2")
    assert string.startswith(
        "Driver={ODBC Driver 18 for SQL Server};Server={tcp:sql-dm-prod.database.windows.net,1433};"
        "Database={data_mesh_metadata};"
    )
    assert "Encrypt=yes" in string and "PWD" not in string and "UID" not in string


def test_non_transient_errors_fail_at_once() -> None:
    recorder = Recorder(_odbc_error("42000", 18456))  # login failed
    with pytest.raises(pyodbc.OperationalError):
        connect(TARGET, recorder, lambda: "t", sleep=lambda _: None)
    assert len(recorder.calls) == 1


def test_retries_stop_after_the_policy_allows() -> None:
    recorder = Recorder(*[_odbc_error("08S01", 40501) for _ in range(5)])
    with pytest.raises(pyodbc.OperationalError):
        connect(
            TARGET, recorder, lambda: "t", policy=RetryPolicy(max_attempts=3), sleep=lambda _: None
        )
    assert len(recorder.calls) == 3


@pytest.mark.parametrize(
    ("number", "transient"), [(40613, True), (40197, True), (4060, True), (208, False)]
)
def test_pyodbc_error_numbers_are_classified(number: int, transient: bool) -> None:
    error = _odbc_error("42000" if not transient else "HY000", number)
    assert error_codes(error)[1] == number
    assert is_transient(error) is transient


def test_sql_authentication_reads_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    target = AzureSqlTarget("s.database.windows.net", "db", authentication="sql")
    with pytest.raises(DataMeshError, match="set DATA_MESH_SQL_USER and DATA_MESH_SQL_PASSWORD"):
        connect(target, Recorder(), sleep=lambda _: None)
    monkeypatch.setenv("DATA_MESH_SQL_USER", "etl")
    monkeypatch.setenv("DATA_MESH_SQL_PASSWORD", "p;w}d")
    recorder = Recorder()
    connect(target, recorder, sleep=lambda _: None)
    assert recorder.calls[0][0].endswith("UID={etl};PWD={p;w}}d};")


def test_every_connection_string_value_is_escaped() -> None:
    """ODBC ends a braced value at the first lone `}`: each one inside is doubled."""
    assert odbc_value("a}b;c={d}") == "{a}}b;c={d}}}"
    target = AzureSqlTarget("srv}x.database.windows.net", "db}1;x=y", driver="Driver }18")
    string = target.connection_string()
    assert string.startswith(
        "Driver={Driver }}18};Server={tcp:srv}}x.database.windows.net,1433};Database={db}}1;x=y};"
    )
    recorder = Recorder()
    connect(
        AzureSqlTarget("s", "d", authentication="sql"),
        recorder,
        sleep=lambda _: None,
        credentials=("us}er", "}{;"),
    )
    assert recorder.calls[0][0].endswith("UID={us}}er};PWD={}}{;};")


def test_cloud_settings_select_azure_sql_for_the_store(settings: Settings) -> None:
    assert store_target(settings) is None
    cloud = settings.model_copy(
        update={"env": "PROD", "metadata_azure_server": TARGET.server, "adls_account": "lake"}
    )
    assert store_target(cloud) == TARGET
    assert describe_store(cloud) == f"Azure SQL {TARGET.server}/data_mesh_metadata (token auth)"
    store = resources_for(cloud)[QUALITY_HISTORY_KEY].store
    assert store.azure_target("data_mesh") == TARGET
    assert str(store.engine("data_mesh").url) == "mssql+pyodbc://"


def test_ddz_target_from_a_sqlserver_jdbc_url() -> None:
    target = azure_sql_target_of(
        "jdbc:sqlserver://sql-dm.database.windows.net:1433;databaseName=ddz;encrypt=true", "token"
    )
    assert (target.server, target.database, target.authentication) == (
        "sql-dm.database.windows.net",
        "ddz",
        "token",
    )
    with pytest.raises(DataMeshError, match="names no database"):
        azure_sql_target_of("jdbc:sqlserver://sql-dm.database.windows.net:1433", "sql")


def test_pyodbc_session_on_postgresql_through_its_odbc_driver(pg_url: str) -> None:
    """The session class the cloud uses for Azure SQL, on a real ODBC driver (psqlODBC)."""
    if "PostgreSQL Unicode" not in pyodbc.drivers():
        if os.environ.get("CI"):
            pytest.fail("psqlODBC is missing: scripts/setup.sh installs odbc-postgresql")
        pytest.skip("psqlODBC (odbc-postgresql) is not installed")
    url = make_url(pg_url)
    connection = pyodbc.connect(
        f"Driver={{PostgreSQL Unicode}};Server={url.host};Port={url.port or 5432};"
        f"Database={url.database};Uid={url.username};Pwd={{{url.password}}};"
    )
    session = PyodbcSession(connection)
    try:
        with transaction(session):
            session.execute("CREATE TABLE odbc_probe (id int, name varchar(20))")
        with transaction(session):
            assert session.execute("INSERT INTO odbc_probe VALUES (?, ?)", [1, "a']b"]) == 1
        with pytest.raises(RuntimeError), transaction(session):
            session.execute("INSERT INTO odbc_probe VALUES (?, ?)", [2, "rolled back"])
            raise RuntimeError("fail inside the transaction")
        assert session.query("SELECT id, name FROM odbc_probe WHERE id >= ?", [0]) == [(1, "a']b")]
    finally:
        with transaction(session):
            session.execute("DROP TABLE IF EXISTS odbc_probe")
        session.close()


@pytest.mark.slow
def test_a_password_with_braces_and_semicolons_logs_in_through_odbc(pg_url: str) -> None:
    """The escaping round-trips through a real ODBC stack (unixODBC and psqlODBC, which reads
    braced values for the driver and the password): a role whose password holds `}`, `;`, `{`
    and `=` logs in."""
    if "PostgreSQL Unicode" not in pyodbc.drivers():
        if os.environ.get("CI"):
            pytest.fail("psqlODBC is missing: scripts/setup.sh installs odbc-postgresql")
        pytest.skip("psqlODBC (odbc-postgresql) is not installed")
    role, password = "data_mesh_odbc_probe", "p}w;d{x}}=y}"
    url = make_url(pg_url)
    engine = make_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP ROLE IF EXISTS {role}"))
        # A utility statement takes no bind parameters; the literal holds no quote.
        connection.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'"))
    try:
        odbc = pyodbc.connect(
            f"Driver={odbc_value('PostgreSQL Unicode')};Server={url.host};"
            f"Port={url.port or 5432};Database={url.database};"
            f"UID={role};PWD={odbc_value(password)};"
        )
        try:
            assert odbc.execute("SELECT current_user").fetchone()[0] == role
        finally:
            odbc.close()
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP ROLE {role}"))
        engine.dispose()
