"""Jobs, automation and sensors from the catalog.

Jobs stay few whatever the number of products: one for unpartitioned assets and one per daily
partitioning (Dagster runs one partitions definition per job). Sensors target those jobs with
the asset selection of their product.

What runs when:

- Cron (`schedule.*` rows): the DDZ assets of a product whose schedule is enabled in this
  environment carry an `AutomationCondition` on its cron (`specs.schedule_condition`); one
  `AutomationConditionSensorDefinition` per domain (`<domain>_automation`) evaluates them. No
  ScheduleDefinition is left: every schedule the rows can give is a 5-field cron (Quartz is
  translated, forms cron lacks are refused when the rows are read) over unpartitioned or daily
  assets, which the condition expresses, one run per partitioning as before.
- Lake changes: the storage sensors (one per domain by default, `sensor.storage.per`) stay
  sensors; they do not report CDZ observations for an eager condition to react to. Verified
  with Dagster 1.13: an `AssetObservation` of a CDZ external asset (with a data version, per
  partition) does not count as an update for `eager()` or `any_deps_updated()`, so nothing
  would run; only runless `AssetMaterialization`s do, and then (a) `eager()` looks at the
  latest day only, while a re-export of an older day must run that day; (b) the same data
  version reported twice runs twice, and a runless event has no run key, so a tick retried
  after a daemon restart could run a change twice; (c) query files, which change a product as
  much as its data does, are not assets. The digest cursor and run keys below keep one run per
  change, of exactly the changed days, across restarts.
- `metadata_store_sensor` reports (and optionally runs) products whose rows changed, and
  `run_failure_sensor` audits failed runs: neither is about when assets are due.

No `from __future__ import annotations`: Dagster reads the sensors' real annotations to inject
resources.
"""

import datetime as dt
import hashlib
import json
import re
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DagsterEventType,
    DagsterRun,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    run_failure_sensor,
    sensor,
)

from data_mesh.catalog.automation import SensorSettings, sensor_settings
from data_mesh.catalog.configuration import scoped_values
from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.models import Catalog, DataProductModel, TransformationModel
from data_mesh.catalog.transformation_configs import PropertiesSequenceConfig
from data_mesh.component.naming import DEFAULT_MESH, MESH_TAG, mesh_name
from data_mesh.component.specs import dataset_asset_key, schedule_condition
from data_mesh.lake.changes import WatchedFolder, changed_keys, day_of, folder_digests
from data_mesh.resources.audit import AuditLogResource
from data_mesh.resources.lake import LakeStorageResource
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.settings.secrets import parse_reference, resolve_secret
from data_mesh.store.audit import FAILED, audit_row
from data_mesh.store.change_digests import compare_digests, product_digests
from data_mesh.store.rows import read_store
from data_mesh.transforms.query_files import query_file_path

if TYPE_CHECKING:
    from dagster_shared.error import SerializableErrorInfo

# What `define_asset_job` returns (UnresolvedAssetJobDefinition): Dagster 1.13 exports the
# function but not its return type, whose only module is private.
AssetJob: TypeAlias = Any


ALL_PRODUCTS_JOB = "all_data_products"
DAILY_PRODUCTS_JOB = "daily_data_products"
METADATA_SENSOR = "metadata_store_sensor"
RUN_FAILURE_SENSOR = "run_failure_sensor"


@dataclass(frozen=True)
class JobTarget:
    """The job that runs a set of a product's assets, and whether it takes a day."""

    job: str
    keys: tuple[AssetKey, ...]
    daily: bool
    # The first partition of a daily job (ISO date).
    first_day: str | None = None


# A daily partitioning: its first day and its time zone.
Daily = tuple[dt.date, str]


def _job_name(
    transformation: TransformationModel, daily_jobs: dict[Daily, str], all_job: str
) -> str:
    partition = transformation.output.partition
    if partition is None:
        return all_job
    return daily_jobs[(partition.start, partition.timezone)]


def all_products_job(catalog: Catalog) -> str:
    """The name of the job of the catalog's unpartitioned assets (`all_data_products`, or
    `<mesh>__all_data_products`)."""
    return mesh_name(catalog.mesh, ALL_PRODUCTS_JOB)


