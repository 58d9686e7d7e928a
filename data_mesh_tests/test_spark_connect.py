"""A sample data product end to end through Spark Connect: a server started from pyspark's own
distribution on 127.0.0.1, the CLI as users run it, the DDZ in PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyspark
import pytest
from sqlalchemy import text

from data_mesh.metadata.store import make_engine
from data_mesh_tests.conftest import (
    REPO,
    SAMPLE_PRODUCTS,
    _free_port,
    jdbc_url_of,
    wait_for_port,
)

pytestmark = pytest.mark.slow
ROWS = 300
JARS = "/usr/share/java/postgresql.jar,/usr/share/java/h2.jar"


@pytest.fixture(scope="module")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The server's URL and its working folder (its warehouse is there)."""
    home = Path(pyspark.__file__).parent
    port = _free_port()
    work = tmp_path_factory.mktemp("spark_connect")
    env = dict(os.environ, SPARK_HOME=str(home), PYSPARK_PYTHON=sys.executable)
    log = (work / "server.log").open("w")
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
            "--jars",
            JARS,
            "spark-internal",
        ],
        env=env,
        cwd=work,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for_port(server, port, 120, "Spark Connect server", work / "server.log")
    yield f"sc://127.0.0.1:{port}", work
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    data_mesh = Path(sys.executable).with_name("data-mesh")
    result = subprocess.run(
        [str(data_mesh), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, f"data-mesh {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_sample_product_runs_through_spark_connect(
    spark_connect: tuple[str, Path], pg_url: str, tmp_path: Path
) -> None:
    spark_connect_url, server_folder = spark_connect
    jdbc, credentials = jdbc_url_of(pg_url)
    env = dict(
        os.environ,
        DATA_MESH_HOME=str(tmp_path / "home"),
        DAGSTER_HOME=str(tmp_path / "home" / "dagster_home"),
        DATA_MESH_SPARK_REMOTE=spark_connect_url,
        DATA_MESH_DDZ_JDBC_URL=jdbc,
        DATA_MESH_DDZ_USER=credentials["user"],
        DATA_MESH_DDZ_PASSWORD=credentials["password"],
        COLUMNS="200",
    )
    _cli(env, "init")
    _cli(env, "load", str(SAMPLE_PRODUCTS))
    _cli(env, "generate-sample-data", "--rows", str(ROWS))
    result = _cli(env, "materialize", "--product", "sor1_payments")
    assert "ddz.SOR1_PAYMENTS" in result.stdout
    assert "payment_below_review_limit" in result.stdout and "WARN" in result.stdout

    engine = make_engine(pg_url)
    with engine.connect() as connection:
        rows = connection.execute(text('SELECT count(*) FROM ddz."SOR1_PAYMENTS"')).scalar()
        names = connection.execute(
            text('SELECT count(DISTINCT "NAME") FROM ddz."SOR1_PAYMENTS"')
        ).scalar()
    assert rows == ROWS
    assert names == ROWS // 10  # every sample user has payments
    # Spark ran in the server, and its catalog was not written: the CDZ inputs are session
    # views, so no database or table folder appears in its warehouse (nor a warehouse here).
    warehouse = server_folder / "warehouse"
    written = sorted(p.name for p in warehouse.iterdir()) if warehouse.exists() else []
    assert written == []
    assert not (tmp_path / "home" / "spark-warehouse").exists()
