"""The whole code location from one catalog: assets, jobs, sensors (automation condition
sensors among them; no schedules: see `data_mesh.component.automation`), resources."""

from __future__ import annotations

import logging
from typing import Any

from dagster import (
    AssetsDefinition,
    AssetSpec,
    Definitions,
    SensorDefinition,
)

from data_mesh.catalog.models import Catalog
from data_mesh.component.automation import (
    ALL_PRODUCTS_JOB,
    Daily,
    all_products_job,
    automation_sensors,
    build_jobs,
    daily_job_names,
    metadata_sensor,
    product_targets,
    run_failure_audit_sensor,
    storage_sensors,
    suffixed_name,
)
from data_mesh.component.naming import metadata_key
from data_mesh.component.specs import dataset_asset_key, product_assets, source_asset_spec
from data_mesh.component.state import StateStamp

log = logging.getLogger(__name__)

__all__ = ["ALL_PRODUCTS_JOB", "build_assets", "build_definitions"]


def build_assets(
    catalog: Catalog, daily_jobs: dict[Daily, str] | None = None
) -> list[AssetSpec | AssetsDefinition]:
    """CDZ DataSets as external assets; each product's DDZ DataSets as one multi-asset, one per
    job that runs them when it mixes partitionings (a step has one partitioning). Steps are
    named `<product>`, `<product>_daily[_<n>]`."""
    daily_jobs = daily_job_names(catalog) if daily_jobs is None else daily_jobs
    assets: list[AssetSpec | AssetsDefinition] = []
    outputs = {t.name: t.output for p in catalog.products for t in p.transformations}
    for product in catalog.products:
        for dataset in product.datasets:
            if dataset.layer == "CDZ":
                assets.append(source_asset_spec(dataset, product))
        targets = product_targets(product, daily_jobs, all_products_job(catalog))
        for target in targets:
            keys = set(target.keys)
            transformations = [
                t for t in product.transformations if dataset_asset_key(t.output) in keys
            ]
            name = suffixed_name(product.name, target, targets) if target.daily else product.name
            assets.append(product_assets(product, transformations, outputs, name, catalog.mesh))
    return assets


def build_definitions(
    catalog: Catalog,
    resources: dict[str, Any],
    state: StateStamp | None = None,
    alone: bool = True,
) -> Definitions:
    """Definitions for every product that loaded; skipped products are logged and listed.
    The time and marker of the `state` they come from are shown on the code location (stale
    or not: `data-mesh state status`); without one, they come from the store itself.

    The names of a mesh other than the default (`catalog.mesh`) are prefixed
    (`data_mesh.component.naming`); `alone`: no other mesh in the code location."""
    for problem in catalog.problems:
        log.warning("skipped %s", problem)
    mesh = catalog.mesh
    skipped = "\n".join(f"- {problem}" for problem in catalog.problems) or "none"
    jobs = build_jobs(catalog, alone)
    daily_jobs = daily_job_names(catalog)
    sensors: list[SensorDefinition] = [
        metadata_sensor(catalog, jobs),
        run_failure_audit_sensor(catalog),
        *automation_sensors(catalog),
        *storage_sensors(catalog, daily_jobs, jobs),
    ]
    return Definitions(
        assets=build_assets(catalog, daily_jobs),
        jobs=list(jobs.values()),
        sensors=sensors,
        resources=resources,
        metadata={
            metadata_key(mesh, "products_loaded"): len(catalog.products),
            metadata_key(mesh, "products_skipped"): skipped,
            **(
                {
                    metadata_key(mesh, "state_taken_at"): state.taken_at.isoformat(
                        timespec="seconds"
                    ),
                    metadata_key(mesh, "state_marker"): state.marker,
                }
                if state is not None
                else {metadata_key(mesh, "state"): "none: built from the store"}
            ),
        },
    )
