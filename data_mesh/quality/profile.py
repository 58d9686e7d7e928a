"""Profile a dataset in one Spark pass and suggest quality rules from what it shows.

Like Deequ's ColumnProfiler and DQX's profiler, but in a single aggregation: per column the null
share, an approximate distinct count (HyperLogLog++, as anomaly rules measure it), min/max,
length range, the values of low-cardinality columns, and a format guess. Suggestions are
verified by evaluating them on the same data with the rule engine; one that fails there (an
approximate count that misled) is reported, never suggested.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.catalog.models import DataSetModel, QualityRuleModel
from data_mesh.catalog.rule_configs import AnomalyMetric, parse_rule_config
from data_mesh.quality.evaluate import evaluate_rules
from data_mesh.quality.metrics import metric

# Columns with at most this many distinct values get their values listed (accepted_values).
TOP_VALUES = 12
# The frequent-items sketch tracks this many values: exact counts below it.
TOP_TRACKED = 1024
# A column whose distinct estimate reaches this share of its rows is a key candidate.
KEY_SHARE = 0.98
# Freshness is suggested only for data this recent (older data is history, not a feed).
FRESH_DAYS = 31
# Named formats of text columns, tried in order; the first every value matches is the guess.
TEXT_FORMATS: tuple[tuple[str, str], ...] = (
    ("date yyyy-MM-dd", r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
    (
        "timestamp yyyy-MM-dd HH:mm[:ss]",
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?",
    ),
    ("integer text", r"-?[0-9]+"),
    ("decimal text", r"-?[0-9]+\.[0-9]+"),
    ("uuid", r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
    ("email", r"[^@ ]+@[^@ ]+\.[^@ ]+"),
)
# A value's shape: runs of upper-case letters, lower-case letters and digits collapsed to one
# class each ("user_123" -> "a_9"); at most this many shapes make a code format.
SHAPES = 3
SHAPE_CLASSES = {"A": "[A-Z]+", "a": "[a-z]+", "9": "[0-9]+"}

_NUMERIC = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.DecimalType,
)
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_TEMPORAL = (T.DateType, T.TimestampType, T.TimestampNTZType)


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    type: str
    rows: int
    nulls: int
    distinct: int | None
    minimum: Any = None
    maximum: Any = None
    min_length: int | None = None
    max_length: int | None = None
    mean: float | None = None
    total: float | None = None
    # Every value with its count, when the column has at most TOP_VALUES distinct values.
    values: tuple[tuple[Any, int], ...] = ()
    format: str | None = None
    # A Java regex every non-NULL value fully matches (from the format guess).
    pattern: str | None = None
    age_hours: float | None = None
    # A personal-data column: its values (min, max, top values) are neither read nor shown.
    pii: bool = False

    @property
    def null_share(self) -> float | None:
        return self.nulls / self.rows if self.rows else None


@dataclass(frozen=True)
class DatasetProfile:
    dataset: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    profiled_at: dt.datetime

    def metrics(self) -> dict[str, float | None]:
        """The profile as metric history, named as anomaly rules name their metrics."""
        found: dict[str, float | None] = {"row_count": float(self.rows)}
        for column in self.columns:
            found[f"null_share:{column.name}"] = column.null_share
            if column.distinct is not None:
                found[f"distinct_count:{column.name}"] = float(column.distinct)
            if column.mean is not None:
                found[f"mean:{column.name}"] = column.mean
                found[f"sum:{column.name}"] = column.total
            if column.age_hours is not None:
                found[f"freshness_lag_hours:{column.name}"] = column.age_hours
        return found


@dataclass(frozen=True)
class Suggestion:
    name: str
    type: str
    configuration: dict[str, Any]
    evidence: str


@dataclass(frozen=True)
class Suggestions:
    kept: tuple[Suggestion, ...]
    # Suggestions the data itself failed, with the rule's observation.
    rejected: tuple[tuple[Suggestion, str], ...] = field(default=())


def _shape(value: Column) -> Column:
    shape = F.regexp_replace(value, "[A-Z]+", "A")
    shape = F.regexp_replace(shape, "[a-z]+", "a")
    return F.regexp_replace(shape, "[0-9]+", "9")


def _shape_pattern(shapes: Sequence[str]) -> str:
    """A regex matching every shape: each class run as its class, other characters escaped."""

    def one(shape: str) -> str:
        return "".join(SHAPE_CLASSES.get(ch) or re.escape(ch) for ch in shape)

    parts = [one(s) for s in sorted(shapes)]
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _aggregates(
    frame: DataFrame, now: dt.datetime, pii: set[str]
) -> tuple[list[Column], list[Column]]:
    """The profile's aggregates over rows, and the final expressions over them; no value of a
    `pii` column (lower-case names) is collected."""
    over_rows: list[Column] = []
    finals: list[Column] = []
    for index, field_ in enumerate(frame.schema.fields):
        kind = field_.dataType
        value = F.col(f"`{field_.name}`")
        prefix = f"__p{index}"
        metrics: list[AnomalyMetric] = ["null_share", "distinct_count"]
        if isinstance(kind, _NUMERIC):
            metrics.append("mean")
            metrics.append("sum")
        if isinstance(kind, _TEMPORAL):
            metrics.append("freshness_lag_hours")
        for name in metrics:
            measured = metric(name, field_.name, f"{prefix}_{name}", now)
            over_rows += [p.over_rows.alias(p.name) for p in measured.partials]
            finals.append(measured.final.alias(f"{prefix}_{name}"))
        personal = field_.name.lower() in pii
        if not personal and isinstance(kind, (*_NUMERIC, *_TEMPORAL, T.StringType, T.BooleanType)):
            over_rows += [F.min(value).alias(f"{prefix}_min"), F.max(value).alias(f"{prefix}_max")]
            finals += [F.col(f"{prefix}_min"), F.col(f"{prefix}_max")]
        if not personal and isinstance(kind, (*_INTEGRAL, T.StringType, T.BooleanType)):
            top = F.expr(f"approx_top_k(`{field_.name}`, {TOP_VALUES + 1}, {TOP_TRACKED})")
            over_rows.append(top.alias(f"{prefix}_top"))
            finals.append(F.col(f"{prefix}_top"))
        if isinstance(kind, T.StringType):
            length = F.length(value)
            over_rows += [
                F.min(length).alias(f"{prefix}_minlen"),
                F.max(length).alias(f"{prefix}_maxlen"),
                F.expr(f"approx_top_k(__shape{index}, {SHAPES + 1}, {TOP_TRACKED})").alias(
                    f"{prefix}_shapes"
                ),
            ]
            over_rows += [
                F.count_if(value.rlike(f"^(?:{pattern})$")).alias(f"{prefix}_fmt{i}")
                for i, (_, pattern) in enumerate(TEXT_FORMATS)
            ]
            finals += [F.col(f"{prefix}_{n}") for n in ("minlen", "maxlen", "shapes")]
            finals += [F.col(f"{prefix}_fmt{i}") for i in range(len(TEXT_FORMATS))]
    return over_rows, finals


def _plain(value: Any, rounding: Any = None) -> Any:
    """A value as YAML and rule literals take it: dates as ISO text, decimals as numbers (a
    fraction rounded by `rounding`, math.floor or math.ceil, so a bound still holds every
    value: a float cannot hold every decimal), and no NaN or infinity (no bound, no metric)."""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if value % 1 == 0:
            return int(value)
        exact = float(value)
        # Spark compares a decimal with a double bound as doubles: a value the double's
        # shortest text gives back exactly is safe; a longer one is rounded outwards.
        return rounding(exact) if rounding and Decimal(repr(exact)) != value else exact
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _present(items: list[Any] | None) -> list[Any]:
    """The frequent items of a column without NULL, which approx_top_k counts as an item."""
    return [item for item in items or [] if item["item"] is not None]


def profile_frame(
    frame: DataFrame,
    dataset: str,
    now: dt.datetime | None = None,
    pii_columns: Sequence[str] = (),
) -> DatasetProfile:
    """Profile every column of `frame` in one aggregation; of `pii_columns` only counts,
    lengths and formats are kept, never values."""
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    shaped = frame.select(
        "*",
        *[
            _shape(F.col(f"`{f.name}`")).alias(f"__shape{i}")
            for i, f in enumerate(frame.schema.fields)
            if isinstance(f.dataType, T.StringType)
        ],
    )
    pii = {c.lower() for c in pii_columns}
    over_rows, finals = _aggregates(frame, now, pii)
    row = (
        shaped.agg(F.count(F.lit(1)).alias("__rows"), *over_rows).select("__rows", *finals).first()
    )
    assert row is not None
    total = int(row["__rows"])
    columns = []
    got = row.asDict()
    for index, field_ in enumerate(frame.schema.fields):
        prefix = f"__p{index}"
        null_share = got[f"{prefix}_null_share"]
        nulls = round(null_share * total) if null_share is not None else 0
        present = total - nulls
        top = _present(got.get(f"{prefix}_top"))
        values: tuple[tuple[Any, int], ...] = ()
        if top and len(top) <= TOP_VALUES and sum(t["count"] for t in top) == present:
            values = tuple((_plain(t["item"]), int(t["count"])) for t in top)
        fmt, pattern = _format(field_, got, prefix, present)
        distinct = got[f"{prefix}_distinct_count"]
        columns.append(
            ColumnProfile(
                name=field_.name,
                type=field_.dataType.simpleString(),
                rows=total,
                nulls=nulls,
                distinct=None if distinct is None else int(distinct),
                minimum=_plain(got.get(f"{prefix}_min"), math.floor),
                maximum=_plain(got.get(f"{prefix}_max"), math.ceil),
                min_length=got.get(f"{prefix}_minlen"),
                max_length=got.get(f"{prefix}_maxlen"),
                mean=_finite(got.get(f"{prefix}_mean")),
                total=_finite(got.get(f"{prefix}_sum")),
                values=values,
                format=fmt,
                pattern=pattern,
                age_hours=_finite(got.get(f"{prefix}_freshness_lag_hours")),
                pii=field_.name.lower() in pii,
            )
        )
    return DatasetProfile(dataset, total, tuple(columns), now)


def _format(
    field_: T.StructField, got: Mapping[str, Any], prefix: str, present: int
) -> tuple[str | None, str | None]:
    """The format guess of a column and, for text, a regex every value matches."""
    if isinstance(field_.dataType, _TEMPORAL):
        return field_.dataType.simpleString(), None
    if not isinstance(field_.dataType, T.StringType) or present == 0:
        return None, None
    for i, (name, pattern) in enumerate(TEXT_FORMATS):
        if got[f"{prefix}_fmt{i}"] == present:
            return name, pattern
    shapes = _present(got[f"{prefix}_shapes"])
    if 0 < len(shapes) <= SHAPES and sum(s["count"] for s in shapes) == present:
        pattern = _shape_pattern([s["item"] for s in shapes])
        return f"code like {pattern}", pattern
    return None, None


def _rule_name(column: str, kind: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"{column.lower()}_{kind}")[:120]


def _count(n: int) -> str:
    return f"{n:,}"


def suggest_rules(profile: DatasetProfile) -> list[Suggestion]:
    """Rules the profile supports, each with the evidence it rests on."""
    rows = profile.rows
    found: list[Suggestion] = []
    if rows == 0:
        return found

    def add(column: ColumnProfile, kind: str, config: dict[str, Any], evidence: str) -> None:
        name = _rule_name(column.name, kind)
        taken = {s.name for s in found}
        # Columns "a-b" and "a_b" give one name: the second gets a number.
        name = next(
            candidate
            for candidate in (name, *(f"{name}_{i}" for i in range(2, len(found) + 3)))
            if candidate not in taken
        )
        found.append(Suggestion(name, kind, config, evidence))

    found.append(
        Suggestion(
            "row_count_anomaly",
            "anomaly",
            {"metric": "row_count"},
            f"{_count(rows)} rows now; judged against the history of row counts once there is one",
        )
    )
    for column in profile.columns:
        name = column.name
        if column.nulls == 0:
            add(column, "not_null", {"column": name}, f"no NULL in {_count(rows)} rows")
        key = (
            column.nulls == 0
            and column.distinct is not None
            and column.distinct >= KEY_SHARE * rows
            and column.type in ("tinyint", "smallint", "int", "bigint", "string")
        )
        if key:
            add(
                column,
                "unique",
                {"columns": [name]},
                f"about {_count(column.distinct or 0)} distinct values in {_count(rows)} rows "
                "(a key candidate)",
            )
        present = rows - column.nulls
        if column.values and len(column.values) < present and not key:
            shown = ", ".join(f"{v} ({_count(c)})" for v, c in column.values)
            add(
                column,
                "accepted_values",
                {"column": name, "values": sorted(v for v, _ in column.values)},
                f"only {len(column.values)} distinct value(s): {shown}",
            )
            continue
        if column.mean is not None and column.minimum is not None:
            add(
                column,
                "range",
                {"column": name, "min": column.minimum, "max": column.maximum},
                f"values from {column.minimum} to {column.maximum}",
            )
        elif column.type == "date" and column.minimum is not None:
            # No upper bound: tomorrow's rows are newer. Freshness watches that end.
            add(
                column,
                "range",
                {"column": name, "min": column.minimum},
                f"no value before {column.minimum}",
            )
        if column.min_length is not None and column.max_length is not None:
            add(
                column,
                "length",
                {"column": name, "min": column.min_length, "max": column.max_length},
                f"lengths from {column.min_length} to {column.max_length}",
            )
        if column.pattern is not None:
            add(
                column,
                "regex",
                {"column": name, "pattern": column.pattern},
                f"every value is {column.format}",
            )
        if column.age_hours is not None and 0 <= column.age_hours <= FRESH_DAYS * 24:
            # The next whole day after the newest value's age, plus a day of slack.
            hours = (math.ceil(column.age_hours / 24) + 1) * 24
            add(
                column,
                "freshness",
                {"column": name, "max_age_hours": hours},
                f"newest value {column.age_hours:.1f} h before the profile",
            )
    return found


def rule_models(dataset: DataSetModel, suggestions: Sequence[Suggestion]) -> list[QualityRuleModel]:
    """Suggestions as the catalog's rules (numbered in order: they are not rows of the store)."""
    return [
        QualityRuleModel(
            id=index,
            name=s.name,
            description=s.evidence,
            type=s.type,
            config=parse_rule_config(index, s.name, s.type, json.dumps(s.configuration)),
            dataset=dataset,
        )
        for index, s in enumerate(suggestions, start=1)
    ]