def daily_job_names(catalog: Catalog) -> dict[Daily, str]:
    """One job per distinct daily partitioning (first day and time zone), prefixed with the
    catalog's mesh unless it is the default one."""
    dailies = sorted(
        {
            (t.output.partition.start, t.output.partition.timezone)
            for p in catalog.products
            for t in p.transformations
            if t.output.partition is not None
        }
    )
    if len(dailies) == 1:
        return {dailies[0]: mesh_name(catalog.mesh, DAILY_PRODUCTS_JOB)}
    return {
        (start, zone): mesh_name(
            catalog.mesh,
            f"{DAILY_PRODUCTS_JOB}_from_{start:%Y_%m_%d}_"
            + re.sub(r"[^a-z0-9]+", "_", zone.lower()),
        )
        for start, zone in dailies
    }


def build_jobs(catalog: Catalog, alone: bool = True) -> dict[str, AssetJob]:
    """The catalog's jobs. Alone in its code location, the default mesh's `all_data_products`
    selects every materializable asset but the partitioned ones; beside other meshes (and
    for any other mesh) it names its own unpartitioned assets, never another mesh's."""
    daily_jobs = daily_job_names(catalog)
    all_job = all_products_job(catalog)
    keys: dict[str, list[AssetKey]] = defaultdict(list)
    for product in catalog.products:
        for target in product_targets(product, daily_jobs, all_job):
            keys[target.job].extend(target.keys)
    partitioned = [k for name, ks in keys.items() if name != all_job for k in ks]
    selection = (
        AssetSelection.all().materializable() - AssetSelection.assets(*partitioned)
        if alone and catalog.mesh == DEFAULT_MESH
        else AssetSelection.assets(*keys[all_job])
    )
    # The default mesh's jobs carry no tag (absent: the default mesh).
    tags = None if catalog.mesh == DEFAULT_MESH else {MESH_TAG: catalog.mesh}
    jobs = {
        all_job: define_asset_job(
            all_job,
            selection=selection,
            tags=tags,
            description="Materialize every unpartitioned data product's DDZ tables, in "
            "dependency order.",
        )
    }
    for (start, zone), name in daily_jobs.items():
        jobs[name] = define_asset_job(
            name,
            selection=AssetSelection.assets(*keys[name]),
            tags=tags,
            description=f"Materialize one day of the daily-partitioned DDZ tables (from "
            f"{start}, days in {zone}); backfills run it once per day.",
        )
    return jobs


def product_targets(
    product: DataProductModel, daily_jobs: dict[Daily, str], all_job: str = ALL_PRODUCTS_JOB
) -> list[JobTarget]:
    """The product's assets grouped by the job that runs them (`all_job`: the name of the
    unpartitioned assets' job of its mesh)."""
    keys: dict[str, list[AssetKey]] = defaultdict(list)
    for transformation in product.transformations:
        keys[_job_name(transformation, daily_jobs, all_job)].append(
            dataset_asset_key(transformation.output)
        )
    first_days = {name: start.isoformat() for (start, _), name in daily_jobs.items()}
    return [
        JobTarget(job, tuple(ks), job != all_job, first_days.get(job))
        for job, ks in sorted(keys.items())
    ]


def _sensor_status(enabled: bool) -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED


def suffixed_name(base: str, target: JobTarget, targets: Sequence[JobTarget]) -> str:
    """`base` for a product run by one job; else `_full`, `_daily` (or `_daily_<n>` when its
    DataSets have several daily partitionings)."""
    if len(targets) == 1:
        return base
    if not target.daily:
        return f"{base}_full"
    daily = [t for t in targets if t.daily]
    return f"{base}_daily" if len(daily) == 1 else f"{base}_daily_{daily.index(target) + 1}"


def automation_sensors(catalog: Catalog) -> list[AutomationConditionSensorDefinition]:
    """One automation sensor per domain with a scheduled product, evaluating the cron
    conditions of its DDZ assets.

    Its target is the DDZ assets of the domain's products with a schedule row; only those whose
    schedule is enabled here have a condition (the others are not run), so switching one on is
    its `schedule.enabled@<ENV>` row. The sensor starts running when any of them is enabled.
    Its runs carry `data_mesh/trigger` and `data_mesh/domain` (`run_tags` are the sensor's, not
    per product): a product's loads are serialised by its pool `product/<name>`, with run
    granularity, whichever sensor (or the UI) launched them.
    """
    settings = global_sensor_settings(catalog)
    domains: dict[str, list[DataProductModel]] = defaultdict(list)
    for product in catalog.products:
        if product.schedule is not None:
            domains[product.domain].append(product)
    sensors = []
    for domain, products in sorted(domains.items()):
        enabled = [p for p in products if schedule_condition(p) is not None]
        keys = [dataset_asset_key(t.output) for p in products for t in p.transformations]
        crons = ", ".join(
            f"{p.name} {p.schedule.written} ({p.schedule.timezone})"
            for p in enabled
            if p.schedule is not None
        )
        sensors.append(
            AutomationConditionSensorDefinition(
                name=mesh_name(catalog.mesh, f"{domain}_automation"),
                target=AssetSelection.assets(*keys),
                run_tags={"data_mesh/trigger": "schedule", "data_mesh/domain": domain},
                default_status=_sensor_status(bool(enabled)),
                minimum_interval_seconds=settings.interval_s,
                description=f"Runs the {domain} products on their cron: "
                + (crons or "none enabled in this environment (schedule.enabled rows)"),
            )
        )
    return sensors


