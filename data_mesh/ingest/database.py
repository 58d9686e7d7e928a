"""Bronze reads of a relational table over JDBC: parallel range reads, incremental by watermark.

An incremental read first fixes a high mark, the largest watermark value at that moment, and
then reads only `after < watermark <= high`. Rows committed after the high mark was taken lie
in the next run's window, so none is skipped or read twice, provided the watermark only grows
(an identity column, a modified-at timestamp set on commit). The caller stores the returned
watermark only after it has written the frame. Rows whose watermark is NULL are never read by
a read with a watermark column. Spark holds microseconds: on a source with finer timestamps
(SQL Server's DATETIME2(7)) the newest row may wait for the next change to be read.

The window reaches the database through Spark's JDBC filter pushdown: Spark renders the
literals from typed values. The one statement built here (MIN/MAX probes) holds validated,
quoted identifiers and literals re-rendered from parsed numbers and dates, never raw text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.catalog.identifiers import UnsafeIdentifierError, validate_identifier
from data_mesh.ddz.dialects import jdbc_driver_class, jdbc_scheme
from data_mesh.ddz.writer import describe_error
from data_mesh.ingest.bronze import IngestError
from data_mesh.settings.secrets import MASK, SECRET_NAME, redact_url, url_secrets

# What Spark can split into ranges, and what can order rows for an incremental read.
_PARTITION_TYPES = (T.NumericType, T.DateType, T.TimestampType)
_WATERMARK_TYPES = (T.IntegralType, T.DecimalType, T.DateType, T.TimestampType, T.TimestampNTZType)
_TIMESTAMP_TEXT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"  # ISO 8601: Python and Spark both parse it


@dataclass(frozen=True)
class JdbcSource:
    """A database to read from: its JDBC URL and connection properties (user, password, ...)."""

    url: str
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    driver: str | None = None

    def __repr__(self) -> str:
        # The URL may hold a password too (`;password=...`).
        return f"JdbcSource(url={redact_url(self.url)!r}, driver={self.driver!r})"

    @property
    def driver_class(self) -> str:
        driver = self.driver or jdbc_driver_class(self.url)
        if driver is None:
            raise IngestError(
                f"no JDBC driver known for URL scheme {jdbc_scheme(self.url)!r}: set the driver "
                "class"
            )
        return driver

    def reader_options(self) -> dict[str, str]:
        return {**self.properties, "url": self.url, "driver": self.driver_class}

    def redact(self, text: str) -> str:
        """`text` without any password of this source (from the properties or the URL)."""
        secrets = [v for k, v in self.properties.items() if v and SECRET_NAME.search(k)]
        secrets += [secret for secret in url_secrets(self.url) if secret]
        for secret in sorted(set(secrets), key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, MASK)
            else:  # replacing a short one inside words would garble the message
                text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", MASK, text)
        return redact_url(text)

    def quote(self, identifier: str) -> str:
        validate_identifier(identifier)
        return f"[{identifier}]" if self.url.startswith("jdbc:sqlserver:") else f'"{identifier}"'


@dataclass(frozen=True)
class DatabaseRead:
    """What to read: a table ("schema.table" or "table"), how to split it, what is new."""

    table: str
    partition_column: str | None = None
    lower_bound: int | None = None
    upper_bound: int | None = None
    num_partitions: int = 4
    fetchsize: int = 10_000
    watermark_column: str | None = None

    def __post_init__(self) -> None:
        parts = self.table.split(".")
        if len(parts) > 2:
            raise UnsafeIdentifierError(f"table name {self.table!r}: use 'schema.table' or 'table'")
        for part in parts:
            validate_identifier(part, "table name")
        for column in (self.partition_column, self.watermark_column):
            if column is not None:
                validate_identifier(column, "column name")
        if self.num_partitions < 1 or self.fetchsize < 1:
            raise IngestError(f"table {self.table}: num_partitions and fetchsize must be >= 1")
        if (self.lower_bound is None) != (self.upper_bound is None):
            raise IngestError(f"table {self.table}: give both partition bounds or neither")
        low, high = self.lower_bound, self.upper_bound
        if low is not None and high is not None and low > high:
            raise IngestError(f"table {self.table}: lower_bound is above upper_bound")

    @property
    def parts(self) -> list[str]:
        return self.table.split(".")


@dataclass(frozen=True)
class DatabaseBatch:
    """A lazy frame of the rows to load, and the watermark to store once they are written (None
    without a watermark column or when the table holds no rows yet)."""

    frame: DataFrame
    watermark: str | None


def read_database(
    spark: SparkSession,
    source: JdbcSource,
    read: DatabaseRead,
    after_watermark: str | None = None,
) -> DatabaseBatch:
    """The rows of `read.table` (those after `after_watermark` when it has a watermark column).

    The table's schema and the MIN/MAX probes are read here; the rows themselves when the
    caller runs an action on the frame.
    """
    where = f"table {read.table}"
    if after_watermark is not None and read.watermark_column is None:
        raise IngestError(f"{where}: a watermark was given but the read has no watermark column")
    try:
        return _read(spark, source, read, after_watermark, where)
    except IngestError:
        raise
    except Exception as error:
        text = describe_error(error)
        message = f"{where}: cannot read: {source.redact(text)}"
        if source.redact(f"{text}\n{error}") != f"{text}\n{error}":
            raise IngestError(message) from None  # the cause holds a secret: do not chain it
        raise IngestError(message) from error


def _read(
    spark: SparkSession,
    source: JdbcSource,
    read: DatabaseRead,
    after: str | None,
    where: str,
) -> DatabaseBatch:
    options = {**source.reader_options(), "fetchsize": str(read.fetchsize)}
    table = ".".join(source.quote(part) for part in read.parts)
    base = _load(spark, options, dbtable=table)
    schema = base.schema
    watermark = partition = None
    if read.watermark_column is not None:
        watermark = _column(schema, read.watermark_column, "watermark", _WATERMARK_TYPES, where)
    if read.partition_column is not None:
        partition = _column(schema, read.partition_column, "partition", _PARTITION_TYPES, where)
    window = _window(spark, source, options, table, watermark, after, where)
    if window is not None and window.high is None:
        # Nothing new: Spark plans an empty relation for a false filter and sends no query.
        return DatabaseBatch(base.where(F.lit(False)), after)
    split = _split(spark, source, options, table, read, partition, window, where)
    frame = _load(spark, {**options, **split}, dbtable=table) if split else base
    if window is None:
        return DatabaseBatch(frame, None)
    return DatabaseBatch(frame.where(window.condition(frame)), window.high)


@dataclass(frozen=True)
class _Window:
    """`after < column <= high` as texts in Spark's form; `high` is None when nothing is new."""

    column: T.StructField
    after: str | None
    high: str | None

    def condition(self, frame: DataFrame) -> Column:
        # Typed literals (constant-folded casts), so Spark pushes both bounds into the query.
        column, data_type = frame[self.column.name], self.column.dataType
        upper = column <= F.lit(self.high).cast(data_type)
        return upper if self.after is None else (column > F.lit(self.after).cast(data_type)) & upper

    def sql(self, source: JdbcSource) -> str:
        """The window as a WHERE clause for the probe of the partition column's bounds."""
        assert self.high is not None
        column, data_type = source.quote(self.column.name), self.column.dataType
        upper = f"{column} <= {_sql_literal(self.high, data_type)}"
        if self.after is None:
            return upper
        return f"{column} > {_sql_literal(self.after, data_type)} AND {upper}"


