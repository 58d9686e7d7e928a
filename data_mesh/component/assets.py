"""Assets from DataSets and Transformations rows.

No `from __future__ import annotations` here: Dagster inspects the compute function's real
annotations (the `context` type).
"""

import functools
import graphlib
import json
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    DailyPartitionsDefinition,
    MetadataValue,
    Output,
    PreviewWarning,
    RetryPolicy,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession

from data_mesh.catalog.models import (
    DataProductModel,
    DataSetModel,
    QualityRuleModel,
    TransformationModel,
)
from data_mesh.catalog.transformation_configs import IngestConfig, PropertiesSequenceConfig
from data_mesh.ddz.dialects import TableName
from data_mesh.ingest.load import BronzeLoad, load_bronze
from data_mesh.lake.storage import Storage
from data_mesh.quality.evaluate import RuleOutcome, evaluate_rules
from data_mesh.quality.quarantine import quarantine_path, write_quarantine
from data_mesh.quality.rule_sql import rule_sql
from data_mesh.resources.ddz_io_manager import (
    KEY_COLUMNS,
    PARTITION_COLUMN,
    RETENTION_DAYS,
    SPARK_CONFIG,
    TARGET_TABLE,
    WRITE_MODE,
)
from data_mesh.resources.environments import (
    AUDIT_LOG_KEY,
    DDZ_IO_MANAGER_KEY,
    METADATA_STORE_KEY,
    QUALITY_HISTORY_KEY,
)
from data_mesh.spark.conf import spark_config_scope
from data_mesh.store.audit import BLOCKED, FAILED, audit_row
from data_mesh.store.watermarks import read_watermark, save_watermark
from data_mesh.transforms.execute import (
    TransformationError,
    apply_output_shaping,
    read_cdz_dataset,
    run_transformation,
    with_partition_column,
)
from data_mesh.transforms.query_files import query_file_path, sequence_file_path

IO_MANAGER_KEY = "dagster/io_manager_key"


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
    # Per-dataset overrides from the configuration rows (chunk sizes, connections).
    for name, value in sorted(transformation.overrides.ddz.items()):
        metadata[f"data_mesh/{name}"] = value
    if isinstance(transformation.config, PropertiesSequenceConfig):
        metadata["data_mesh/query_file"] = query_file_path(transformation.config)
        metadata["data_mesh/sequence_file"] = sequence_file_path(transformation.config)
    if output.target:
        metadata["dagster/table_name"] = output.target
    metadata.update(_partition_metadata(output))
    if output.partition is not None and output.partition.retention_days is not None:
        metadata.setdefault(RETENTION_DAYS, output.partition.retention_days)
    return metadata


def quality_check_spec(rule: QualityRuleModel) -> AssetCheckSpec:
    """A DataQualityRules row: a check on the asset that produces its DataSet."""
    partitions = daily_partitions(rule.dataset)
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
        # before it starts (see `transformation_asset`) and downstream assets are skipped.
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


def check_result(key: AssetKey, outcome: RuleOutcome) -> AssetCheckResult:
    """What the UI shows for one evaluated rule; samples have PII columns masked already."""
    config = outcome.rule.config
    metadata: dict[str, Any] = {
        # Text, not numbers: the UI would plot a rule id over time.
        "rule_id": MetadataValue.text(str(outcome.rule.id)),
        "total_rows": outcome.total_rows,
        "threshold": config.threshold,
        "action": config.action,
        "observed": outcome.observed,
        "rule_sql": MetadataValue.text(outcome.sql),
    }
    if outcome.failing_rows is not None:
        metadata["failing_rows"] = outcome.failing_rows
        metadata["failing_percent"] = round(outcome.failing_percent or 0.0, 4)
        metadata["sample_failing_rows"] = MetadataValue.json(list(outcome.samples))
    for name, value in outcome.details.items():
        metadata[name] = MetadataValue.json(value) if isinstance(value, list | dict) else value
    return AssetCheckResult(
        asset_key=key,
        check_name=outcome.rule.name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.WARN if config.severity == "WARN" else AssetCheckSeverity.ERROR,
        description=outcome.observed,
        metadata={k: v for k, v in metadata.items() if v is not None},
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
        kinds={"spark", "azure-sql"},
        tags={
            "data_mesh/layer": "ddz",
            "data_mesh/product": product.name,
            "data_mesh/transformation_type": transformation.type,
        },
        # What `AssetSpec.with_io_manager_key` sets, without building the spec twice.
        metadata={**transformation_metadata(transformation), IO_MANAGER_KEY: DDZ_IO_MANAGER_KEY},
        partitions_def=daily_partitions(output),
        # Not materialized when a blocking rule fails or only checks were selected.
        skippable=True,
    )


