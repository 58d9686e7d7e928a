"""Typed models of the JSON in DataQualityRules.Configuration, validated per rule type.

Every rule shares `RuleSettings` (severity, action, blocking, threshold); the rest depends on
its Type. Rules are compiled to Spark SQL by `data_mesh.quality`; this module only validates.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from data_mesh.catalog.transformation_configs import (
    CastType,
    ColumnName,
    SqlExpression,
    SqlQuery,
    parse_typed_configuration,
)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _java_compatible_regex(pattern: str) -> str:
    # Spark uses Java regexes; Python's `re` accepts nearly the same syntax, so a pattern it
    # rejects is reported here instead of failing the first run.
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
    return pattern


Severity = Annotated[Literal["WARN", "ERROR"], BeforeValidator(_upper)]
Action = Annotated[Literal["warn", "drop", "fail"], BeforeValidator(_lower)]
Literal_ = str | int | float | bool


class RuleSettings(BaseModel):
    """What every rule has: how bad a failure is and what happens to the failing rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity = Field(default="ERROR", description="WARN or ERROR.")
    action: Action = Field(
        default="warn",
        description="warn: keep rows; drop: quarantine failing rows and load the rest; "
        "fail: a failed rule stops the load (like DLT's expect_or_fail).",
    )
    blocking: bool = Field(
        default=False,
        description="A failed ERROR rule stops the DDZ write and skips downstream assets.",
    )
    max_failing_rows: int | None = Field(default=None, ge=0)
    max_failing_percent: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _coherent(self) -> RuleSettings:
        if self.max_failing_rows is not None and self.max_failing_percent is not None:
            raise ValueError("give at most one of 'max_failing_rows' and 'max_failing_percent'")
        if self.blocking and self.severity != "ERROR":
            raise ValueError("'blocking' applies to severity ERROR only")
        if self.action == "fail" and self.severity != "ERROR":
            raise ValueError("action 'fail' needs severity ERROR")
        return self

    @property
    def stops_load(self) -> bool:
        """Whether a failure of this rule keeps the load out of the DDZ table."""
        return self.blocking or self.action == "fail"

    @property
    def threshold(self) -> str:
        if self.max_failing_percent is not None:
            return f"<= {self.max_failing_percent:g}% failing rows"
        return f"<= {self.max_failing_rows or 0} failing rows"


class _RowRule(RuleSettings):
    """A rule that judges each row on its own (evaluated in the dataset's single pass)."""


