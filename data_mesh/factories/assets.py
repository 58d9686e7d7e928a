"""Assets from DataSets and Transformations rows.

No `from __future__ import annotations` here: Dagster inspects the compute function's real
annotations (the `context` type).
"""

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    AssetSpec,
    Backoff,
    DailyPartitionsDefinition,
    MetadataValue,
    Output,
    RetryPolicy,
    multi_asset,
)
from pyspark.sql import DataFrame, SparkSession

from data_mesh.ddz.dialects import TableName
from data_mesh.ingest.load import BronzeLoad, load_bronze
from data_mesh.metadata.audit import BLOCKED, FAILED, audit_row
from data_mesh.metadata.catalog import (
    DataProductModel,
    DataSetModel,
    QualityRuleModel,
    TransformationModel,
)
from data_mesh.metadata.configs import IngestConfig, PropertiesSequenceConfig
from data_mesh.metadata.watermarks import read_watermark, save_watermark
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
from data_mesh.spark_conf import spark_config_scope
from data_mesh.storage import Storage
from data_mesh.transforms.execute import (
    TransformationError,
    apply_output_shaping,
    register_cdz_dataset,
    run_transformation,
    with_partition_column,
)
from data_mesh.transforms.query_files import query_file_path, sequence_file_path


def dataset_asset_key(dataset: DataSetModel) -> AssetKey:
    """`<domain>/<layer>/<dataset>`, e.g. `payments/ddz/sor1_payments`."""
    return AssetKey([dataset.domain, dataset.layer.lower(), dataset.name])


def _owners(product: DataProductModel) -> list[str]:
    return [product.owner] if product.owner else []


def _input_name(dataset: DataSetModel) -> str:
    return f"in_{dataset.name}"


def daily_partitions(dataset: DataSetModel) -> DailyPartitionsDefinition | None:
    """Daily partitions of a DataSet with a PartitionColumn, in its product's time zone; today's
    partition exists (a daily export lands during its own day, seed 002)."""
    if dataset.partition is None:
        return None
    return DailyPartitionsDefinition(
        start_date=dataset.partition.start.isoformat(),
        timezone=dataset.partition.timezone,
        end_offset=1,
    )


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


def retry_policy(transformation: TransformationModel) -> RetryPolicy | None:
    """The product's retries from the configuration rows; a retried step resumes its DDZ load
    at the first chunk not committed."""
    retry = transformation.overrides.retry
    if not retry.get("max_retries"):
        return None
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
        partitions_def=daily_partitions(rule.dataset),
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


