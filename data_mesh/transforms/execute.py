"""Run one transformation on Spark: inputs in, one lazy DataFrame out (no action is triggered)."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_mesh.errors import DataMeshError
from data_mesh.metadata.catalog import DataSetModel, TransformationModel
from data_mesh.metadata.configs import (
    AggregateConfig,
    FilterConfig,
    JoinConfig,
    OutputShaping,
    PropertiesSequenceConfig,
    SelectConfig,
    SqlConfig,
)
from data_mesh.spark_sql import string_literal
from data_mesh.storage import Storage
from data_mesh.transforms.query_files import load_query_plan

# Formats a CDZ dataset may be stored in, and the reader options each needs.
CDZ_FORMAT_OPTIONS: dict[str, dict[str, str]] = {
    "parquet": {},
    "delta": {},
    "orc": {},
    "json": {},
    "csv": {"header": "true", "inferSchema": "true"},
}


class TransformationError(DataMeshError):
    """A transformation that cannot run; the message names the transformation and the cause."""


def register_cdz_dataset(
    spark: SparkSession, dataset: DataSetModel, uri: str, day: str | None = None
) -> DataFrame:
    """Expose a lake dataset to Spark SQL as `<source>.<dataset>` (seed 000's table names).

    It is registered as an external table over the lake path, like a Synapse lake database. An
    existing managed table of that name is never dropped. A daily-partitioned dataset
    (`<path>/<column>=<day>/`) holds only `day`'s folder when `day` is given, so every query of
    a partition's run reads that day alone; otherwise all its days.
    """
    fmt = dataset.source_format.lower()
    if fmt not in CDZ_FORMAT_OPTIONS:
        raise TransformationError(
            f"DataSets row {dataset.id} ({dataset.name}): Format {dataset.source_format!r} of its "
            f"DataSource is not readable (use one of {', '.join(CDZ_FORMAT_OPTIONS)})"
        )
    database, table = f"`{dataset.source_name}`", f"`{dataset.source_name}`.`{dataset.name}`"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {database}")
    if spark.catalog.tableExists(f"{dataset.source_name}.{dataset.name}"):
        existing = spark.catalog.getTable(f"{dataset.source_name}.{dataset.name}")
        if (existing.tableType or "").upper() != "EXTERNAL":
            raise TransformationError(
                f"DataSets row {dataset.id}: {dataset.sql_name} exists in the Spark catalog as a "
                f"{existing.tableType} table; data_mesh only replaces external tables"
            )
        spark.sql(f"DROP TABLE {table}")
    options = {"path": uri, **CDZ_FORMAT_OPTIONS[fmt]}
    rendered = ", ".join(f"'{k}' {string_literal(v)}" for k, v in options.items())
    spark.sql(f"CREATE TABLE {table} USING {fmt} OPTIONS ({rendered})")
    if dataset.partition is not None:
        column = f"`{dataset.partition.column}`"
        if day is None:
            spark.sql(f"ALTER TABLE {table} RECOVER PARTITIONS")
        else:
            spark.sql(f"ALTER TABLE {table} ADD PARTITION ({column} = {string_literal(day)})")
    return spark.table(f"{dataset.source_name}.{dataset.name}")


def run_transformation(
    spark: SparkSession,
    transformation: TransformationModel,
    inputs: Mapping[str, DataFrame],
    storage: Storage,
) -> DataFrame:
    """The transformation's result with mapping and casts applied; `inputs` by DataSet name.

    DDZ inputs are also registered as temporary views named after their DataSet, so SQL can use
    them; CDZ inputs are expected to be registered already (`register_cdz_dataset`).
    """
    where = f"transformation {transformation.name!r} (Transformations row {transformation.id})"
    for dataset in transformation.inputs:
        if dataset.layer == "DDZ":
            inputs[dataset.name].createOrReplaceTempView(dataset.name)
    config = transformation.config
    try:
        result = _compute(spark, config, inputs, storage)
        return apply_output_shaping(result, config, where)
    except TransformationError:
        raise
    except Exception as error:
        raise TransformationError(f"{where} failed: {error}") from error


def _compute(
    spark: SparkSession, config: OutputShaping, inputs: Mapping[str, DataFrame], storage: Storage
) -> DataFrame:
    match config:
        case PropertiesSequenceConfig():
            plan = load_query_plan(storage, config)
            result: DataFrame | None = None
            for statement in plan.statements:
                result = spark.sql(statement.sql)
                result.createOrReplaceTempView(statement.name)
            assert result is not None
            return result
        case SqlConfig():
            return spark.sql(config.query)
        case FilterConfig():
            return inputs[config.input_dataset].filter(F.expr(config.condition))
        case SelectConfig():
            return inputs[config.input_dataset].selectExpr(*config.columns)
        case JoinConfig():
            left = inputs[config.input_dataset].alias("a")
            right = inputs[config.second_dataset].alias("b")
            if config.join_type == "cross":
                return left.crossJoin(right)
            on = F.expr(config.condition) if config.condition is not None else config.join_columns
            return left.join(right, on=on, how=config.join_type)
        case AggregateConfig():
            frame = inputs[config.input_dataset]
            aggregations = [F.expr(e).alias(name) for name, e in config.agg_functions.items()]
            return frame.groupBy(*[F.expr(c) for c in config.groupby_columns]).agg(*aggregations)
    raise TransformationError(f"no executor for configuration {type(config).__name__}")


def _require_columns(frame: DataFrame, names: list[str], what: str, where: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        raise TransformationError(
            f"{where}: {what} names column(s) {', '.join(missing)} not in the result "
            f"(columns: {', '.join(frame.columns)})"
        )


def apply_output_shaping(frame: DataFrame, config: OutputShaping, where: str) -> DataFrame:
    """Rename (mapping) then cast (casts), failing clearly on columns that do not exist."""
    _require_columns(frame, list(config.mapping), "mapping", where)
    if config.mapping:
        frame = frame.withColumnsRenamed(dict(config.mapping))
    _require_columns(frame, list(config.casts), "casts", where)
    if config.casts:
        frame = frame.withColumns(
            {name: F.col(name).cast(type_name) for name, type_name in config.casts.items()}
        )
    return frame


def with_partition_column(frame: DataFrame, column: str, day: str) -> DataFrame:
    """The result of a daily partition's run: its partition column is added when the query does
    not produce it (rows of other days are refused by the DDZ write)."""
    if column in frame.columns:
        return frame
    return frame.withColumn(column, F.lit(day).cast("date"))