def product_pool(product: DataProductModel) -> str:
    """The Dagster concurrency pool of a product's DDZ loads."""
    return f"product/{product.name}"


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
) -> AssetsDefinition:
    """The assets of one data product (of one partitioning) as one multi-asset: one step per
    product per run, whatever its number of DataSets, and one check per quality rule.

    Selected assets are computed in dependency order; each is checked before the IO manager
    writes it, so a blocking failure keeps the load out of the DDZ table and skips the
    product's assets downstream of it. Checks selected alone (a rerun from the UI) compute and
    check, without writing. DDZ inputs are read from their tables, also within the product.
    """
    ordered = _in_dependency_order(transformations)
    needs_store = any(isinstance(t.config, IngestConfig) for t in ordered)

    @multi_asset(
        name=name,
        specs=[transformation_spec(t, product, upstream_outputs) for t in ordered],
        check_specs=[quality_check_spec(rule) for t in ordered for rule in t.rules],
        partitions_def=daily_partitions(ordered[0].output),
        can_subset=True,
        # One load of a product's DDZ tables at a time across runs (the instance's pools
        # default to a limit of 1): a second run waits for the slot instead of loading beside
        # the first. The DDZ writer's claim in the database backs this up.
        pool=product_pool(product),
        retry_policy=retry_policy(ordered),
        required_resource_keys={
            "spark",
            "lake",
            QUALITY_HISTORY_KEY,
            AUDIT_LOG_KEY,
            DDZ_IO_MANAGER_KEY,
            *([METADATA_STORE_KEY] if needs_store else []),
        },
    )
    # No return annotation on purpose: Dagster resolves it once per output of every product at
    # load, 40% of this factory's time (benchmarks/README.md). It yields Output[DataFrame] and
    # AssetCheckResult events.
    def _compute(context: AssetExecutionContext):  # type: ignore[no-untyped-def]
        stopped: set[str] = set()  # transformations that did not write: skip their dependents
        for transformation in ordered:
            key = dataset_asset_key(transformation.output)
            checks = {AssetCheckKey(key, rule.name) for rule in transformation.rules}
            selected = key in context.selected_asset_keys
            if not selected and not checks & context.selected_asset_check_keys:
                continue
            if stopped & set(transformation.depends_on):
                context.log.warning(
                    "%s skipped: upstream %s did not load",
                    key.to_user_string(),
                    ", ".join(sorted(stopped & set(transformation.depends_on))),
                )
                stopped.add(transformation.name)
                continue
            wrote = False
            for event in _materialize(context, transformation):
                wrote = wrote or isinstance(event, Output)
                yield event
            if selected and not wrote:
                stopped.add(transformation.name)

    return _compute


def _audit(
    context: AssetExecutionContext,
    transformation: TransformationModel,
    status: str,
    started: float,
    detail: str,
) -> None:
    row = audit_row(
        dataset_asset_key(transformation.output).to_user_string(),
        transformation.output.target or "",
        context.run_id,
        status,
        time.monotonic() - started,
        error=detail,
    )
    getattr(context.resources, AUDIT_LOG_KEY).record(row)


def _materialize(
    context: AssetExecutionContext, transformation: TransformationModel
) -> Iterator[Output[DataFrame] | AssetCheckResult]:
    """Compute, check and (when selected) write one transformation's DataSet. The framework,
    not each asset, audits failures here (the IO manager audits writes)."""
    started = time.monotonic()
    try:
        yield from _computed(context, transformation)
    except Exception as error:
        _audit(context, transformation, FAILED, started, f"{type(error).__name__}: {error}")
        raise


def _read_ddz_input(
    context: AssetExecutionContext, dataset: DataSetModel, day: str | None
) -> DataFrame:
    """A DDZ input read from its table; a daily-partitioned one only for the run's day."""
    ddz = getattr(context.resources, DDZ_IO_MANAGER_KEY)
    assert dataset.target_schema and dataset.target_table
    keys, partition = dataset.key_columns, dataset.partition
    return ddz.read_table(
        TableName(dataset.target_schema, dataset.target_table),
        keys[0] if keys else None,
        partition.column if partition else None,
        [day] if partition and day else [],
    )