def transformation_asset(
    transformation: TransformationModel,
    product: DataProductModel,
    upstream_outputs: Mapping[str, DataSetModel],
) -> AssetsDefinition:
    """A Transformations row: an asset for its output DataSet, computed by Spark, with one
    check per quality rule on that DataSet.

    `upstream_outputs` maps transformation names to their output DataSets, so explicit
    TransformationDependencies rows become lineage edges too. The rules are evaluated on the
    computed DataFrame before the IO manager writes it, so a blocking failure keeps the load out
    of the DDZ table; checks selected alone (a rerun from the UI) compute and check, no write.
    """
    output = transformation.output
    key = dataset_asset_key(output)
    cdz_inputs = [d for d in transformation.inputs if d.layer == "CDZ"]
    ddz_inputs = [d for d in transformation.inputs if d.layer == "DDZ"]
    order_only = [
        dataset_asset_key(upstream_outputs[name])
        for name in transformation.depends_on
        if upstream_outputs[name] not in transformation.inputs
    ]

    @multi_asset(
        name=key.to_python_identifier(),
        outs={
            "result": AssetOut(
                key=key,
                description=transformation.description or output.description,
                group_name=output.domain,
                owners=_owners(product),
                kinds={"spark", "azure-sql"},
                tags={
                    "data_mesh/layer": "ddz",
                    "data_mesh/product": product.name,
                    "data_mesh/transformation_type": transformation.type,
                },
                metadata=transformation_metadata(transformation),
                io_manager_key=DDZ_IO_MANAGER_KEY,
                # Not yielded when a blocking rule fails or only checks were selected.
                is_required=False,
            )
        },
        ins={_input_name(d): AssetIn(key=dataset_asset_key(d)) for d in ddz_inputs},
        deps=[*(dataset_asset_key(d) for d in cdz_inputs), *order_only],
        check_specs=[quality_check_spec(rule) for rule in transformation.rules],
        partitions_def=daily_partitions(output),
        can_subset=True,
        retry_policy=retry_policy(transformation),
        required_resource_keys={
            "spark",
            "lake",
            QUALITY_HISTORY_KEY,
            AUDIT_LOG_KEY,
            DDZ_IO_MANAGER_KEY,
            *([METADATA_STORE_KEY] if isinstance(transformation.config, IngestConfig) else []),
        },
    )
    def _compute(
        context: AssetExecutionContext, **upstream: DataFrame
    ) -> Iterator[Output[DataFrame] | AssetCheckResult]:
        # The framework, not each asset, audits failures here (the IO manager audits writes).
        started = time.monotonic()
        try:
            yield from _computed(context, upstream)
        except Exception as error:
            _audit(context, FAILED, started, f"{type(error).__name__}: {error}")
            raise

    def _audit(context: AssetExecutionContext, status: str, started: float, detail: str) -> None:
        row = audit_row(
            key.to_user_string(),
            output.target or "",
            context.run_id,
            status,
            time.monotonic() - started,
            error=detail,
        )
        getattr(context.resources, AUDIT_LOG_KEY).record(row)

    where = f"transformation {transformation.name!r} (Transformations row {transformation.id})"

    def _computed(
        context: AssetExecutionContext, upstream: Mapping[str, DataFrame]
    ) -> Iterator[Output[DataFrame] | AssetCheckResult]:
        started = time.monotonic()
        spark = context.resources.spark.spark_session
        storage = context.resources.lake.storage()
        day = context.partition_key if context.has_partition_key else None
        inputs = {d.name: upstream[_input_name(d)] for d in ddz_inputs}
        bronze = watermark = None
        metadata: dict[str, Any] = {}
        with spark_config_scope(spark, effective_spark_config(transformation)):
            if isinstance(transformation.config, IngestConfig):
                bronze, watermark = _bronze_load(context, transformation, storage)
                result = apply_output_shaping(bronze.frame, transformation.config, where)
                metadata.update(_rejected_rows(bronze, output, context.run_id, storage))
            else:
                for dataset in cdz_inputs:
                    inputs[dataset.name] = _register_cdz_input(spark, storage, dataset, day)
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
                    _audit(context, BLOCKED, started, f"blocking rules failed: {', '.join(failed)}")
                if not write or report.load_stopped:
                    return
                result = report.clean
                if report.quarantine is not None:
                    path = quarantine_path(output, context.run_id)
                    rows = write_quarantine(report.quarantine, storage.spark_uri(path))
                    metadata["quarantined_rows"] = rows
                    metadata["quarantine_path"] = path
        if write:
            yield Output(result, output_name="result", metadata=metadata)
            # Reached only once the IO manager has written the rows: the next incremental load
            # starts after them. A failed write leaves the stored high mark where it was.
            if bronze is not None and bronze.watermark and bronze.watermark != watermark:
                column = transformation.config.watermark_column  # type: ignore[attr-defined]
                store = getattr(context.resources, METADATA_STORE_KEY)
                save_watermark(store.engine(), output.id, column, bronze.watermark, context.run_id)
        if bronze is not None:
            bronze.release()

    return _compute


def _bronze_load(
    context: AssetExecutionContext, transformation: TransformationModel, storage: Storage
) -> tuple[BronzeLoad, str | None]:
    """The source rows of an ingest transformation, after the stored watermark if incremental;
    returns the load and the watermark it started from."""
    config = transformation.config
    assert isinstance(config, IngestConfig)
    after = None
    if config.watermark_column:
        store = getattr(context.resources, METADATA_STORE_KEY)
        after = read_watermark(store.engine(), transformation.output.id, config.watermark_column)
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


def _register_cdz_input(
    spark: SparkSession, storage: Storage, dataset: DataSetModel, day: str | None
) -> DataFrame:
    """A CDZ input; a daily-partitioned one holds only the run's day, which must have landed."""
    location = dataset.location or ""
    if dataset.partition is None or day is None:
        return register_cdz_dataset(spark, dataset, storage.spark_uri(location))
    folder = f"{location.rstrip('/')}/{dataset.partition.column}={day}"
    if not storage.exists(folder):
        raise TransformationError(
            f"DataSets row {dataset.id} ({dataset.name}): no data for partition {day}: "
            f"{folder} is not in the lake ({storage.describe()})"
        )
    return register_cdz_dataset(spark, dataset, storage.spark_uri(location), day)


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
            references[reference.id] = register_cdz_dataset(spark, reference, uri)
        else:
            ddz = getattr(context.resources, DDZ_IO_MANAGER_KEY)
            assert reference.target_schema and reference.target_table
            table = TableName(reference.target_schema, reference.target_table)
            references[reference.id] = ddz.read_table(table)
    return references
