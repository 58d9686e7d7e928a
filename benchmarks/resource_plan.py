"""`data-mesh plan` against measured runs: for the sample products at two data sizes, the
planned shuffle partitions applied, the run measured by Spark (spill, the most execution memory
one task used), compared with the plan's memory budget per task.

Usage:
  .venv/bin/python benchmarks/resource_plan.py --rows 200000 2000000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_mesh.catalog.current import lake_storage, load_catalog  # noqa: E402
from data_mesh.catalog.models import TransformationModel  # noqa: E402
from data_mesh.catalog.product_files import load_product_files  # noqa: E402
from data_mesh.component.specs import dataset_asset_key  # noqa: E402
from data_mesh.devtools.sample_data import write_sample_data  # noqa: E402
from data_mesh.lake.storage import Storage  # noqa: E402
from data_mesh.planning.check import run_with_plan  # noqa: E402
from data_mesh.planning.gather import plan_transformation  # noqa: E402
from data_mesh.planning.plan import DatabaseTier, ResourcePlan  # noqa: E402
from data_mesh.resources.spark import spark_session  # noqa: E402
from data_mesh.settings.model import Settings  # noqa: E402
from data_mesh.spark.metrics import RunMetrics  # noqa: E402
from data_mesh.store.database import make_engine, upgrade_store  # noqa: E402
from data_mesh.transforms.query_files import publish_query_files  # noqa: E402

# Transformations whose inputs are all in the lake: a join and an aggregation.
CHECKED = {"sor1_payments": "build_sor1_payments", "mdm_accounts": "count_active_accounts"}
DAY = "2026-11-20"
MIB = 1024 * 1024


def run_planned(
    settings: Settings, storage: Storage, transformation: TransformationModel
) -> tuple[ResourcePlan, RunMetrics]:
    """Plan one transformation, then run it with the planned session settings, measured."""
    with make_engine(settings.resolved_metadata_url).connect() as connection:
        _, plan = plan_transformation(
            transformation,
            storage,
            connection.engine,
            DAY,
            DatabaseTier(),
            lambda d: dataset_asset_key(d).to_user_string(),
        )
    return plan, run_with_plan(spark_session(settings), storage, transformation, plan, DAY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 2_000_000])
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dm_bench_plan_"))
    os.environ["DATA_MESH_HOME"] = str(home)
    settings = Settings().model_copy(update={"spark_master": "local[2]"})
    engine = make_engine(settings.resolved_metadata_url)
    upgrade_store(engine)
    storage = lake_storage(settings)
    for loaded in load_product_files(engine, REPO / "metadata" / "products"):
        publish_query_files(storage, loaded)
    catalog = load_catalog(settings)
    print(
        "| product | sample rows | input | shuffle partitions | task budget | measured peak "
        "task memory | spill (memory / disk) | shuffle written |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for rows in args.rows:
        write_sample_data(spark_session(settings), storage, rows)
        for product, name in CHECKED.items():
            transformation = next(
                t for t in catalog.product(product).transformations if t.name == name
            )
            plan, run = run_planned(settings, storage, transformation)
            input_bytes = plan.decisions[0].value
            print(
                f"| {product} | {rows:,} | {input_bytes} | {plan.shuffle_partitions} | "
                f"{plan.task_memory_mb} MiB | {run.peak_task_memory / MIB:.1f} MiB | "
                f"{run.memory_spilled / MIB:.1f} / {run.disk_spilled / MIB:.1f} MiB | "
                f"{run.shuffle_write_bytes / MIB:.1f} MiB |"
            )


if __name__ == "__main__":
    main()
