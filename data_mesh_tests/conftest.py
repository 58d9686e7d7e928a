"""Shared fixtures: one Spark session per test session, isolated LOCAL homes, PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url
from typer.testing import Result

from data_mesh.catalog.models import DataSetModel
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine, upgrade_store

REPO = Path(__file__).resolve().parents[1]
# Rows every DDZ database must store and give back exactly: each type, unicode, nulls, empty
# and padded strings, quotes, commas, newlines and backslashes.
AWKWARD_SCHEMA = (
    "ID int, S string, D decimal(18,2), DT date, TS timestamp, B boolean, F double, "
    "BIN binary, SM smallint"
)


def awkward_rows() -> list[tuple[Any, ...]]:
    from decimal import Decimal

    ts = dt.datetime(2026, 11, 21, 13, 14, 15, 123456)
    return [
        (
            1,
            "Zoë \u2013 東京 🚀",
            Decimal("12.34"),
            dt.date(2026, 1, 31),
            ts,
            True,
            1.5e10,
            bytearray(b"\x00\xffab"),
            7,
        ),
        (2, None, None, None, None, None, None, None, None),
        (3, "", Decimal("-0.01"), dt.date(1999, 12, 31), ts, False, -0.0, bytearray(b""), -1),
        (
            4,
            "a 'quoted', \"comma\"\nand newline\\ backslash; DROP TABLE x --",
            Decimal("0"),
            None,
            None,
            True,
            3.25,
            None,
            0,
        ),
        (5, "  padded  ", Decimal("99999999.99"), None, None, None, None, None, None),
    ]


SAMPLE_PRODUCTS = REPO / "metadata" / "products"


def ddz_dataset(name: str, dataset_id: int = 1) -> DataSetModel:
    """A DDZ DataSet of the catalog, as rules name it, without a store behind it."""
    return DataSetModel(
        id=dataset_id,
        name=name,
        product="p",
        domain="d",
        layer="DDZ",
        source_name="ddz",
        source_type="ddz",
        source_format="table",
        location=None,
        target_schema="ddz",
        target_table=name.upper(),
        write_mode="replace",
        key_columns=(),
        description=None,
    )


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """LOCAL settings whose state lives in a fresh temporary folder."""
    monkeypatch.setenv("DATA_MESH_HOME", str(tmp_path / "home"))
    # `data-mesh materialize` records runs in DAGSTER_HOME: keep them in the test's folder.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster_home"))
    for name in ("DATA_MESH_METADATA_URL", "DATA_MESH_LAKE_ROOT", "DATA_MESH_DDZ_JDBC_URL"):
        monkeypatch.delenv(name, raising=False)
    return Settings()


@pytest.fixture(scope="session", autouse=True)
def _local_states_removed() -> Iterator[None]:
    """Each test store's LOCAL state is a folder of its own in the project (its key holds a
    digest of the store): the ones this session made are removed at its end."""
    folder = Path(__file__).resolve().parents[1] / "data_mesh" / "defs" / ".local_defs_state"
    before = set(folder.iterdir()) if folder.is_dir() else set()
    yield
    for path in set(folder.iterdir()) - before if folder.is_dir() else ():
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def store(settings: Settings) -> Engine:
    """An empty, migrated SQLite metadata store."""
    engine = make_engine(settings.resolved_metadata_url)
    upgrade_store(engine)
    return engine


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """The one Spark session of the test run (local[2]; H2, PostgreSQL and mssql-jdbc drivers)."""
    from data_mesh.resources.spark import spark_session

    base = Settings(home=Path(os.environ.get("PYTEST_SPARK_HOME", "/tmp/data_mesh_test_spark")))
    session = spark_session(base.model_copy(update={"spark_master": "local[2]"}))
    session.conf.set("spark.sql.shuffle.partitions", "4")
    yield session
    session.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A clean PostgreSQL database (the CI starts the server; see scripts/start-postgres.sh)."""
    url = os.environ.get("DATA_MESH_TEST_PG_URL")
    if not url:
        # Only a bare `pytest` gets here; scripts/test.sh always sets it, and -rs shows this.
        pytest.skip("DATA_MESH_TEST_PG_URL is not set (scripts/test.sh sets it)")
    engine = reachable_pg(url)
    _drop_all(engine)
    yield url
    _drop_all(engine)
    engine.dispose()


