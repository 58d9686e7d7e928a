"""The production topology, end to end: the client (here the CLI, as a run worker runs it)
drives Spark through Spark Connect; the cluster is pyspark's own Connect server, started as
another OS user that cannot read the client's temporary or home folders; the DDZ is a real
database the cluster writes over JDBC and the client controls over ODBC.

The DDZ is PostgreSQL reached through psqlODBC, with the load path and the control session
set as Azure SQL's are (`DATA_MESH_DDZ_LOAD_PATH=jdbc`, `DATA_MESH_DDZ_CONTROL=odbc`), so
SQL Server's control flow runs against a real server: the spool in the lake, chunks straight
into the stage from the cluster, the ledger and the publish from the client.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from sqlalchemy import text

from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import (
    SAMPLE_PRODUCTS,
    add_config_item,
    jdbc_url_of,
    run_cli,
    spark_connect_server,
    start_cli,
)

pytestmark = pytest.mark.slow
ROWS = 20_000  # sample users x 10 payments each: 20,000 DDZ rows
SERVER_USER = "data_mesh_spark"
JARS = "/usr/share/java/postgresql.jar"
TABLE = 'ddz."SOR1_PAYMENTS"'


def _server_user() -> pwd.struct_passwd:
    """The OS user the Spark Connect server runs as (created when missing; needs root)."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail(f"the topology test runs its Spark server as {SERVER_USER}: run as root")
        pytest.skip(f"creating the OS user {SERVER_USER} needs root")
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
        check=True,
    )
    return pwd.getpwnam(SERVER_USER)


@pytest.fixture(scope="module")
def shared_lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The lake: the only folder both sides reach (ADLS in Azure). Outside the client's
    temporary folder, which the server must not be able to read."""
    folder = Path(f"/tmp/data_mesh_lake_{os.getpid()}")
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture(scope="module")
def spark_connect(shared_lake: Path) -> Iterator[str]:
    work = Path(f"/tmp/data_mesh_spark_server_{os.getpid()}")
    work.mkdir(mode=0o700)
    try:
        with spark_connect_server(work, JARS, _server_user()) as url:
            yield url
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def _client_env(spark_connect: str, pg_url: str, lake: Path, home: Path) -> dict[str, str]:
    jdbc, credentials = jdbc_url_of(pg_url)
    return dict(
        os.environ,
        DATA_MESH_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster_home"),
        DATA_MESH_LAKE_ROOT=str(lake),
        DATA_MESH_SPARK_REMOTE=spark_connect,
        DATA_MESH_DDZ_JDBC_URL=jdbc,
        DATA_MESH_DDZ_USER=credentials["user"],
        DATA_MESH_DDZ_PASSWORD=credentials["password"],
        DATA_MESH_DDZ_LOAD_PATH="jdbc",
        DATA_MESH_DDZ_CONTROL="odbc",
        COLUMNS="200",
    )


def _readable_by_server(folder: Path) -> bool:
    user = pwd.getpwnam(SERVER_USER)
    probe = subprocess.run(
        ["ls", str(folder)], user=user.pw_uid, group=user.pw_gid, capture_output=True
    )
    return probe.returncode == 0


def _multiset(pg_url: str) -> list[tuple[object, ...]]:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(f"SELECT * FROM {TABLE} ORDER BY 1, 2, 3, 4")).fetchall()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def _ledger_chunks(pg_url: str) -> int:
    engine = make_engine(pg_url)
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT to_regclass('data_mesh.ddz_load_ledger')"))
            if exists.scalar() is None:
                return 0
            return int(
                connection.execute(text("SELECT count(*) FROM data_mesh.ddz_load_ledger")).scalar()
                or 0
            )
    finally:
        engine.dispose()


def test_sor1_payments_through_spark_connect_with_sql_servers_control_flow(
    spark_connect: str, pg_url: str, shared_lake: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = _client_env(spark_connect, pg_url, shared_lake, home)
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    # Small chunks, so a load has many and can be killed between them.
    add_config_item(
        make_engine(f"sqlite:///{home / 'metadata.db'}"), "global", "ddz.max_chunk_rows", "1000"
    )
    run_cli(env, "generate-sample-data", "--rows", str(ROWS))

    result = run_cli(env, "materialize", "--product", "sor1_payments")
    assert "ddz.SOR1_PAYMENTS" in result.stdout
    expected = _multiset(pg_url)
    assert len(expected) == ROWS
    # The server's user cannot read the client's folders; nothing of the load is left: no
    # spool in the lake, no ledger rows.
    assert not _readable_by_server(tmp_path) and not _readable_by_server(Path.home())
    assert not list((shared_lake / "spool").glob("ddz/*/*"))
    assert _ledger_chunks(pg_url) == 0

    # A run killed mid-load (SIGKILL, between chunks), then run again: the exact multiset.
    process = start_cli(env, "materialize", "--product", "sor1_payments")
    deadline = time.monotonic() + 600
    while _ledger_chunks(pg_url) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed mid-load"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert _multiset(pg_url) == expected  # the kill left the table as it was

    run_cli(env, "materialize", "--product", "sor1_payments")
    assert _multiset(pg_url) == expected
    assert _ledger_chunks(pg_url) == 0
    # It resumed: the chunks the killed run committed were not loaded again, even the one the
    # server finished after its client was killed (found whole in the stage, then recorded).
    with DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        event = instance.get_latest_materialization_event(
            AssetKey(["payments", "ddz", "sor1_payments"])
        )
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["resumed_chunks"].value >= 3
    assert (
        metadata["resumed_chunks"].value + metadata["loaded_chunks"].value
        == metadata["chunks"].value
    )
