"""Spark session settings scoped to one piece of work."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession


@contextmanager
def spark_config_scope(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Apply session settings for one asset and restore the previous values afterwards."""
    previous: dict[str, str | None] = {}
    for key, value in settings.items():
        previous[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def is_spark_connect(spark: SparkSession) -> bool:
    """Whether `spark` is a Spark Connect client session (Spark runs elsewhere)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")