def _window(
    spark: SparkSession,
    source: JdbcSource,
    options: Mapping[str, str],
    table: str,
    watermark: T.StructField | None,
    after: str | None,
    where: str,
) -> _Window | None:
    """Fix the high mark. MAX over the whole table equals MAX over the rows after `after`
    whenever there are any, so no literal is needed in this query."""
    if watermark is None:
        return None
    data_type = watermark.dataType
    if after is not None:
        try:  # a plain value: Spark's cast alone would also take 'now' or 'yesterday'
            _value(after, data_type)
        except ValueError:
            raise _invalid_watermark(after, watermark, where) from None
    query = f"SELECT MAX({source.quote(watermark.name)}) AS hi FROM {table}"
    probe = _load(spark, options, query=query)
    columns = [_as_text(probe[0].cast(data_type), data_type).alias("hi")]
    if after is not None:
        columns.append(_as_text(F.lit(after).try_cast(data_type), data_type).alias("after"))
    row = _first(probe.select(*columns))
    if after is not None and row["after"] is None:
        raise _invalid_watermark(after, watermark, where)
    normalized, high = (row["after"] if after is not None else None), row["hi"]
    if high is None or (normalized is not None and not _after(high, normalized, data_type)):
        return _Window(watermark, normalized, None)
    return _Window(watermark, normalized, high)


def _invalid_watermark(after: str, column: T.StructField, where: str) -> IngestError:
    return IngestError(
        f"{where}: stored watermark {after!r} is not a {column.dataType.simpleString()} "
        f"(the type of watermark column {column.name})"
    )


