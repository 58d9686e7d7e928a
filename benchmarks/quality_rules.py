"""Quality-rule benchmark (issue 19: 20 rules within 1.6x the read-every-column floor).

Same run, two inputs of the same rows: the sor1_payments data product's output (seed 000's
query: a join of the driver table with payments, renamed and cast), computed by data_mesh's own
transformation code from deterministic CDZ sample data, and that output materialized once as
Parquet and read back. On each it times `count()`, the floor (one aggregation that only counts
the values of every column), data_mesh evaluating 18 row-level rules, all 20 rules of mixed
types, and all 20 without sample rows, and prints each as a multiple of the floor (target
<= 1.6x for all 20 rules).

Usage:
  .venv/bin/python benchmarks/quality_rules.py --rows 5000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from data_mesh.catalog.current import lake_storage, load_catalog  # noqa: E402
from data_mesh.catalog.models import QualityRuleModel  # noqa: E402
from data_mesh.catalog.product_files import load_product_files  # noqa: E402
from data_mesh.catalog.rule_configs import parse_rule_config  # noqa: E402
from data_mesh.devtools.sample_data import write_sample_data  # noqa: E402
from data_mesh.quality.evaluate import QualityReport, evaluate_rules  # noqa: E402
from data_mesh.resources.spark import spark_session  # noqa: E402
from data_mesh.settings.model import Settings  # noqa: E402
from data_mesh.store.database import make_engine, upgrade_store  # noqa: E402
from data_mesh.transforms.execute import read_cdz_dataset, run_transformation  # noqa: E402
from data_mesh.transforms.query_files import publish_query_files  # noqa: E402

TARGET = 1.6

# 20 rules of every type that reads the data; several fail on purpose (sample rows fetched).
RULES: list[tuple[str, dict[str, object]]] = [
    ("not_null", {"column": "UNQ_USER_ID"}),
    ("not_null", {"column": "NAME"}),
    ("not_null", {"column": "PAYMENT_AMOUNT", "max_failing_percent": 5}),
    ("not_null", {"column": "PAYMENT_CATEGORY", "severity": "WARN"}),
    ("accepted_values", {"column": "SOR_SYS_CD", "values": ["sor1"]}),
    (
        "accepted_values",
        {"column": "PAYMENT_CATEGORY", "values": ["groceries", "travel", "utilities", "health"]},
    ),
    ("range", {"column": "PAYMENT_AMOUNT", "min": 0, "max": 1000}),
    ("range", {"column": "UNQ_USER_ID", "min": 1}),
    ("range", {"column": "LOAD_DATE", "min": "2020-01-01"}),
    ("regex", {"column": "NAME", "pattern": "user_[0-9]+"}),
    ("regex", {"column": "PAYMENT_CATEGORY", "pattern": "[a-z]+"}),
    ("length", {"column": "NAME", "min": 6, "max": 12}),
    ("length", {"column": "SOR_SYS_CD", "min": 4, "max": 4}),
    ("expression", {"expression": "PAYMENT_AMOUNT < 900 OR PAYMENT_CATEGORY = 'travel'"}),
    ("expression", {"expression": "LOAD_DATE <= current_date()"}),
    ("row_count", {"min": 1}),
    ("freshness", {"column": "LOAD_DATE", "max_age_hours": 48}),
    (
        "schema",
        {
            "columns": {
                "UNQ_USER_ID": "bigint",
                "NAME": "string",
                "PAYMENT_AMOUNT": "decimal(18,2)",
                "PAYMENT_CATEGORY": "string",
                "LOAD_DATE": "date",
                "SOR_SYS_CD": "string",
            }
        },
    ),
    ("unique", {"columns": ["UNQ_USER_ID", "PAYMENT_AMOUNT", "PAYMENT_CATEGORY"]}),
    (
        "referential_integrity",
        {
            "column": "UNQ_USER_ID",
            "reference_dataset": "sor1_driver_table",
            "reference_column": "user_id",
        },
    ),
]


class Prepared:
    """Spark, the sor1_payments DataFrame, the 20 rules and their references."""

    def __init__(self, rows: int, home: Path | None) -> None:
        reuse = home is not None and (home / "lake").is_dir()
        self.home = home or Path(tempfile.mkdtemp(prefix="dm_bench_quality_"))
        os.environ["DATA_MESH_HOME"] = str(self.home)
        settings = Settings().model_copy(update={"spark_master": "local[2]"})
        self.spark: SparkSession = spark_session(settings)
        storage = lake_storage(settings)
        engine = make_engine(settings.resolved_metadata_url)
        upgrade_store(engine)
        for loaded in load_product_files(engine, REPO / "metadata" / "products"):
            publish_query_files(storage, loaded)
        if not reuse:
            write_sample_data(self.spark, storage, rows)

        product = load_catalog(settings).product("sor1_payments")
        transformation = product.transformations[0]
        inputs = {
            d.name: read_cdz_dataset(self.spark, d, storage.spark_uri(d.location or ""))
            for d in transformation.inputs
        }
        # What the product's step sets before it computes and checks its output.
        for key, value in transformation.config.spark_config.items():
            self.spark.conf.set(key, value)
        self.computed: DataFrame = run_transformation(self.spark, transformation, inputs, storage)
        driver = next(d for d in transformation.inputs if d.name == "sor1_driver_table")
        self.rules = [
            QualityRuleModel(
                id=index,
                name=f"rule_{index}_{kind}",
                description=None,
                type=kind,
                config=parse_rule_config(index, f"rule_{index}", kind, json.dumps(config)),
                dataset=transformation.output,
                reference=driver if kind == "referential_integrity" else None,
            )
            for index, (kind, config) in enumerate(RULES, start=1)
        ]
        self.references = {driver.id: inputs[driver.name]}

    def materialized(self) -> DataFrame:
        """The computed rows written once as Parquet (in the benchmark's home) and read back."""
        path = str(self.home / "bench_materialized_sor1_payments")
        self.computed.write.mode("overwrite").parquet(path)
        return self.spark.read.parquet(path)


def measure(
    prepared: Prepared, frame: DataFrame, repeat: int
) -> tuple[list[tuple[str, float]], QualityReport]:
    """Best-of-`repeat` seconds of each measured action on `frame`, and the last report.

    The actions take turns (one round runs each once), so a noisy spell on the machine hits
    them alike rather than one of them.
    """
    rules = prepared.rules
    row_level = [r for r in rules if r.type not in ("unique", "referential_integrity")]
    reports: list[QualityReport] = []

    def evaluate(subset: list[QualityRuleModel], sample_size: int = 10) -> None:
        reports.append(
            evaluate_rules(
                prepared.spark, frame, subset, prepared.references, sample_size=sample_size
            )
        )

    actions: list[tuple[str, Callable[[], object]]] = [
        ("`count()`", frame.count),
        # The floor of any rule engine on these rows: one aggregation that reads every column.
        (
            "floor: one aggregation counting every column's values",
            lambda: frame.agg(*[F.count(c) for c in frame.columns]).first(),
        ),
        (
            f"{len(row_level)} rules without `unique` and `referential_integrity`",
            lambda: evaluate(row_level),
        ),
        (f"all {len(rules)} rules, no sample rows", lambda: evaluate(rules, 0)),
        (f"**all {len(rules)} rules**", lambda: evaluate(rules)),
    ]
    best = [float("inf")] * len(actions)
    for _ in range(repeat):
        for index, (_, action) in enumerate(actions):
            start = time.perf_counter()
            action()
            best[index] = min(best[index], time.perf_counter() - start)
    figures = [(label, seconds) for (label, _), seconds in zip(actions, best, strict=True)]
    return figures, reports[-1]


def print_table(title: str, figures: list[tuple[str, float]], report: QualityReport) -> float:
    """Print one input's figures as a Markdown table; returns all rules / floor."""
    count_s, floor_s = figures[0][1], figures[1][1]
    failing = [o for o in report.outcomes if not o.passed]
    sampled = sum(1 for o in failing if o.samples)
    print(f"\n{title}: {report.total_rows:,} rows, {len(report.outcomes)} rules")
    print(f"failing: {', '.join(o.rule.name for o in failing) or 'none'} ({sampled} with samples)")
    print("| measured | seconds | x count() | x floor |")
    print("|---|---|---|---|")
    for label, seconds in figures:
        print(f"| {label} | {seconds:.2f} | {seconds / count_s:.2f}x | {seconds / floor_s:.2f}x |")
    return figures[-1][1] / floor_s


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each figure")
    parser.add_argument("--home", type=Path, help="reuse the sample data in this folder")
    args = parser.parse_args()
    prepared = Prepared(args.rows, args.home)
    parquet = prepared.materialized()
    ratios = {}
    for title, frame in (
        ("computed DataFrame (the product's join)", prepared.computed),
        ("materialized input (Parquet)", parquet),
    ):
        figures, report = measure(prepared, frame, args.repeat)
        ratios[title] = print_table(title, figures, report)
    print()
    for title, ratio in ratios.items():
        print(f"20 rules / floor, {title}: {ratio:.2f}x (target <= {TARGET}x)")


if __name__ == "__main__":
    main()
