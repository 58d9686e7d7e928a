"""Typed models of the JSON in Transformations.Configuration, validated per transformation type."""

from __future__ import annotations

import functools
import json
import re
from typing import Annotated, Any, Literal, TypeVar

import sqlglot
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlglot.errors import SqlglotError

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import validate_identifier
from data_mesh.catalog.sql_policy import Slot, check_sql

Model = TypeVar("Model", bound=BaseModel)

# Spark SQL types a cast may target; each maps to an explicit DDZ column type.
_CAST_TYPE = re.compile(
    r"^(string|boolean|tinyint|smallint|int|integer|bigint|float|double|date|timestamp|"
    r"timestamp_ntz|binary|decimal\(\s*\d{1,2}\s*,\s*\d{1,2}\s*\)|decimal|"
    r"varchar\(\s*\d{1,4}\s*\)|char\(\s*\d{1,4}\s*\))$",
    re.IGNORECASE,
)
_FILE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_FOLDER = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


def _column(name: str) -> str:
    return validate_identifier(name, "column name")


def _cast_type(type_name: str) -> str:
    if not _CAST_TYPE.fullmatch(type_name.strip()):
        raise ValueError(
            f"{type_name!r} is not a supported cast type (string, int, bigint, double, boolean, "
            "date, timestamp, decimal(p,s), varchar(n), ...)"
        )
    return type_name.strip().lower()


def _file_name(name: str) -> str:
    if not _FILE_NAME.fullmatch(name) or name.startswith("."):
        raise ValueError(f"{name!r} is not a plain file name")
    return name


def _folder(name: str) -> str:
    if not _FOLDER.fullmatch(name):
        raise ValueError(f"{name!r} is not a relative folder of letters, digits, '_', '-' and '/'")
    return name


@functools.lru_cache(maxsize=8192)
def _output_name(expression: str) -> str | None:
    """The column name a select or group-by expression gives its result (`a`, `x as b`), or
    None when Spark makes one up (`a + 1`) or it is a star. Cached: a parse tree is a cycle
    (children point at parents) left to the cyclic GC, which loads run paused, and 10,000
    products repeat the same few texts."""
    try:
        name = sqlglot.parse_one(expression, read="spark").alias_or_name
    except SqlglotError:  # the SQL policy reports it
        return None
    return name if name and name != "*" else None


def _query(text: str) -> str:
    check_sql(text, Slot.QUERY)
    return text


def _expression(text: str) -> str:
    check_sql(text, Slot.EXPRESSION)
    return text


def _named_expression(text: str) -> str:
    check_sql(text, Slot.NAMED_EXPRESSION)
    return text


