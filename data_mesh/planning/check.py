"""Check a plan on a real run: the transformation computed with the planned session settings
(nothing written), measured by Spark."""

from __future__ import annotations

from pyspark.sql import SparkSession

from data_mesh.catalog.models import TransformationModel
from data_mesh.lake.storage import Storage
from data_mesh.planning.plan import ResourcePlan
from data_mesh.spark.conf import spark_config_scope
from data_mesh.spark.metrics import RunMetrics, measured
from data_mesh.transforms.execute import read_cdz_dataset, run_transformation


def run_with_plan(
    spark: SparkSession,
    storage: Storage,
    transformation: TransformationModel,
    plan: ResourcePlan,
    day: str | None,
) -> RunMetrics:
    """Compute the transformation's output from its lake inputs with the plan's partitions;
    adaptive execution off, so the planned partition count is the one run."""
    if any(d.layer != "CDZ" for d in transformation.inputs):
        raise ValueError(
            f"transformation {transformation.name!r} reads DDZ tables: only transformations "
            "over lake inputs are checked"
        )
    inputs = {
        d.name: read_cdz_dataset(
            spark, d, storage.spark_uri(d.location or ""), day if d.partition else None
        )
        for d in transformation.inputs
    }
    settings = {**plan.spark_config(), "spark.sql.adaptive.enabled": "false"}
    with spark_config_scope(spark, settings), measured(spark) as metrics:
        frame = run_transformation(spark, transformation, inputs, storage)
        frame.write.format("noop").mode("overwrite").save()
    return metrics()
