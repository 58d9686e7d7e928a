"""How the writer reaches the DDZ: settings that cannot work are refused before anything is
written, and retries happen in one layer with a stated bound."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest
from pyspark.sql import SparkSession
from sqlalchemy import text

from data_mesh.ddz.connection import DdzConnection, DdzConnectionError
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.retry import RetryPolicy
from data_mesh.ddz.sessions import open_session, postgres_odbc_string
from data_mesh.ddz.writer import DdzTarget, DdzWriteError, DdzWriter
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import jdbc_url_of

H2 = "jdbc:h2:file:/tmp/x;MODE=MSSQLServer"
PG = "jdbc:postgresql://127.0.0.1:5432/db"
MSSQL = "jdbc:sqlserver://sql-dm.database.windows.net:1433;database=ddz"


@pytest.mark.parametrize(
    ("connection", "spark_connect", "says"),
    [
        (DdzConnection(H2), True, "unset DATA_MESH_SPARK_REMOTE"),
        (DdzConnection(MSSQL), True, "set DATA_MESH_DDZ_AZURE_AUTH=token"),
        (DdzConnection(PG, control="jvm"), True, "set DATA_MESH_DDZ_CONTROL to psycopg or odbc"),
        (DdzConnection(MSSQL, load_path="copy"), False, "set DATA_MESH_DDZ_LOAD_PATH=jdbc"),
        (DdzConnection(H2, control="psycopg"), False, "psycopg only reaches PostgreSQL"),
        (DdzConnection(H2, control="odbc"), False, "H2 DDZ has no ODBC driver"),
        (DdzConnection(MSSQL, control="odbc"), False, "need an authentication"),
        (DdzConnection(PG, load_path="bulk"), False, "load path 'bulk' is unknown"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_what_to_set(
    connection: DdzConnection, spark_connect: bool, says: str
) -> None:
    with pytest.raises(DdzConnectionError, match=says):
        connection.check(spark_connect)


def test_the_embedded_h2_is_refused_with_a_cluster_master() -> None:
    with pytest.raises(DdzConnectionError, match="executors cannot write"):
        DdzConnection(H2).check(spark_connect=False, cluster=True)
    DdzConnection("jdbc:h2:tcp://db:9092/ddz").check(spark_connect=False, cluster=True)


@pytest.mark.slow
def test_a_spool_on_this_machine_is_refused_with_a_cluster_master(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A classic driver whose executors run elsewhere (spark://...) cannot hand them a folder
    of its own: the writer says so before anything is written."""
    real_get = spark.conf.get
    monkeypatch.setattr(
        spark.conf,
        "get",
        lambda key, *default: (
            "spark://master:7077" if key == "spark.master" else real_get(key, *default)
        ),
    )
    writer = DdzWriter(DdzConnection(PG, control="odbc", load_path="jdbc"))
    with pytest.raises(DdzWriteError, match="not a folder of this machine"):
        writer.write(spark.range(3).selectExpr("id AS ID"), DdzTarget(TableName("ddz", "T")))


@pytest.mark.parametrize(
    "connection",
    [
        DdzConnection(MSSQL, odbc_auth="token"),  # Azure SQL under Databricks
        DdzConnection(PG, control="odbc", load_path="jdbc"),  # its control flow, tested here
        DdzConnection(PG),  # PostgreSQL's COPY
    ],
)
def test_the_production_shapes_pass_under_spark_connect(connection: DdzConnection) -> None:
    connection.check(spark_connect=True)


def test_defaults_follow_the_dialect() -> None:
    assert (DdzConnection(PG).resolved_control, DdzConnection(PG).resolved_load_path) == (
        "psycopg",
        "copy",
    )
    assert DdzConnection(MSSQL, odbc_auth="sql").resolved_control == "odbc"
    assert DdzConnection(MSSQL).resolved_control == "jvm"
    assert DdzConnection(H2).resolved_load_path == "jdbc"


def test_psqlodbc_string_braces_the_password_only() -> None:
    text = postgres_odbc_string(PG, {"user": "u", "password": "p;w}d+1%41"})
    assert text.startswith("Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=5432;Database=db;")
    assert "UID=u;PWD={p;w}}d+1%41};" in text


@pytest.mark.slow
def test_a_password_psqlodbc_would_decode_logs_in(spark: SparkSession, pg_url: str) -> None:
    """`+` and `%41` in an unbraced psqlODBC password would be decoded to ` ` and `A`."""
    password = "p+1%41;x}"
    engine = make_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("DROP ROLE IF EXISTS dm_odbc_probe"))
        connection.execute(text(f"CREATE ROLE dm_odbc_probe LOGIN PASSWORD '{password}'"))
    try:
        url, _ = jdbc_url_of(pg_url)
        session = open_session(
            spark,
            DdzConnection(url, {"user": "dm_odbc_probe", "password": password}, control="odbc"),
        )
        assert session.query("SELECT current_user")[0][0] == "dm_odbc_probe"
        session.close()
    finally:
        with engine.begin() as connection:
            connection.execute(text("DROP ROLE IF EXISTS dm_odbc_probe"))
        engine.dispose()


@pytest.mark.slow
def test_an_unreachable_ddz_is_tried_a_bounded_number_of_times(
    spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connection refused is transient: the writer's one retry layer tries `max_attempts`
    times, and connecting inside an attempt does not retry again (attempts never multiply)."""
    attempts: list[str] = []
    real_connect = pyodbc.connect

    def counted(*args: object, **kwargs: object) -> object:
        attempts.append("connect")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(pyodbc, "connect", counted)
    nowhere = DdzConnection(
        "jdbc:postgresql://127.0.0.1:9/db", {"user": "u"}, control="odbc", load_path="jdbc"
    )
    writer = DdzWriter(nowhere, retry_policy=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    data = spark.range(3).selectExpr("id AS ID")
    with pytest.raises(DdzWriteError, match=r"DDZ table ddz\.T: replace write failed"):
        writer.write(data, DdzTarget(TableName("ddz", "T")))
    assert attempts == ["connect"] * 3


@pytest.mark.slow
def test_azure_sql_connects_are_not_retried_inside_the_writers_retries(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Azure SQL's connect has retries of its own (for the metadata store); inside the writer
    they are off, so a database that stays unavailable (40613) costs `max_attempts` tries, not
    their square."""
    attempts: list[str] = []

    def unavailable(*args: object, **kwargs: object) -> object:
        attempts.append("connect")  # no ODBC Driver 18 here: the server's answer, as it comes
        raise pyodbc.OperationalError("08S01", "[08S01] Database is not available (40613)")

    monkeypatch.setattr(pyodbc, "connect", unavailable)
    azure = DdzConnection(MSSQL, {"user": "u", "password": "p"}, odbc_auth="sql")
    writer = DdzWriter(azure, retry_policy=RetryPolicy(max_attempts=3, base_delay_s=0.01))
    with pytest.raises(DdzWriteError, match=r"\(40613\)"):
        writer.write(spark.range(3).selectExpr("id AS ID"), DdzTarget(TableName("ddz", "T")))
    assert attempts == ["connect"] * 3