def reachable_pg(url: str) -> Engine:
    """An engine on `url`, whose server answers. A URL given but unreachable fails the test
    (never skips it): the PostgreSQL tests would otherwise pass by not running."""
    engine = make_engine(url)
    try:
        with engine.connect():
            pass
    except Exception as error:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"DATA_MESH_TEST_PG_URL is set ({shown}) but PostgreSQL does not answer: "
            f"{type(error).__name__}: {str(error).strip().splitlines()[0]}",
            pytrace=False,
        )
    return engine


def _drop_all(engine: Engine) -> None:
    """Drop every schema the tests may have made (public, ddz, data_mesh, ...)."""
    with engine.begin() as connection:
        schemas = connection.execute(
            text(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
                "AND nspname <> 'information_schema'"
            )
        ).scalars()
        for schema in list(schemas):
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        connection.execute(text("CREATE SCHEMA public"))


@pytest.fixture
def loaded(settings: Settings, store: Engine) -> Settings:
    """The sample products loaded into the store and their query files published to the lake."""
    from typer.testing import CliRunner

    from data_mesh.cli.app import app

    result = CliRunner().invoke(app, ["load", str(SAMPLE_PRODUCTS)])
    assert result.exit_code == 0, result.output
    return settings


@contextmanager
def engines_opened(url: str) -> Iterator[list[Engine]]:
    """The engines on `url` that open a connection inside the block. The list holds them, so
    the garbage collector cannot close what a caller left open: a pool still holding a
    connection afterwards was not disposed (`pooled_connections`)."""
    engines: list[Engine] = []
    wanted = make_url(url)

    def record(connection: Connection) -> None:
        if connection.engine.url == wanted and connection.engine not in engines:
            engines.append(connection.engine)

    event.listen(Engine, "engine_connect", record)
    try:
        yield engines
    finally:
        event.remove(Engine, "engine_connect", record)


def pooled_connections(engine: Engine) -> int:
    """Connections the engine's pool still holds (0 once `dispose()` replaced the pool)."""
    pool: Any = engine.pool
    return int(pool.checkedin()) + int(pool.checkedout())


def catalog_tables(spark: Any) -> dict[str, set[str]]:
    """The Spark catalog's databases and their tables (session temporary views left out)."""
    return {
        database.name: {
            t.name for t in spark.catalog.listTables(database.name) if not t.isTemporary
        }
        for database in spark.catalog.listDatabases()
    }


def load_product_file(folder: Path, name: str, product: str | dict[str, Any]) -> Result:
    """Write `product` (YAML text, or a dict dumped as YAML) to <folder>/<name>/product.yaml and
    run `data-mesh load` on that folder; returns the CLI result."""
    import yaml
    from typer.testing import CliRunner

    from data_mesh.cli.app import app

    path = folder / name / "product.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(product if isinstance(product, str) else yaml.safe_dump(product))
    return CliRunner().invoke(app, ["load", str(path.parent)])


