"""Evaluate a dataset's quality rules on the DataFrame that produced it, in one pass.

Like Deequ's AnalysisRunner: every rule that judges single rows (and row_count, freshness)
becomes one aggregate of a single `agg(...)` over the data; `unique` needs one grouping job per
rule and `custom_sql` its own query. Sample failing rows are fetched only for failing rules.
Nothing here knows Dagster: the factories turn a `QualityReport` into asset check results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.models import QualityRuleModel
from data_mesh.catalog.rule_configs import (
    AnomalyRule,
    CustomSqlRule,
    FreshnessRule,
    ReferentialIntegrityRule,
    RowCountRule,
    SchemaRule,
    UniqueRule,
    rule_columns,
)
from data_mesh.quality.anomaly import history_markdown, judge
from data_mesh.quality.metrics import Metric, metric
from data_mesh.quality.rule_sql import (
    ROW_RULES,
    duplicate_count_column,
    reference_flag_column,
    rule_sql,
)
from data_mesh.settings.secrets import MASK

# Largest referential_integrity reference (rows) looked up by broadcast.
BROADCAST_MAX_KEYS = 1_000_000
ROWS = "__dq_rows"
# Columns a quarantined row carries besides its own.
QUARANTINE_COLUMNS = ("dq_rule", "dq_rule_id", "dq_reason", "dq_load_id", "dq_quarantined_at")


class QualityRuleError(DataMeshError):
    """A rule that cannot be evaluated; the message names the rule row and the cause."""


@dataclass(frozen=True)
class RuleOutcome:
    rule: QualityRuleModel
    passed: bool
    total_rows: int
    # Rows that broke the rule; None for rules on the dataset as a whole.
    failing_rows: int | None
    observed: str
    sql: str
    samples: tuple[dict[str, Any], ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    # Markdown for the UI (an anomaly rule's history), if the rule has any.
    markdown: str | None = None

    @property
    def failing_percent(self) -> float | None:
        if self.failing_rows is None:
            return None
        return 100.0 * self.failing_rows / self.total_rows if self.total_rows else 0.0

    @property
    def stops_load(self) -> bool:
        return not self.passed and self.rule.config.stops_load


@dataclass(frozen=True)
class QualityReport:
    outcomes: tuple[RuleOutcome, ...]
    total_rows: int
    # The rows to load: all of them, or those no `drop` rule rejected.
    clean: DataFrame
    # Rows `drop` rules rejected, one per (row, rule), with QUARANTINE_COLUMNS; None if no rule
    # drops rows.
    quarantine: DataFrame | None
    quarantined_rows: int
    # What anomaly rules measured, by metric name (`row_count`, `null_share:<column>`, ...).
    metrics: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def load_stopped(self) -> bool:
        return any(o.stops_load for o in self.outcomes)


def _where(rule: QualityRuleModel) -> str:
    return f"DataQualityRules row {rule.id} ({rule.name})"


def check_rule_columns(frame: DataFrame, rules: Sequence[QualityRuleModel]) -> None:
    """Every column a rule names exists in the computed DataFrame (Spark matches ignoring case)."""
    present = {c.lower() for c in frame.columns}
    for rule in rules:
        missing = [c for c in rule_columns(rule.config) if c.lower() not in present]
        if missing:
            raise QualityRuleError(
                f"{_where(rule)}: column {', '.join(map(repr, missing))} is not in DataSet "
                f"{rule.dataset.name!r} (columns: {', '.join(frame.columns)})"
            )


def _reference_lookup(rule: QualityRuleModel, references: Mapping[int, DataFrame]) -> DataFrame:
    """A referential_integrity rule's reference rows with a key, to look values up in.

    The lookup is an EXISTS subquery (an existence join): no distinct keys to compute first,
    and a reference with repeated keys never multiplies the checked rows.
    """
    config = rule.config
    assert isinstance(config, ReferentialIntegrityRule) and rule.reference is not None
    reference = references.get(rule.reference.id)
    if reference is None:
        raise QualityRuleError(f"{_where(rule)}: reference DataSet was not provided")
    try:
        keys = reference.select(F.col(config.reference_column).alias(_lookup_key(rule))).where(
            F.col(_lookup_key(rule)).isNotNull()
        )
        # A small reference (the usual dimension) is broadcast, so the checked rows are not
        # shuffled; a big one is joined by shuffle, never collected to the driver. Its row count
        # bounds its distinct keys and is cheap (Parquet footers); it is asked once per rule.
        return F.broadcast(keys) if reference.count() <= BROADCAST_MAX_KEYS else keys
    except PySparkException as error:
        raise QualityRuleError(
            f"{_where(rule)}: cannot look up {config.column!r} in "
            f"{rule.reference.name}.{config.reference_column}: {error}"
        ) from error


def _lookup_key(rule: QualityRuleModel) -> str:
    return f"__dq_key_{rule.id}"


def _with_helper_columns(
    frame: DataFrame, rules: Sequence[QualityRuleModel], lookups: Mapping[int, DataFrame]
) -> DataFrame:
    """Add the columns `rules` need: a found flag per referential_integrity rule (its reference
    rows in `lookups`), a duplicate count per `unique` rule (a window: only for rules that
    drop rows)."""
    for rule in rules:
        config = rule.config
        if isinstance(config, ReferentialIntegrityRule):
            found = lookups[rule.id].where(F.col(_lookup_key(rule)) == F.col(config.column).outer())
            frame = frame.withColumn(reference_flag_column(rule), found.exists())
        elif isinstance(config, UniqueRule):
            window = Window.partitionBy(*config.columns)
            frame = frame.withColumn(duplicate_count_column(rule), F.count(F.lit(1)).over(window))
    return frame


# Physical operators (Spark's classes) of a DataFrame that is files read as they are, cheap to
# scan again; a scan must be among them.
_SCANS = frozenset({"FileSourceScanExec", "BatchScanExec"})
_PLAIN_SCAN_OPERATORS = _SCANS | {
    "ColumnarToRowExec",
    "ProjectExec",
    "FilterExec",
    "WholeStageCodegenExec",
    "InputAdapter",
}


def _operators(node: Any) -> Iterator[str]:
    """The class names of a physical plan's nodes (walked, not printed: printing a wide plan
    makes Spark warn that it truncated it)."""
    yield str(node.getClass().getSimpleName())
    children = node.children()
    for index in range(children.size()):
        yield from _operators(children.apply(index))


def _cheap_to_reread(frame: DataFrame) -> bool:
    """True if `frame` only reads files (with projections and filters): no join, aggregate,
    Python function or in-memory data to compute again. False if Spark cannot tell: Spark
    Connect has no access to the plan, which PySpark only exposes through its JVM handle (no
    public API gives a physical plan's operators)."""
    try:
        operators = set(_operators(frame._jdf.queryExecution().sparkPlan()))
    except Exception:  # Spark Connect, or an internal API that changed: fold.
        return False
    return operators <= _PLAIN_SCAN_OPERATORS and bool(operators & _SCANS)


def _all_present(columns: Sequence[str]) -> Column:
    present = F.lit(True)
    for column in columns:
        present = present & F.col(column).isNotNull()
    return present


def _most_duplicated(keys: Sequence[str], duplicated: Column, count_column: str) -> Column:
    """The key (with its row count) that occurs most often among duplicated keys."""
    key = F.struct(*[F.col(k) for k in keys], F.col(count_column).alias("rows"))
    return F.max_by(F.when(duplicated, key), F.when(duplicated, F.col(count_column)))


def _predicate(rule: QualityRuleModel) -> Column | None:
    predicate = rule_sql(rule).predicate
    return None if predicate is None else F.coalesce(F.expr(predicate), F.lit(False))


def _analyzed(frame: DataFrame, expressions: Sequence[tuple[QualityRuleModel, Column]]) -> None:
    """Let Spark analyze the rules' expressions now, so an error names its rule. All at once
    first (each analysis of a big plan costs); one by one only to find the culprit."""
    try:
        frame.select(*[c.alias(f"x{i}") for i, (_, c) in enumerate(expressions)]).schema  # noqa: B018
        return
    except PySparkException:
        pass
    for rule, column in expressions:
        try:
            frame.select(column.alias("x")).schema  # noqa: B018 - schema forces analysis
        except PySparkException as error:
            raise QualityRuleError(
                f"{_where(rule)}: Spark cannot evaluate the rule: {error}"
            ) from error


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal | dt.date | dt.datetime):
        return str(value)
    return repr(value)


