"""The Spark session settings per environment, for dagster-pyspark's lazy resource."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dagster_pyspark import LazyPySparkResource
from pyspark.sql import SparkSession

from data_mesh.settings import Settings


def spark_config(settings: Settings) -> dict[str, str]:
    if settings.spark_remote:
        # Spark Connect: the server owns master, memory and jars; only session settings here.
        return {"spark.remote": settings.spark_remote, "spark.sql.session.timeZone": "UTC"}
    jars = ",".join(jar for jar in settings.jdbc_jars if Path(jar).is_file())
    config = {
        "spark.master": settings.spark_master,
        "spark.app.name": "data_mesh",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(settings.home_dir / "spark-warehouse"),
        "spark.ui.showConsoleProgress": "false",
        # Derby's metastore files would land in the working directory otherwise.
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={settings.home_dir / 'derby'}",
    }
    if jars:
        # extraClassPath puts the drivers where java.sql.DriverManager finds them too.
        config["spark.jars"] = jars
        config["spark.driver.extraClassPath"] = jars.replace(",", ":")
    return config


def use_this_python_for_workers() -> None:
    """Python workers (the DDZ writer's COPY tasks) must see this interpreter's packages.

    PySpark reads only the PYSPARK_PYTHON variable for that (not `spark.pyspark.python`).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def spark_resource(settings: Settings) -> LazyPySparkResource:
    use_this_python_for_workers()
    return LazyPySparkResource(spark_config=spark_config(settings))


def spark_session(settings: Settings) -> SparkSession:
    """A session with the environment's settings, outside Dagster (CLI commands)."""
    use_this_python_for_workers()
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
