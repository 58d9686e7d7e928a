"""Plain, typed copies of metadata-store rows, and one read of the whole store."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, select

from data_mesh.store import schema


@dataclass(frozen=True)
class DataProductRow:
    DataProductID: int
    Name: str
    Domain: str
    Owner: str | None
    Description: str | None


@dataclass(frozen=True)
class DataSourceRow:
    DataSourceID: int
    Name: str
    Type: str
    ConnectionString: str
    Format: str


@dataclass(frozen=True)
class DataSetRow:
    DataSetID: int
    DataSourceID: int
    Name: str
    Schema: str
    DataProductID: int
    Layer: str
    Location: str | None
    TargetSchema: str | None
    TargetTable: str | None
    WriteMode: str | None
    KeyColumns: str | None
    Description: str | None
    PartitionColumn: str | None = None
    PartitionStart: date | None = None
    RetentionDays: int | None = None
    TopicPartitions: int | None = None


@dataclass(frozen=True)
class TransformationRow:
    TransformationID: int
    Name: str
    Description: str | None
    Type: str
    Configuration: str
    DataProductID: int


@dataclass(frozen=True)
class TransformationDependencyRow:
    DependencyID: int
    TransformationID: int
    DependsOnTransformationID: int


@dataclass(frozen=True)
class DataQualityRuleRow:
    RuleID: int
    DataSetID: int
    Name: str
    Description: str | None
    Type: str
    Configuration: str


@dataclass(frozen=True)
class TransformationDataSetRow:
    TransformationDataSetID: int
    TransformationID: int
    DataSetID: int
    Role: str


@dataclass(frozen=True)
class ConfigurationCategoryRow:
    CategoryID: int
    CategoryName: str


@dataclass(frozen=True)
class ConfigurationItemRow:
    ItemID: int
    CategoryID: int
    ItemKey: str
    ItemValue: str
    Description: str | None


@dataclass(frozen=True)
class ConfigurationVersionRow:
    VersionID: int
    ItemID: int
    VersionNumber: int
    ItemValue: str
    EffectiveDate: datetime
    ExpirationDate: datetime | None


@dataclass(frozen=True)
class StoreSnapshot:
    """Every row of the store, read in one transaction (one SELECT per table, whatever the size)."""

    data_products: list[DataProductRow] = field(default_factory=list)
    data_sources: list[DataSourceRow] = field(default_factory=list)
    data_sets: list[DataSetRow] = field(default_factory=list)
    transformations: list[TransformationRow] = field(default_factory=list)
    transformation_dependencies: list[TransformationDependencyRow] = field(default_factory=list)
    data_quality_rules: list[DataQualityRuleRow] = field(default_factory=list)
    transformation_data_sets: list[TransformationDataSetRow] = field(default_factory=list)
    configuration_categories: list[ConfigurationCategoryRow] = field(default_factory=list)
    configuration_items: list[ConfigurationItemRow] = field(default_factory=list)
    configuration_versions: list[ConfigurationVersionRow] = field(default_factory=list)


def store_now() -> datetime:
    """Now as the store's rows keep times: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


RowT = TypeVar("RowT")

# snapshot attribute -> (table, row type); the order is the read order.
SNAPSHOT_TABLES: dict[str, tuple[Table, type[Any]]] = {
    "data_products": (schema.data_products, DataProductRow),
    "data_sources": (schema.data_sources, DataSourceRow),
    "data_sets": (schema.data_sets, DataSetRow),
    "transformations": (schema.transformations, TransformationRow),
    "transformation_dependencies": (
        schema.transformation_dependencies,
        TransformationDependencyRow,
    ),
    "data_quality_rules": (schema.data_quality_rules, DataQualityRuleRow),
    "transformation_data_sets": (schema.transformation_data_sets, TransformationDataSetRow),
    "configuration_categories": (schema.configuration_category, ConfigurationCategoryRow),
    "configuration_items": (schema.configuration_item, ConfigurationItemRow),
    "configuration_versions": (schema.configuration_version, ConfigurationVersionRow),
}


def read_store(source: Engine | Connection) -> StoreSnapshot:
    """Read the whole store once; the number of queries does not grow with the number of rows.

    On a Connection the rows are read inside its transaction, so rows it wrote and has not
    committed are seen (`data-mesh load` validates a product before it commits it)."""
    if isinstance(source, Connection):
        return _read_tables(source)
    with source.connect() as connection:
        return _read_tables(connection)


def _read_tables(connection: Connection) -> StoreSnapshot:
    values: dict[str, list[Any]] = {}
    for attribute, (table, row_type) in SNAPSHOT_TABLES.items():
        names = [f.name for f in fields(row_type)]
        primary_key = next(iter(table.primary_key.columns))
        result = connection.execute(
            select(*(table.c[name] for name in names)).order_by(primary_key)
        )
        values[attribute] = [row_type(*row) for row in result]
    return StoreSnapshot(**values)
