"""DataSets rows resolved into `DataSetModel`s: layer, DDZ target, write mode, declared
columns and daily partitions."""

from __future__ import annotations

import json

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import required_identifier
from data_mesh.catalog.models import (
    DEFAULT_TARGET_SCHEMA,
    KAFKA_SOURCE_TYPE,
    LAYERS,
    WRITE_MODES,
    DataSetModel,
    DeclaredColumn,
    Partitioning,
)
from data_mesh.kafka.connection import check_topic_name, parse_kafka_connection
from data_mesh.settings.secrets import parse_reference
from data_mesh.store.rows import DataProductRow, DataSetRow, DataSourceRow


def resolve_dataset(
    row: DataSetRow, product: DataProductRow, source: DataSourceRow | None, timezone: str = "UTC"
) -> DataSetModel:
    where = f"DataSets row {row.DataSetID} ({row.Name})"
    if source is None:
        raise MetadataError(f"{where}: DataSourceID {row.DataSourceID} does not exist")
    required_identifier(row.Name, where, "Name")
    layer = (row.Layer or "").upper()
    if layer not in LAYERS:
        raise MetadataError(f"{where}: Layer {row.Layer!r} must be one of {', '.join(LAYERS)}")
    target_schema = target_table = write_mode = None
    keys: tuple[str, ...] = ()
    kafka = source.Type.lower() == KAFKA_SOURCE_TYPE
    if kafka:
        target_table, keys = _kafka_target(row, source, layer, where)
        write_mode = "append"
    elif row.TopicPartitions is not None:
        raise MetadataError(f"{where}: TopicPartitions is for DataSets of a kafka DataSource")
    elif layer == "CDZ":
        required_identifier(source.Name, f"DataSources row {source.DataSourceID}", "Name")
        if not row.Location:
            raise MetadataError(f"{where}: Location (path in the lake) is required for CDZ data")
    else:
        target_schema = required_identifier(
            row.TargetSchema or DEFAULT_TARGET_SCHEMA, where, "TargetSchema"
        )
        target_table = required_identifier(row.TargetTable, where, "TargetTable")
        write_mode = (row.WriteMode or "replace").lower()
        if write_mode not in WRITE_MODES:
            raise MetadataError(
                f"{where}: WriteMode {row.WriteMode!r} must be one of {', '.join(WRITE_MODES)}"
            )
        keys = _key_columns(row, where)
        if write_mode == "merge" and not keys:
            raise MetadataError(f"{where}: WriteMode 'merge' needs KeyColumns")
    columns = _declared_columns(row.Schema, where)
    return DataSetModel(
        id=row.DataSetID,
        name=row.Name,
        product=product.Name,
        domain=product.Domain,
        layer=layer,
        source_name=source.Name,
        source_type=source.Type,
        source_format=source.Format,
        location=row.Location,
        target_schema=target_schema,
        target_table=target_table,
        write_mode=write_mode,
        key_columns=keys,
        description=row.Description,
        columns=columns,
        # A Kafka day is published, not replaced: its partitions take no write mode.
        partition=_partitioning(row, where, None if kafka else write_mode, columns, timezone),
        source_connection=source.ConnectionString,
        topic_partitions=row.TopicPartitions,
    )


def _key_columns(row: DataSetRow, where: str) -> tuple[str, ...]:
    return tuple(
        required_identifier(key.strip(), where, "KeyColumns")
        for key in (row.KeyColumns or "").split(",")
        if key.strip()
    )


def _kafka_target(
    row: DataSetRow, source: DataSourceRow, layer: str, where: str
) -> tuple[str, tuple[str, ...]]:
    """The topic and key columns of a DataSet published to Kafka, checked before any run."""
    if layer != "DDZ":
        raise MetadataError(f"{where}: a DataSet of a kafka DataSource is a target: Layer DDZ")
    if (row.WriteMode or "append").lower() != "append":
        raise MetadataError(
            f"{where}: a Kafka topic is appended to; WriteMode {row.WriteMode!r} does not apply"
        )
    if source.Format.lower() != "json":
        raise MetadataError(
            f"DataSources row {source.DataSourceID} ({source.Name}): Format {source.Format!r}: "
            "Kafka values are written as json"
        )
    if parse_reference(source.ConnectionString) is None:  # an address: checked now
        parse_kafka_connection(
            source.ConnectionString, f"DataSources row {source.DataSourceID} ({source.Name})"
        )
    topic = check_topic_name(row.TargetTable or "", f"{where}: TargetTable")
    if row.TopicPartitions is None or row.TopicPartitions < 1:
        raise MetadataError(f"{where}: TopicPartitions (at least 1) is required for a topic")
    keys = _key_columns(row, where)
    if not keys:
        raise MetadataError(f"{where}: KeyColumns are required: they are the messages' key")
    return topic, keys


def _partitioning(
    row: DataSetRow,
    where: str,
    write_mode: str | None,
    columns: tuple[DeclaredColumn, ...],
    timezone: str,
) -> Partitioning | None:
    if not row.PartitionColumn:
        if row.PartitionStart is not None or row.RetentionDays is not None:
            raise MetadataError(f"{where}: PartitionStart and RetentionDays need a PartitionColumn")
        return None
    column = required_identifier(row.PartitionColumn, where, "PartitionColumn")
    if row.PartitionStart is None:
        raise MetadataError(f"{where}: PartitionColumn {column!r} needs a PartitionStart date")
    if write_mode not in (None, "replace"):
        raise MetadataError(
            f"{where}: a partitioned DataSet replaces one day's rows per run; WriteMode "
            f"{write_mode!r} is not supported with PartitionColumn"
        )
    if row.RetentionDays is not None and row.RetentionDays < 1:
        raise MetadataError(f"{where}: RetentionDays must be at least 1, got {row.RetentionDays}")
    declared = {c.name.lower(): c for c in columns}
    if declared and column.lower() not in declared:
        raise MetadataError(f"{where}: PartitionColumn {column!r} is not in its Schema")
    return Partitioning(column, row.PartitionStart, row.RetentionDays, timezone)


def _declared_columns(text: str | None, where: str) -> tuple[DeclaredColumn, ...]:
    """DataSets.Schema: a JSON list of {name, type, pii} objects, or an object name -> type."""
    if not text or not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{where}: Schema is not valid JSON: {error}") from error
    if isinstance(raw, dict):
        raw = [{"name": name, "type": type_} for name, type_ in raw.items()]
    if not isinstance(raw, list) or not all(isinstance(c, dict) and "name" in c for c in raw):
        raise MetadataError(
            f'{where}: Schema must be a JSON list of {{"name", "type", "pii"}} objects'
        )
    return tuple(
        DeclaredColumn(
            name=required_identifier(str(c["name"]), where, "Schema column"),
            type=str(c["type"]) if c.get("type") else None,
            pii=bool(c.get("pii", False)),
        )
        for c in raw
    )
