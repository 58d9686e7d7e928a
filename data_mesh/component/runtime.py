"""What runs inside a product's step: compute each selected DataSet (bronze load, inputs,
transformation), evaluate its quality rules, audit failures and hand the result to the DDZ IO
manager. The specs of the step are in `data_mesh.component.specs`.

No `from __future__ import annotations` here: Dagster inspects the compute functions' real
annotations (the `context` type and the resources it injects by parameter).
"""

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    MetadataValue,
    Output,
    ResourceParam,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame, SparkSession

from data_mesh.catalog.models import DataSetModel, QualityRuleModel, TransformationModel
from data_mesh.catalog.transformation_configs import IngestConfig
from data_mesh.component.naming import DEFAULT_MESH
from data_mesh.component.specs import dataset_asset_key, effective_spark_config
from data_mesh.ddz.dialects import TableName
from data_mesh.ingest.load import BronzeLoad, load_bronze
from data_mesh.lake.storage import Storage
from data_mesh.quality.evaluate import QualityReport, RuleOutcome, evaluate_rules
from data_mesh.quality.profile import profile_frame
from data_mesh.quality.quarantine import quarantine_path, write_quarantine
from data_mesh.resources.audit import AuditLogResource
from data_mesh.resources.ddz_io_manager import DdzIOManager
from data_mesh.resources.lake import LakeStorageResource
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.resources.quality_history import QualityHistoryResource
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


@dataclass(frozen=True)
class StepResources:
    """The resources of one step, as Dagster injected them into the compute function."""

    spark: LazyPySparkResource
    lake: LakeStorageResource
    quality_history: QualityHistoryResource
    audit_log: AuditLogResource
    ddz_io_manager: DdzIOManager
    # The mesh of the product: the store its audit, quality and watermark rows go to.
    mesh: str = DEFAULT_MESH
    # Only products with an ingest transformation (watermarks) require the store.
    metadata_store: MetadataStoreResource | None = None

    @property
    def store(self) -> MetadataStoreResource:
        assert self.metadata_store is not None, "an ingest step requires the metadata store"
        return self.metadata_store


def product_compute(
    ordered: Sequence[TransformationModel], needs_store: bool, mesh: str = DEFAULT_MESH
) -> Callable[..., Any]:
    """The compute function of a product's multi-asset, of the mesh `mesh` (the store-bound
    resources serve every mesh: it names its own). Its parameters name the resources it
    requires (names are the keys of `resources_for`): two variants, so the metadata store is
    required only by products that keep ingest watermarks. The IO manager is a
    `ResourceParam`: Dagster injects what an IO manager resource yields (the manager itself)
    and refuses a bare IO manager class as a parameter annotation."""

    # No return annotation on purpose: Dagster resolves it once per output of every product at
    # load, 40% of this factory's time (benchmarks/README.md). They yield Output[DataFrame] and
    # AssetCheckResult events.
    def _compute(  # type: ignore[no-untyped-def]
        context: AssetExecutionContext,
        spark: LazyPySparkResource,
        lake: LakeStorageResource,
        quality_history: QualityHistoryResource,
        audit_log: AuditLogResource,
        ddz_io_manager: ResourceParam[DdzIOManager],
    ):
        resources = StepResources(spark, lake, quality_history, audit_log, ddz_io_manager, mesh)
        yield from run_product(context, ordered, resources)

    def _compute_with_store(  # type: ignore[no-untyped-def]
        context: AssetExecutionContext,
        spark: LazyPySparkResource,
        lake: LakeStorageResource,
        quality_history: QualityHistoryResource,
        audit_log: AuditLogResource,
        ddz_io_manager: ResourceParam[DdzIOManager],
        metadata_store: MetadataStoreResource,
    ):
        resources = StepResources(
            spark, lake, quality_history, audit_log, ddz_io_manager, mesh, metadata_store
        )
        yield from run_product(context, ordered, resources)

    return _compute_with_store if needs_store else _compute


def run_product(
    context: AssetExecutionContext,
    ordered: Sequence[TransformationModel],
    resources: StepResources,
) -> Iterator[Output[DataFrame] | AssetCheckResult]:
    """Selected DataSets in dependency order; a DataSet whose upstream did not load is skipped."""
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
        for event in _materialize(context, transformation, resources):
            wrote = wrote or isinstance(event, Output)
            yield event
        if selected and not wrote:
            stopped.add(transformation.name)


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
    if outcome.markdown is not None:
        metadata["history"] = MetadataValue.md(outcome.markdown)
    return AssetCheckResult(
        asset_key=key,
        check_name=outcome.rule.name,
        passed=outcome.passed,
        severity=AssetCheckSeverity.WARN if config.severity == "WARN" else AssetCheckSeverity.ERROR,
        description=outcome.observed,
        metadata={k: v for k, v in metadata.items() if v is not None},
    )


def _audit(
    context: AssetExecutionContext,
    resources: StepResources,
    transformation: TransformationModel,
    status: str,
    started: float,
    detail: str,
) -> None:
    row = audit_row(
        dataset_asset_key(transformation.output).to_user_string(),
        transformation.output.target or "",
        context.run.run_id,
        status,
        time.monotonic() - started,
        error=detail,
    )
    resources.audit_log.record(row, resources.mesh)


