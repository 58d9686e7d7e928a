"""The translator from catalog rows to Dagster definitions: asset keys, AssetSpecs and
AssetCheckSpecs, partitions, retry policy, pool and transformation metadata, and the multi-asset
of each product. What runs inside its step is in `data_mesh.component.runtime`.
"""

import functools
import graphlib
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    Backoff,
    DailyPartitionsDefinition,
    PreviewWarning,
    RetryPolicy,
    multi_asset,
)

from data_mesh.catalog.models import (
    DataProductModel,
    DataSetModel,
    QualityRuleModel,
    TransformationModel,
)
from data_mesh.catalog.transformation_configs import IngestConfig, PropertiesSequenceConfig
from data_mesh.component.naming import DEFAULT_MESH, MESH_TAG, mesh_name
from data_mesh.quality.rule_sql import rule_sql
from data_mesh.resources.ddz_io_manager import (
    KEY_COLUMNS,
    PARTITION_COLUMN,
    RETENTION_DAYS,
    SPARK_CONFIG,
    TARGET_TABLE,
    WRITE_MODE,
)
from data_mesh.resources.environments import DDZ_IO_MANAGER_KEY, KAFKA_IO_MANAGER_KEY
from data_mesh.resources.kafka_io_manager import (
    DATASET,
    KAFKA_CONNECTION,
    TOPIC,
    TOPIC_PARTITIONS,
)
from data_mesh.transforms.query_files import query_file_path, sequence_file_path


def dataset_asset_key(dataset: DataSetModel) -> AssetKey:
    """`<domain>/<layer>/<dataset>`, e.g. `payments/ddz/sor1_payments`."""
    return AssetKey([dataset.domain, dataset.layer.lower(), dataset.name])


def _owners(product: DataProductModel) -> list[str]:
    return [product.owner] if product.owner else []


def daily_partitions(dataset: DataSetModel) -> DailyPartitionsDefinition | None:
    """Daily partitions of a DataSet with a PartitionColumn, in its product's time zone; today's
    partition exists (a daily export lands during its own day, seed 002)."""
    if dataset.partition is None:
        return None
    return _daily(dataset.partition.start.isoformat(), dataset.partition.timezone)


@functools.cache
def _daily(start: str, timezone: str) -> DailyPartitionsDefinition:
    """One definition per start and time zone, shared by every spec, check and step using it."""
    return DailyPartitionsDefinition(start_date=start, timezone=timezone, end_offset=1)


def source_asset_spec(dataset: DataSetModel, product: DataProductModel) -> AssetSpec:
    """A CDZ DataSet: an external asset, observed in the lake, not materialized by Dagster."""
    return AssetSpec(
        key=dataset_asset_key(dataset),
        description=dataset.description or f"CDZ data {dataset.sql_name}",
        group_name=dataset.domain,
        owners=_owners(product),
        kinds={"azure", "parquet" if dataset.source_format == "parquet" else "file"},
        tags={"data_mesh/layer": "cdz", "data_mesh/product": product.name},
        metadata={
            "data_mesh/dataset_id": dataset.id,
            "data_mesh/sql_name": dataset.sql_name,
            "data_mesh/location": dataset.location or "",
            "data_mesh/format": dataset.source_format,
            **_partition_metadata(dataset),
        },
        partitions_def=daily_partitions(dataset),
    )


def _partition_metadata(dataset: DataSetModel) -> dict[str, Any]:
    if dataset.partition is None:
        return {}
    return {PARTITION_COLUMN: dataset.partition.column}


def retry_policy(transformations: Sequence[TransformationModel]) -> RetryPolicy | None:
    """The product's retries from the configuration rows (the most any of its DataSets asks
    for); a retried step resumes its DDZ loads at the first chunk not committed."""
    retries = [t.overrides.retry for t in transformations if t.overrides.retry.get("max_retries")]
    if not retries:
        return None
    retry = max(retries, key=lambda r: (r["max_retries"], r.get("retry_delay_s", 30.0)))
    return RetryPolicy(
        max_retries=int(retry["max_retries"]),
        delay=retry.get("retry_delay_s", 30.0),
        backoff=Backoff.EXPONENTIAL,
    )


def effective_spark_config(transformation: TransformationModel) -> dict[str, str]:
    """The transformation's spark_config, overridden by the configuration rows."""
    return {**transformation.config.spark_config, **transformation.overrides.spark_config}