def _split(
    spark: SparkSession,
    source: JdbcSource,
    options: Mapping[str, str],
    table: str,
    read: DatabaseRead,
    partition: T.StructField | None,
    window: _Window | None,
    where: str,
) -> dict[str, str]:
    """Spark's options for `num_partitions` range queries on the partition column (none when
    it is not set or the window is empty). The bounds only spread the rows: Spark's first and
    last ranges are open, so rows outside them are still read."""
    if partition is None or read.num_partitions == 1:
        return {}
    data_type = partition.dataType
    if read.lower_bound is not None and read.upper_bound is not None:
        if not isinstance(data_type, T.NumericType):
            raise IngestError(
                f"{where}: partition column {partition.name} is {data_type.simpleString()}; "
                "bounds can only be given for a numeric column (leave them empty to probe)"
            )
        low, high = str(read.lower_bound), str(read.upper_bound)
    else:
        name = source.quote(partition.name)
        query = f"SELECT MIN({name}) AS lo, MAX({name}) AS hi FROM {table}"
        if window is not None:
            query += f" WHERE {window.sql(source)}"  # the bounds of this run's rows only
        probe = _load(spark, options, query=query)
        row = _first(
            probe.select(
                _as_text(probe[0].cast(data_type), data_type),
                _as_text(probe[1].cast(data_type), data_type),
            )
        )
        if row[0] is None or row[1] is None:
            return {}
        low, high = row[0], row[1]
        if isinstance(data_type, T.NumericType):
            # Integer bounds for Spark; +1 so the top value has a range of its own.
            low = str(math.floor(Decimal(low)))
            high = str(math.ceil(Decimal(high)) + 1)
    return {
        "partitionColumn": partition.name,
        "lowerBound": low,
        "upperBound": high,
        "numPartitions": str(read.num_partitions),
    }


def _load(spark: SparkSession, options: Mapping[str, str], **source: str) -> DataFrame:
    """A JDBC frame (`dbtable=` or `query=`); resolving it reads the schema from the database."""
    return spark.read.format("jdbc").options(**options, **source).load()


def _first(frame: DataFrame) -> Row:
    row = frame.first()
    assert row is not None  # an aggregate without GROUP BY returns one row
    return row


def _column(
    schema: T.StructType,
    name: str,
    role: str,
    allowed: tuple[type[T.DataType], ...],
    where: str,
) -> T.StructField:
    """The table's column `name` (exact, else the one column equal ignoring case)."""
    found = [f for f in schema.fields if f.name == name] or [
        f for f in schema.fields if f.name.lower() == name.lower()
    ]
    if len(found) != 1:
        problem = "is ambiguous" if found else "does not exist"
        raise IngestError(
            f"{where}: {role} column {name!r} {problem}; columns: {', '.join(schema.fieldNames())}"
        )
    column = found[0]
    if not isinstance(column.dataType, allowed):
        kinds = "an integer, decimal, date or timestamp"
        if role == "partition":
            kinds = "numeric, a date or a timestamp"
        raise IngestError(
            f"{where}: {role} column {column.name} is {column.dataType.simpleString()}; "
            f"it must be {kinds}"
        )
    return column


def _as_text(column: Column, data_type: T.DataType) -> Column:
    """The value as text that casts back to the same value (ISO 8601 for dates and times)."""
    if isinstance(data_type, T.TimestampType | T.TimestampNTZType):
        return F.date_format(column, _TIMESTAMP_TEXT)
    if isinstance(data_type, T.DateType):
        return F.date_format(column, "yyyy-MM-dd")
    return column.cast("string")


def _value(text: str, data_type: T.DataType) -> int | Decimal | date | datetime:
    """Parse a text from `_as_text`; raises ValueError on anything else."""
    if isinstance(data_type, T.IntegralType):
        return int(text)
    if isinstance(data_type, T.NumericType):
        number = Decimal(text)
        if not number.is_finite():
            raise ValueError(f"not a finite number: {text!r}")
        return number
    if isinstance(data_type, T.DateType):
        return date.fromisoformat(text)
    return datetime.fromisoformat(text)


def _after(text: str, other: str, data_type: T.DataType) -> bool:
    """Whether value `text` comes after value `other` (both of `data_type`)."""
    left, right = _value(text, data_type), _value(other, data_type)
    if isinstance(left, datetime) and isinstance(right, datetime):
        return left > right
    if isinstance(left, date) and isinstance(right, date):
        return left > right
    assert isinstance(left, int | Decimal) and isinstance(right, int | Decimal)
    return left > right


def _sql_literal(text: str, data_type: T.DataType) -> str:
    """A SQL literal re-rendered from the parsed value, so no input text reaches the SQL."""
    value = _value(text, data_type)
    if isinstance(value, datetime):
        # No more fractional digits than needed: SQL Server's DATETIME takes at most 3.
        timespec = "microseconds" if value.microsecond % 1000 else "milliseconds"
        return f"'{value.isoformat(sep=' ', timespec=timespec)}'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)