def masked_samples(
    rows: Sequence[Row], pii_columns: Sequence[str], columns: Sequence[str]
) -> tuple[dict[str, Any], ...]:
    """Rows as JSON-safe dicts; values of PII columns are replaced by a mask."""
    pii = {c.lower() for c in pii_columns}
    return tuple(
        {
            name: (MASK if name.lower() in pii and row[name] is not None else _json_safe(row[name]))
            for name in columns
        }
        for row in rows
    )


class _Evaluation:
    """One dataset's rules against one DataFrame."""

    def __init__(
        self,
        spark: SparkSession,
        frame: DataFrame,
        rules: Sequence[QualityRuleModel],
        references: Mapping[int, DataFrame],
        now: dt.datetime | None,
        sample_size: int,
        pii_columns: Sequence[str],
        history: Mapping[str, Sequence[tuple[dt.datetime, float]]],
    ) -> None:
        self.spark = spark
        self.frame = frame
        self.columns = list(frame.columns)
        self.rules = list(rules)
        self.now = now
        self.sample_size = sample_size
        self.pii_columns = tuple(pii_columns)
        self.history = history
        self.metrics: list[tuple[QualityRuleModel, Metric]] = [
            (r, metric(r.config.metric, r.config.column, f"__dq_m{r.id}", now))
            for r in self.rules
            if isinstance(r.config, AnomalyRule)
        ]
        self.row_rules = [r for r in self.rules if isinstance(r.config, ROW_RULES)]
        # The first `unique` rule is folded into the single pass, unless the rows are files read
        # as they are: a second scan of only the key columns then costs less than grouping the
        # whole pass by key. Other `unique` rules group on their own.
        self.grouped_unique = (
            None
            if _cheap_to_reread(frame) or not all(m.mergeable for _, m in self.metrics)
            else next((r for r in self.rules if isinstance(r.config, UniqueRule)), None)
        )
        self.drop_rules = [r for r in self.rules if r.config.action == "drop"]
        self.lookups = {
            r.id: _reference_lookup(r, references)
            for r in self.rules
            if isinstance(r.config, ReferentialIntegrityRule)
        }
        self.prepared = _with_helper_columns(frame, self.row_rules, self.lookups)
        # Only the lookups of dropping rules: a warn-only rule must not cost the load a join.
        self.dropping = _with_helper_columns(frame, self.drop_rules, self.lookups)
        self.predicates = {}
        for rule in [*self.row_rules, *self.drop_rules]:
            predicate = _predicate(rule)
            assert predicate is not None
            self.predicates[rule.id] = predicate

    def _pii(self) -> tuple[str, ...]:
        declared = self.rules[0].dataset.pii_columns if self.rules else ()
        return (*declared, *self.pii_columns)

    def _samples(self, frame: DataFrame, columns: Sequence[str]) -> tuple[dict[str, Any], ...]:
        if self.sample_size <= 0:
            return ()
        return masked_samples(frame.limit(self.sample_size).collect(), self._pii(), columns)

    def single_pass(self) -> Row:
        """Failing-row counts of every row-level rule, the first `unique` rule's duplicates,
        freshness ages, anomaly metrics and the total: one Spark job.

        With a `unique` rule the pass aggregates per key first and sums the per-key counts
        after (Deequ's grouping analyzers): still one scan of the data.
        """
        aggregates = [F.count(F.lit(1)).alias(ROWS)]
        expressions: list[tuple[QualityRuleModel, Column]] = []
        for rule in self.row_rules:
            predicate = self.predicates[rule.id]
            expressions.append((rule, predicate))
            aggregates.append(F.count_if(predicate).alias(f"__dq_{rule.id}"))
        newest_columns = []
        for rule in self.rules:
            if isinstance(rule.config, FreshnessRule):
                newest = F.max(F.col(rule.config.column).cast("timestamp"))
                expressions.append((rule, F.col(rule.config.column).cast("timestamp")))
                newest_columns.append((rule, f"__dq_newest_{rule.id}"))
                aggregates.append(newest.alias(f"__dq_newest_{rule.id}"))
        for _, measured in self.metrics:
            aggregates += [p.over_rows.alias(p.name) for p in measured.partials]
        _analyzed(self.prepared, expressions)
        grouping = self.grouped_unique
        if grouping is None:
            stats = self.prepared.agg(*aggregates)
        else:
            assert isinstance(grouping.config, UniqueRule)
            keys = [F.col(c) for c in grouping.config.columns]
            per_key = self.prepared.groupBy(*keys).agg(*aggregates)
            duplicated = (F.col(ROWS) > 1) & _all_present(grouping.config.columns)
            merged = [F.coalesce(F.sum(ROWS), F.lit(0)).alias(ROWS)]
            merged += [
                F.coalesce(F.sum(f"__dq_{r.id}"), F.lit(0)).alias(f"__dq_{r.id}")
                for r in self.row_rules
            ]
            merged += [F.max(name).alias(name) for _, name in newest_columns]
            merged += [
                merge(p.name).alias(p.name)
                for _, m in self.metrics
                for p in m.partials
                if (merge := p.merge) is not None  # all are: else nothing is folded in
            ]
            merged += [
                F.coalesce(F.sum(F.when(duplicated, F.col(ROWS))), F.lit(0)).alias(
                    f"__dq_{grouping.id}"
                ),
                F.count_if(duplicated).alias(f"__dq_groups_{grouping.id}"),
                _most_duplicated(grouping.config.columns, duplicated, ROWS).alias(
                    f"__dq_worst_{grouping.id}"
                ),
            ]
            stats = per_key.agg(*merged)
        now = F.lit(self.now) if self.now else F.current_timestamp()
        ages = [
            ((F.unix_seconds(now) - F.unix_seconds(F.col(name))) / 3600.0).alias(f"__dq_{rule.id}")
            for rule, name in newest_columns
        ]
        values = [m.final.alias(f"__dq_metric_{rule.id}") for rule, m in self.metrics]
        row = stats.select("*", *ages, *values).first()
        assert row is not None
        return row

    def sample_failing_rows(self, stats: Row) -> dict[int, tuple[dict[str, Any], ...]]:
        """Up to `sample_size` failing rows per failing row-level rule, in one job for all of
        them (plus one per rule the shared job left short, e.g. a rule with rare failures)."""
        failing = [r for r in self.row_rules if stats[f"__dq_{r.id}"]]
        if not failing or self.sample_size <= 0:
            return {}
        flags = [self.predicates[r.id].alias(f"__dq_flag_{r.id}") for r in failing]
        any_failing = F.lit(False)
        for rule in failing:
            any_failing = any_failing | self.predicates[rule.id]
        rows = (
            self.prepared.where(any_failing)
            .select(*[F.col(f"`{c}`") for c in self.columns], *flags)
            .limit(self.sample_size * len(failing))
            .collect()
        )
        samples: dict[int, tuple[dict[str, Any], ...]] = {}
        for rule in failing:
            picked = [r for r in rows if r[f"__dq_flag_{rule.id}"]][: self.sample_size]
            wanted = min(self.sample_size, int(stats[f"__dq_{rule.id}"]))
            if len(picked) < wanted:
                frame = self.prepared.where(self.predicates[rule.id]).select(*self.columns)
                picked = frame.limit(self.sample_size).collect()
            samples[rule.id] = masked_samples(picked, self._pii(), self.columns)
        return samples

    def outcome(
        self, rule: QualityRuleModel, stats: Row, samples: Mapping[int, tuple[dict[str, Any], ...]]
    ) -> RuleOutcome:
        config = rule.config
        total = int(stats[ROWS])
        sql = rule_sql(rule).shown
        if isinstance(config, ROW_RULES):
            failing = int(stats[f"__dq_{rule.id}"])
            return self._counted(rule, total, failing, sql, samples.get(rule.id, ()))
        if isinstance(config, UniqueRule):
            return self._unique(rule, total, sql, stats)
        if isinstance(config, CustomSqlRule):
            return self._custom_sql(rule, total, sql)
        if isinstance(config, RowCountRule):
            passed = (config.min is None or total >= config.min) and (
                config.max is None or total <= config.max
            )
            expected = " and ".join(
                text
                for text, bound in (("at least", config.min), ("at most", config.max))
                if bound is not None
                for text in [f"{text} {bound:,}"]
            )
            observed = f"{total:,} rows; expected {expected}"
            return RuleOutcome(rule, passed, total, None, observed, sql, details={"rows": total})
        if isinstance(config, FreshnessRule):
            age = stats[f"__dq_{rule.id}"]
            newest = stats[f"__dq_newest_{rule.id}"]
            passed = age is not None and age <= config.max_age_hours
            observed = (
                "no timestamps (empty dataset or all NULL)"
                if age is None
                else f"newest {config.column} is {age:.2f} h old; at most "
                f"{config.max_age_hours:g} h allowed"
            )
            details = {"age_hours": None if age is None else round(float(age), 3)}
            details["newest"] = _json_safe(newest)
            return RuleOutcome(rule, passed, total, None, observed, sql, details=details)
        if isinstance(config, SchemaRule):
            return self._schema(rule, config, total, sql)
        if isinstance(config, AnomalyRule):
            return self._anomaly(rule, config, total, sql, stats)
        raise AssertionError(f"rule type {rule.type} is not evaluated")

    def _counted(
        self,
        rule: QualityRuleModel,
        total: int,
        failing: int,
        sql: str,
        samples: tuple[dict[str, Any], ...],
        details: Mapping[str, Any] | None = None,
    ) -> RuleOutcome:
        config = rule.config
        percent = 100.0 * failing / total if total else 0.0
        if config.max_failing_percent is not None:
            passed = percent <= config.max_failing_percent
        else:
            passed = failing <= (config.max_failing_rows or 0)
        observed = (
            f"{failing:,} of {total:,} rows fail ({percent:.2f}%); allowed {config.threshold}"
        )
        return RuleOutcome(rule, passed, total, failing, observed, sql, samples, details or {})

    def _unique(self, rule: QualityRuleModel, total: int, sql: str, stats: Row) -> RuleOutcome:
        """Rows whose key occurs more than once; the sample is the most duplicated key."""
        assert isinstance(rule.config, UniqueRule)
        keys = list(rule.config.columns)
        summary: Row | None = stats
        if rule is not self.grouped_unique:
            per_key = self.frame.groupBy(*keys).agg(F.count(F.lit(1)).alias("__dq_n"))
            duplicated = (F.col("__dq_n") > 1) & _all_present(keys)
            summary = per_key.agg(
                F.coalesce(F.sum(F.when(duplicated, F.col("__dq_n"))), F.lit(0)).alias(
                    f"__dq_{rule.id}"
                ),
                F.count_if(duplicated).alias(f"__dq_groups_{rule.id}"),
                _most_duplicated(keys, duplicated, "__dq_n").alias(f"__dq_worst_{rule.id}"),
            ).first()
        assert summary is not None
        failing = int(summary[f"__dq_{rule.id}"])
        worst = summary[f"__dq_worst_{rule.id}"]
        samples: tuple[dict[str, Any], ...] = ()
        if worst is not None and self.sample_size > 0:
            samples = masked_samples([worst], self._pii(), [*keys, "rows"])
        details = {"duplicate_keys": int(summary[f"__dq_groups_{rule.id}"])}
        return self._counted(rule, total, failing, sql, samples, details)

    def _custom_sql(self, rule: QualityRuleModel, total: int, sql: str) -> RuleOutcome:
        assert isinstance(rule.config, CustomSqlRule)
        self.frame.createOrReplaceTempView(rule.dataset.name)
        try:
            result = self.spark.sql(rule.config.query)
            failing = result.count()
        except PySparkException as error:
            raise QualityRuleError(f"{_where(rule)}: the query failed: {error}") from error
        samples = self._samples(result, result.columns) if failing else ()
        return self._counted(rule, total, failing, sql, samples)

    def _anomaly(
        self, rule: QualityRuleModel, config: AnomalyRule, total: int, sql: str, stats: Row
    ) -> RuleOutcome:
        measured = stats[f"__dq_metric_{rule.id}"]
        value = None if measured is None else float(measured)
        verdict = judge(value, self.history.get(config.metric_key, ()), config)
        details = {
            "metric": config.metric_key,
            "value": value,
            "expected_low": verdict.low,
            "expected_high": verdict.high,
            "median": verdict.median,
            "history_runs": len(verdict.history),
            "judged": verdict.judged,
        }
        return RuleOutcome(
            rule,
            verdict.passed,
            total,
            None,
            verdict.observed(config),
            sql,
            details=details,
            markdown=history_markdown(verdict, config),
        )

    def _schema(
        self, rule: QualityRuleModel, config: SchemaRule, total: int, sql: str
    ) -> RuleOutcome:
        actual = {f.name.lower(): (f.name, f.dataType.simpleString()) for f in self.frame.schema}
        expected = {
            name.lower(): (name, self._normalized_type(rule, t))
            for name, t in config.columns.items()
        }
        removed = [expected[k][0] for k in expected if k not in actual]
        added = [actual[k][0] for k in actual if k not in expected]
        retyped = [
            f"{actual[k][0]}: {expected[k][1]} -> {actual[k][1]}"
            for k in expected
            if k in actual and actual[k][1] != expected[k][1]
        ]
        passed = not removed and not retyped and (config.allow_extra_columns or not added)
        drift = {"added": added, "removed": removed, "retyped": retyped}
        parts = [f"{kind}: {', '.join(names)}" for kind, names in drift.items() if names]
        observed = "; ".join(parts) if parts else "columns and types as expected"
        return RuleOutcome(rule, passed, total, None, observed, sql, details=drift)

    def _normalized_type(self, rule: QualityRuleModel, type_name: str) -> str:
        """Spark's own name for a type (`integer` -> `int`), asked of Spark without a job."""
        try:
            schema = self.spark.sql(f"SELECT CAST(NULL AS {type_name}) AS x").schema
        except PySparkException as error:
            raise QualityRuleError(f"{_where(rule)}: unknown type {type_name!r}") from error
        return schema[0].dataType.simpleString()

    def quarantine(self, load_id: str) -> DataFrame | None:
        """Failing rows of `drop` rules, one row per (row, rule), with the rule and the reason."""
        if not self.drop_rules:
            return None
        failures = F.array(
            *[
                F.when(
                    self.predicates[rule.id],
                    F.struct(
                        F.lit(rule.name).alias("rule"),
                        F.lit(rule.id).alias("rule_id"),
                        F.lit(f"{rule.type}: {rule_sql(rule).shown}").alias("reason"),
                    ),
                )
                for rule in self.drop_rules
            ]
        )
        originals = [F.col(f"`{c}`") for c in self.columns]
        return (
            self.dropping.select(
                *originals, F.filter(failures, lambda f: f.isNotNull()).alias("__dq_f")
            )
            .where(F.size("__dq_f") > 0)
            .select(*originals, F.explode("__dq_f").alias("__dq_x"))
            .select(
                *originals,
                F.col("__dq_x.rule").alias("dq_rule"),
                F.col("__dq_x.rule_id").alias("dq_rule_id"),
                F.col("__dq_x.reason").alias("dq_reason"),
                F.lit(load_id).alias("dq_load_id"),
                F.current_timestamp().alias("dq_quarantined_at"),
            )
        )

    def clean(self) -> DataFrame:
        if not self.drop_rules:
            return self.frame
        rejected = F.lit(False)
        for rule in self.drop_rules:
            rejected = rejected | self.predicates[rule.id]
        return self.dropping.where(~rejected).select(*[F.col(f"`{c}`") for c in self.columns])