def _materialize(
    context: AssetExecutionContext, transformation: TransformationModel, resources: StepResources
) -> Iterator[Output[DataFrame] | AssetCheckResult]:
    """Compute, check and (when selected) write one transformation's DataSet. The framework,
    not each asset, audits failures here (the IO manager audits writes)."""
    started = time.monotonic()
    try:
        yield from _computed(context, transformation, resources)
    except Exception as error:
        detail = f"{type(error).__name__}: {error}"
        _audit(context, resources, transformation, FAILED, started, detail)
        raise


def _read_ddz_input(ddz: DdzIOManager, dataset: DataSetModel, day: str | None) -> DataFrame:
    """A DDZ input read from its table; a daily-partitioned one only for the run's day."""
    assert dataset.target_schema and dataset.target_table
    keys, partition = dataset.key_columns, dataset.partition
    return ddz.read_table(
        TableName(dataset.target_schema, dataset.target_table),
        keys[0] if keys else None,
        partition.column if partition else None,
        [day] if partition and day else [],
    )


def _computed(
    context: AssetExecutionContext, transformation: TransformationModel, resources: StepResources
) -> Iterator[Output[DataFrame] | AssetCheckResult]:
    started = time.monotonic()
    output = transformation.output
    key = dataset_asset_key(output)
    where = f"transformation {transformation.name!r} (Transformations row {transformation.id})"
    spark = resources.spark.spark_session
    storage = resources.lake.storage()
    day = context.partition_key if context.has_partition_key else None
    inputs: dict[str, DataFrame] = {}
    bronze = watermark = None
    report: QualityReport | None = None
    metadata: dict[str, Any] = {}
    with spark_config_scope(spark, effective_spark_config(transformation)):
        if isinstance(transformation.config, IngestConfig):
            bronze, watermark = _bronze_load(context, transformation, resources, storage)
            result = apply_output_shaping(bronze.frame, transformation.config, where)
            metadata.update(_rejected_rows(bronze, output, context.run.run_id, storage))
        else:
            for dataset in transformation.inputs:
                if dataset.layer == "DDZ":
                    inputs[dataset.name] = _read_ddz_input(resources.ddz_io_manager, dataset, day)
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
            run_id = context.run.run_id
            report = evaluate_rules(
                spark,
                result,
                rules,
                _references(resources, rules, transformation, inputs, result, storage),
                load_id=run_id,
                pii_columns=transformation.pii_columns,
                history=resources.quality_history.history_for(rules, run_id, resources.mesh),
            )
            resources.quality_history.record(report, run_id, resources.mesh)
            # Numeric materialization metadata: the asset's Plots tab draws each over time.
            metadata.update(
                {f"dq/{name}": value for name, value in report.metrics.items() if value is not None}
            )
            yield from (check_result(key, outcome) for outcome in report.outcomes)
            if write and report.load_stopped:
                failed = [o.rule.name for o in report.outcomes if o.stops_load]
                detail = f"blocking rules failed: {', '.join(failed)}"
                _audit(context, resources, transformation, BLOCKED, started, detail)
            if not write or report.load_stopped:
                return
            result = report.clean
            if report.quarantine is not None:
                path = quarantine_path(output, context.run.run_id)
                rows = write_quarantine(report.quarantine, storage.spark_uri(path))
                metadata["quarantined_rows"] = rows
                metadata["quarantine_path"] = path
    if write:
        profile = None
        if transformation.config.keep_profile:
            profile = profile_frame(result, output.name, pii_columns=transformation.pii_columns)
            metadata["profiled_metrics"] = len(profile.metrics())
        yield Output(result, output_name=key.to_python_identifier(), metadata=metadata)
        # Written: only rows that reached the target become the history anomalies are judged by.
        history = resources.quality_history
        if report is not None:
            history.record_metrics(report, context.run.run_id, resources.mesh, day)
        if profile is not None:
            history.record_profile(
                output, profile.metrics(), context.run.run_id, resources.mesh, day
            )
        # Reached only once the IO manager has written the rows: the next incremental load
        # starts after them. A failed write leaves the stored high mark where it was.
        if bronze is not None and bronze.watermark and bronze.watermark != watermark:
            column = transformation.config.watermark_column  # type: ignore[attr-defined]
            with resources.store.engine_in_use(resources.mesh) as engine:
                save_watermark(engine, output.id, column, bronze.watermark, context.run.run_id)
    if bronze is not None:
        bronze.release()


def _bronze_load(
    context: AssetExecutionContext,
    transformation: TransformationModel,
    resources: StepResources,
    storage: Storage,
) -> tuple[BronzeLoad, str | None]:
    """The source rows of an ingest transformation, after the stored watermark if incremental;
    returns the load and the watermark it started from."""
    config = transformation.config
    assert isinstance(config, IngestConfig)
    after = None
    if config.watermark_column:
        with resources.store.engine_in_use(resources.mesh) as engine:
            after = read_watermark(engine, transformation.output.id, config.watermark_column)
    spark = resources.spark.spark_session
    source = transformation.inputs[0]
    load = load_bronze(spark, source, config, storage, context.run.run_id, after)
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
    resources: StepResources,
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
            spark = resources.spark.spark_session
            uri = storage.spark_uri(reference.location or "")
            references[reference.id] = read_cdz_dataset(spark, reference, uri)
        else:
            references[reference.id] = _read_ddz_input(resources.ddz_io_manager, reference, None)
    return references
