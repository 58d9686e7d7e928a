"""Data products described in files (`metadata/products/<product>/product.yaml`), upserted into
the store idempotently: loading the same files twice leaves the store unchanged, and rows of a
product that are no longer in its file are removed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection, Engine, Table, delete, select, update

from data_mesh.catalog.automation import quartz_to_cron, validate_timezone
from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.errors import DataMeshError, MetadataError
from data_mesh.catalog.rule_configs import parse_rule_config
from data_mesh.catalog.transformation_configs import (
    PropertiesSequenceConfig,
    describe_validation_error,
    parse_transformation_config,
)
from data_mesh.lake.storage import SavedFiles
from data_mesh.store import schema
from data_mesh.store.rows import read_store
from data_mesh.transforms.query_files import load_query_plan, query_file_path, sequence_file_path

PRODUCT_FILE = "product.yaml"


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceFile(_FileModel):
    name: str
    type: str = Field(description="lake | database | file | ddz | kafka")
    connection: str = Field(description="A reference (lake://..., env:NAME), never a secret.")
    format: str


class ColumnFile(_FileModel):
    name: str
    type: str | None = None
    pii: bool = Field(default=False, description="Masked in sample rows shown in the UI.")


class PartitionFile(_FileModel):
    column: str
    start: dt.date = Field(description="The first daily partition.")
    retention_days: int | None = Field(default=None, ge=1, description="Days kept in the DDZ.")


class DataSetFile(_FileModel):
    name: str
    source: str
    layer: Literal["CDZ", "DDZ", "cdz", "ddz"]
    description: str | None = None
    location: str | None = None
    schema_: list[ColumnFile] = Field(default_factory=list, alias="schema")
    target_schema: str | None = None
    target_table: str | None = None
    write_mode: str | None = None
    key_columns: list[str] = Field(default_factory=list)
    partition: PartitionFile | None = None
    # A DataSet of a `kafka` source: the topic its rows are sent to, and its partitions.
    topic: str | None = None
    topic_partitions: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _topic_or_table(self) -> DataSetFile:
        if self.topic is not None and self.target_table is not None:
            raise ValueError("give 'topic' (a Kafka DataSet) or 'target_table', not both")
        if (self.topic is None) != (self.topic_partitions is None):
            raise ValueError("'topic' and 'topic_partitions' go together")
        return self


class TransformationFile(_FileModel):
    name: str
    type: str
    description: str | None = None
    inputs: list[str] = Field(default_factory=list)
    output: str
    depends_on: list[str] = Field(default_factory=list)
    configuration: dict[str, Any]


class QualityRuleFile(_FileModel):
    dataset: str
    name: str
    type: str
    description: str | None = None
    configuration: dict[str, Any] = Field(default_factory=dict)


class ScheduleFile(_FileModel):
    cron: str = Field(description="Quartz (`0 0 2 * * ?`) or 5-field cron.")
    timezone: str = "UTC"


class ProductFile(_FileModel):
    name: str
    domain: str
    owner: str | None = None
    description: str | None = None
    sources: list[SourceFile] = Field(default_factory=list)
    datasets: list[DataSetFile] = Field(default_factory=list)
    transformations: list[TransformationFile] = Field(default_factory=list)
    quality_rules: list[QualityRuleFile] = Field(default_factory=list)
    schedule: ScheduleFile | None = Field(
        default=None, description="Stored as configuration rows of scope product.<name>."
    )


@dataclass
class LoadedProduct:
    name: str
    path: Path
    query_files: list[Path] = field(default_factory=list)


def find_product_files(path: Path) -> list[Path]:
    """`product.yaml` files at `path` (a file, a product folder, or a folder of products)."""
    if path.is_file():
        return [path]
    if (path / PRODUCT_FILE).is_file():
        return [path / PRODUCT_FILE]
    found = sorted(path.glob(f"*/{PRODUCT_FILE}"))
    if not found:
        raise MetadataError(f"{path}: no {PRODUCT_FILE} found")
    return found


def read_product_file(path: Path) -> ProductFile:
    """Parse and validate one product file; errors name the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise MetadataError(f"{path}: cannot read YAML: {error}") from error
    try:
        product = ProductFile.model_validate(raw)
    except ValidationError as error:
        raise MetadataError(f"{path}: {describe_validation_error(error)}") from error
    for index, transformation in enumerate(product.transformations):
        try:
            parse_transformation_config(
                index, transformation.type, json.dumps(transformation.configuration)
            )
        except MetadataError as error:
            message = str(error).replace(
                f"Transformations row {index}", f"transformation {transformation.name!r}"
            )
            raise MetadataError(f"{path}: {message}") from error
    for index, rule in enumerate(product.quality_rules):
        try:
            parse_rule_config(index, rule.name, rule.type, json.dumps(rule.configuration))
        except MetadataError as error:
            message = str(error).replace(f"DataQualityRules row {index} ", "")
            raise MetadataError(f"{path}: rule {message}") from error
    if product.schedule is not None:
        quartz_to_cron(product.schedule.cron, f"{path}: schedule.cron")
        validate_timezone(product.schedule.timezone, f"{path}: schedule.timezone")
    return product