def _check_bounds(low: float | int | None, high: float | int | None) -> None:
    if low is None and high is None:
        raise ValueError("give 'min', 'max' or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"'min' ({low}) is greater than 'max' ({high})")


class _WholeDatasetRule(RuleSettings):
    """A rule on the dataset as a whole: pass or fail, no failing rows to drop or threshold."""

    @property
    def threshold(self) -> str:
        return "the whole dataset passes"

    @model_validator(mode="after")
    def _no_row_options(self) -> _WholeDatasetRule:
        if self.action == "drop":
            raise ValueError("action 'drop' applies to rules that judge single rows only")
        if self.max_failing_rows is not None or self.max_failing_percent is not None:
            raise ValueError("a failing-rows threshold does not apply to this rule type")
        return self


class NotNullRule(_RowRule):
    column: ColumnName


class UniqueRule(_RowRule):
    columns: list[ColumnName] = Field(min_length=1)


class AcceptedValuesRule(_RowRule):
    column: ColumnName
    values: list[Literal_] = Field(min_length=1)


class RangeRule(_RowRule):
    column: ColumnName
    min: int | float | str | None = None
    max: int | float | str | None = None
    min_inclusive: bool = True
    max_inclusive: bool = True

    @model_validator(mode="after")
    def _bounded(self) -> RangeRule:
        numbers = all(isinstance(b, int | float | None) for b in (self.min, self.max))
        if numbers:
            _check_bounds(self.min, self.max)  # type: ignore[arg-type]
        elif self.min is None and self.max is None:
            raise ValueError("give 'min', 'max' or both")
        return self


class RegexRule(_RowRule):
    column: ColumnName
    pattern: Annotated[str, AfterValidator(_java_compatible_regex)] = Field(min_length=1)
    full_match: bool = Field(default=True, description="Anchor the pattern to the whole value.")


class LengthRule(_RowRule):
    column: ColumnName
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> LengthRule:
        _check_bounds(self.min, self.max)
        return self


class ExpressionRule(_RowRule):
    # Wrapped as `NOT coalesce((<expression>), TRUE)`: one expression, no comment, no subquery.
    expression: SqlExpression = Field(
        min_length=1, description="Spark SQL boolean; rows where it is false fail (NULL passes)."
    )


class ReferentialIntegrityRule(_RowRule):
    column: ColumnName
    reference_dataset: str = Field(
        min_length=1, description="A DataSet name, or `<source>.<dataset>` when ambiguous."
    )
    reference_column: ColumnName


class RowCountRule(_WholeDatasetRule):
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> RowCountRule:
        _check_bounds(self.min, self.max)
        return self


class FreshnessRule(_WholeDatasetRule):
    column: ColumnName
    max_age_hours: float = Field(gt=0)


class SchemaRule(_WholeDatasetRule):
    columns: dict[ColumnName, CastType] = Field(
        min_length=1, description="Expected column -> Spark SQL type."
    )
    allow_extra_columns: bool = False


AnomalyMetric = Literal[
    "row_count", "null_share", "sum", "mean", "distinct_count", "freshness_lag_hours"
]


class AnomalyRule(_WholeDatasetRule):
    """This run's metric against the DataSet's own history in the store: outside
    median +/- max_deviations x MAD (scaled to a standard deviation) of the last `history_runs`
    values is an anomaly. Judges only with `min_history` past values."""

    severity: Severity = Field(default="WARN", description="WARN (default) or ERROR.")
    metric: AnomalyMetric
    column: ColumnName | None = Field(
        default=None, description="The measured column; not for row_count."
    )
    history_runs: int = Field(default=30, ge=3, le=1000)
    # 10 runs and 4 deviations: on normal noise about 1 run in 120 is flagged while the
    # history is short, fewer with 30 (a MAD of few values is itself noisy).
    min_history: int = Field(default=10, ge=3)
    max_deviations: float = Field(default=4.0, gt=0)
    min_relative_band: float = Field(
        default=0.0,
        ge=0,
        description="Smallest half-width of the band, as a share of the median's magnitude "
        "(0.01 = 1%): a history that never varied would flag any change otherwise.",
    )

    @model_validator(mode="after")
    def _metric_column(self) -> AnomalyRule:
        if self.metric == "row_count" and self.column is not None:
            raise ValueError("metric 'row_count' takes no 'column'")
        if self.metric != "row_count" and self.column is None:
            raise ValueError(f"metric {self.metric!r} needs a 'column'")
        if self.min_history > self.history_runs:
            raise ValueError(
                f"'min_history' ({self.min_history}) is greater than 'history_runs' "
                f"({self.history_runs})"
            )
        return self

    @property
    def metric_key(self) -> str:
        """The metric's name in the history: `row_count` or `<metric>:<column>`."""
        return self.metric if self.column is None else f"{self.metric}:{self.column}"

    @property
    def threshold(self) -> str:
        return f"within median +/- {self.max_deviations:g} MAD of the last {self.history_runs} runs"


class CustomSqlRule(RuleSettings):
    """A query over the dataset (by its DataSet name) that must return no rows."""

    # Tables: the checked DataSet only (`catalog` checks them).
    query: SqlQuery = Field(min_length=1)

    @model_validator(mode="after")
    def _no_drop(self) -> CustomSqlRule:
        if self.action == "drop":
            raise ValueError("action 'drop' applies to rules that judge single rows only")
        return self


RULE_MODELS: dict[str, type[RuleSettings]] = {
    "not_null": NotNullRule,
    "unique": UniqueRule,
    "accepted_values": AcceptedValuesRule,
    "range": RangeRule,
    "regex": RegexRule,
    "length": LengthRule,
    "expression": ExpressionRule,
    "referential_integrity": ReferentialIntegrityRule,
    "row_count": RowCountRule,
    "freshness": FreshnessRule,
    "schema": SchemaRule,
    "custom_sql": CustomSqlRule,
    "anomaly": AnomalyRule,
}


def rule_columns(config: RuleSettings) -> list[str]:
    """Columns of the checked dataset a rule reads (to check they exist)."""
    match config:
        case UniqueRule():
            return list(config.columns)
        case (
            NotNullRule()
            | AcceptedValuesRule()
            | RangeRule()
            | RegexRule()
            | LengthRule()
            | ReferentialIntegrityRule()
            | FreshnessRule()
        ):
            return [config.column]
        case AnomalyRule(column=str(column)):
            return [column]
        case _:
            return []


def parse_rule_config(rule_id: int, name: str, rule_type: str, configuration: str) -> RuleSettings:
    """Validate DataQualityRules.Configuration of one row against its type's model."""
    return parse_typed_configuration(
        f"DataQualityRules row {rule_id} ({name})", "rule", rule_type, configuration, RULE_MODELS
    )
