"""What changed in the metadata store: one digest per data product over every row it owns.

The metadata sensor keeps the digests as its cursor and compares them with the next read, so it
can say which products were added, removed or changed, whatever column of whichever table
changed (a rule's threshold, a DataSet's Location, a product's schedule row ...).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from data_mesh.catalog.configuration import category_scope
from data_mesh.catalog.errors import MetadataError
from data_mesh.store.rows import StoreSnapshot

GLOBAL = "(global configuration)"


@dataclass(frozen=True)
class StoreChanges:
    added: list[str]
    removed: list[str]
    modified: list[str]

    @property
    def any(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def describe(self) -> str:
        parts = [
            f"{label}: {', '.join(names)}"
            for label, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("modified", self.modified),
            )
            if names
        ]
        return "; ".join(parts) or "no changes"


def _scope_owner(category: str, dataset_product: Mapping[str, str]) -> str | None:
    """The product a configuration category belongs to, GLOBAL, or None (malformed, or a
    DataSet name no product has)."""
    try:
        scope, _env = category_scope(category)
    except MetadataError:
        return None
    if scope == "global":
        return GLOBAL
    kind, _, name = scope.partition(".")
    return name if kind == "product" else dataset_product.get(name)


def product_digests(snapshot: StoreSnapshot) -> dict[str, str]:
    """Digest of each product's rows (and one for the global configuration)."""
    owned: dict[str, list[Any]] = defaultdict(list)
    product_name = {p.DataProductID: p.Name for p in snapshot.data_products}
    for product in snapshot.data_products:
        owned[product.Name].append(asdict(product))
    sources = {s.DataSourceID: s for s in snapshot.data_sources}
    dataset_owner: dict[int, str] = {}
    for dataset in snapshot.data_sets:
        owner = product_name.get(dataset.DataProductID, f"#{dataset.DataProductID}")
        dataset_owner[dataset.DataSetID] = owner
        owned[owner].append(asdict(dataset))
        if dataset.DataSourceID in sources:
            owned[owner].append(asdict(sources[dataset.DataSourceID]))
    transformation_owner: dict[int, str] = {}
    for transformation in snapshot.transformations:
        owner = product_name.get(transformation.DataProductID, f"#{transformation.DataProductID}")
        transformation_owner[transformation.TransformationID] = owner
        owned[owner].append(asdict(transformation))
    for link in snapshot.transformation_data_sets:
        owned[transformation_owner.get(link.TransformationID, "?")].append(asdict(link))
    for dependency in snapshot.transformation_dependencies:
        owned[transformation_owner.get(dependency.TransformationID, "?")].append(asdict(dependency))
    for rule in snapshot.data_quality_rules:
        owned[dataset_owner.get(rule.DataSetID, "?")].append(asdict(rule))

    dataset_product = {d.Name: dataset_owner[d.DataSetID] for d in snapshot.data_sets}
    categories = {c.CategoryID: c.CategoryName for c in snapshot.configuration_categories}
    item_owner: dict[int, str] = {}
    for item in snapshot.configuration_items:
        scope_owner = _scope_owner(categories.get(item.CategoryID, ""), dataset_product)
        if scope_owner is not None:
            item_owner[item.ItemID] = scope_owner
            owned[scope_owner].append(asdict(item))
    for version in snapshot.configuration_versions:
        if version.ItemID in item_owner:
            owned[item_owner[version.ItemID]].append(asdict(version))
    owned.pop("?", None)
    return {
        name: hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[
            :16
        ]
        for name, rows in owned.items()
    }


def compare_digests(previous: Mapping[str, str], current: Mapping[str, str]) -> StoreChanges:
    return StoreChanges(
        added=sorted(set(current) - set(previous)),
        removed=sorted(set(previous) - set(current)),
        modified=sorted(k for k in set(current) & set(previous) if current[k] != previous[k]),
    )
