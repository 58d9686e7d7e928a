"""Typed data products: what the catalog resolves store rows into. Plain frozen values."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from data_mesh.catalog.automation import ProductSchedule, SensorSettings
from data_mesh.catalog.configuration import ConfigValue, DatasetOverrides
from data_mesh.catalog.rule_configs import RuleSettings
from data_mesh.catalog.transformation_configs import (
    OutputShaping,
)

LAYERS = ("CDZ", "DDZ")
WRITE_MODES = ("replace", "append", "merge")
# What an ingest transformation reads: DataSources of these Types, files in these Formats.
INGEST_SOURCE_TYPES = ("database", "file")
FILE_FORMATS = ("csv", "json", "parquet")
DEFAULT_TARGET_SCHEMA = "ddz"
KAFKA_SOURCE_TYPE = "kafka"


@dataclass(frozen=True)
class DeclaredColumn:
    """A column listed in DataSets.Schema; `pii` columns are masked wherever samples are shown."""

    name: str
    type: str | None = None
    pii: bool = False


@dataclass(frozen=True)
class Partitioning:
    """Daily partitions of a DataSet on a date column (seed 002's `load_date`).

    A CDZ DataSet keeps one folder per day (`<location>/<column>=<yyyy-mm-dd>/`); a DDZ DataSet
    replaces one day's rows per run and keeps `retention_days` days (None: all)."""

    column: str
    start: dt.date
    retention_days: int | None = None
    # The product's schedule time zone: a day starts at midnight there.
    timezone: str = "UTC"


@dataclass(frozen=True)
class DataSetModel:
    id: int
    name: str
    product: str
    domain: str
    layer: str
    source_name: str
    source_type: str
    source_format: str
    location: str | None
    target_schema: str | None
    target_table: str | None
    write_mode: str | None
    key_columns: tuple[str, ...]
    description: str | None
    columns: tuple[DeclaredColumn, ...] = ()
    partition: Partitioning | None = None
    # DataSources.ConnectionString: a reference (env:NAME, keyvault://...) or a plain address.
    source_connection: str = ""
    # A Kafka DataSet: the topic (target_table) has this many partitions.
    topic_partitions: int | None = None

    @property
    def is_kafka(self) -> bool:
        """Published to a Kafka topic (a DataSource of Type kafka), not written to a table."""
        return self.source_type.lower() == KAFKA_SOURCE_TYPE

    @property
    def pii_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii)

    @property
    def sql_name(self) -> str:
        """The name Spark SQL queries use: `<source>.<dataset>` for CDZ data, as in seed 000."""
        return f"{self.source_name}.{self.name}" if self.layer == "CDZ" else self.name

    @property
    def target(self) -> str | None:
        if self.target_table is None:
            return None
        if self.is_kafka:
            return f"topic {self.target_table}"
        return f"{self.target_schema}.{self.target_table}"


@dataclass(frozen=True)
class QualityRuleModel:
    """A DataQualityRules row: a check on the DataSet it names, enforced where it is produced."""

    id: int
    name: str
    description: str | None
    type: str
    config: RuleSettings
    dataset: DataSetModel
    # The DataSet a referential_integrity rule looks values up in.
    reference: DataSetModel | None = None


@dataclass(frozen=True)
class TransformationModel:
    id: int
    name: str
    description: str | None
    type: str
    config: OutputShaping
    product: str
    inputs: tuple[DataSetModel, ...]
    output: DataSetModel
    depends_on: tuple[str, ...]
    # Quality rules on `output`, evaluated on the result before it is written.
    rules: tuple[QualityRuleModel, ...] = ()
    # Overrides for `output` from the configuration rows (environment and time resolved).
    overrides: DatasetOverrides = field(default_factory=lambda: DatasetOverrides({}, {}))
    # Columns of `output` holding personal data: declared on it or on any DataSet upstream.
    pii_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataProductModel:
    id: int
    name: str
    domain: str
    owner: str | None
    description: str | None
    datasets: tuple[DataSetModel, ...]
    transformations: tuple[TransformationModel, ...]
    # From the configuration rows of the catalog's environment.
    schedule: ProductSchedule | None = None
    sensors: SensorSettings = field(default_factory=lambda: SensorSettings(enabled=False))


@dataclass(frozen=True)
class ProductProblem:
    product: str
    message: str
    # The broken product this one reads from, when that is its only problem.
    upstream: str | None = None

    def __str__(self) -> str:
        return f"data product {self.product!r}: {self.message}"


@dataclass
class Catalog:
    products: list[DataProductModel] = field(default_factory=list)
    env: str = "LOCAL"
    problems: list[ProductProblem] = field(default_factory=list)
    # The configuration rows valid when the catalog was built, and what is wrong with them.
    configuration: dict[str, dict[str, ConfigValue]] = field(default_factory=dict)
    configuration_problems: list[str] = field(default_factory=list)
    # The mesh (DataMeshComponent `name`) whose store the rows come from: names its jobs,
    # sensors and pools (data_mesh.component.naming) and the store its steps write to.
    mesh: str = "data_mesh"

    def product(self, name: str) -> DataProductModel:
        return next(p for p in self.products if p.name == name)
