"""Running data products outside the UI (`data-mesh materialize`), on a persistent Dagster
instance so the runs show up in `dagster dev` afterwards."""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    EventLogEntry,
    ExecuteInProcessResult,
)

from data_mesh.catalog.current import load_catalog
from data_mesh.catalog.models import Catalog, DataProductModel
from data_mesh.component.automation import (
    ALL_PRODUCTS_JOB,
    Daily,
    daily_job_names,
    error_cause,
    product_targets,
)
from data_mesh.component.definitions import build_definitions
from data_mesh.component.specs import dataset_asset_key
from data_mesh.resources.environments import resources_for
from data_mesh.runs.liveness import run_process_tags
from data_mesh.settings.model import Settings
from data_mesh.settings.secrets import parse_reference


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
    # Every run's id (one per day of a backfill); `run_id` is the first.
    run_ids: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _metadata_value(metadata: Mapping[str, object], key: str, default: object = 0) -> object:
    value = metadata.get(key)
    return getattr(value, "value", default) if value is not None else default


class RunProgress(Protocol):
    """What `materialize_products` says while it works (the CLI's progress display)."""

    def planned(self, products: int, assets: int) -> None:
        """Product steps and assets of every run to come (a product counts once per run)."""

    def step_started(self, product: str) -> None: ...

    def step_ended(self, product: str) -> None: ...

    def asset_done(self, asset: str) -> None: ...


def _listen(progress: RunProgress) -> Callable[[EventLogEntry], None]:
    """A listener of a run's events, turned into `progress` calls."""

    def heard(entry: EventLogEntry) -> None:
        event = entry.dagster_event
        if event is None:
            return
        kind = event.event_type
        if kind == DagsterEventType.STEP_START and event.step_key:
            progress.step_started(event.step_key)
        elif kind in _STEP_ENDS and event.step_key:
            progress.step_ended(event.step_key)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key is not None:
            progress.asset_done(event.asset_key.to_user_string())

    return heard


_STEP_ENDS = (
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
)


def materialize_products(
    settings: Settings,
    products: list[str] | None = None,
    instance: DagsterInstance | None = None,
    log_level: str = "INFO",
    days: list[str] | None = None,
    progress: RunProgress | None = None,
) -> RunOutcome:
    """Materialize all (or the named) products' assets, in dependency order: the unpartitioned
    ones in one run, the daily-partitioned ones in one run per day of `days` (a backfill).

    Without `days` the partitioned assets are left out (and said so in `notes`)."""
    catalog = load_catalog(settings)
    _check_selection(catalog, products or [])
    defs = build_definitions(catalog, resources_for(settings))
    instance = instance or DagsterInstance.get()
    daily_jobs = daily_job_names(catalog)
    selected = [p for p in catalog.products if not products or p.name in products]
    unset = unset_kafka_connections(selected)
    by_job: dict[str, list[AssetKey]] = defaultdict(list)
    for product in selected:
        for target in product_targets(product, daily_jobs):
            by_job[target.job].extend(k for k in target.keys if k not in unset)
    outcome = RunOutcome(run_id="", success=True, skipped=[str(p) for p in catalog.problems])
    outcome.notes += [f"{key.to_user_string()} not run: {why}" for key, why in unset.items()]
    if unset:  # a job left with nothing to run is not run (an empty selection is all of it)
        by_job = defaultdict(list, {job: keys for job, keys in by_job.items() if keys})
    runs: list[tuple[str, str | None]] = []
    # An empty selection of named products runs nothing: a run of the whole job would be
    # every product (the selection None is "all assets").
    if ALL_PRODUCTS_JOB in by_job or (not by_job and not products and not unset):
        runs.append((ALL_PRODUCTS_JOB, None))
    for job in sorted(set(by_job) - {ALL_PRODUCTS_JOB}):
        if days:
            runs += [(job, day) for day in days]
        else:
            outcome.notes.append(
                f"{len(by_job[job])} daily-partitioned assets ({job}) not run: give the days "
                "(--day, or --from and --to)"
            )
    for job, day in runs:
        partitions = defs.resolve_job_def(job).partitions_def
        if day is not None and partitions is not None and not partitions.has_partition_key(day):
            first = partitions.get_first_partition_key()
            raise ValueError(
                f"{day} is not a day of {job} (its days run from {first} to today); nothing run"
            )
    if progress is not None:
        steps = {
            job: sum(1 for p in selected if product_targets_in(p, job, daily_jobs))
            for job in by_job
        }
        progress.planned(
            sum(steps.get(job, 0) for job, _ in runs),
            sum(len(by_job.get(job, [])) for job, _ in runs),
        )
    for job, day in runs:
        # The run's events reach `progress` as they are stored: execute_in_process runs the
        # steps in this process and returns only at the end.
        run_id = str(uuid.uuid4())  # as Dagster makes them; known before the run starts
        if progress is not None:
            instance.add_event_listener(run_id, _listen(progress))
        result = defs.resolve_job_def(job).execute_in_process(
            run_id=run_id,
            instance=instance,
            asset_selection=(
                by_job.get(job) if products or unset or job != ALL_PRODUCTS_JOB else None
            ),
            partition_key=day,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            # No launcher watches an in-process run: its tags name this process, so a run
            # left STARTED by a kill can be told apart and marked failed (run_liveness).
            tags=run_process_tags(),
        )
        _add_result(outcome, result, day)
    return outcome