def watched_folders(product: DataProductModel) -> list[WatchedFolder]:
    """The product's query-file folders and the CDZ folders its transformations read."""
    folders: dict[str, WatchedFolder] = {}
    for transformation in product.transformations:
        if isinstance(transformation.config, PropertiesSequenceConfig):
            folder = query_file_path(transformation.config).rsplit("/", 1)[0]
            folders[folder] = WatchedFolder(folder)
        for dataset in transformation.inputs:
            if dataset.layer == "CDZ" and dataset.location:
                column = dataset.partition.column if dataset.partition else None
                folders[dataset.location] = WatchedFolder(dataset.location, column)
    return list(folders.values())


def storage_sensor(
    name: str,
    products: Sequence[DataProductModel],
    daily_jobs: dict[Daily, str],
    jobs: dict[str, AssetJob],
    settings: SensorSettings,
    all_job: str = ALL_PRODUCTS_JOB,
) -> SensorDefinition:
    """Requests a run of a product when its query files or CDZ landing data change; one sensor
    watches one product, or every product of a domain (`sensor.storage.per = domain`).

    The cursor holds each product's folder digests, so each change triggers one run of that
    product, also after a restart of the daemon; the run key is derived from the digests, so a
    re-evaluated tick cannot request the same run twice. The first evaluation of a product only
    records what is there.
    """
    watched = {p.name: watched_folders(p) for p in products}
    targets = {p.name: product_targets(p, daily_jobs, all_job) for p in products}
    job_names = sorted({t.job for ts in targets.values() for t in ts})
    folders = [f.path for fs in watched.values() for f in fs]

    @sensor(
        name=name,
        jobs=[jobs[job] for job in job_names],
        minimum_interval_seconds=settings.interval_s,
        default_status=_sensor_status(settings.enabled),
        description=f"Runs {', '.join(sorted(watched))} when files under "
        + ", ".join(folders[:6])
        + (f" and {len(folders) - 6} more folders" if len(folders) > 6 else "")
        + " change (new, modified, or a new _SUCCESS marker).",
    )
    def _sensor(context: SensorEvaluationContext, lake: LakeStorageResource) -> SensorResult:
        storage = lake.storage()
        previous = json.loads(context.cursor) if context.cursor else {}
        current = {product: folder_digests(storage, fs) for product, fs in watched.items()}
        requests, changes, recorded = [], [], []
        for product, digests in current.items():
            if product not in previous:
                recorded.append(product)
                continue
            changed = changed_keys(previous[product], digests)
            if changed:
                changes.append(f"{product}: {', '.join(changed)}")
                requests += change_requests(product, targets[product], changed, digests)
        cursor = json.dumps(current, sort_keys=True)
        for change in changes:
            context.log.info("changed %s", change)
        if requests:
            return SensorResult(run_requests=requests, cursor=cursor)
        reason = f"recorded the folders of {', '.join(recorded)}" if recorded else "no changes"
        return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)

    return _sensor


def global_sensor_settings(catalog: Catalog) -> SensorSettings:
    """The `global` sensor rows of the catalog's environment. A bad value breaks every product
    (each reports it); the store-wide sensors then start stopped instead of failing the load."""
    values = scoped_values(catalog.configuration, catalog.env)
    try:
        return sensor_settings(values, catalog.env)
    except MetadataError:
        return SensorSettings(enabled=False)


