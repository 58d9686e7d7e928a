"""Daily `load_date` partitions (seed 002): one day's slice replaced per run, backfills,
retention, and days whose data is missing or wrong."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from data_mesh.catalog.current import lake_storage
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.writer import DdzConnection
from data_mesh.devtools.sample_data import EXPORT_DAYS, write_sample_data
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import SAMPLE_PRODUCTS, add_config_item, load_product_file

pytestmark = pytest.mark.slow
ACCOUNTS = "cdz/mdm_cdz/accounts"


def _table(spark: SparkSession, settings: Settings) -> list[tuple[str, str, str, int]]:
    frame = read_ddz_table(
        spark, DdzConnection(settings.resolved_ddz_jdbc_url), TableName("ddz", "ACTIVE_ACCOUNTS")
    )
    return sorted(
        (str(r.LOAD_DATE), r.COUNTRY, r.SOURCE_SYS, int(r.ACTIVE_ACCOUNTS)) for r in frame.collect()
    )


def _expected(spark: SparkSession, settings: Settings, days: list[str]) -> list[tuple]:
    """Computed from the lake files directly, without the framework."""
    accounts = spark.read.parquet(lake_storage(settings).spark_uri(ACCOUNTS))
    counts: Counter[tuple[str, str, str]] = Counter()
    for row in accounts.collect():
        day = str(row.load_date)
        if day in days:
            counts[(day, row.country, row.source_sys)] += row.active_ind == "Y"
    return sorted((*key, value) for key, value in counts.items())


def _run(settings: Settings, days: list[str]):
    return materialize_products(settings, ["mdm_accounts"], DagsterInstance.ephemeral(), days=days)


@pytest.fixture
def with_accounts(loaded: Settings, spark: SparkSession) -> Settings:
    write_sample_data(spark, lake_storage(loaded), 300)
    return loaded


def test_backfill_then_rerun_of_one_day_replaces_only_that_day(
    with_accounts: Settings, spark: SparkSession
) -> None:
    outcome = _run(with_accounts, EXPORT_DAYS)
    assert outcome.success, outcome.failure
    assert len(outcome.run_ids) == len(EXPORT_DAYS)  # one run per day, as a backfill
    before = _table(spark, with_accounts)
    assert before == _expected(spark, with_accounts, EXPORT_DAYS)
    assert {row[0] for row in before} == set(EXPORT_DAYS)

    # The 17th is re-exported with every account inactive in NL.
    day = "2026-11-17"
    folder = lake_storage(with_accounts).spark_uri(f"{ACCOUNTS}/load_date={day}")
    changed = spark.read.parquet(folder).withColumn(
        "active_ind", F.when(F.col("country") == "NL", "N").otherwise(F.col("active_ind"))
    )
    changed.localCheckpoint().write.mode("overwrite").parquet(folder)
    assert _run(with_accounts, [day]).success
    after = _table(spark, with_accounts)
    assert [r for r in after if r[0] != day] == [r for r in before if r[0] != day]
    assert [r for r in after if r[0] == day] == _expected(spark, with_accounts, [day])
    assert all(r[3] == 0 for r in after if r[0] == day and r[1] == "NL")
    assert any(r[3] > 0 for r in before if r[0] == day and r[1] == "NL")


def test_retention_keeps_the_latest_days_whatever_the_backfill_order(
    with_accounts: Settings, spark: SparkSession
) -> None:
    engine = make_engine(with_accounts.resolved_metadata_url)
    add_config_item(engine, "dataset.active_accounts", "ddz.retention_days", "3")
    outcome = _run(with_accounts, list(reversed(EXPORT_DAYS)))  # newest first
    assert outcome.success, outcome.failure
    kept = EXPORT_DAYS[-3:]
    assert {row[0] for row in _table(spark, with_accounts)} == set(kept)
    assert _table(spark, with_accounts) == _expected(spark, with_accounts, kept)


def test_a_day_that_has_not_landed_fails_and_names_the_folder(
    with_accounts: Settings, spark: SparkSession
) -> None:
    assert _run(with_accounts, ["2026-11-18"]).success
    before = _table(spark, with_accounts)
    outcome = _run(with_accounts, ["2026-11-21"])
    assert not outcome.success
    assert "no data for partition 2026-11-21" in outcome.failure
    assert f"{ACCOUNTS}/load_date=2026-11-21" in outcome.failure
    assert _table(spark, with_accounts) == before


def test_a_partitioned_ddz_input_reads_only_its_days(
    with_accounts: Settings, spark: SparkSession, tmp_path: Path
) -> None:
    """A daily DDZ table built from another daily DDZ table reads the run's day of it only:
    the partitioned write refuses rows of other days, so a whole-table read fails the run."""
    # The upstream already holds a day the runs below do not ask for.
    assert _run(with_accounts, [EXPORT_DAYS[-1]]).success
    product = yaml.safe_load((SAMPLE_PRODUCTS / "mdm_accounts" / "product.yaml").read_text())
    product["datasets"].append(
        {
            "name": "country_accounts",
            "source": "ddz",
            "layer": "DDZ",
            "target_schema": "ddz",
            "target_table": "COUNTRY_ACCOUNTS",
            "partition": {"column": "LOAD_DATE", "start": "2026-11-14"},
        }
    )
    product["transformations"].append(
        {
            "name": "sum_by_country",
            "type": "aggregate",
            "inputs": ["active_accounts"],
            "output": "country_accounts",
            "configuration": {
                "input_dataset": "active_accounts",
                "groupby_columns": ["LOAD_DATE", "COUNTRY"],
                "agg_functions": {"ACCOUNTS": "sum(ACTIVE_ACCOUNTS)"},
            },
        }
    )
    result = load_product_file(tmp_path, "mdm_accounts", product)
    assert result.exit_code == 0, result.output

    days = ["2026-11-16", "2026-11-17"]
    outcome = _run(with_accounts, days)
    assert outcome.success, outcome.failure
    connection = DdzConnection(with_accounts.resolved_ddz_jdbc_url)
    totals = read_ddz_table(spark, connection, TableName("ddz", "COUNTRY_ACCOUNTS")).collect()
    got = sorted((str(r.LOAD_DATE), r.COUNTRY, int(r.ACCOUNTS)) for r in totals)
    expected: Counter[tuple[str, str]] = Counter()
    for day, country, _source, active in _expected(spark, with_accounts, days):
        expected[(day, country)] += active
    assert got == sorted((*key, n) for key, n in expected.items())