def transformation_metadata(transformation: TransformationModel) -> dict[str, Any]:
    output = transformation.output
    metadata: dict[str, Any] = {
        "data_mesh/transformation_id": transformation.id,
        "data_mesh/dataset_id": output.id,
        "data_mesh/transformation_type": transformation.type,
        TARGET_TABLE: output.target or "",
        WRITE_MODE: output.write_mode or "replace",
        KEY_COLUMNS: ",".join(output.key_columns),
        SPARK_CONFIG: json.dumps(effective_spark_config(transformation), sort_keys=True),
    }
    if output.is_kafka:
        metadata[DATASET] = output.name
        metadata[TOPIC] = output.target_table or ""
        metadata[TOPIC_PARTITIONS] = output.topic_partitions or 1
        metadata[KAFKA_CONNECTION] = output.source_connection
    # Per-dataset overrides from the configuration rows (chunk sizes, connections).
    for name, value in sorted(transformation.overrides.ddz.items()):
        metadata[f"data_mesh/{name}"] = value
    if isinstance(transformation.config, PropertiesSequenceConfig):
        metadata["data_mesh/query_file"] = query_file_path(transformation.config)
        metadata["data_mesh/sequence_file"] = sequence_file_path(transformation.config)
    if output.target and not output.is_kafka:
        # TableMetadataSet(table_name=...) once Dagster exports it: 1.13 keeps that class in a
        # private module only, so its key is written out.
        metadata["dagster/table_name"] = output.target
    metadata.update(_partition_metadata(output))
    if output.partition is not None and output.partition.retention_days is not None:
        metadata.setdefault(RETENTION_DAYS, output.partition.retention_days)
    return metadata


def quality_check_spec(rule: QualityRuleModel) -> AssetCheckSpec:
    """A DataQualityRules row: a check on the asset that produces its DataSet."""
    partitions = daily_partitions(rule.dataset)
    if partitions is None:  # no warning to hide (and catch_warnings costs at 40,000 checks)
        return _check_spec(rule, None)
    with warnings.catch_warnings():
        # Partitioned checks (a result per day, on that day's rows) have no stable API in
        # Dagster 1.13: only this preview one, whose warning is no news to the user; other
        # warnings (deprecations included) still show.
        warnings.filterwarnings(
            "ignore",
            message="Specifying a partitions_def on an AssetCheckSpec",
            category=PreviewWarning,
        )
        return _check_spec(rule, partitions)


def _check_spec(
    rule: QualityRuleModel, partitions: DailyPartitionsDefinition | None
) -> AssetCheckSpec:
    key = dataset_asset_key(rule.dataset)
    reference = rule.reference
    config = rule.config
    return AssetCheckSpec(
        name=rule.name,
        asset=key,
        description=rule.description or f"{rule.type} rule ({config.severity}, {config.action})",
        # Dagster blocks on failed ERROR results of blocking checks: the write is stopped
        # before it starts (see `runtime._computed`) and downstream assets are skipped.
        blocking=config.stops_load,
        additional_deps=(
            [dataset_asset_key(reference)]
            if reference is not None and reference != rule.dataset
            else []
        ),
        metadata={
            "data_mesh/rule_id": rule.id,
            "data_mesh/rule_type": rule.type,
            "data_mesh/severity": config.severity,
            "data_mesh/action": config.action,
            "data_mesh/threshold": config.threshold,
            "data_mesh/rule_sql": rule_sql(rule).shown,
        },
        # Evaluated per partition, on the partition's rows.
        partitions_def=partitions,
    )


def transformation_spec(
    transformation: TransformationModel,
    product: DataProductModel,
    upstream_outputs: Mapping[str, DataSetModel],
) -> AssetSpec:
    """A Transformations row: the asset of its output DataSet, with lineage to its inputs and
    to the outputs of the transformations it explicitly depends on."""
    output = transformation.output
    order_only = [
        upstream_outputs[name]
        for name in transformation.depends_on
        if upstream_outputs[name] not in transformation.inputs
    ]
    return AssetSpec(
        key=dataset_asset_key(output),
        deps=[dataset_asset_key(d) for d in [*transformation.inputs, *order_only]],
        description=transformation.description or output.description,
        group_name=output.domain,
        owners=_owners(product),
        kinds={"spark", "kafka" if output.is_kafka else "azure-sql"},
        tags={
            "data_mesh/layer": "ddz",
            "data_mesh/product": product.name,
            "data_mesh/transformation_type": transformation.type,
        },
        metadata=transformation_metadata(transformation),
        partitions_def=daily_partitions(output),
        # Not materialized when a blocking rule fails or only checks were selected.
        skippable=True,
        # Run by the domain's automation sensor on the product's cron.
        automation_condition=schedule_condition(product),
    ).with_io_manager_key(KAFKA_IO_MANAGER_KEY if output.is_kafka else DDZ_IO_MANAGER_KEY)


