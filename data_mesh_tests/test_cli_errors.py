"""Errors a user meets from the command line: each names what is wrong and where, in one line,
and nothing runs or changes that should not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance
from pyspark.sql import SparkSession
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage
from data_mesh.cli.app import app
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.writer import DdzConnection
from data_mesh.devtools.sample_data import write_sample_data
from data_mesh.runs.materialize import materialize_products
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh_tests.conftest import SAMPLE_PRODUCTS

QUERY_FILE = "queries/sor1_payments/sor1_payments_query.properties"
NOT_INITIALIZED = "is not initialized: run `data-mesh init`"


def _break_customer_orders(store: Engine) -> None:
    with store.begin() as connection:
        table = schema.transformations
        connection.execute(
            update(table).where(table.c.Name == "filter_completed_orders").values(Type="pivot")
        )


def _recorded_runs(settings: Settings) -> int:
    home = Path(os.environ["DAGSTER_HOME"])
    if not (home / "dagster.yaml").is_file() and not (home / "history").exists():
        return 0
    with DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_runs())


@pytest.mark.parametrize(
    ("product", "reason"),
    [
        ("customer_orders", "unknown transformation Type 'pivot'"),
        ("no_such_product", r"unknown data product\(s\): no_such_product"),
    ],
)
def test_materialize_of_a_product_that_cannot_run_runs_nothing(
    loaded: Settings, store: Engine, product: str, reason: str
) -> None:
    """Not the other products in its place (an empty selection was the whole job), exit 1."""
    _break_customer_orders(store)
    result = CliRunner().invoke(app, ["materialize", "--product", product])
    assert result.exit_code == 1, result.output
    assert product in result.output and re.search(reason, result.output), result.output
    assert "nothing run" in result.output
    assert _recorded_runs(loaded) == 0
    instance = DagsterInstance.ephemeral()
    with pytest.raises(ValueError, match=reason):
        materialize_products(loaded, [product, "sor1_payments"], instance)
    assert instance.get_runs() == []


COMMANDS = [
    ["load", str(SAMPLE_PRODUCTS)],
    ["validate"],
    ["config", "show"],
    ["runs"],
    ["quality", "history"],
    ["quality", "quarantine", "customer_orders"],
    ["generate-metadata", "--products", "1"],
    ["materialize"],
]


@pytest.mark.parametrize(
    "args", COMMANDS, ids=lambda args: " ".join(a for a in args[:2] if "/" not in a)
)
def test_every_command_on_a_store_never_initialized(settings: Settings, args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and NOT_INITIALIZED in lines[0], result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_load_on_a_store_never_initialized_as_users_run_it(settings: Settings) -> None:
    """In a process of its own: one line on stderr, no traceback."""
    data_mesh = Path(sys.executable).with_name("data-mesh")
    result = subprocess.run(
        [str(data_mesh), "load", str(SAMPLE_PRODUCTS)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "60"},  # a narrow terminal does not wrap the line
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and NOT_INITIALIZED in result.stderr, result.stderr


def _payments(spark: SparkSession, settings: Settings) -> list[tuple[object, ...]]:
    frame = read_ddz_table(
        spark, DdzConnection(settings.resolved_ddz_jdbc_url), TableName("ddz", "SOR1_PAYMENTS")
    )
    return sorted(tuple(row) for row in frame.collect())


@pytest.mark.slow
def test_missing_cdz_input_names_the_dataset_and_path(
    loaded: Settings, spark: SparkSession
) -> None:
    storage = lake_storage(loaded)
    write_sample_data(spark, storage, 200)
    first = materialize_products(loaded, ["sor1_payments"], DagsterInstance.ephemeral())
    assert first.success, first.failure
    before = _payments(spark, loaded)
    folder = Path(storage.spark_uri("cdz/analytics_sor1_cdz/sor1_payments_table"))
    # Emptied (Spark: UNABLE_TO_INFER_SCHEMA), then gone (PATH_NOT_FOUND).
    shutil.rmtree(folder)
    folder.mkdir()
    for state in ("empty", "missing"):
        outcome = materialize_products(loaded, ["sor1_payments"], DagsterInstance.ephemeral())
        assert not outcome.success, state
        assert "analytics_sor1_cdz.sor1_payments_table" in outcome.failure, outcome.failure
        assert str(folder) in outcome.failure, outcome.failure
        assert _payments(spark, loaded) == before  # the DDZ table as it was
        if state == "empty":
            folder.rmdir()


@pytest.mark.slow
def test_spark_error_in_a_sequence_names_the_file_and_statement(
    loaded: Settings, spark: SparkSession
) -> None:
    storage = lake_storage(loaded)
    write_sample_data(spark, storage, 200)
    text = storage.read_text(QUERY_FILE)
    storage.write_bytes(QUERY_FILE, text.replace("b.amount as", "b.amount_typo as").encode())
    outcome = materialize_products(loaded, ["sor1_payments"], DagsterInstance.ephemeral())
    assert not outcome.success
    failure = outcome.failure
    assert "build_sor1_payments" in failure, failure
    assert f"statement df_target (line 8 of {QUERY_FILE})" in failure, failure
    assert "UNRESOLVED_COLUMN" in failure and "amount_typo" in failure, failure
    assert "JVM" not in failure and "\n" not in failure
