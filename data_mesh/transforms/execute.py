"""Run one transformation on Spark: inputs in, one lazy DataFrame out (no action is triggered)."""

from __future__ import annotations

import re
from collections.abc import Mapping

import sqlglot
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.models import DataSetModel, TransformationModel
from data_mesh.catalog.transformation_configs import (
    AggregateConfig,
    FilterConfig,
    JoinConfig,
    OutputShaping,
    PropertiesSequenceConfig,
    SelectConfig,
    SqlConfig,
)
from data_mesh.lake.storage import Storage
from data_mesh.transforms.query_files import load_query_plan, query_file_path

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


def first_line(error: BaseException) -> str:
    """The first line of an error's message: Spark's carries the plan or a JVM stack after it."""
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def cdz_view_name(dataset: DataSetModel) -> str:
    """The session temporary view a CDZ input is queried through. Generated, so it cannot be
    the name of a user's table or view; the id keeps two datasets apart whose names differ only
    in characters an unquoted identifier cannot hold."""
    plain = re.sub(r"[^0-9A-Za-z_]", "_", f"{dataset.source_name}__{dataset.name}")
    return f"data_mesh_cdz_{dataset.id}__{plain}"


def read_cdz_dataset(
    spark: SparkSession, dataset: DataSetModel, uri: str, day: str | None = None
) -> DataFrame:
    """A lake dataset as a DataFrame, read straight from its path: nothing is written to the
    Spark catalog (a shared metastore such as Unity Catalog or Hive is never touched);
    `run_transformation` makes it a temporary view that queries reach as `<source>.<dataset>`.

    A daily-partitioned dataset (`<path>/<column>=<day>/`) is read for `day` alone when it is
    given, otherwise with all its days; either way the partition column is a column, as Spark's
    partition discovery gives it.
    """
    fmt = dataset.source_format.lower()
    if fmt not in CDZ_FORMAT_OPTIONS:
        raise TransformationError(
            f"DataSets row {dataset.id} ({dataset.name}): Format {dataset.source_format!r} of its "
            f"DataSource is not readable (use one of {', '.join(CDZ_FORMAT_OPTIONS)})"
        )
    reader = spark.read.format(fmt).options(**CDZ_FORMAT_OPTIONS[fmt])
    try:
        if dataset.partition is None or day is None:
            return reader.load(uri)
        column = dataset.partition.column
        if fmt == "delta":
            # Delta reads its log at the table root; the filter prunes to the day's files.
            return reader.load(uri).where(F.col(column) == F.lit(day))
        # Only the day's folder is listed; basePath keeps `<column>=<day>` a discovered column.
        return reader.option("basePath", uri).load(f"{uri.rstrip('/')}/{column}={day}")
    except AnalysisException as error:
        # A path that is missing or holds no files: Spark's PATH_NOT_FOUND or
        # UNABLE_TO_INFER_SCHEMA names neither the DataSet nor always the path.
        raise TransformationError(
            f"DataSets row {dataset.id} ({dataset.source_name}.{dataset.name}): cannot read "
            f"its {fmt} data at {uri}: {first_line(error)}"
        ) from error


def with_views_for_tables(sql: str, views: Mapping[tuple[str, str], str]) -> str:
    """`sql` with each table reference `<database>.<table>` in `views` (keys in lower case:
    Spark's names are case-insensitive) replaced by its view, aliased as the table unless the
    query gives an alias, so `<table>.<column>` still resolves. Only those names change: the
    rest of the text is kept as written, because regenerating SQL from sqlglot's tree can
    change what Spark runs (e.g. `x:y` becomes `x AS :y`)."""
    if not views:
        return sql
    for start, end, text in sorted(_replacements(sql, views), reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def _replacements(sql: str, views: Mapping[tuple[str, str], str]) -> list[tuple[int, int, str]]:
    """(start, end, new text) of each name to replace. The parse tree tells tables from
    columns (`a.b` may be column `b` of alias `a`); Spark syntax sqlglot does not know falls back
    to the tokens (`check_query_only` accepts such statements too)."""
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="spark") if tree is not None]
    except SqlglotError:
        return _token_spans(sql, views)
    found = []
    for tree in trees:
        for node in tree.find_all(exp.Table, exp.Column):
            key = "this" if isinstance(node, exp.Table) else "table"
            database, name = node.args.get("db"), node.args.get(key)
            if node.args.get("catalog") or not isinstance(database, exp.Identifier):
                continue  # a three-part name names its catalog: not a CDZ input
            if not isinstance(name, exp.Identifier):
                continue
            view = views.get((database.name.lower(), name.name.lower()))
            if view is None:
                continue
            if "start" not in database.meta or not {"start", "end"} <= name.meta.keys():
                return _token_spans(sql, views)
            start, end = database.meta["start"], name.meta["end"] + 1
            written = sql[name.meta["start"] : end]  # the table's name as the query has it
            if isinstance(node, exp.Column):
                text = written  # `<database>.<table>.<column>` -> `<table>.<column>`
            elif node.alias or node.args.get("sample") or node.args.get("version"):
                text = view  # the query's alias; Spark wants none before a sample or version
            else:
                text = f"{view} AS {written}"
            found.append((start, end, text))
    return found


