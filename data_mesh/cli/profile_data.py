"""The rows `data-mesh quality profile` reads: a lake DataSet's files, a DDZ table, or a
product's computed output (its transformation run on its inputs, nothing written)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.models import Catalog, DataSetModel, TransformationModel
from data_mesh.catalog.transformation_configs import IngestConfig
from data_mesh.component.specs import effective_spark_config
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.lake.storage import Storage
from data_mesh.resources.ddz_io_manager import connection_from_settings
from data_mesh.settings.model import Settings
from data_mesh.spark.conf import spark_config_scope
from data_mesh.transforms.execute import read_cdz_dataset, run_transformation, with_partition_column


def find_dataset(catalog: Catalog, name: str) -> tuple[DataSetModel, TransformationModel | None]:
    """The DataSet called `name` and the transformation that produces it (None for CDZ)."""
    found = {d for p in catalog.products for d in p.datasets if d.name == name}
    if len(found) != 1:
        known = sorted({d.name for p in catalog.products for d in p.datasets})
        raise DataMeshError(
            f"DataSet {name!r} matches {len(found)} DataSets (known: {', '.join(known)})"
        )
    dataset = found.pop()
    producer = next(
        (t for p in catalog.products for t in p.transformations if t.output == dataset), None
    )
    return dataset, producer


def _ddz_table(
    spark: SparkSession, settings: Settings, dataset: DataSetModel, day: str | None
) -> DataFrame:
    """A DDZ table; of a daily DataSet only `day`'s rows when a day is given."""
    assert dataset.target_schema and dataset.target_table
    connection = connection_from_settings(settings)
    keys = dataset.key_columns
    frame = read_ddz_table(
        spark,
        connection,
        TableName(dataset.target_schema, dataset.target_table),
        keys[0] if keys else None,
    )
    if dataset.partition is not None and day is not None:
        frame = frame.where(F.col(f"`{dataset.partition.column}`") == F.lit(day).cast("date"))
    return frame


def _lake(
    spark: SparkSession, storage: Storage, dataset: DataSetModel, day: str | None
) -> DataFrame:
    return read_cdz_dataset(spark, dataset, storage.spark_uri(dataset.location or ""), day)


@dataclass(frozen=True)
class ProfiledRows:
    dataset: DataSetModel
    frame: DataFrame
    # Where the rows come from, in words.
    source: str
    pii_columns: tuple[str, ...]


def profiled_rows(
    spark: SparkSession,
    settings: Settings,
    storage: Storage,
    catalog: Catalog,
    name: str,
    computed: bool,
    day: str | None,
) -> ProfiledRows:
    """The DataSet, its rows and a description of where they came from. Personal-data columns
    are the DataSet's own (`DataSetModel.pii_columns`), plus those its transformation carries
    over from its inputs when the rows are computed."""
    dataset, producer = find_dataset(catalog, name)
    pii = producer.pii_columns if producer else dataset.pii_columns
    if dataset.layer != "DDZ":
        frame = _lake(spark, storage, dataset, day)
        return ProfiledRows(dataset, frame, f"the lake ({dataset.location})", pii)
    if not computed:
        frame = _ddz_table(spark, settings, dataset, day)
        return ProfiledRows(dataset, frame, f"the DDZ table {dataset.target}", pii)
    if producer is None:
        raise DataMeshError(f"DataSet {name!r}: no transformation produces it; profile its table")
    if isinstance(producer.config, IngestConfig):
        raise DataMeshError(
            f"DataSet {name!r} is ingested by {producer.name!r}: profile its DDZ table instead"
        )
    inputs = {
        d.name: _ddz_table(spark, settings, d, day)
        if d.layer == "DDZ"
        else _lake(spark, storage, d, day)
        for d in producer.inputs
    }
    with spark_config_scope(spark, effective_spark_config(producer)):
        frame = run_transformation(spark, producer, inputs, storage)
    if day is not None and dataset.partition is not None:
        frame = with_partition_column(frame, dataset.partition.column, day)
    return ProfiledRows(dataset, frame, f"the output of transformation {producer.name!r}", pii)