def query_files_of(product_file: Path) -> list[Path]:
    """Files under the product's `queries/` folder, published to the lake's `queries` container."""
    folder = product_file.parent / "queries"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def _upsert(
    connection: Connection, table: Table, key: dict[str, Any], values: dict[str, Any]
) -> int:
    """Insert or update the row with natural key `key`; returns its primary key."""
    primary_key = next(iter(table.primary_key.columns))
    condition = [table.c[name] == value for name, value in key.items()]
    existing = connection.execute(select(primary_key).where(*condition)).scalar()
    if existing is None:
        result = connection.execute(table.insert().values(**key, **values))
        return int(result.inserted_primary_key[0])  # type: ignore[index]
    if values:
        connection.execute(update(table).where(primary_key == existing).values(**values))
    return int(existing)


def _delete_missing(connection: Connection, table: Table, where: Any, keep: Iterable[int]) -> None:
    primary_key = next(iter(table.primary_key.columns))
    connection.execute(delete(table).where(where, primary_key.not_in(list(keep))))


def _dataset_id(connection: Connection, own: dict[str, int], name: str, where: str) -> int:
    """A DataSet by name: the product's own first, else a unique name anywhere in the store."""
    if name in own:
        return own[name]
    ids = (
        connection.execute(
            select(schema.data_sets.c.DataSetID).where(schema.data_sets.c.Name == name)
        )
        .scalars()
        .all()
    )
    if len(ids) != 1:
        found = "no DataSet" if not ids else f"{len(ids)} DataSets"
        raise MetadataError(f"{where}: {found} named {name!r} (load its product first)")
    return int(ids[0])