def unset_kafka_connections(products: list[DataProductModel]) -> dict[AssetKey, str]:
    """Kafka DataSets whose connection is an environment variable that is not set: left out of
    a run, with the reason, so a machine without a broker still runs everything else."""
    unset: dict[AssetKey, str] = {}
    for product in products:
        for dataset in product.datasets:
            reference = parse_reference(dataset.source_connection)
            env = reference.name if reference and reference.kind == "env" else None
            if dataset.is_kafka and env and not os.environ.get(env):
                unset[dataset_asset_key(dataset)] = (
                    f"its Kafka connection {reference} is not set (KAFKA=1 scripts/demo.sh "
                    "starts a local broker and sets it)"
                )
    return unset


def product_targets_in(product: DataProductModel, job: str, daily_jobs: dict[Daily, str]) -> bool:
    return any(t.job == job and t.keys for t in product_targets(product, daily_jobs))


def _check_selection(catalog: Catalog, products: list[str]) -> None:
    """Every named product can run, or nothing runs: the error names each one that cannot and
    why (the catalog's problem with it, or that no product has that name)."""
    known = {p.name for p in catalog.products}
    broken: dict[str, list[str]] = {}
    for problem in catalog.problems:
        broken.setdefault(problem.product, []).append(problem.message)
    wanted = list(dict.fromkeys(products))  # in the order given, each once
    reasons = [
        f"{name} is broken: {message}" for name in wanted for message in broken.get(name, [])
    ]
    unknown = [name for name in wanted if name not in known and name not in broken]
    if unknown:
        reasons.append(
            f"unknown data product(s): {', '.join(unknown)} (`data-mesh validate` lists them)"
        )
    if reasons:
        raise ValueError(f"{'; '.join(reasons)}; nothing run")


def _add_result(outcome: RunOutcome, result: ExecuteInProcessResult, day: str | None) -> None:
    outcome.run_id = outcome.run_id or result.run_id
    outcome.run_ids.append(result.run_id)
    outcome.success = outcome.success and result.success
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        asset = materialization.asset_key.to_user_string()
        outcome.materializations.append(
            Materialization(
                asset=f"{asset} [{day}]" if day else asset,
                table=str(_metadata_value(metadata, "target_table", "")),
                rows=int(_metadata_value(metadata, "dagster/row_count", 0)),  # type: ignore[call-overload]
                chunks=int(_metadata_value(metadata, "chunks", 0)),  # type: ignore[call-overload]
                seconds=float(_metadata_value(metadata, "duration_s", 0.0)),  # type: ignore[arg-type]
            )
        )
    for evaluation in result.get_asset_check_evaluations():
        asset = evaluation.asset_key.to_user_string()
        outcome.checks.append(
            CheckOutcome(
                asset=f"{asset} [{day}]" if day else asset,
                check=evaluation.check_name,
                passed=evaluation.passed,
                severity=evaluation.severity.value,
                observed=evaluation.description or "",
            )
        )
    if not result.success:
        failures = [
            f"{e.step_key}: {error_cause(e.event_specific_data.error)}"  # type: ignore[union-attr,arg-type]
            for e in result.all_events
            if e.is_step_failure
        ]
        failure = "; ".join(failures) or "see the run's logs"
        outcome.failure = "; ".join(filter(None, [outcome.failure, failure]))
