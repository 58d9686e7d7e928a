"""Seed 001's bronze ingestion as a data product: a real PostgreSQL source table loaded into the
DDZ through the factories, fully and incrementally, with the watermark in the metadata store."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession
from sqlalchemy import text

from data_mesh.catalog.current import lake_storage
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.writer import DdzConnection
from data_mesh.runs.materialize import RunOutcome, materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store.audit import latest_audit
from data_mesh.store.database import make_engine
from data_mesh.store.watermarks import read_watermark
from data_mesh_tests.conftest import (
    engines_opened,
    jdbc_url_of,
    load_product_file,
    pooled_connections,
)

pytestmark = pytest.mark.slow

PRODUCT = """
name: inventory_bronze
domain: inventory
sources:
  - {name: inventory_pg, type: database, connection: "env:DATA_MESH_TEST_SOURCE_URL", format: table}
  - {name: inventory_files, type: file, connection: "lake://landing/inventory", format: csv}
  - {name: ddz, type: ddz, connection: "env:DATA_MESH_DDZ_JDBC_URL", format: table}
datasets:
  - {name: products_source, source: inventory_pg, layer: CDZ, location: src.products}
  - name: warehouses_source
    source: inventory_files
    layer: CDZ
    location: landing/inventory/warehouses
    schema:
      - {name: warehouse_id, type: bigint}
      - {name: city, type: string}
  - {name: bz_products, source: ddz, layer: DDZ, target_table: BZ_PRODUCTS,
     write_mode: merge, key_columns: [id]}
  - {name: bz_warehouses, source: ddz, layer: DDZ, target_table: BZ_WAREHOUSES}
transformations:
  - name: ingest_products
    type: ingest
    inputs: [products_source]
    output: bz_products
    configuration:
      input_dataset: products_source
      partition_column: id
      num_partitions: 2
      watermark_column: id
  - name: ingest_warehouses
    type: ingest
    inputs: [warehouses_source]
    output: bz_warehouses
    configuration: {input_dataset: warehouses_source}
"""


@pytest.fixture
def source(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    engine = make_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA src"))
        connection.execute(text("CREATE TABLE src.products (id bigint PRIMARY KEY, name text)"))
        connection.execute(
            text("INSERT INTO src.products SELECT i, 'product ' || i FROM generate_series(1, 5) i")
        )
    jdbc, properties = jdbc_url_of(pg_url)
    monkeypatch.setenv(
        "DATA_MESH_TEST_SOURCE_URL",
        f"{jdbc}?user={properties['user']}&password={properties['password']}",
    )
    return pg_url


@pytest.fixture
def inventory(settings: Settings, store: object, tmp_path: Path, source: str) -> Settings:
    result = load_product_file(tmp_path / "products", "inventory_bronze", PRODUCT)
    assert result.exit_code == 0, result.output
    lake_storage(settings).write_bytes(
        "landing/inventory/warehouses/part-0.csv",
        b"warehouse_id,city\n1,Pune\n2,Utrecht\nthree,Lyon\n",
    )
    return settings


def _run(settings: Settings) -> RunOutcome:
    return materialize_products(settings, ["inventory_bronze"], DagsterInstance.ephemeral())


def _rows(spark: SparkSession, settings: Settings, table: str) -> list[tuple]:
    frame = read_ddz_table(
        spark, DdzConnection(settings.resolved_ddz_jdbc_url), TableName("ddz", table)
    )
    return sorted(tuple(r) for r in frame.collect())


def _watermark(settings: Settings) -> str | None:
    engine = make_engine(settings.resolved_metadata_url)
    with engine.connect() as connection:
        dataset_id = connection.execute(
            text('SELECT "DataSetID" FROM "DataSets" WHERE "Name" = \'bz_products\'')
        ).scalar_one()
    return read_watermark(engine, dataset_id, "id")


def test_full_then_incremental_load_from_postgresql(
    inventory: Settings, source: str, spark: SparkSession
) -> None:
    first = _run(inventory)
    assert first.success, first.failure
    rows = _rows(spark, inventory, "BZ_PRODUCTS")
    assert [(r[0], r[1]) for r in rows] == [(i, f"product {i}") for i in range(1, 6)]
    # Bronze columns: one load timestamp for the load, the source system, the run id.
    assert len({r[2] for r in rows}) == 1
    assert {(r[3], r[4]) for r in rows} == {("inventory_pg", first.run_id)}
    assert _watermark(inventory) == "5"

    with make_engine(source).begin() as connection:
        connection.execute(
            text("INSERT INTO src.products SELECT i, 'new ' || i FROM generate_series(6, 8) i")
        )
    second = _run(inventory)
    assert second.success, second.failure
    rows = _rows(spark, inventory, "BZ_PRODUCTS")
    assert [r[0] for r in rows] == list(range(1, 9))  # each row once
    assert {r[4] for r in rows if r[0] > 5} == {second.run_id}
    assert {r[4] for r in rows if r[0] <= 5} == {first.run_id}  # not read again
    materialized = {m.asset: m.rows for m in second.materializations}
    assert materialized["inventory/ddz/bz_products"] == 3
    assert _watermark(inventory) == "8"


def test_watermark_reads_and_saves_leave_no_store_connection_open(
    inventory: Settings, source: str
) -> None:
    with engines_opened(inventory.resolved_metadata_url) as engines:
        outcome = _run(inventory)
    assert outcome.success, outcome.failure
    assert _watermark(inventory) == "5"  # the run read the watermark (none yet) and saved it
    assert engines  # the catalog, the watermark and the audit rows
    assert [pooled_connections(engine) for engine in engines] == [0] * len(engines)


def test_watermark_stays_when_the_write_fails(
    inventory: Settings, source: str, spark: SparkSession
) -> None:
    assert _run(inventory).success
    with make_engine(source).begin() as connection:
        connection.execute(text("INSERT INTO src.products VALUES (6, 'six'), (7, 'seven')"))
    unreachable = inventory.model_copy(
        update={"ddz_jdbc_url": "jdbc:postgresql://127.0.0.1:9/no_ddz_here"}
    )
    failed = _run(unreachable)
    assert not failed.success
    assert _watermark(inventory) == "5"
    audit = [
        r
        for r in latest_audit(make_engine(inventory.resolved_metadata_url))
        if r.Status == "FAILED"
    ]
    assert any(r.AssetKey == "inventory/ddz/bz_products" for r in audit)
    # The next run picks up both rows the failed one could not write.
    again = _run(inventory)
    assert again.success, again.failure
    assert [r[0] for r in _rows(spark, inventory, "BZ_PRODUCTS")] == list(range(1, 8))
    assert _watermark(inventory) == "7"


def test_file_rows_that_do_not_fit_are_reported(inventory: Settings, spark: SparkSession) -> None:
    outcome = _run(inventory)
    assert outcome.success, outcome.failure
    rows = _rows(spark, inventory, "BZ_WAREHOUSES")
    assert [(r[0], r[1]) for r in rows] == [(1, "Pune"), (2, "Utrecht")]
    rejected = spark.read.parquet(
        lake_storage(inventory).spark_uri(
            f"quarantine/inventory/bz_warehouses/load_id={outcome.run_id}/rejected"
        )
    ).collect()
    assert len(rejected) == 1
    assert "three" in rejected[0]["_raw_record"] and "warehouse_id" in rejected[0]["_reason"]
