"""The whole code location from one catalog: assets, jobs, resources."""

from __future__ import annotations

import logging
from typing import Any

from dagster import AssetsDefinition, AssetSelection, AssetSpec, Definitions, define_asset_job

from data_mesh.factories.assets import source_asset_spec, transformation_asset
from data_mesh.metadata.catalog import Catalog

log = logging.getLogger(__name__)

ALL_PRODUCTS_JOB = "all_data_products"


def build_assets(catalog: Catalog) -> list[AssetSpec | AssetsDefinition]:
    assets: list[AssetSpec | AssetsDefinition] = []
    outputs = {t.name: t.output for p in catalog.products for t in p.transformations}
    for product in catalog.products:
        for dataset in product.datasets:
            if dataset.layer == "CDZ":
                assets.append(source_asset_spec(dataset, product))
        for transformation in product.transformations:
            assets.append(transformation_asset(transformation, product, outputs))
    return assets


def build_definitions(catalog: Catalog, resources: dict[str, Any]) -> Definitions:
    """Definitions for every product that loaded; skipped products are logged and listed."""
    for problem in catalog.problems:
        log.warning("skipped %s", problem)
    skipped = "\n".join(f"- {problem}" for problem in catalog.problems) or "none"
    return Definitions(
        assets=build_assets(catalog),
        jobs=[
            define_asset_job(
                ALL_PRODUCTS_JOB,
                selection=AssetSelection.all().materializable(),
                description="Materialize every data product's DDZ tables, in dependency order.",
            )
        ],
        resources=resources,
        metadata={
            "data_mesh/products_loaded": len(catalog.products),
            "data_mesh/products_skipped": skipped,
        },
    )