def add_config_item(
    engine: Engine,
    category: str,
    key: str,
    value: str,
    versions: list[tuple[int, str, dt.datetime, dt.datetime | None]] = (),  # type: ignore[assignment]
) -> None:
    """A configuration row (its category created if missing), with optional versions:
    (number, value, effective date, expiry)."""
    with engine.begin() as connection:
        found = connection.execute(
            schema.configuration_category.select().where(
                schema.configuration_category.c.CategoryName == category
            )
        ).first()
        if found is None:
            category_id = connection.execute(
                schema.configuration_category.insert().values(CategoryName=category)
            ).inserted_primary_key[0]  # type: ignore[index]
        else:
            category_id = found.CategoryID
        item_id = connection.execute(
            schema.configuration_item.insert().values(
                CategoryID=category_id, ItemKey=key, ItemValue=value
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        for number, version_value, effective, expires in versions:
            connection.execute(
                schema.configuration_version.insert().values(
                    ItemID=item_id,
                    VersionNumber=number,
                    ItemValue=version_value,
                    EffectiveDate=effective,
                    ExpirationDate=expires,
                )
            )


def jdbc_url_of(sqlalchemy_url: str) -> tuple[str, dict[str, str]]:
    """`jdbc:postgresql://host:port/db` and its user/password from a SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    url = make_url(sqlalchemy_url)
    jdbc = f"jdbc:postgresql://{url.host}:{url.port or 5432}/{url.database}"
    return jdbc, {"user": url.username or "", "password": url.password or ""}


AZURITE = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's documented development account (a public, well-known key: not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    process: subprocess.Popen[bytes], port: int, seconds: float, what: str, log: Path | None = None
) -> None:
    """Until `process` listens on 127.0.0.1:`port`; fails the test (with its log) otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                tail = log.read_text()[-2000:] if log and log.exists() else ""
                pytest.fail(f"{what} did not start on port {port}\n{tail}")
            time.sleep(0.2)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`data-mesh ARGS` in a process of its own, as users run it; fails the test on an error."""
    data_mesh = Path(sys.executable).with_name("data-mesh")
    result = subprocess.run(
        [str(data_mesh), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"data-mesh {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `data-mesh` process of a test: this one's without DATA_MESH_*
    settings (the test database's URL kept), with its state under `home`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DATA_MESH_") or k == "DATA_MESH_TEST_PG_URL"
    }
    env.update(DATA_MESH_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"), **extra)
    return env


def start_cli(
    env: dict[str, str], *args: str, output: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`data-mesh ARGS` started in a session of its own (to be killed whole), not waited for;
    its output to `output` (discarded by default)."""
    data_mesh = Path(sys.executable).with_name("data-mesh")
    return subprocess.Popen(
        [str(data_mesh), *args],
        env=env,
        cwd=REPO,
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        start_new_session=True,
    )


def ddz_rows(spark: Any, connection: Any, sql: str) -> list[tuple[Any, ...]]:
    """The rows of `sql` in a DDZ, through the writer's own control session. Retried: H2
    refuses its file for a few seconds after the process holding it was killed."""
    from data_mesh.ddz.retry import RetryPolicy, with_retries
    from data_mesh.ddz.sessions import open_session, transaction

    def attempt() -> list[tuple[Any, ...]]:
        session = open_session(spark, connection)
        try:
            with transaction(session):
                return session.query(sql)
        finally:
            session.close()

    return with_retries(attempt, RetryPolicy(max_attempts=20, max_delay_s=2))


def ledger_chunks(spark: Any, connection: Any) -> int:
    """Chunks the DDZ's load ledger records (0 before the first load made it)."""
    found = ddz_rows(
        spark,
        connection,
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'ddz_load_ledger'",
    )
    if not int(str(found[0][0])):
        return 0
    return int(
        str(ddz_rows(spark, connection, 'SELECT COUNT(*) FROM "data_mesh"."ddz_load_ledger"')[0][0])
    )


@contextmanager
def spark_connect_server(
    work: Path, jars: str, user: pwd.struct_passwd | None = None
) -> Iterator[str]:
    """pyspark's own Spark Connect server on 127.0.0.1 (local[2]), working in `work`, run as
    `user` when given (the caller is root); yields its `sc://` URL."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = _free_port()
    env = {**os.environ, "SPARK_HOME": str(home), "PYSPARK_PYTHON": sys.executable}
    if user is not None:  # nothing of the caller's environment, home or folders
        env = {"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "HOME": str(work)}
        os.chown(work, user.pw_uid, user.pw_gid)
    server = subprocess.Popen(
        [
            str(home / "bin" / "spark-submit"),
            "--class",
            "org.apache.spark.sql.connect.service.SparkConnectServer",
            "--master",
            "local[2]",
            "--conf",
            "spark.connect.grpc.binding.address=127.0.0.1",
            "--conf",
            f"spark.connect.grpc.binding.port={port}",
            "--conf",
            f"spark.sql.warehouse.dir={work / 'warehouse'}",
            "--conf",
            f"spark.driver.extraJavaOptions=-Dderby.system.home={work / 'derby'}",
            "--conf",
            f"spark.local.dir={work / 'local'}",
            "--conf",
            "spark.ui.enabled=false",
            "--jars",
            jars,
            "spark-internal",
        ],
        env=env,
        cwd=work,
        user=None if user is None else user.pw_uid,
        group=None if user is None else user.pw_gid,
        extra_groups=None if user is None else [],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_port(server, port, 180, "Spark Connect server")
    try:
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to an Azurite blob service on 127.0.0.1 (scripts/setup.sh installs
    it with DATA_MESH_WITH_AZURITE=1; scripts/test.sh does)."""
    if not AZURITE.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{AZURITE} is missing: run DATA_MESH_WITH_AZURITE=1 scripts/setup.sh")
        pytest.skip("Azurite is not installed (DATA_MESH_WITH_AZURITE=1 scripts/setup.sh)")
    port = _free_port()
    process = subprocess.Popen(
        [
            str(AZURITE),
            "--silent",
            "--inMemoryPersistence",
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ],
        cwd=tmp_path_factory.mktemp("azurite"),  # where Azurite puts its debug files, if any
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(process, port, 30, "Azurite")
    yield (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
    )
    process.terminate()
    process.wait(timeout=10)