def upsert_product(connection: Connection, product: ProductFile, path: Path) -> None:
    """Make the store hold exactly what the product file says (within that product)."""
    product_id = _upsert(
        connection,
        schema.data_products,
        {"Name": product.name},
        {"Domain": product.domain, "Owner": product.owner, "Description": product.description},
    )
    source_ids = {
        source.name: _upsert(
            connection,
            schema.data_sources,
            {"Name": source.name},
            {"Type": source.type, "ConnectionString": source.connection, "Format": source.format},
        )
        for source in product.sources
    }

    def source_id(name: str, where: str) -> int:
        if name in source_ids:
            return source_ids[name]
        found = connection.execute(
            select(schema.data_sources.c.DataSourceID).where(schema.data_sources.c.Name == name)
        ).scalar()
        if found is None:
            raise MetadataError(f"{where}: unknown source {name!r}")
        return int(found)

    dataset_ids: dict[str, int] = {}
    for dataset in product.datasets:
        where = f"{path}: dataset {dataset.name!r}"
        dataset_ids[dataset.name] = _upsert(
            connection,
            schema.data_sets,
            {"DataSourceID": source_id(dataset.source, where), "Name": dataset.name},
            {
                "DataProductID": product_id,
                "Schema": json.dumps(
                    [c.model_dump(exclude_defaults=True) for c in dataset.schema_]
                ),
                "Layer": dataset.layer.upper(),
                "Location": dataset.location,
                "TargetSchema": dataset.target_schema,
                "TargetTable": dataset.topic or dataset.target_table,
                "WriteMode": dataset.write_mode,
                "KeyColumns": ",".join(dataset.key_columns) or None,
                "Description": dataset.description,
                "PartitionColumn": dataset.partition.column if dataset.partition else None,
                "PartitionStart": dataset.partition.start if dataset.partition else None,
                "RetentionDays": dataset.partition.retention_days if dataset.partition else None,
                "TopicPartitions": dataset.topic_partitions,
            },
        )

    transformation_ids: dict[str, int] = {}
    link_ids: list[int] = []
    for transformation in product.transformations:
        where = f"{path}: transformation {transformation.name!r}"
        transformation_id = _upsert(
            connection,
            schema.transformations,
            {"Name": transformation.name},
            {
                "DataProductID": product_id,
                "Description": transformation.description,
                "Type": transformation.type,
                "Configuration": json.dumps(transformation.configuration, sort_keys=True),
            },
        )
        transformation_ids[transformation.name] = transformation_id
        roles = [("output", transformation.output)] + [("input", i) for i in transformation.inputs]
        for role, name in roles:
            link_ids.append(
                _upsert(
                    connection,
                    schema.transformation_data_sets,
                    {
                        "TransformationID": transformation_id,
                        "DataSetID": _dataset_id(connection, dataset_ids, name, where),
                        "Role": role,
                    },
                    {},
                )
            )

    dependency_ids: list[int] = []
    for transformation in product.transformations:
        for upstream in transformation.depends_on:
            upstream_id = (
                transformation_ids.get(upstream)
                or connection.execute(
                    select(schema.transformations.c.TransformationID).where(
                        schema.transformations.c.Name == upstream
                    )
                ).scalar()
            )
            if upstream_id is None:
                raise MetadataError(
                    f"{path}: transformation {transformation.name!r} depends on unknown "
                    f"transformation {upstream!r}"
                )
            dependency_ids.append(
                _upsert(
                    connection,
                    schema.transformation_dependencies,
                    {
                        "TransformationID": transformation_ids[transformation.name],
                        "DependsOnTransformationID": int(upstream_id),
                    },
                    {},
                )
            )

    for rule in product.quality_rules:
        if rule.dataset not in dataset_ids:
            raise MetadataError(
                f"{path}: rule {rule.name!r} names dataset {rule.dataset!r}, which is not one "
                f"of this product's datasets ({', '.join(sorted(dataset_ids)) or 'none'})"
            )
    rule_ids = [
        _upsert(
            connection,
            schema.data_quality_rules,
            {"DataSetID": dataset_ids[rule.dataset], "Name": rule.name},
            {
                "Description": rule.description,
                "Type": rule.type,
                "Configuration": json.dumps(rule.configuration, sort_keys=True),
            },
        )
        for rule in product.quality_rules
    ]

    _upsert_schedule(connection, product)

    # Remove what the file no longer describes, children before parents.
    own_transformations = select(schema.transformations.c.TransformationID).where(
        schema.transformations.c.DataProductID == product_id
    )
    own_datasets = select(schema.data_sets.c.DataSetID).where(
        schema.data_sets.c.DataProductID == product_id
    )
    _delete_missing(
        connection,
        schema.data_quality_rules,
        schema.data_quality_rules.c.DataSetID.in_(own_datasets),
        rule_ids,
    )
    _delete_missing(
        connection,
        schema.transformation_dependencies,
        schema.transformation_dependencies.c.TransformationID.in_(own_transformations),
        dependency_ids,
    )
    _delete_missing(
        connection,
        schema.transformation_data_sets,
        schema.transformation_data_sets.c.TransformationID.in_(own_transformations),
        link_ids,
    )
    _delete_missing(
        connection,
        schema.transformations,
        schema.transformations.c.DataProductID == product_id,
        transformation_ids.values(),
    )
    _delete_missing(
        connection,
        schema.data_sets,
        schema.data_sets.c.DataProductID == product_id,
        dataset_ids.values(),
    )