def storage_sensors(
    catalog: Catalog,
    daily_jobs: dict[Daily, str],
    jobs: dict[str, AssetJob],
) -> list[SensorDefinition]:
    """One storage sensor per domain with products that read lake folders (thousands of
    products: far fewer objects and ticks), or per product when `sensor.storage.per` is
    `product` (each with the product's own `sensor.*` rows)."""
    watching = [p for p in catalog.products if watched_folders(p)]
    settings = global_sensor_settings(catalog)
    all_job = all_products_job(catalog)
    if settings.storage_per == "product":
        return [
            storage_sensor(
                mesh_name(catalog.mesh, f"{p.name}_storage_sensor"),
                [p],
                daily_jobs,
                jobs,
                p.sensors,
                all_job,
            )
            for p in watching
        ]
    domains: dict[str, list[DataProductModel]] = defaultdict(list)
    for product in watching:
        domains[product.domain].append(product)
    return [
        storage_sensor(
            mesh_name(catalog.mesh, f"{domain}_storage_sensor"),
            products,
            daily_jobs,
            jobs,
            settings,
            all_job,
        )
        for domain, products in sorted(domains.items())
    ]


def change_requests(
    product: str, targets: Sequence[JobTarget], changed: Sequence[str], current: dict[str, str]
) -> list[RunRequest]:
    """Run requests for changed folders: each changed day of partitioned data runs that day;
    any other change runs the unpartitioned assets and the newest day of the partitioned ones."""
    changed_days = {day for key in changed if (day := day_of(key))}
    whole = [key for key in changed if day_of(key) is None]
    known_days = sorted({day for key in current if (day := day_of(key))})
    changes = "|".join(f"{key}={current[key]}" for key in changed)
    digest = hashlib.sha256(changes.encode()).hexdigest()[:16]
    requests = []
    for target in targets:
        days = sorted(changed_days | ({known_days[-1]} if whole and known_days else set()))
        # Days before the partitioning starts are not partitions: nothing to run for them.
        days = [day for day in days if target.first_day is None or day >= target.first_day]
        runs: list[str | None] = list(days) if target.daily else ([None] if changed else [])
        for day in runs:
            requests.append(
                RunRequest(
                    run_key=f"{product}:{target.job}:{day or '-'}:{digest}",
                    job_name=target.job,
                    asset_selection=list(target.keys),
                    partition_key=day,
                    tags={"data_mesh/product": product, "data_mesh/trigger": "storage"},
                )
            )
    return requests


def metadata_sensor(catalog: Catalog, jobs: dict[str, AssetJob]) -> SensorDefinition:
    """Notices changed rows in the metadata store and says which products changed; with
    `sensor.metadata.request_runs` it also runs the changed products' assets (as the current
    definitions know them: reload the code location to apply new rows)."""
    settings = global_sensor_settings(catalog)
    daily_jobs = daily_job_names(catalog)
    all_job = all_products_job(catalog)
    products = {p.name: p for p in catalog.products}
    mesh = catalog.mesh

    @sensor(
        name=mesh_name(mesh, METADATA_SENSOR),
        jobs=list(jobs.values()),
        minimum_interval_seconds=max(settings.interval_s, 60),
        default_status=_sensor_status(settings.enabled),
        description="Reports data products whose metadata-store rows changed.",
    )
    def _sensor(
        context: SensorEvaluationContext, metadata_store: MetadataStoreResource
    ) -> SensorResult:
        with metadata_store.engine_in_use(mesh) as engine:
            snapshot = read_store(engine)
        current = product_digests(snapshot)
        cursor = json.dumps(current, sort_keys=True)
        if context.cursor is None:
            reason = f"recorded the rows of {len(current)} data products"
            return SensorResult(skip_reason=SkipReason(reason), cursor=cursor)
        changes = compare_digests(json.loads(context.cursor), current)
        if not changes.any:
            return SensorResult(skip_reason=SkipReason("no changes"), cursor=cursor)
        context.log.info("metadata store changed: %s", changes.describe())
        requests = []
        if settings.request_runs:
            for name in [*changes.added, *changes.modified]:
                if name not in products:
                    continue  # not in these definitions yet: reload the code location
                for target in product_targets(products[name], daily_jobs, all_job):
                    if target.daily:
                        continue  # a changed product's days are backfilled deliberately
                    requests.append(
                        RunRequest(
                            run_key=f"metadata:{name}:{current[name]}",
                            job_name=target.job,
                            asset_selection=list(target.keys),
                            tags={"data_mesh/product": name, "data_mesh/trigger": "metadata"},
                        )
                    )
        return SensorResult(
            run_requests=requests,
            skip_reason=None if requests else SkipReason(f"changed: {changes.describe()}"),
            cursor=cursor,
        )

    return _sensor