def _token_spans(sql: str, views: Mapping[tuple[str, str], str]) -> list[tuple[int, int, str]]:
    """References as `<name>.<name>` token runs that are not part of a longer dotted name."""
    try:
        tokens = Spark().tokenize(sql)
    except SqlglotError:
        return []  # Spark reports what is wrong with the statement
    names = (TokenType.VAR, TokenType.IDENTIFIER)
    spans = []
    for index in range(len(tokens) - 2):
        database, dot, name = tokens[index : index + 3]
        if database.token_type not in names or dot.token_type != TokenType.DOT:
            continue
        if name.token_type not in names:
            continue
        before = tokens[index - 1] if index else None
        after = tokens[index + 3] if index + 3 < len(tokens) else None
        if (before and before.token_type == TokenType.DOT) or (
            after and after.token_type == TokenType.DOT
        ):
            continue
        view = views.get((database.text.lower(), name.text.lower()))
        if view is not None:
            spans.append((database.start, name.end + 1, view))
    return spans


def run_transformation(
    spark: SparkSession,
    transformation: TransformationModel,
    inputs: Mapping[str, DataFrame],
    storage: Storage,
) -> DataFrame:
    """The transformation's result with mapping and casts applied; `inputs` by DataSet name.

    Every input becomes a session temporary view (nothing is written to the catalog): a DDZ
    input named after its DataSet; a CDZ input under `cdz_view_name`, and each statement's
    `<source>.<dataset>` references (seed 000's table names) are rewritten to that view.
    """
    where = f"transformation {transformation.name!r} (Transformations row {transformation.id})"
    views: dict[tuple[str, str], str] = {}
    for dataset in transformation.inputs:
        if dataset.layer == "DDZ":
            inputs[dataset.name].createOrReplaceTempView(dataset.name)
        else:
            view = cdz_view_name(dataset)
            inputs[dataset.name].createOrReplaceTempView(view)
            views[(dataset.source_name.lower(), dataset.name.lower())] = view
    config = transformation.config
    try:
        tables = [dataset.sql_name for dataset in transformation.inputs]
        result = _compute(spark, config, inputs, storage, views, tables, where)
        return apply_output_shaping(result, config, where)
    except TransformationError:
        raise
    except Exception as error:
        raise TransformationError(f"{where} failed: {error}") from error


def _compute(
    spark: SparkSession,
    config: OutputShaping,
    inputs: Mapping[str, DataFrame],
    storage: Storage,
    views: Mapping[tuple[str, str], str],
    tables: list[str],
    where: str,
) -> DataFrame:
    """`tables`: the names the inputs are queried by; the query files (read again from the
    lake, which may have changed since they were validated) may read only those. `where`
    names the transformation in errors."""
    match config:
        case PropertiesSequenceConfig():
            plan = load_query_plan(storage, config, tables)
            result: DataFrame | None = None
            for statement in plan.statements:
                try:
                    result = spark.sql(with_views_for_tables(statement.sql, views))
                except AnalysisException as error:
                    # Spark names neither the file nor the statement its query came from.
                    raise TransformationError(
                        f"{where}: statement {statement.name} (line {statement.line} of "
                        f"{query_file_path(config)}) failed: {first_line(error)}"
                    ) from error
                result.createOrReplaceTempView(statement.name)
            assert result is not None
            return result
        case SqlConfig():
            return spark.sql(with_views_for_tables(config.query, views))
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
