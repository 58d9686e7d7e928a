"""A sample data product end to end through Spark Connect: a server started from pyspark's own
distribution on 127.0.0.1, the CLI as users run it, the DDZ in PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import (
    SAMPLE_PRODUCTS,
    jdbc_url_of,
    run_cli,
    spark_connect_server,
)

pytestmark = pytest.mark.slow
ROWS = 300
JARS = "/usr/share/java/postgresql.jar,/usr/share/java/h2.jar"


@pytest.fixture(scope="module")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The server's URL and its working folder (its warehouse is there)."""
    work = tmp_path_factory.mktemp("spark_connect")
    with spark_connect_server(work, JARS) as url:
        yield url, work


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
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    run_cli(env, "generate-sample-data", "--rows", str(ROWS))
    result = run_cli(env, "materialize", "--product", "sor1_payments")
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
