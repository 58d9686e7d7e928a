"""Bronze reads of CSV, JSON and Parquet files against a declared schema.

Rows that do not fit the schema are kept apart with the reason, never dropped or nulled
silently: `FileBatch.frame` holds the good rows typed as declared, `FileBatch.rejected` the
others as `_raw_record` (the record as text), `_reason` (which columns, which values) and
`_source_file`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.catalog.identifiers import validate_identifier
from data_mesh.catalog.models import FILE_FORMATS
from data_mesh.ddz.writer import describe_error
from data_mesh.ingest.bronze import IngestError

FORMATS = FILE_FORMATS  # the catalog accepts only what is readable here
REJECTED_COLUMNS = ("_raw_record", "_reason", "_source_file")
_CORRUPT = "_corrupt_record"
_RESERVED = {c.lower() for c in (*REJECTED_COLUMNS, _CORRUPT)}
_DEFAULT_OPTIONS: dict[str, dict[str, str]] = {"csv": {"header": "true"}, "json": {}}
# Reader options that also apply when one record is parsed again to explain its rejection.
_RECORD_OPTIONS = {
    "csv": {
        "sep",
        "delimiter",
        "quote",
        "escape",
        "chartoescapequoteescaping",
        "comment",
        "ignoreleadingwhitespace",
        "ignoretrailingwhitespace",
        "nullvalue",
        "emptyvalue",
        "unescapedquotehandling",
    },
    "json": {
        "allowcomments",
        "allowunquotedfieldnames",
        "allowsinglequotes",
        "allownumericleadingzeros",
        "allowbackslashescapinganycharacter",
        "allowunquotedcontrolchars",
        "allownonnumericnumbers",
    },
}
_SHOWN_CHARACTERS = 100  # of a bad value, in `_reason`


@dataclass(frozen=True)
class FileBatch:
    """Good rows typed as declared, and the rejected rows (`REJECTED_COLUMNS`).

    For CSV and JSON both derive from `cached`, the parse of the files kept by Spark: call
    `release()` once both are written.
    """

    frame: DataFrame
    rejected: DataFrame
    cached: DataFrame | None = field(default=None, repr=False)

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def read_files(
    spark: SparkSession,
    uri: str,
    fmt: str,
    columns: Sequence[tuple[str, str]],
    options: Mapping[str, str] | None = None,
    where: str = "",
) -> FileBatch:
    """The files at `uri` in format `fmt` (csv, json or parquet), checked against `columns`:
    (name, Spark SQL type) pairs such as ("amount", "decimal(18,2)").

    `options` go to Spark's reader (CSV reads with `header=true` unless told otherwise);
    `where` prefixes error messages, e.g. "DataSets row 7 (orders)".
    """
    prefix = f"{where}: " if where else ""
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise IngestError(
            f"{prefix}format {fmt!r} is not readable (use one of {', '.join(FORMATS)})"
        )
    schema = _declared_schema(columns, prefix)
    options = dict(options or {})
    try:
        if fmt == "parquet":
            return _read_parquet(spark, uri, schema, options, prefix)
        return _read_text(spark, uri, fmt, schema, options, prefix)
    except IngestError:
        raise
    except Exception as error:
        raise IngestError(
            f"{prefix}cannot read {fmt} files at {uri}: {describe_error(error)}"
        ) from error


def _declared_schema(columns: Sequence[tuple[str, str]], prefix: str) -> T.StructType:
    if not columns:
        raise IngestError(f"{prefix}no columns are declared")
    fields: list[T.StructField] = []
    for name, type_text in columns:
        validate_identifier(name, "column name")
        if name.lower() in _RESERVED or name.lower() in {f.name.lower() for f in fields}:
            raise IngestError(f"{prefix}column {name!r} is reserved or declared twice")
        try:
            data_type = T.DataType.fromDDL(type_text)
        except Exception as error:
            raise IngestError(
                f"{prefix}column {name}: {type_text!r} is not a Spark SQL type "
                f"({describe_error(error)})"
            ) from error
        fields.append(T.StructField(name, data_type, nullable=True))
    return T.StructType(fields)


def _read_text(
    spark: SparkSession,
    uri: str,
    fmt: str,
    schema: T.StructType,
    options: dict[str, str],
    prefix: str,
) -> FileBatch:
    """CSV or JSON in PERMISSIVE mode: a record that does not parse keeps its text in the
    corrupt-record column (its other fields are parsed where they can be)."""
    for key, wanted in (("mode", "PERMISSIVE"), ("columnNameOfCorruptRecord", _CORRUPT)):
        given = next((v for k, v in options.items() if k.lower() == key.lower()), wanted)
        if given.upper() != wanted.upper():
            raise IngestError(
                f"{prefix}reader option {key}={given!r} is not supported: bad rows are "
                "reported as rejected rows"
            )
    reader_schema = T.StructType([*schema.fields, T.StructField(_CORRUPT, T.StringType())])
    parsed = (
        spark.read.format(fmt)
        .schema(reader_schema)
        .options(**_with_defaults(options, _DEFAULT_OPTIONS[fmt]))
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .load(uri)
        .withColumn("_source_file", F.input_file_name())
    )
    # Spark refuses a query on raw CSV/JSON whose only referenced column is the corrupt-record
    # one (it would parse nothing else, so it could not tell), and `frame.count()` or
    # `rejected.count()` are such queries once pruned. Caching the parse lifts that, and makes
    # the good rows, the rejected rows and their counts come from one pass over the files.
    parsed = parsed.cache()
    good = parsed.where(F.col(_CORRUPT).isNull()).select(*schema.fieldNames())
    bad = parsed.where(F.col(_CORRUPT).isNotNull())
    raw = F.col(_CORRUPT)
    reason = _text_reason(bad, fmt, schema, options)
    rejected = bad.select(raw.alias("_raw_record"), reason.alias("_reason"), "_source_file")
    return FileBatch(good, rejected, parsed)


def _with_defaults(options: Mapping[str, str], defaults: Mapping[str, str]) -> dict[str, str]:
    # Spark's option names are case-insensitive: `Header` given replaces the default `header`.
    given = {k.lower() for k in options}
    return {**{k: v for k, v in defaults.items() if k.lower() not in given}, **options}


def _text_reason(
    bad: DataFrame, fmt: str, schema: T.StructType, options: Mapping[str, str]
) -> Column:
    """Why a record was rejected: it is parsed again with every column as text (no pass over
    the files), and a column whose typed value is null while its text is not is at fault."""
    record_options = {k: v for k, v in options.items() if k.lower() in _RECORD_OPTIONS[fmt]}
    names = schema.fieldNames()
    if fmt == "csv":
        # CSV columns are positional; one more column than declared catches extra fields.
        texts = ", ".join(f"c{i} STRING" for i in range(len(names) + 1))
        record = F.from_csv(F.col(_CORRUPT), texts, record_options)
        text_of = {name: record[f"c{i}"] for i, name in enumerate(names)}
        extra: Column | None = record[f"c{len(names)}"]
    else:
        fields = [T.StructField(name, T.StringType()) for name in names]
        record = F.from_json(F.col(_CORRUPT), T.StructType(fields), record_options)
        text_of = {name: record[name] for name in names}
        extra = None
    problems = [
        F.when(
            bad[field.name].isNull() & text_of[field.name].isNotNull(),
            _not_a(field, text_of[field.name]),
        )
        for field in schema.fields
    ]
    if extra is not None:
        problems.append(F.when(extra.isNotNull(), F.lit(f"more than {len(names)} fields")))
    listed = F.concat_ws("; ", *problems)
    fallback = F.lit(
        f"the record does not match the {len(names)} declared columns "
        f"({', '.join(names)}): fields missing or malformed {fmt.upper()}"
    )
    return F.when(listed == "", fallback).otherwise(listed)


def _not_a(column: T.StructField, text: Column) -> Column:
    shown = F.substring(text, 1, _SHOWN_CHARACTERS)
    return F.concat(
        F.lit(f"column {column.name}: '"),
        shown,
        F.lit(f"' is not a valid {column.dataType.simpleString()}"),
    )


def _read_parquet(
    spark: SparkSession,
    uri: str,
    schema: T.StructType,
    options: Mapping[str, str],
    prefix: str,
) -> FileBatch:
    """Parquet carries its own types: every declared column must be in the files, and a value
    that does not cast to the declared type rejects its row."""
    source = spark.read.options(**options).parquet(uri)
    actual = {f.name.lower(): f for f in source.schema.fields}
    typed, problems, originals = [], [], []
    for column in schema.fields:
        found = next((f for f in source.schema.fields if f.name == column.name), None)
        found = found or actual.get(column.name.lower())
        if found is None:
            raise IngestError(
                f"{prefix}parquet files at {uri} have no column {column.name!r} "
                f"(they have: {', '.join(source.schema.fieldNames())})"
            )
        value = source[found.name]
        originals.append(value.alias(column.name))
        if found.dataType == column.dataType:
            typed.append(value.alias(column.name))
            continue
        converted = value.try_cast(column.dataType)
        typed.append(converted.alias(column.name))
        problems.append(
            F.when(converted.isNull() & value.isNotNull(), _not_a(column, value.cast("string")))
        )
    reason = F.concat_ws("; ", *problems) if problems else F.lit("")
    checked = source.select(
        *typed,
        reason.alias("_reason"),
        F.to_json(F.struct(*originals)).alias("_raw_record"),
        F.input_file_name().alias("_source_file"),
    )
    # Column pruning drops `_raw_record` from the good rows' query and the typed values from
    # the rejected rows' query.
    good = checked.where(F.col("_reason") == "").select(*schema.fieldNames())
    rejected = checked.where(F.col("_reason") != "").select(*REJECTED_COLUMNS)
    return FileBatch(good, rejected)