def schedule_condition(product: DataProductModel) -> AutomationCondition | None:
    """The product's cron (configuration rows) as the automation condition of its DDZ assets,
    when its schedule is enabled in this environment; None otherwise.

    Dagster's `on_cron` without its `all_deps_updated_since_cron` part: that part waits until
    every dependency updated since the tick, and the CDZ external assets never update in
    Dagster (the lake is watched by the storage sensors), so `on_cron` alone would never run a
    product. Without it, the product runs at its tick, as a schedule would. For a daily asset
    `on_cron` requests the latest partition: with `end_offset=1` and the partitions in the
    schedule's time zone, that is the day of the tick in that time zone.
    """
    schedule = product.schedule
    if schedule is None or not schedule.enabled:
        return None
    return _cron_condition(schedule.cron, schedule.timezone)


@functools.cache
def _cron_condition(cron: str, zone: str) -> AutomationCondition:
    """One (immutable) condition per cron and time zone, shared by every asset using it."""
    return (
        AutomationCondition.on_cron(cron, zone)
        .without(AutomationCondition.all_deps_updated_since_cron(cron, zone))
        .with_label(f"on_cron({cron}, {zone}) at the tick")
    )


def product_pool(product: DataProductModel, mesh: str = DEFAULT_MESH) -> str:
    """The Dagster concurrency pool of a product's DDZ loads (`product/<name>`, prefixed
    `<mesh>__` for a mesh other than the default)."""
    return mesh_name(mesh, f"product/{product.name}")


def _in_dependency_order(
    transformations: Sequence[TransformationModel],
) -> list[TransformationModel]:
    names = {t.name for t in transformations}
    graph = {t.name: {d for d in t.depends_on if d in names} for t in transformations}
    order = list(graphlib.TopologicalSorter(graph).static_order())
    by_name = {t.name: t for t in transformations}
    return [by_name[name] for name in order]


def product_assets(
    product: DataProductModel,
    transformations: Sequence[TransformationModel],
    upstream_outputs: Mapping[str, DataSetModel],
    name: str,
    mesh: str = DEFAULT_MESH,
) -> AssetsDefinition:
    """The assets of one data product (of one partitioning) as one multi-asset: one step per
    product per run, whatever its number of DataSets, and one check per quality rule.

    Selected assets are computed in dependency order; each is checked before the IO manager
    writes it, so a blocking failure keeps the load out of the DDZ table and skips the
    product's assets downstream of it. Checks selected alone (a rerun from the UI) compute and
    check, without writing. DDZ inputs are read from their tables, also within the product.
    """
    # Imported here, not at the top: the runtime imports this module's asset keys.
    from data_mesh.component.runtime import product_compute

    ordered = _in_dependency_order(transformations)
    needs_store = any(isinstance(t.config, IngestConfig) for t in ordered)
    # The resources come from the compute function's typed parameters (Dagster refuses
    # `required_resource_keys` beside them); the metadata store only for ingest watermarks.
    return multi_asset(
        name=name,
        specs=[transformation_spec(t, product, upstream_outputs) for t in ordered],
        check_specs=[quality_check_spec(rule) for t in ordered for rule in t.rules],
        partitions_def=daily_partitions(ordered[0].output),
        can_subset=True,
        # One load of a product's DDZ tables at a time across runs (the instance's pools
        # default to a limit of 1): a second run waits for the slot instead of loading beside
        # the first. The DDZ writer's claim in the database backs this up.
        pool=product_pool(product, mesh),
        retry_policy=retry_policy(ordered),
        # The mesh whose store the DDZ IO manager audits the writes in.
        op_tags={MESH_TAG: mesh},
    )(product_compute(ordered, needs_store, mesh))
