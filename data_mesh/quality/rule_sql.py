"""Quality rules as Spark SQL: what a failing row is, and the SQL shown to users.

The predicate a row-level rule is evaluated with is the SQL text the UI shows, so what users
read is exactly what ran. NULLs fail only `not_null`: every other rule lets a NULL pass, like
SQL CHECK constraints and dbt's generic tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from data_mesh.catalog.models import QualityRuleModel
from data_mesh.catalog.rule_configs import (
    AcceptedValuesRule,
    AnomalyRule,
    CustomSqlRule,
    ExpressionRule,
    FreshnessRule,
    LengthRule,
    NotNullRule,
    RangeRule,
    ReferentialIntegrityRule,
    RegexRule,
    RowCountRule,
    SchemaRule,
    UniqueRule,
)
from data_mesh.spark.sql_text import literal, quote_identifier, string_literal

ROW_RULES = (
    NotNullRule,
    AcceptedValuesRule,
    RangeRule,
    RegexRule,
    LengthRule,
    ExpressionRule,
    ReferentialIntegrityRule,
)


def reference_flag_column(rule: QualityRuleModel) -> str:
    """Helper column: true when a row's value is found in a referential_integrity reference."""
    return f"__dq_ref_{rule.id}"


def duplicate_count_column(rule: QualityRuleModel) -> str:
    """Helper column holding how many rows share a `unique` rule's key (only when dropping)."""
    return f"__dq_dup_{rule.id}"


@dataclass(frozen=True)
class RuleSql:
    # Boolean Spark SQL over the checked rows: true for a failing row; None if the rule does
    # not judge single rows.
    predicate: str | None
    # The SQL shown in the check's metadata.
    shown: str


def _range_conditions(column: str, config: RangeRule | LengthRule, measure: str) -> list[str]:
    conditions = []
    if config.min is not None:
        inclusive = getattr(config, "min_inclusive", True)
        conditions.append(f"{measure} {'<' if inclusive else '<='} {literal(config.min)}")
    if config.max is not None:
        inclusive = getattr(config, "max_inclusive", True)
        conditions.append(f"{measure} {'>' if inclusive else '>='} {literal(config.max)}")
    return conditions


def _not_null_and(column: str, condition: str) -> str:
    return f"{column} IS NOT NULL AND ({condition})"


def _metric_sql(config: AnomalyRule) -> str:
    """The anomaly rule's metric as the SQL users read (the engine merges its parts per key)."""
    column = quote_identifier(config.column) if config.column else ""
    match config.metric:
        case "row_count":
            return "count(*)"
        case "null_share":
            return f"count_if({column} IS NULL) / count(*)"
        case "sum":
            return f"sum(CAST({column} AS DOUBLE))"
        case "mean":
            return f"avg(CAST({column} AS DOUBLE))"
        case "distinct_count":
            return f"approx_count_distinct({column}, 0.02)"
    return (
        f"(unix_seconds(current_timestamp()) - unix_seconds(max(CAST({column} AS TIMESTAMP)))) "
        "/ 3600"
    )


def rule_sql(rule: QualityRuleModel) -> RuleSql:
    """The failing-row predicate (row-level rules) and the SQL users see, for any rule type."""
    config = rule.config
    dataset = quote_identifier(rule.dataset.name)
    match config:
        case NotNullRule():
            column = quote_identifier(config.column)
            return RuleSql(f"{column} IS NULL", f"{column} IS NULL")
        case AcceptedValuesRule():
            column = quote_identifier(config.column)
            values = ", ".join(literal(v) for v in config.values)
            predicate = _not_null_and(column, f"{column} NOT IN ({values})")
            return RuleSql(predicate, predicate)
        case RangeRule():
            column = quote_identifier(config.column)
            predicate = _not_null_and(
                column, " OR ".join(_range_conditions(column, config, column))
            )
            return RuleSql(predicate, predicate)
        case RegexRule():
            column = quote_identifier(config.column)
            pattern = f"^(?:{config.pattern})$" if config.full_match else config.pattern
            predicate = _not_null_and(
                column, f"NOT (CAST({column} AS STRING) RLIKE {string_literal(pattern)})"
            )
            return RuleSql(predicate, predicate)
        case LengthRule():
            column = quote_identifier(config.column)
            measure = f"length(CAST({column} AS STRING))"
            predicate = _not_null_and(
                column, " OR ".join(_range_conditions(column, config, measure))
            )
            return RuleSql(predicate, predicate)
        case ExpressionRule():
            # NULL passes, as in a CHECK constraint.
            predicate = f"NOT coalesce(({config.expression}), TRUE)"
            return RuleSql(predicate, f"NOT ({config.expression})")
        case ReferentialIntegrityRule():
            column = quote_identifier(config.column)
            assert rule.reference is not None, "resolved by the catalog"
            shown = _not_null_and(
                column,
                f"{column} NOT IN (SELECT {quote_identifier(config.reference_column)} "
                f"FROM {rule.reference.sql_name})",
            )
            flag = quote_identifier(reference_flag_column(rule))
            return RuleSql(_not_null_and(column, f"NOT {flag}"), shown)
        case UniqueRule():
            keys = ", ".join(quote_identifier(c) for c in config.columns)
            not_null = " AND ".join(f"{quote_identifier(c)} IS NOT NULL" for c in config.columns)
            shown = (
                f"SELECT {keys}, count(*) FROM {dataset} WHERE {not_null} "
                f"GROUP BY {keys} HAVING count(*) > 1"
            )
            flag = quote_identifier(duplicate_count_column(rule))
            return RuleSql(f"{not_null} AND {flag} > 1", shown)
        case RowCountRule():
            bounds = []
            if config.min is not None:
                bounds.append(f"count(*) >= {config.min}")
            if config.max is not None:
                bounds.append(f"count(*) <= {config.max}")
            return RuleSql(None, f"SELECT {' AND '.join(bounds)} FROM {dataset}")
        case FreshnessRule():
            column = quote_identifier(config.column)
            return RuleSql(
                None,
                f"SELECT (unix_seconds(current_timestamp()) - unix_seconds(max(CAST({column} "
                f"AS TIMESTAMP)))) / 3600 <= {config.max_age_hours:g} FROM {dataset}",
            )
        case SchemaRule():
            expected = ", ".join(f"{name} {type_}" for name, type_ in config.columns.items())
            return RuleSql(None, f"DESCRIBE {dataset} -- expected: {expected}")
        case CustomSqlRule():
            return RuleSql(None, config.query)
        case AnomalyRule():
            return RuleSql(None, f"SELECT {_metric_sql(config)} FROM {dataset}")
    raise AssertionError(f"no SQL for rule type {rule.type}")
