"""One bronze load of a source DataSet, as an `ingest` transformation describes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession

from data_mesh.catalog.models import DataSetModel
from data_mesh.catalog.transformation_configs import IngestConfig
from data_mesh.ingest.bronze import IngestError, add_bronze_columns
from data_mesh.ingest.database import DatabaseRead, JdbcSource, read_database
from data_mesh.ingest.files import read_files
from data_mesh.lake.storage import Storage
from data_mesh.settings.secrets import SecretError, parse_reference, resolve_secret


@dataclass
class BronzeLoad:
    """The rows to write (with the bronze columns), the rows refused, and the watermark to
    store once the rows are written."""

    frame: DataFrame
    watermark: str | None = None
    rejected: DataFrame | None = None
    release: Callable[[], None] = field(default=lambda: None)


def source_url(dataset: DataSetModel, resolve: Callable[[str], str] = resolve_secret) -> str:
    """The JDBC URL of a database DataSource: resolved from its reference at run time."""
    connection = dataset.source_connection.strip()
    if not parse_reference(connection):
        return connection
    try:
        return resolve(connection)
    except SecretError as error:
        raise IngestError(f"DataSource {dataset.source_name!r}: {error}") from error


def load_bronze(
    spark: SparkSession,
    dataset: DataSetModel,
    config: IngestConfig,
    storage: Storage,
    run_id: str,
    after_watermark: str | None = None,
) -> BronzeLoad:
    where = f"DataSets row {dataset.id} ({dataset.name})"
    if dataset.source_type.lower() == "database":
        read = DatabaseRead(
            table=dataset.location or "",
            partition_column=config.partition_column,
            lower_bound=config.lower_bound,
            upper_bound=config.upper_bound,
            num_partitions=config.num_partitions,
            fetchsize=config.fetchsize,
            watermark_column=config.watermark_column,
        )
        batch = read_database(spark, JdbcSource(source_url(dataset)), read, after_watermark)
        frame = add_bronze_columns(batch.frame, dataset.source_name, run_id)
        return BronzeLoad(frame, batch.watermark)
    files = read_files(
        spark,
        storage.spark_uri(dataset.location or ""),
        dataset.source_format.lower(),
        [(c.name, c.type or "string") for c in dataset.columns],
        config.options,
        where,
    )
    return BronzeLoad(
        add_bronze_columns(files.frame, dataset.source_name, run_id),
        rejected=files.rejected,
        release=files.release,
    )