def evaluate_rules(
    spark: SparkSession,
    frame: DataFrame,
    rules: Sequence[QualityRuleModel],
    references: Mapping[int, DataFrame] | None = None,
    load_id: str = "",
    now: dt.datetime | None = None,
    sample_size: int = 10,
    pii_columns: Sequence[str] = (),
    history: Mapping[str, Sequence[tuple[dt.datetime, float]]] | None = None,
) -> QualityReport:
    """Evaluate `rules` (all on one DataSet) on `frame`, the DataFrame that produces it.

    `references` holds the DataFrame of each DataSet referential_integrity rules look values up
    in, by DataSetID. `now` fixes the freshness clock (tests); Spark's query time otherwise.
    Sample values of `pii_columns` (and of PII columns declared on the DataSet) are masked.
    `history` holds the past values of each metric anomaly rules judge, oldest first, by name.
    """
    check_rule_columns(frame, rules)
    evaluation = _Evaluation(
        spark, frame, rules, references or {}, now, sample_size, pii_columns, history or {}
    )
    stats = evaluation.single_pass()
    samples = evaluation.sample_failing_rows(stats)
    outcomes = tuple(evaluation.outcome(rule, stats, samples) for rule in rules)
    quarantined = 0
    if evaluation.drop_rules:
        quarantined = sum(o.failing_rows or 0 for o in outcomes if o.rule.config.action == "drop")
    return QualityReport(
        outcomes=outcomes,
        total_rows=int(stats[ROWS]),
        clean=evaluation.clean(),
        quarantine=evaluation.quarantine(load_id),
        quarantined_rows=quarantined,
        metrics={
            o.rule.config.metric_key: o.details["value"]
            for o in outcomes
            if isinstance(o.rule.config, AnomalyRule)
        },
    )