def _upsert_schedule(connection: Connection, product: ProductFile) -> None:
    """The file's schedule as `schedule.*` items of category `product.<name>`; other items of
    that category (retries, `schedule.enabled@ENV` ...) are managed in the store, not here."""
    category_id = _upsert(
        connection, schema.configuration_category, {"CategoryName": f"product.{product.name}"}, {}
    )
    items = {}
    if product.schedule is not None:
        items = {
            "schedule.cron": product.schedule.cron,
            "schedule.timezone": product.schedule.timezone,
        }
    kept = [
        _upsert(
            connection,
            schema.configuration_item,
            {"CategoryID": category_id, "ItemKey": key},
            {"ItemValue": value, "Description": "from product.yaml"},
        )
        for key, value in items.items()
    ]
    item = schema.configuration_item.c
    _delete_missing(
        connection,
        schema.configuration_item,
        (item.CategoryID == category_id)
        & item.ItemKey.in_(["schedule.cron", "schedule.timezone"])
        & item.ItemID.not_in(select(schema.configuration_version.c.ItemID).scalar_subquery()),
        kept,
    )


def check_loaded_product(
    connection: Connection, product: ProductFile, path: Path, query_files: list[Path]
) -> None:
    """Raise MetadataError (naming `path`) if `product`, as upserted on `connection` and not
    yet committed, breaks any rule `data-mesh validate` applies: the catalog is built from the
    store's rows as the transaction sees them (identifiers, SQL, secrets, references ...), and
    its query files are checked from the product's `queries/` folder before they are
    published. A product broken only because a product it reads is broken still loads:
    `validate` reports it until the other one is fixed."""
    catalog = build_catalog(read_store(connection))
    for problem in catalog.problems:
        if problem.product == product.name and problem.upstream is None:
            raise MetadataError(f"{path}: {problem.message}")
    model = next((p for p in catalog.products if p.name == product.name), None)
    inputs = {t.name: t.inputs for t in model.transformations} if model else {}
    folder = path.parent / "queries"
    files = SavedFiles(
        {f"queries/{f.relative_to(folder).as_posix()}": f.read_text("utf-8") for f in query_files},
        str(folder),
    )
    for transformation in product.transformations:
        if transformation.type != "properties_sequence":
            continue
        config = PropertiesSequenceConfig.model_validate(transformation.configuration)
        if not (files.exists(query_file_path(config)) and files.exists(sequence_file_path(config))):
            continue  # files published by another product: validate checks them in the lake
        # Without the resolved inputs (a broken upstream) every rule but the tables' applies.
        known = inputs.get(transformation.name)
        tables = None if known is None else [d.sql_name for d in known]
        try:
            load_query_plan(files, config, tables)
        except DataMeshError as error:
            where = f"{path}: transformation {transformation.name!r}"
            raise MetadataError(f"{where}: {error}") from error


def load_product_files(engine: Engine, path: Path) -> list[LoadedProduct]:
    """Upsert every product under `path`, each in its own transaction.

    A product whose file is invalid, or that `data-mesh validate` would report as broken, raises
    and its transaction rolls back: nothing of it is written. Products loaded before it stay
    loaded.
    """
    loaded = []
    for product_file in find_product_files(path):
        product = read_product_file(product_file)
        query_files = query_files_of(product_file)
        with engine.begin() as connection:
            upsert_product(connection, product, product_file)
            check_loaded_product(connection, product, product_file, query_files)
        loaded.append(LoadedProduct(product.name, product_file, query_files))
    return loaded