def verified_suggestions(
    spark: SparkSession, frame: DataFrame, dataset: DataSetModel, suggestions: Sequence[Suggestion]
) -> Suggestions:
    """Keep the suggestions that pass on `frame`: one evaluation of all of them."""
    models = rule_models(dataset, suggestions)
    report = evaluate_rules(spark, frame, models, sample_size=0)
    passed = {o.rule.name: o for o in report.outcomes}
    kept = tuple(s for s in suggestions if passed[s.name].passed)
    rejected = tuple((s, passed[s.name].observed) for s in suggestions if not passed[s.name].passed)
    return Suggestions(kept, rejected)


def suggestions_yaml(
    dataset: str, profile: DatasetProfile, suggestions: Sequence[Suggestion], source: str
) -> str:
    """A product-file fragment: `quality_rules:` with every suggestion and its evidence."""
    header = (
        f"# Quality rules suggested by `data-mesh quality profile {dataset}` on "
        f"{profile.profiled_at:%Y-%m-%d %H:%M} UTC,\n# from {_count(profile.rows)} rows of "
        f"{source}.\n# Suggestions only: nothing here is applied. Review each rule and copy the "
        "ones you want\n# into the `quality_rules:` of the product's product.yaml.\n"
    )
    rules = [
        {
            "name": s.name,
            "dataset": dataset,
            "type": s.type,
            "description": f"Suggested from a profile: {s.evidence}.",
            "configuration": s.configuration,
        }
        for s in suggestions
    ]
    return header + yaml.safe_dump({"quality_rules": rules}, sort_keys=False, allow_unicode=True)
