"""`data-mesh plan`: the sizing rules on known inputs, the shape read from configurations and
SQL, input sizes from the lake, and a plan checked against a real Spark run."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.catalog.models import Partitioning
from data_mesh.cli.app import app
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.lake.storage import LocalStorage
from data_mesh.planning.check import run_with_plan
from data_mesh.planning.gather import lake_input, plan_transformation
from data_mesh.planning.plan import (
    DEFAULT_ASSUMPTIONS,
    GIB,
    MIB,
    DatabaseTier,
    InputSize,
    RunHistory,
    plan_resources,
)
from data_mesh.planning.shape import Shape, transformation_shape
from data_mesh.settings.model import Settings
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import ddz_dataset

BIG = [InputSize("orders", 400, 40 * GIB), InputSize("customers", 2, 8 * MIB)]


def test_a_big_join_gets_executors_partitions_and_memory_from_its_size() -> None:
    plan = plan_resources(BIG, Shape(joins=1), RunHistory(), 120, DatabaseTier())
    in_memory = (40 * GIB + 8 * MIB) * DEFAULT_ASSUMPTIONS.expansion
    cores = plan.executors * plan.cores_per_executor
    # Two waves of splits of at most 128 MiB.
    assert plan.input_partitions == math.ceil((40 * GIB + 8 * MIB) / (128 * MIB))
    # 120 GiB in memory wants 960 shuffle partitions of 128 MiB: 120 executors, capped at 64.
    assert plan.executors == 64
    small = plan_resources(
        [InputSize("orders", 40, 4 * GIB)], Shape(joins=1), RunHistory(), 120, DatabaseTier()
    )
    assert small.executors == math.ceil(96 / 8)  # 12 GiB in memory: 96 partitions, 2 waves
    # Shuffle partitions: a multiple of the cores, none above 128 MiB in memory.
    assert plan.shuffle_partitions % cores == 0
    assert in_memory / plan.shuffle_partitions <= 128 * MIB
    # The executor holds one task per core within spark.memory.fraction.
    usable = (plan.executor_memory_mb * MIB - 300 * MIB) * 0.6
    assert usable >= plan.cores_per_executor * plan.task_memory_mb * MIB
    # The small side is broadcast: the driver holds it.
    assert plan.driver_memory_mb > 1024


def test_a_small_input_gets_the_minimum_and_no_shuffle_settings_without_shuffles() -> None:
    plan = plan_resources([InputSize("t", 1, 5 * MIB)], Shape(), RunHistory(), 50, DatabaseTier())
    assert (plan.executors, plan.executor_memory_mb) == (1, 1280)
    assert plan.task_memory_mb == 128  # two 64 MiB pages of Spark's execution memory
    assert plan.shuffle_partitions == plan.cores_per_executor


@pytest.mark.parametrize(
    ("tier", "connections"),
    [
        (DatabaseTier("general_purpose", 2), 1),  # 9 MB/s of log: one 5 MB/s writer
        (DatabaseTier("general_purpose", 8), 7),  # 36 MB/s
        (DatabaseTier("business_critical", 8), 8),  # 96 MB/s, but one per vCore
        (DatabaseTier("hyperscale", 4), 4),
    ],
)
def test_ddz_connections_follow_the_tiers_log_rate_and_vcores(
    tier: DatabaseTier, connections: int
) -> None:
    history = RunHistory(runs=5, rows=30_000_000, seconds=600.0)
    plan = plan_resources(BIG, Shape(joins=1), history, 120, tier)
    assert plan.ddz_connections == connections
    assert plan.ddz_rows == 30_000_000  # the history, not an estimate
    assert plan.ddz_chunks % connections == 0 or plan.ddz_chunks < connections
    rate = min(connections * 5.0, tier.log_rate_mb_s)
    assert plan.ddz_write_seconds == pytest.approx(30_000_000 * 120 / (rate * 1e6))


def test_the_shape_comes_from_the_configuration_or_the_sql(loaded: Settings) -> None:
    catalog = load_catalog(loaded)
    storage = lake_storage(loaded)
    shapes = {
        t.name: transformation_shape(t, storage)
        for p in catalog.products
        for t in p.transformations
    }
    assert shapes["build_sor1_payments"] == Shape(joins=1)  # the query file's left join
    assert shapes["count_active_accounts"] == Shape(aggregations=1)
    assert shapes["filter_completed_orders"] == Shape()


def test_lake_inputs_are_the_days_data_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    folder = "cdz/src/accounts/load_date=2026-11-20"
    storage.write_bytes(f"{folder}/part-0.parquet", b"x" * 1000)
    storage.write_bytes(f"{folder}/part-1.parquet", b"x" * 500)
    storage.write_bytes(f"{folder}/_SUCCESS", b"")
    storage.write_bytes("cdz/src/accounts/load_date=2026-11-21/part-0.parquet", b"x" * 7)
    daily = replace(
        ddz_dataset("accounts"),
        layer="CDZ",
        location="cdz/src/accounts",
        partition=Partitioning("load_date", dt.date(2026, 11, 14), None),
    )
    storage.write_bytes("cdz/src/accounts_archive/load_date=2026-11-22/part-0.parquet", b"x")
    storage.write_bytes("cdz/src/accounts/_delta_log/00000.json", b"x" * 99)
    assert lake_input(storage, daily, "2026-11-20") == InputSize("accounts", 2, 1500)
    # Without a day: the newest day's folder, what one run reads.
    assert lake_input(storage, daily, None) == InputSize("accounts", 1, 7)
    whole = replace(daily, partition=None)
    assert lake_input(storage, whole, None) == InputSize("accounts", 3, 1507)


@pytest.mark.slow
def test_a_plan_holds_on_a_real_run_without_spill(loaded: Settings, spark: SparkSession) -> None:
    storage = lake_storage(loaded)
    write_sample_data(spark, storage, 50_000)
    transformation = load_catalog(loaded).product("sor1_payments").transformations[0]
    engine = make_engine(loaded.resolved_metadata_url)
    inputs, plan = plan_transformation(
        transformation, storage, engine, None, DatabaseTier(), lambda d: d.name
    )
    assert {i.name for i in inputs} == {"sor1_driver_table", "sor1_payments_table"}
    assert all(i.bytes > 0 for i in inputs)
    run = run_with_plan(spark, storage, transformation, plan, None)
    assert run.tasks > 0
    assert (run.memory_spilled, run.disk_spilled) == (0, 0)
    assert 0 < run.peak_task_memory <= plan.task_memory_mb * MIB


@pytest.mark.slow
def test_the_plan_command_prints_the_reasoning_and_the_settings(
    loaded: Settings, spark: SparkSession
) -> None:
    write_sample_data(spark, lake_storage(loaded), 1000)
    result = CliRunner().invoke(app, ["plan", "mdm_accounts", "--day", "2026-11-20"])
    assert result.exit_code == 0, result.output
    assert 'spark_config for count_active_accounts: {"spark.sql.shuffle.partitions": "4"}' in (
        result.output
    )
    assert "--conf spark.executor.memory=" in result.output
    unknown = CliRunner().invoke(app, ["plan", "no_such_product"])
    assert unknown.exit_code == 1 and "unknown data product 'no_such_product'" in unknown.output