def _computed(
    context: AssetExecutionContext, transformation: TransformationModel
) -> Iterator[Output[DataFrame] | AssetCheckResult]:
    started = time.monotonic()
    output = transformation.output
    key = dataset_asset_key(output)
    where = f"transformation {transformation.name!r} (Transformations row {transformation.id})"
    spark = context.resources.spark.spark_session
    storage = context.resources.lake.storage()
    day = context.partition_key if context.has_partition_key else None
    inputs: dict[str, DataFrame] = {}
    bronze = watermark = None
    metadata: dict[str, Any] = {}
    with spark_config_scope(spark, effective_spark_config(transformation)):
        if isinstance(transformation.config, IngestConfig):
            bronze, watermark = _bronze_load(context, transformation, storage)
            result = apply_output_shaping(bronze.frame, transformation.config, where)
            metadata.update(_rejected_rows(bronze, output, context.run_id, storage))
        else:
            for dataset in transformation.inputs:
                if dataset.layer == "DDZ":
                    inputs[dataset.name] = _read_ddz_input(context, dataset, day)
                else:
                    inputs[dataset.name] = _read_cdz_input(spark, storage, dataset, day)
            result = run_transformation(spark, transformation, inputs, storage)
        if day is not None and output.partition is not None:
            result = with_partition_column(result, output.partition.column, day)
        rules = [
            rule
            for rule in transformation.rules
            if AssetCheckKey(key, rule.name) in context.selected_asset_check_keys
        ]
        write = key in context.selected_asset_keys
        metadata["columns"] = MetadataValue.text(", ".join(result.columns))
        if rules:
            report = evaluate_rules(
                spark,
                result,
                rules,
                _references(context, rules, transformation, inputs, result, storage),
                load_id=context.run_id,
                pii_columns=transformation.pii_columns,
            )
            getattr(context.resources, QUALITY_HISTORY_KEY).record(report, context.run_id)
            yield from (check_result(key, outcome) for outcome in report.outcomes)
            if write and report.load_stopped:
                failed = [o.rule.name for o in report.outcomes if o.stops_load]
                detail = f"blocking rules failed: {', '.join(failed)}"
                _audit(context, transformation, BLOCKED, started, detail)
            if not write or report.load_stopped:
                return
            result = report.clean
            if report.quarantine is not None:
                path = quarantine_path(output, context.run_id)
                rows = write_quarantine(report.quarantine, storage.spark_uri(path))
                metadata["quarantined_rows"] = rows
                metadata["quarantine_path"] = path
    if write:
        yield Output(result, output_name=key.to_python_identifier(), metadata=metadata)
        # Reached only once the IO manager has written the rows: the next incremental load
        # starts after them. A failed write leaves the stored high mark where it was.
        if bronze is not None and bronze.watermark and bronze.watermark != watermark:
            column = transformation.config.watermark_column  # type: ignore[attr-defined]
            with getattr(context.resources, METADATA_STORE_KEY).engine_in_use() as engine:
                save_watermark(engine, output.id, column, bronze.watermark, context.run_id)
    if bronze is not None:
        bronze.release()


def _bronze_load(
    context: AssetExecutionContext, transformation: TransformationModel, storage: Storage
) -> tuple[BronzeLoad, str | None]:
    """The source rows of an ingest transformation, after the stored watermark if incremental;
    returns the load and the watermark it started from."""
    config = transformation.config
    assert isinstance(config, IngestConfig)
    after = None
    if config.watermark_column:
        with getattr(context.resources, METADATA_STORE_KEY).engine_in_use() as engine:
            after = read_watermark(engine, transformation.output.id, config.watermark_column)
    spark = context.resources.spark.spark_session
    source = transformation.inputs[0]
    load = load_bronze(spark, source, config, storage, context.run_id, after)
    if config.watermark_column:
        context.log.info(
            "%s: rows with %s after %s up to %s",
            source.name,
            config.watermark_column,
            after or "the start",
            load.watermark or after or "the start",
        )
    return load, after


def _rejected_rows(
    load: BronzeLoad, output: DataSetModel, run_id: str, storage: Storage
) -> dict[str, Any]:
    """Source rows that do not fit the declared schema are kept in the quarantine folder and
    counted in the materialization, never dropped silently."""
    if load.rejected is None:
        return {}
    path = f"{quarantine_path(output, run_id)}/rejected"
    load.rejected.write.mode("overwrite").parquet(storage.spark_uri(path))
    rows = load.rejected.sparkSession.read.parquet(storage.spark_uri(path)).count()
    return {"rejected_rows": rows, "rejected_path": path} if rows else {"rejected_rows": 0}


def _read_cdz_input(
    spark: SparkSession, storage: Storage, dataset: DataSetModel, day: str | None
) -> DataFrame:
    """A CDZ input; a daily-partitioned one holds only the run's day, which must have landed."""
    location = dataset.location or ""
    if dataset.partition is None or day is None:
        return read_cdz_dataset(spark, dataset, storage.spark_uri(location))
    folder = f"{location.rstrip('/')}/{dataset.partition.column}={day}"
    if not storage.exists(folder):
        raise TransformationError(
            f"DataSets row {dataset.id} ({dataset.name}): no data for partition {day}: "
            f"{folder} is not in the lake ({storage.describe()})"
        )
    return read_cdz_dataset(spark, dataset, storage.spark_uri(location), day)


def _references(
    context: AssetExecutionContext,
    rules: list[QualityRuleModel],
    transformation: TransformationModel,
    inputs: Mapping[str, DataFrame],
    result: DataFrame,
    storage: Storage,
) -> dict[int, DataFrame]:
    """The DataFrame of each DataSet a referential_integrity rule looks values up in."""
    references: dict[int, DataFrame] = {}
    for rule in rules:
        reference = rule.reference
        if reference is None or reference.id in references:
            continue
        if reference == rule.dataset:
            references[reference.id] = result
        elif reference in transformation.inputs:
            references[reference.id] = inputs[reference.name]
        elif reference.layer == "CDZ":
            spark = context.resources.spark.spark_session
            uri = storage.spark_uri(reference.location or "")
            references[reference.id] = read_cdz_dataset(spark, reference, uri)
        else:
            references[reference.id] = _read_ddz_input(context, reference, None)
    return references
