"""Each transformation type on Spark, against expected rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from data_mesh.catalog.models import DataSetModel, Partitioning, TransformationModel
from data_mesh.catalog.transformation_configs import parse_transformation_config
from data_mesh.lake.storage import LocalStorage
from data_mesh.spark.conf import spark_config_scope
from data_mesh.transforms.execute import (
    TransformationError,
    read_cdz_dataset,
    run_transformation,
    with_views_for_tables,
)
from data_mesh_tests.conftest import catalog_tables

pytestmark = pytest.mark.slow


def _dataset(
    name: str, layer: str = "DDZ", source: str = "ddz", fmt: str = "table"
) -> DataSetModel:
    return DataSetModel(
        id=1,
        name=name,
        product="p",
        domain="d",
        layer=layer,
        source_name=source,
        source_type="lake" if layer == "CDZ" else "ddz",
        source_format=fmt,
        location=f"cdz/{source}/{name}" if layer == "CDZ" else None,
        target_schema=None if layer == "CDZ" else "ddz",
        target_table=None if layer == "CDZ" else name.upper(),
        write_mode=None if layer == "CDZ" else "replace",
        key_columns=(),
        description=None,
    )


def _transformation(kind: str, config: str, inputs: list[DataSetModel]) -> TransformationModel:
    return TransformationModel(
        id=7,
        name=f"t_{kind}",
        description=None,
        type=kind,
        config=parse_transformation_config(7, kind, config),
        product="p",
        inputs=tuple(inputs),
        output=_dataset("out"),
        depends_on=(),
    )


@pytest.fixture
def frames(spark: SparkSession):
    orders = spark.createDataFrame(
        [
            (1, 10, 5.0, "COMPLETED"),
            (2, 10, 7.5, "CANCELLED"),
            (3, 11, 2.5, "COMPLETED"),
            (4, 12, None, "COMPLETED"),
        ],
        "order_id long, customer_id long, amount double, status string",
    )
    customers = spark.createDataFrame(
        [(10, "ann", "NL"), (11, "bob", "BE"), (13, "cy", "NL")],
        "customer_id long, name string, country string",
    )
    return {"orders": orders, "customers": customers}


def _rows(frame) -> list[tuple]:
    return sorted(tuple(r) for r in frame.collect())


def _run(spark, kind, config, frames, tmp_path, inputs=("orders",)):
    datasets = [_dataset(n) for n in inputs]
    return run_transformation(
        spark, _transformation(kind, config, datasets), dict(frames), LocalStorage(tmp_path)
    )


def test_filter(spark, frames, tmp_path) -> None:
    out = _run(
        spark,
        "filter",
        '{"input_dataset": "orders", "condition": "status = \'COMPLETED\'"}',
        frames,
        tmp_path,
    )
    assert [r[0] for r in _rows(out)] == [1, 3, 4]


def test_select_with_expressions(spark, frames, tmp_path) -> None:
    out = _run(
        spark,
        "select",
        '{"input_dataset": "orders", "columns": ["order_id", "coalesce(amount, 0) * 2 as double_amount"]}',
        frames,
        tmp_path,
    )
    assert _rows(out) == [(1, 10.0), (2, 15.0), (3, 5.0), (4, 0.0)]
    assert out.columns == ["order_id", "double_amount"]


def test_join_on_columns_and_on_condition(spark, frames, tmp_path) -> None:
    inputs = ("orders", "customers")
    out = _run(
        spark,
        "join",
        '{"input_dataset": "orders", "second_dataset": "customers", "join_columns": ["customer_id"]}',
        frames,
        tmp_path,
        inputs,
    )
    assert _rows(out.select("order_id", "name")) == [(1, "ann"), (2, "ann"), (3, "bob")]
    left = _run(
        spark,
        "join",
        '{"input_dataset": "orders", "second_dataset": "customers", "join_type": "left",'
        ' "condition": "a.customer_id = b.customer_id and b.country = \'NL\'"}',
        frames,
        tmp_path,
        inputs,
    )
    assert _rows(left.select("a.order_id", "b.name")) == [
        (1, "ann"),
        (2, "ann"),
        (3, None),
        (4, None),
    ]


def test_aggregate_with_casts(spark, frames, tmp_path) -> None:
    out = _run(
        spark,
        "aggregate",
        '{"input_dataset": "orders", "groupby_columns": ["status"],'
        ' "agg_functions": {"total": "sum(amount)", "n": "count(*)"},'
        ' "casts": {"total": "decimal(10,2)"}}',
        frames,
        tmp_path,
    )
    assert _rows(out) == [("CANCELLED", Decimal("7.50"), 1), ("COMPLETED", Decimal("7.50"), 3)]
    assert dict(out.dtypes)["total"] == "decimal(10,2)"


def test_sql_over_ddz_inputs_registered_as_views(spark, frames, tmp_path) -> None:
    out = _run(
        spark,
        "sql",
        '{"query": "select o.order_id, c.country from orders o join customers c using (customer_id)",'
        ' "mapping": {"country": "COUNTRY"}}',
        frames,
        tmp_path,
        ("orders", "customers"),
    )
    assert out.columns == ["order_id", "COUNTRY"]
    assert _rows(out) == [(1, "NL"), (2, "NL"), (3, "BE")]


def _driver_and_payments(
    spark: SparkSession, storage: LocalStorage, source: str, payer: int
) -> tuple[DataSetModel, DataSetModel]:
    """Seed 000's two CDZ inputs as Parquet in the lake: users 1 and 2, and two payments (the
    first by user 1, the second by `payer`)."""
    driver = _dataset("drv", "CDZ", source, "parquet")
    payments = _dataset("pay", "CDZ", source, "parquet")
    spark.createDataFrame([(1, "ann"), (2, "bob")], "user_id long, user_name string").write.parquet(
        storage.spark_uri(driver.location or "")
    )
    spark.createDataFrame(
        [(1, 3.25, "travel"), (payer, 1.0, "food")], "userid long, amount double, category string"
    ).write.parquet(storage.spark_uri(payments.location or ""))
    return driver, payments


def test_properties_sequence_on_cdz_parquet(spark: SparkSession, tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    driver, payments = _driver_and_payments(spark, storage, "analytics_t_cdz", payer=1)
    storage.write_bytes(
        "queries/t/q.properties",
        b"df_driver = select * from analytics_t_cdz.drv\n"
        b"df_pay = select * from analytics_t_cdz.pay\n"
        b"df_target = select a.user_id as UNQ_USER_ID, a.user_name as NAME, \\\n"
        b"   b.amount as AMT, current_date() as LOAD_DATE \\\n"
        b"   from df_driver a left join df_pay b on a.user_id = b.userid\n",
    )
    storage.write_bytes("queries/t/s.properties", b"df_driver\ndf_pay\ndf_target\n")
    inputs = {
        d.name: read_cdz_dataset(spark, d, storage.spark_uri(d.location or ""))
        for d in (driver, payments)
    }
    transformation = _transformation(
        "properties_sequence",
        '{"folder": "t", "que_name": "q", "seq_name": "s.properties",'
        ' "mapping": {"AMT": "PAYMENT_AMOUNT"},'
        ' "casts": {"PAYMENT_AMOUNT": "decimal(18,2)", "UNQ_USER_ID": "int"}}',
        [driver, payments],
    )
    out = run_transformation(spark, transformation, inputs, storage)
    assert out.columns == ["UNQ_USER_ID", "NAME", "PAYMENT_AMOUNT", "LOAD_DATE"]
    assert dict(out.dtypes) == {
        "UNQ_USER_ID": "int",
        "NAME": "string",
        "PAYMENT_AMOUNT": "decimal(18,2)",
        "LOAD_DATE": "date",
    }
    today = dt.date.today()
    assert sorted(tuple(r) for r in out.collect()) == [
        (1, "ann", Decimal("1.00"), today),
        (1, "ann", Decimal("3.25"), today),
        (2, "bob", None, today),
    ]


def test_cdz_names_in_queries_read_the_lake_through_views(
    spark: SparkSession, tmp_path: Path
) -> None:
    """`<source>.<dataset>` resolves to the lake data whatever the catalog holds: a managed
    table of that name is neither read nor replaced, and nothing is added to the catalog."""
    storage = LocalStorage(tmp_path)
    driver, payments = _driver_and_payments(spark, storage, "analytics_v_cdz", payer=2)
    spark.sql("CREATE DATABASE analytics_v_cdz")
    try:
        spark.sql("CREATE TABLE analytics_v_cdz.drv (user_id long, user_name string) USING parquet")
        spark.sql("INSERT INTO analytics_v_cdz.drv VALUES (9, 'catalog row')")
        before = catalog_tables(spark)
        storage.write_bytes(
            "queries/v/q.properties",
            # Any case and quoting; columns qualified by the table's name; Spark 4's pipe
            # syntax (text sqlglot cannot parse, like `|> DROP`, is refused by the SQL policy).
            b"df_driver = select drv.user_id, Analytics_V_CDZ.DRV.user_name \\\n"
            b"   from Analytics_V_CDZ.`DRV` where drv.user_id > 0\n"
            b"df_pay = FROM analytics_v_cdz.pay |> SELECT userid, amount\n"
            b"df_target = select a.user_id, a.user_name, b.amount \\\n"
            b"   from df_driver a join df_pay b on a.user_id = b.userid\n",
        )
        storage.write_bytes("queries/v/s.properties", b"df_driver\ndf_pay\ndf_target\n")
        inputs = {
            d.name: read_cdz_dataset(spark, d, storage.spark_uri(d.location or ""))
            for d in (driver, payments)
        }
        sequence = _transformation(
            "properties_sequence",
            '{"folder": "v", "que_name": "q", "seq_name": "s"}',
            [driver, payments],
        )
        out = run_transformation(spark, sequence, inputs, storage)
        assert _rows(out) == [(1, "ann", 3.25), (2, "bob", 1.0)]
        query = _transformation(
            "sql",
            '{"query": "select p.userid, drv.user_name from analytics_v_cdz.drv'
            ' join ANALYTICS_V_CDZ.pay p on drv.user_id = p.userid where p.amount > 2"}',
            [driver, payments],
        )
        assert _rows(run_transformation(spark, query, inputs, storage)) == [(1, "ann")]
        assert catalog_tables(spark) == before
        assert spark.catalog.getTable("analytics_v_cdz.drv").tableType == "MANAGED"
        assert _rows(spark.table("analytics_v_cdz.drv")) == [(9, "catalog row")]
    finally:
        spark.sql("DROP DATABASE IF EXISTS analytics_v_cdz CASCADE")


def test_only_table_references_to_cdz_inputs_are_rewritten() -> None:
    views = {("src", "t"): "v_t"}
    unchanged = [
        "select 'src.t' from other.t",  # a string, another database
        "select s.t from src s",  # column `t` of alias `s`
        "select * from spark_catalog.src.t",  # a name with its catalog
        "with t as (select 1) select * from t",  # a CTE
        "select x:y from other.t -- src.t",  # kept as written: sqlglot would change `x:y`
    ]
    for sql in unchanged:
        assert with_views_for_tables(sql, views) == sql
    assert with_views_for_tables("select * from Src.`T` x", views) == "select * from v_t x"
    assert with_views_for_tables("select x:y from src.t", views) == "select x:y from v_t AS t"
    assert (
        with_views_for_tables("select * from src.t tablesample (50 percent)", views)
        == "select * from v_t tablesample (50 percent)"
    )
    assert with_views_for_tables("TABLE src.t", views) == "TABLE v_t"  # not parsed: tokens


def test_a_partitioned_cdz_dataset_is_read_for_one_day_with_its_column(
    spark: SparkSession, tmp_path: Path
) -> None:
    storage = LocalStorage(tmp_path)
    dataset = _dataset("accounts", "CDZ", "mdm_v_cdz", "parquet")
    dataset = dataclasses.replace(
        dataset, partition=Partitioning("load_date", dt.date(2026, 11, 14))
    )
    root = storage.spark_uri(dataset.location or "")
    for day, ids in (("2026-11-14", [1, 2]), ("2026-11-15", [3])):
        spark.createDataFrame([(i,) for i in ids], "id long").write.parquet(
            f"{root}/load_date={day}"
        )
    day = read_cdz_dataset(spark, dataset, root, "2026-11-15")
    assert day.columns == ["id", "load_date"]
    assert [tuple(r) for r in day.collect()] == [(3, dt.date(2026, 11, 15))]
    assert day.inputFiles() and all("load_date=2026-11-15" in f for f in day.inputFiles())
    every_day = read_cdz_dataset(spark, dataset, root)
    assert sorted(r.id for r in every_day.collect()) == [1, 2, 3]


def test_mapping_or_cast_of_a_missing_column_names_the_transformation(
    spark, frames, tmp_path
) -> None:
    with pytest.raises(
        TransformationError, match=r"'t_filter' .*row 7.*mapping names column\(s\) nope"
    ):
        _run(
            spark,
            "filter",
            '{"input_dataset": "orders", "condition": "true", "mapping": {"nope": "x"}}',
            frames,
            tmp_path,
        )
    with pytest.raises(TransformationError, match=r"casts names column\(s\) nope"):
        _run(
            spark,
            "filter",
            '{"input_dataset": "orders", "condition": "true", "casts": {"nope": "int"}}',
            frames,
            tmp_path,
        )


def test_spark_config_applies_inside_and_is_restored(spark: SparkSession) -> None:
    key, unset_key = "spark.sql.shuffle.partitions", "spark.data_mesh.test.flag"
    before = spark.conf.get(key)
    with spark_config_scope(spark, {key: "3", unset_key: "on"}):
        assert spark.conf.get(key) == "3"
        assert spark.conf.get(unset_key) == "on"
    assert spark.conf.get(key) == before
    assert spark.conf.get(unset_key, None) is None
