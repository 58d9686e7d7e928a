"""Quality-rule benchmark (issue: quality rules become asset checks).

Same run, same DataFrame: the sor1_payments data product's output (seed 000's query: a join of
the driver table with payments, renamed and cast), computed by data_mesh's own transformation
code from deterministic CDZ sample data. It times (1) a single `count()` of that DataFrame and
(2) data_mesh evaluating 20 rules of mixed types on it, and prints the ratio (target <= 1.5x).

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

from pyspark.sql import functions as F  # noqa: E402

from data_mesh.catalog.current import lake_storage, load_catalog  # noqa: E402
from data_mesh.catalog.models import QualityRuleModel  # noqa: E402
from data_mesh.catalog.product_files import load_product_files  # noqa: E402
from data_mesh.catalog.rule_configs import parse_rule_config  # noqa: E402
from data_mesh.devtools.sample_data import write_sample_data  # noqa: E402
from data_mesh.quality.evaluate import evaluate_rules  # noqa: E402
from data_mesh.resources.spark import spark_session  # noqa: E402
from data_mesh.settings.model import Settings  # noqa: E402
from data_mesh.store.database import make_engine, upgrade_store  # noqa: E402
from data_mesh.transforms.execute import read_cdz_dataset, run_transformation  # noqa: E402
from data_mesh.transforms.query_files import publish_query_files  # noqa: E402

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


def prepare(rows: int, home: Path | None = None):  # type: ignore[no-untyped-def]
    """Spark, the sor1_payments DataFrame, the 20 rules and their references."""
    reuse = home is not None and (home / "lake").is_dir()
    home = home or Path(tempfile.mkdtemp(prefix="dm_bench_quality_"))
    os.environ["DATA_MESH_HOME"] = str(home)
    settings = Settings().model_copy(update={"spark_master": "local[2]"})
    spark = spark_session(settings)
    storage = lake_storage(settings)
    engine = make_engine(settings.resolved_metadata_url)
    upgrade_store(engine)
    for loaded in load_product_files(engine, REPO / "metadata" / "products"):
        publish_query_files(storage, loaded)
    if not reuse:
        write_sample_data(spark, storage, rows)

    product = load_catalog(settings).product("sor1_payments")
    transformation = product.transformations[0]
    inputs = {
        d.name: read_cdz_dataset(spark, d, storage.spark_uri(d.location or ""))
        for d in transformation.inputs
    }
    for key, value in transformation.config.spark_config.items():
        spark.conf.set(key, value)
    frame = run_transformation(spark, transformation, inputs, storage)
    driver = next(d for d in transformation.inputs if d.name == "sor1_driver_table")
    rules = [
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
    return spark, frame, rules, {driver.id: inputs[driver.name]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of N for each side")
    parser.add_argument("--home", type=Path, help="reuse the sample data in this folder")
    args = parser.parse_args()
    spark, frame, rules, references = prepare(args.rows, args.home)

    def timed(action: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            action()
            best = min(best, time.perf_counter() - start)
        return best

    count_s = timed(frame.count)
    # The floor of any rule engine on this DataFrame: one aggregation that reads every column.
    floor_s = timed(lambda: frame.agg(*[F.count(c) for c in frame.columns]).first())
    row_level = [r for r in rules if r.type not in ("unique", "referential_integrity")]
    holder: dict[str, object] = {}

    def evaluate(subset: list[QualityRuleModel]) -> None:
        holder["report"] = evaluate_rules(spark, frame, subset, references)

    row_level_s = timed(lambda: evaluate(row_level))
    rules_s = timed(lambda: evaluate(rules))
    report = holder["report"]
    failing = [o.rule.name for o in report.outcomes if not o.passed]  # type: ignore[attr-defined]
    print(f"rows: {frame.count():,}; rules: {len(rules)}; failing: {', '.join(failing) or 'none'}")
    print("| measured | seconds | x count() | x floor |")
    print("|---|---|---|---|")
    for label, seconds in (
        ("`count()`", count_s),
        ("one aggregation reading every column (floor)", floor_s),
        (f"{len(row_level)} rules without `unique` and `referential_integrity`", row_level_s),
        (f"all {len(rules)} rules", rules_s),
    ):
        print(f"| {label} | {seconds:.2f} | {seconds / count_s:.2f}x | {seconds / floor_s:.2f}x |")
    print(f"ratio 20 rules / count(): {rules_s / count_s:.2f}x (target <= 1.5x)")


if __name__ == "__main__":
    main()
