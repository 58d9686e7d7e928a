"""Running data products outside the UI (`data-mesh materialize`), on a persistent Dagster
instance so the runs show up in `dagster dev` afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from dagster import DagsterInstance

from data_mesh.factories.assets import dataset_asset_key
from data_mesh.factories.definitions import ALL_PRODUCTS_JOB, build_definitions
from data_mesh.loading import load_catalog
from data_mesh.resources.environments import resources_for
from data_mesh.settings import Settings


@dataclass(frozen=True)
class Materialization:
    asset: str
    table: str
    rows: int
    chunks: int
    seconds: float


@dataclass(frozen=True)
class CheckOutcome:
    asset: str
    check: str
    passed: bool
    severity: str
    observed: str


@dataclass
class RunOutcome:
    run_id: str
    success: bool
    materializations: list[Materialization] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failure: str = ""


def _metadata_value(metadata: Mapping[str, object], key: str, default: object = 0) -> object:
    value = metadata.get(key)
    return getattr(value, "value", default) if value is not None else default


def materialize_products(
    settings: Settings,
    products: list[str] | None = None,
    instance: DagsterInstance | None = None,
    log_level: str = "INFO",
) -> RunOutcome:
    """Materialize all (or the named) products' assets in one run, in dependency order."""
    catalog = load_catalog(settings)
    known = {p.name for p in catalog.products}
    unknown = sorted(set(products or []) - known - {p.product for p in catalog.problems})
    if unknown:
        raise ValueError(f"unknown data product(s): {', '.join(unknown)}")
    defs = build_definitions(catalog, resources_for(settings))
    job = defs.resolve_job_def(ALL_PRODUCTS_JOB)
    selection = None
    if products:
        selection = [
            dataset_asset_key(t.output)
            for p in catalog.products
            if p.name in products
            for t in p.transformations
        ]
    result = job.execute_in_process(
        instance=instance or DagsterInstance.get(),
        asset_selection=selection,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    outcome = RunOutcome(
        run_id=result.run_id,
        success=result.success,
        skipped=[str(p) for p in catalog.problems],
    )
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        outcome.materializations.append(
            Materialization(
                asset=materialization.asset_key.to_user_string(),
                table=str(_metadata_value(metadata, "target_table", "")),
                rows=int(_metadata_value(metadata, "dagster/row_count", 0)),  # type: ignore[call-overload]
                chunks=int(_metadata_value(metadata, "chunks", 0)),  # type: ignore[call-overload]
                seconds=float(_metadata_value(metadata, "duration_s", 0.0)),  # type: ignore[arg-type]
            )
        )
    for evaluation in result.get_asset_check_evaluations():
        outcome.checks.append(
            CheckOutcome(
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                observed=evaluation.description or "",
            )
        )
    if not result.success:
        failures = [
            f"{e.step_key}: {e.event_specific_data.error.message.strip()}"  # type: ignore[union-attr]
            for e in result.all_events
            if e.is_step_failure
        ]
        outcome.failure = "; ".join(failures) or "see the run's logs"
    return outcome
