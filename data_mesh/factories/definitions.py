"""The whole code location from one catalog: assets, jobs, schedules, sensors, resources."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from dagster import (
    AssetsDefinition,
    AssetSpec,
    Definitions,
    ScheduleDefinition,
    SensorDefinition,
)

from data_mesh.factories.assets import product_assets, source_asset_spec
from data_mesh.factories.automation import (
    ALL_PRODUCTS_JOB,
    build_jobs,
    daily_job_names,
    metadata_sensor,
    product_schedules,
    run_failure_audit_sensor,
    storage_sensors,
)
from data_mesh.metadata.catalog import Catalog, TransformationModel
from data_mesh.metadata.snapshot_file import SavedSnapshot

log = logging.getLogger(__name__)

__all__ = ["ALL_PRODUCTS_JOB", "build_assets", "build_definitions"]


def build_assets(catalog: Catalog) -> list[AssetSpec | AssetsDefinition]:
    """CDZ DataSets as external assets; each product's DDZ DataSets as one multi-asset, one per
    partitioning when it mixes them (a step has one partitioning)."""
    assets: list[AssetSpec | AssetsDefinition] = []
    outputs = {t.name: t.output for p in catalog.products for t in p.transformations}
    for product in catalog.products:
        for dataset in product.datasets:
            if dataset.layer == "CDZ":
                assets.append(source_asset_spec(dataset, product))
        groups: dict[tuple[str, str] | None, list[TransformationModel]] = defaultdict(list)
        for transformation in product.transformations:
            partition = transformation.output.partition
            daily = None if partition is None else (partition.start.isoformat(), partition.timezone)
            groups[daily].append(transformation)
        dailies = sorted(k for k in groups if k is not None)
        for daily, transformations in groups.items():
            name = product.name
            if daily is not None and len(groups) > 1:
                name += "_daily" if len(dailies) == 1 else f"_daily_{dailies.index(daily) + 1}"
            assets.append(product_assets(product, transformations, outputs, name))
    return assets


def build_definitions(
    catalog: Catalog, resources: dict[str, Any], snapshot: SavedSnapshot | None = None
) -> Definitions:
    """Definitions for every product that loaded; skipped products are logged and listed.
    With a `snapshot`, its age and marker are shown on the code location (stale or not:
    `data-mesh snapshot status`)."""
    for problem in catalog.problems:
        log.warning("skipped %s", problem)
    skipped = "\n".join(f"- {problem}" for problem in catalog.problems) or "none"
    jobs = build_jobs(catalog)
    daily_jobs = daily_job_names(catalog)
    schedules: list[ScheduleDefinition] = []
    sensors: list[SensorDefinition] = [
        metadata_sensor(catalog, jobs),
        run_failure_audit_sensor(catalog),
    ]
    for product in catalog.products:
        schedules += product_schedules(product, daily_jobs)
    sensors += storage_sensors(catalog, daily_jobs, jobs)
    return Definitions(
        assets=build_assets(catalog),
        jobs=list(jobs.values()),
        schedules=schedules,
        sensors=sensors,
        resources=resources,
        metadata={
            "data_mesh/products_loaded": len(catalog.products),
            "data_mesh/products_skipped": skipped,
            **(
                {
                    "data_mesh/snapshot_taken_at": snapshot.taken_at.isoformat(timespec="seconds"),
                    "data_mesh/snapshot_marker": snapshot.marker,
                }
                if snapshot is not None
                else {"data_mesh/snapshot": "none: definitions read the store"}
            ),
        },
    )