def post_alert(url: str, payload: dict[str, object], timeout_s: float = 10.0) -> None:
    """POST the failure as JSON (Teams, Slack and Logic Apps webhooks accept it)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


def webhook_url(reference: str) -> str:
    """The webhook URL behind a reference, or a literal https URL without credentials."""
    if parse_reference(reference):
        return resolve_secret(reference)
    return reference


def _step_errors(context: RunFailureSensorContext, run_id: str) -> list[str]:
    """`<step>: <first line of its error>` for each failed step of the run."""
    errors = []
    for entry in context.instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        data = event.event_specific_data if event else None
        error = getattr(data, "error", None)
        if event is not None and error is not None:
            errors.append(f"{event.step_key}: {error_cause(error)}")
    return errors


def error_cause(error: "SerializableErrorInfo", limit: int = 1000) -> str:
    """What actually failed, under Dagster's "Error occurred while executing op" wrapper, on one
    line and without a JVM stack trace."""
    while error.cause is not None and "Error occurred while executing" in error.message:
        error = error.cause
    lines = []
    for line in error.message.strip().splitlines():
        if line.startswith(("\tat ", "JVM stacktrace")):
            break
        lines.append(line.strip())
    text = " ".join(line for line in lines if line) or "(no message)"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_owner(catalog: Catalog) -> Callable[[DagsterRun], bool]:
    """Whether a run is the catalog's mesh's: one of its jobs, or a selection of its assets.
    A run of neither (no asset selection, another job) is the default mesh's, so a code
    location of one mesh audits every failed run, as before."""
    jobs = {all_products_job(catalog), *daily_job_names(catalog).values()}
    keys = {dataset_asset_key(t.output) for p in catalog.products for t in p.transformations}
    mesh = catalog.mesh

    def owns(run: DagsterRun) -> bool:
        if MESH_TAG in run.tags:  # the jobs of a mesh other than the default carry it
            return run.tags[MESH_TAG] == mesh
        if run.job_name in jobs:
            return True
        if run.asset_selection:
            return not keys.isdisjoint(run.asset_selection)
        if run.asset_check_selection:  # a rerun of checks alone
            return not keys.isdisjoint(c.asset_key for c in run.asset_check_selection)
        return mesh == DEFAULT_MESH

    return owns


def run_failure_audit_sensor(
    catalog: Catalog, send: Callable[[str, dict[str, object]], None] = post_alert
) -> SensorDefinition:
    """Writes every failed run to the audit log and, when `alerts.webhook_url` is configured,
    posts it to the webhook. A failing webhook is logged, never raised."""
    values = scoped_values(catalog.configuration, catalog.env)
    settings = global_sensor_settings(catalog)
    webhook = values.get("alerts.webhook_url")
    mesh = catalog.mesh
    owns = _run_owner(catalog)

    @run_failure_sensor(
        name=mesh_name(mesh, RUN_FAILURE_SENSOR),
        default_status=_sensor_status(settings.enabled),
        description="Audits failed runs and calls the alert webhook (alerts.webhook_url).",
    )
    def _sensor(context: RunFailureSensorContext, audit_log: AuditLogResource) -> None:
        run = context.dagster_run
        if not owns(run):
            return  # another mesh's run: its own sensor audits it
        error = "; ".join(
            [context.failure_event.message or "run failed", *_step_errors(context, run.run_id)]
        )
        record = context.instance.get_run_record_by_id(run.run_id)
        started = record.start_time if record is not None else None
        seconds = 0.0 if not started else max(0.0, dt.datetime.now(dt.UTC).timestamp() - started)
        row = audit_row(f"run:{run.job_name}", "", run.run_id, FAILED, seconds, error=error)
        audit_log.record(row, mesh)
        if webhook is None or not webhook.value.strip():
            return
        payload: dict[str, object] = {
            "run_id": run.run_id,
            "job": run.job_name,
            "status": "FAILURE",
            "error": row.ErrorDetails,
            "tags": {k: v for k, v in run.tags.items() if k.startswith("data_mesh/")},
        }
        try:
            send(webhook_url(webhook.value.strip()), payload)
        except Exception as failure:  # an alert must never fail the sensor
            context.log.warning("alert webhook failed: %s", type(failure).__name__)

    return _sensor
