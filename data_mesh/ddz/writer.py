"""Chunked writes of a Spark DataFrame into a DDZ table through Spark's JDBC writer.

Why this shape (seed 000's PROD out-of-memory failure, `shared/reference/sql-writes.md`):
- chunk and batch sizes come from bytes (estimated row width), never from a row count alone;
- rows are spread over chunks by a hash of the key columns (or of the whole row), so a retry
  writes the same rows to the same chunk; `repartition`, never `coalesce`, which would pull
  the whole upstream plan into fewer tasks;
- every write goes to a staging table first and reaches the target in one final statement,
  so a failed load leaves the target as it was.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.ddz.control import JdbcControl
from data_mesh.ddz.dialects import Dialect, TableName, dialect_for_url
from data_mesh.errors import DataMeshError
from data_mesh.identifiers import UnsafeIdentifierError, validate_identifier

STAGING_SUFFIX = "__dm_stage"

# Bytes a value of each type takes on the wire, for sizing chunks and JDBC batches.
_FIXED_WIDTHS: dict[type[T.DataType], int] = {
    T.BooleanType: 1,
    T.ByteType: 1,
    T.ShortType: 2,
    T.IntegerType: 4,
    T.LongType: 8,
    T.FloatType: 4,
    T.DoubleType: 8,
    T.DateType: 4,
    T.TimestampType: 8,
    T.TimestampNTZType: 8,
    T.DecimalType: 17,
}
# Variable-width values: an assumed average until the writer samples real widths.
_ASSUMED_STRING_BYTES = 64
_ASSUMED_BINARY_BYTES = 256


class DdzWriteError(DataMeshError):
    """A DDZ write that failed; names the table and the cause. The target is left unchanged."""


@dataclass(frozen=True)
class DdzConnection:
    """Where the DDZ is. `properties` (user, password) are resolved secrets: never log them."""

    url: str
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def dialect(self) -> Dialect:
        return dialect_for_url(self.url)

    @property
    def jdbc_url(self) -> str:
        return self.dialect.jdbc_url(self.url)


@dataclass(frozen=True)
class ChunkSettings:
    max_chunk_rows: int = 1_000_000
    max_chunk_bytes: int = 256 * 1024 * 1024
    batch_bytes: int = 2 * 1024 * 1024
    min_batch_rows: int = 100
    max_batch_rows: int = 10_000


@dataclass(frozen=True)
class DdzTarget:
    table: TableName
    write_mode: str = "replace"
    key_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteReport:
    table: str
    write_mode: str
    rows: int
    chunks: int
    row_bytes: int
    batch_rows: int
    duration_s: float
    columns: tuple[tuple[str, str], ...]

    @property
    def estimated_bytes(self) -> int:
        return self.rows * self.row_bytes


def estimate_row_bytes(schema: T.StructType) -> int:
    """Estimated bytes of one row on the wire (fixed widths; assumed averages for strings)."""
    total = 0
    for column in schema.fields:
        data_type = column.dataType
        if isinstance(data_type, T.StringType | T.VarcharType | T.CharType):
            total += _ASSUMED_STRING_BYTES
        elif isinstance(data_type, T.BinaryType):
            total += _ASSUMED_BINARY_BYTES
        else:
            total += _FIXED_WIDTHS.get(type(data_type), 16)
    return max(total, 1)


def plan_chunks(rows: int, row_bytes: int, settings: ChunkSettings) -> tuple[int, int]:
    """(number of chunks, JDBC batch rows), both bounded by bytes as well as rows."""
    by_rows = math.ceil(rows / settings.max_chunk_rows)
    by_bytes = math.ceil(rows * row_bytes / settings.max_chunk_bytes)
    chunks = max(1, by_rows, by_bytes)
    batch_rows = settings.batch_bytes // row_bytes
    batch_rows = max(settings.min_batch_rows, min(settings.max_batch_rows, batch_rows))
    return chunks, batch_rows


def assign_chunks(frame: DataFrame, chunks: int, hash_columns: list[str]) -> DataFrame:
    """One partition per chunk, by a hash of `hash_columns`: a retry puts every row in the same
    chunk again (never `rand()`), and `repartition` keeps the upstream plan parallel."""
    return frame.repartition(chunks, *[F.col(c) for c in hash_columns])


def prepare_for_jdbc(frame: DataFrame, where: str) -> DataFrame:
    """Check column names are safe identifiers; make types JDBC can write."""
    for name in frame.columns:
        try:
            validate_identifier(name, "column name")
        except UnsafeIdentifierError as error:
            raise DdzWriteError(
                f"{where}: {error} (rename it with the transformation's mapping)"
            ) from error
    conversions = {
        column.name: F.col(column.name).cast(T.TimestampType())
        for column in frame.schema.fields
        if isinstance(column.dataType, T.TimestampNTZType)
    }
    return frame.withColumns(conversions) if conversions else frame


def write_to_ddz(
    frame: DataFrame,
    target: DdzTarget,
    connection: DdzConnection,
    settings: ChunkSettings | None = None,
) -> WriteReport:
    """Write `frame` into the target table in bounded chunks; the target changes all at once."""
    settings = settings or ChunkSettings()
    started = time.monotonic()
    dialect = connection.dialect
    where = f"DDZ table {target.table}"
    frame = prepare_for_jdbc(frame, where)
    columns = frame.columns
    for key in target.key_columns:
        if key not in columns:
            raise DdzWriteError(f"{where}: key column {key!r} is not in the data ({columns})")
    if target.write_mode == "merge" and not target.key_columns:
        raise DdzWriteError(f"{where}: write mode 'merge' needs key columns")

    row_bytes = estimate_row_bytes(frame.schema)
    rows = frame.count()
    chunks, batch_rows = plan_chunks(rows, row_bytes, settings)
    chunked = assign_chunks(frame, chunks, list(target.key_columns) or columns)

    control = JdbcControl(frame.sparkSession, connection.jdbc_url, connection.properties)
    staging = target.table.with_suffix(STAGING_SUFFIX)
    try:
        control.execute(dialect.create_schema(target.table.schema), dialect.drop_table(staging))
        chunked.write.jdbc(
            connection.jdbc_url,
            dialect.qualified(staging),
            mode="append",
            properties={
                **connection.properties,
                "driver": dialect.driver_class,
                "batchsize": str(batch_rows),
                "isolationLevel": "READ_COMMITTED",
            },
        )
        _publish(control, dialect, target, staging, columns)
    except Exception as error:
        _drop_quietly(control, dialect, staging)
        raise DdzWriteError(
            f"{where}: {target.write_mode} write failed: {describe_jvm_error(error)}"
        ) from error

    return WriteReport(
        table=str(target.table),
        write_mode=target.write_mode,
        rows=rows,
        chunks=chunks,
        row_bytes=row_bytes,
        batch_rows=batch_rows,
        duration_s=time.monotonic() - started,
        columns=tuple((c.name, c.dataType.simpleString()) for c in frame.schema.fields),
    )


def _publish(
    control: JdbcControl,
    dialect: Dialect,
    target: DdzTarget,
    staging: TableName,
    columns: list[str],
) -> None:
    """Move the staged rows into the target in one transaction."""
    exists = int(control.scalar(dialect.table_exists_query(target.table)) or 0) > 0
    if target.write_mode == "replace" or not exists:
        statements = [dialect.drop_table(target.table), dialect.rename_table(staging, target.table)]
        if target.key_columns:
            statements.append(dialect.create_key_index(target.table, list(target.key_columns)))
        control.execute(*statements)
    elif target.write_mode == "append":
        control.execute(
            dialect.insert_from(target.table, staging, columns), dialect.drop_table(staging)
        )
    else:
        control.execute(
            dialect.merge_from(target.table, staging, columns, list(target.key_columns)),
            dialect.drop_table(staging),
        )


def describe_jvm_error(error: BaseException) -> str:
    """The Java exception's own message for errors raised through py4j, else `str(error)`."""
    java_exception = getattr(error, "java_exception", None)
    if java_exception is not None:
        try:
            return f"{java_exception.getClass().getName()}: {java_exception.getMessage()}"
        except Exception:  # the gateway may be gone; fall back to the Python text
            pass
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _drop_quietly(control: JdbcControl, dialect: Dialect, staging: TableName) -> None:
    # The original error matters more; a leftover stage is replaced by the next load anyway.
    with contextlib.suppress(Exception):
        control.execute(dialect.drop_table(staging))


def read_ddz_table(frame_reader: object, connection: DdzConnection, table: TableName) -> DataFrame:
    """A lazy DataFrame over a DDZ table (`frame_reader` is `spark.read`)."""
    return frame_reader.jdbc(  # type: ignore[attr-defined, no-any-return]
        connection.jdbc_url,
        connection.dialect.qualified(table),
        properties={**connection.properties, "driver": connection.dialect.driver_class},
    )