ColumnName = Annotated[str, AfterValidator(_column)]
CastType = Annotated[str, AfterValidator(_cast_type)]
# Metadata SQL, checked by `sql_policy` as the slot it fills (the tables a query reads are
# checked where the inputs are known: `catalog`).
SqlQuery = Annotated[str, AfterValidator(_query)]
SqlExpression = Annotated[str, AfterValidator(_expression)]
SqlNamedExpression = Annotated[str, AfterValidator(_named_expression)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutputShaping(_Config):
    """Settings every transformation type shares, applied to its result (seed 000's parameters)."""

    mapping: dict[ColumnName, ColumnName] = Field(
        default_factory=dict, description="Rename: source column -> target column."
    )
    casts: dict[ColumnName, CastType] = Field(
        default_factory=dict, description="Target column -> Spark SQL type (after mapping)."
    )
    spark_config: dict[str, str] = Field(
        default_factory=dict,
        description="Spark session settings for this asset only, restored afterwards.",
    )
    keep_profile: bool = Field(
        default=False,
        description="Profile each materialization (one more pass over the rows) and keep it "
        "as metric history in the store, beside what anomaly rules measure.",
    )

    @field_validator("mapping")
    @classmethod
    def _one_source_per_target(cls, mapping: dict[str, str]) -> dict[str, str]:
        # Two columns renamed to one name load fine but fail the DDZ write with Spark's
        # AMBIGUOUS_REFERENCE; Spark compares column names case-insensitively.
        first_source: dict[str, str] = {}
        for source, target in mapping.items():
            earlier = first_source.setdefault(target.lower(), source)
            if earlier != source:
                raise ValueError(
                    f"columns {earlier!r} and {source!r} are both mapped to {target!r}; a "
                    "target column can come from one source column only"
                )
        return mapping

    def result_columns(self) -> list[str] | None:
        """The result's column names before mapping, when the configuration alone tells them
        (some may be missing: Spark names computed columns itself); None when it does not."""
        return None

    @model_validator(mode="after")
    def _target_not_an_unmapped_column(self) -> OutputShaping:
        # Renaming `a` to `b` while the result keeps its own `b` gives two `b` columns: the
        # same AMBIGUOUS_REFERENCE at write time.
        columns = self.result_columns()
        if columns is None:
            return self
        renamed = {source.lower() for source in self.mapping}
        kept = {name.lower(): name for name in columns if name.lower() not in renamed}
        for source, target in self.mapping.items():
            if target.lower() in kept:
                raise ValueError(
                    f"mapping renames {source!r} to {target!r}, but the result already has a "
                    f"column {kept[target.lower()]!r} that is not renamed"
                )
        return self


class PropertiesSequenceConfig(OutputShaping):
    """Seed 000's pipeline: a `.properties` query file run in the order of a sequence file."""

    folder: Annotated[str, AfterValidator(_folder)]
    que_name: Annotated[str, AfterValidator(_file_name)]
    seq_name: Annotated[str, AfterValidator(_file_name)]
    table: str | None = Field(
        default=None, description="Target table; must match the output DataSet's TargetTable."
    )


class SqlConfig(OutputShaping):
    """One Spark SQL query over the inputs: DDZ inputs by DataSet name, CDZ inputs as
    `<source>.<dataset>` (`run_transformation` registers both as session views)."""

    query: SqlQuery = Field(min_length=1)


class FilterConfig(OutputShaping):
    input_dataset: str
    condition: SqlExpression = Field(min_length=1)


class SelectConfig(OutputShaping):
    input_dataset: str
    columns: list[SqlNamedExpression] = Field(
        min_length=1, description="Column names or Spark SQL expressions."
    )

    def result_columns(self) -> list[str]:
        return [name for name in map(_output_name, self.columns) if name]


class JoinConfig(OutputShaping):
    input_dataset: str
    second_dataset: str
    join_type: Literal["inner", "left", "right", "full", "left_semi", "left_anti", "cross"] = (
        "inner"
    )
    condition: SqlExpression | None = Field(
        default=None,
        description="Spark SQL condition using the aliases `a` (input) and `b` (second).",
    )
    # Not `on`: YAML 1.1 reads a bare `on:` key as the boolean true.
    join_columns: list[ColumnName] | None = Field(
        default=None, description="Equi-join column names present in both inputs."
    )

    @model_validator(mode="after")
    def _one_join_key(self) -> JoinConfig:
        if self.join_type != "cross" and (self.condition is None) == (self.join_columns is None):
            raise ValueError("give exactly one of 'condition' and 'join_columns'")
        return self


class AggregateConfig(OutputShaping):
    input_dataset: str
    groupby_columns: list[SqlNamedExpression] = Field(default_factory=list)
    agg_functions: dict[ColumnName, SqlExpression] = Field(
        min_length=1, description="Output column -> Spark SQL aggregate expression."
    )

    def result_columns(self) -> list[str]:
        grouped = [name for name in map(_output_name, self.groupby_columns) if name]
        return [*grouped, *self.agg_functions]


class IngestConfig(OutputShaping):
    """Seed 001's bronze load of one source DataSet: a database table (DataSource Type
    `database`, Location `schema.table`) or files in the lake (Type `file`, Format csv, json or
    parquet, Schema declared). LOAD_TIMESTAMP, SOURCE_SYSTEM and RUN_ID are added to each row."""

    input_dataset: str
    partition_column: ColumnName | None = Field(
        default=None, description="Integer or date column splitting the JDBC read."
    )
    lower_bound: int | None = None
    upper_bound: int | None = None
    num_partitions: int = Field(default=4, ge=1, le=64)
    fetchsize: int = Field(default=10_000, ge=1)
    watermark_column: ColumnName | None = Field(
        default=None,
        description="Incremental loads: only rows above the stored high mark, which advances "
        "once the load is written.",
    )
    options: dict[str, str] = Field(
        default_factory=dict, description="Spark reader options for files (sep, multiLine ...)."
    )


CONFIG_MODELS: dict[str, type[OutputShaping]] = {
    "properties_sequence": PropertiesSequenceConfig,
    "sql": SqlConfig,
    "filter": FilterConfig,
    "select": SelectConfig,
    "join": JoinConfig,
    "aggregate": AggregateConfig,
    "ingest": IngestConfig,
}


def describe_validation_error(error: ValidationError) -> str:
    """'field.sub: message; ...' for every problem pydantic found."""
    parts = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(root)"
        parts.append(f"{location}: {problem['msg']}")
    return "; ".join(parts)


def parse_json_object(text: str, where: str) -> dict[str, Any]:
    """Parse a JSON column; `where` names the row and column for the error message."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{where} is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise MetadataError(f"{where} must be a JSON object, got {type(value).__name__}")
    return value


def parse_typed_configuration(
    where: str, kind: str, type_name: str, configuration: str, models: dict[str, type[Model]]
) -> Model:
    """Validate a row's JSON Configuration against the model of its Type; errors say `where`."""
    model = models.get(type_name)
    if model is None:
        known = ", ".join(sorted(models))
        raise MetadataError(f"{where}: unknown {kind} Type {type_name!r} (known: {known})")
    raw = parse_json_object(configuration, f"{where}: Configuration")
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise MetadataError(
            f"{where}: Configuration ({type_name}) is invalid: {describe_validation_error(error)}"
        ) from error


def parse_transformation_config(
    transformation_id: int, transformation_type: str, configuration: str, name: str | None = None
) -> OutputShaping:
    """Validate Transformations.Configuration of one row against its type's model; errors
    name the row and, given `name`, the transformation."""
    return parse_typed_configuration(
        f"Transformations row {transformation_id}" + (f" ({name})" if name else ""),
        "transformation",
        transformation_type,
        configuration,
        CONFIG_MODELS,
    )
