"""Deterministic CDZ sample data for the sample products, written as Parquet into the lake.

Every value is a function of the row number, so the same `rows` always gives the same data
(no random numbers), and Spark generates it in parallel at any size.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_mesh.lake.storage import Storage

COUNTRIES = ["NL", "BE", "DE", "FR", "IN", "US"]
CATEGORIES = ["groceries", "travel", "utilities", "electronics", "health"]
STATUSES = ["COMPLETED", "COMPLETED", "COMPLETED", "CANCELLED", "PENDING"]
SEGMENTS = ["retail", "smb", "enterprise"]


def _pick(values: list[str], index: F.Column) -> F.Column:
    return F.element_at(F.array(*[F.lit(v) for v in values]), (index % len(values) + 1).cast("int"))


def _users(spark: SparkSession, rows: int) -> DataFrame:
    ids = spark.range(1, rows + 1)
    return ids.select(
        F.col("id").alias("user_id"),
        F.concat(F.lit("user_"), F.col("id")).alias("user_name"),
        _pick(COUNTRIES, F.col("id")).alias("country"),
    )


def _payments(spark: SparkSession, rows: int, users: int) -> DataFrame:
    ids = spark.range(1, rows + 1)
    return ids.select(
        F.col("id").alias("payment_id"),
        (F.col("id") % users + 1).alias("userid"),
        ((F.col("id") * 7919 % 100_000) / 100.0).alias("amount"),
        _pick(CATEGORIES, F.col("id") * 31).alias("category"),
    )


def _customers(spark: SparkSession, rows: int) -> DataFrame:
    ids = spark.range(1, rows + 1)
    return ids.select(
        F.col("id").alias("customer_id"),
        F.concat(F.lit("customer "), F.col("id")).alias("name"),
        _pick(COUNTRIES, F.col("id") * 7).alias("country"),
        _pick(SEGMENTS, F.col("id")).alias("segment"),
    )


def _orders(spark: SparkSession, rows: int, customers: int) -> DataFrame:
    ids = spark.range(1, rows + 1)
    return ids.select(
        F.col("id").alias("order_id"),
        (F.col("id") * 13 % customers + 1).alias("customer_id"),
        F.date_add(F.lit("2026-01-01").cast("date"), (F.col("id") % 300).cast("int")).alias(
            "order_date"
        ),
        ((F.col("id") * 104_729 % 50_000) / 100.0).alias("amount"),
        _pick(STATUSES, F.col("id") * 17).alias("status"),
    )


# Seed 002's daily exports: 7 load dates, the full account table in each.
EXPORT_DAYS = [f"2026-11-{day}" for day in range(14, 21)]
SOURCE_SYSTEMS = ["crm", "core_banking", "cards"]


def _accounts(spark: SparkSession, rows: int) -> DataFrame:
    """Every account in every export; an account is inactive on some days, so counts differ."""
    ids = spark.range(1, rows + 1)
    days = spark.createDataFrame([(d,) for d in EXPORT_DAYS], "load_date string")
    day_number = F.dayofmonth(F.col("load_date"))
    return ids.crossJoin(days).select(
        F.col("load_date").cast("date").alias("load_date"),
        F.col("id").alias("account_id"),
        F.when((F.col("id") + day_number) % 4 == 0, "N").otherwise("Y").alias("active_ind"),
        _pick(SOURCE_SYSTEMS, F.col("id")).alias("source_sys"),
        _pick(COUNTRIES, F.col("id") * 5).alias("country"),
        F.concat(F.lit("TAX"), F.lpad(F.col("id").cast("string"), 9, "0")).alias("tax_id"),
    )


# Lake paths written as one folder per `load_date` (Hive style).
PARTITIONED_BY = {"cdz/mdm_cdz/accounts": "load_date"}


def sample_tables(rows: int) -> dict[str, Callable[[SparkSession], DataFrame]]:
    """Lake path -> builder of its DataFrame. `rows` is the size of the fact tables."""
    dimension = max(1, rows // 10)
    return {
        "cdz/analytics_sor1_cdz/sor1_driver_table": lambda s: _users(s, dimension),
        "cdz/analytics_sor1_cdz/sor1_payments_table": lambda s: _payments(s, rows, dimension),
        "cdz/analytics_sales_cdz/customers": lambda s: _customers(s, dimension),
        "cdz/analytics_sales_cdz/orders": lambda s: _orders(s, rows, dimension),
        "cdz/mdm_cdz/accounts": lambda s: _accounts(s, dimension),
    }


def write_sample_data(spark: SparkSession, storage: Storage, rows: int) -> dict[str, int]:
    """Write every sample table as Parquet (replacing what was there); returns rows per path."""
    if rows < 1:
        raise ValueError("rows must be at least 1")
    written = {}
    for path, build in sample_tables(rows).items():
        writer = build(spark).write.mode("overwrite")
        if path in PARTITIONED_BY:
            writer = writer.partitionBy(PARTITIONED_BY[path])
        writer.parquet(storage.spark_uri(path))
        written[path] = spark.read.parquet(storage.spark_uri(path)).count()
    return written
