"""Whole-catalog validation: rows (see `metadata.catalog`) plus the query files in the lake."""

from __future__ import annotations

import dataclasses

from data_mesh.catalog.build import drop_broken_products
from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.models import Catalog, DataProductModel
from data_mesh.catalog.transformation_configs import PropertiesSequenceConfig
from data_mesh.lake.storage import Storage, StorageError
from data_mesh.transforms.query_files import load_query_plan


def query_file_problem(product: DataProductModel, storage: Storage) -> str | None:
    """The first problem with the product's query/sequence files, or None."""
    for transformation in product.transformations:
        if isinstance(transformation.config, PropertiesSequenceConfig):
            try:
                load_query_plan(
                    storage, transformation.config, [d.sql_name for d in transformation.inputs]
                )
            except (DataMeshError, StorageError) as error:
                return f"transformation {transformation.name!r}: {error}"
    return None


def check_query_files(catalog: Catalog, storage: Storage) -> Catalog:
    """A copy of `catalog` without products whose query files are missing or invalid.

    Downstream products of a dropped product are dropped too: their inputs would not exist.
    """
    broken = {}
    for product in catalog.products:
        problem = query_file_problem(product, storage)
        if problem is not None:
            broken[product.name] = problem
    producer_product = {t.output.id: p.name for p in catalog.products for t in p.transformations}
    kept, problems = drop_broken_products(catalog.products, broken, producer_product)
    return dataclasses.replace(catalog, products=kept, problems=[*catalog.problems, *problems])
