"""Resolve store rows into typed data products, validating each product on its own.

A broken product (bad row, bad Configuration, cycle, unsafe identifier ...) is reported as a
`ProductProblem` and left out; every other product still resolves. `build_catalog` runs the
passes below in order; each records a product's first problem with `_Build.fail`, so the
order of the passes is the order of the problems.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import graphlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from data_mesh.catalog.automation import (
    ProductSchedule,
    SensorSettings,
    product_schedule,
    sensor_settings,
)
from data_mesh.catalog.configuration import (
    check_configuration,
    dataset_overrides,
    resolve_configuration,
    scoped_values,
)
from data_mesh.catalog.datasets import resolve_dataset
from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import required_identifier
from data_mesh.catalog.literal_secrets import reject_literal_secrets
from data_mesh.catalog.models import (
    Catalog,
    DataProductModel,
    DataSetModel,
    ProductProblem,
    QualityRuleModel,
    TransformationModel,
)
from data_mesh.catalog.rules import resolve_rule, with_rules
from data_mesh.catalog.transformations import resolve_transformation
from data_mesh.store.rows import (
    DataProductRow,
    DataSetRow,
    DataSourceRow,
    StoreSnapshot,
    TransformationRow,
    store_now,
)

__all__ = ["build_catalog", "drop_broken_products"]


class _ProductBuilder:
    """One product's rows, gathered before they are resolved."""

    def __init__(self, row: DataProductRow) -> None:
        self.row = row
        self.datasets: list[DataSetRow] = []
        self.transformations: list[TransformationRow] = []


@dataclass
class _Build:
    """What the passes of `build_catalog` share: the input, what is resolved so far, and the
    first problem of each broken product."""

    snapshot: StoreSnapshot
    env: str
    catalog: Catalog
    products: dict[int, _ProductBuilder] = field(default_factory=dict)
    sources: dict[int, DataSourceRow] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)
    automation: dict[str, tuple[ProductSchedule | None, SensorSettings]] = field(
        default_factory=dict
    )
    datasets: dict[int, DataSetModel] = field(default_factory=dict)
    transformation_rows: dict[int, TransformationRow] = field(default_factory=dict)
    # TransformationID -> role ("input", "output") -> DataSetIDs
    roles: dict[int, dict[str, list[int]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    explicit_deps: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    # DataSetID -> the TransformationID that writes it
    producer_of: dict[int, int] = field(default_factory=dict)
    resolved: dict[int, TransformationModel] = field(default_factory=dict)
    product_of_transformation: dict[int, str] = field(default_factory=dict)

    def fail(self, product: str, message: str) -> None:
        """Mark `product` broken; its first problem is the one reported."""
        self.broken.setdefault(product, message)


def build_catalog(
    snapshot: StoreSnapshot, env: str = "LOCAL", at: dt.datetime | None = None
) -> Catalog:
    """Typed, validated data products of environment `env` from one snapshot of the store,
    with the configuration valid at `at` (default: now, UTC)."""
    build = _Build(snapshot, env, _resolve_configuration(snapshot, env, at or store_now()))
    _group_rows_by_product(build)
    _reject_literal_secrets(build)
    _check_product_names(build)
    _resolve_automation(build)
    _resolve_datasets(build)
    _link_transformations_to_datasets(build)
    _resolve_transformations(build)
    _attach_rules(build)
    _report_cycles(build)
    _apply_dataset_overrides_and_pii(build)
    _keep_loadable_products(build)
    return build.catalog


def _resolve_configuration(snapshot: StoreSnapshot, env: str, at: dt.datetime) -> Catalog:
    """An empty catalog with the configuration valid at `at` and its problems."""
    return Catalog(
        env=env,
        configuration=resolve_configuration(snapshot, at),
        configuration_problems=check_configuration(snapshot, at),
    )


def _group_rows_by_product(build: _Build) -> None:
    """DataSets and Transformations rows under their product; a row naming a missing product
    is a problem of its own (there is no product to break)."""
    snapshot = build.snapshot
    build.products = {row.DataProductID: _ProductBuilder(row) for row in snapshot.data_products}
    build.sources = {row.DataSourceID: row for row in snapshot.data_sources}
    for dataset_row in snapshot.data_sets:
        builder = build.products.get(dataset_row.DataProductID)
        if builder is None:
            build.catalog.problems.append(
                ProductProblem(
                    f"#{dataset_row.DataProductID}",
                    f"DataSets row {dataset_row.DataSetID} refers to a missing DataProductID",
                )
            )
            continue
        builder.datasets.append(dataset_row)
    for transformation_row in snapshot.transformations:
        builder = build.products.get(transformation_row.DataProductID)
        if builder is None:
            build.catalog.problems.append(
                ProductProblem(
                    f"#{transformation_row.DataProductID}",
                    f"Transformations row {transformation_row.TransformationID} refers to a "
                    "missing DataProductID",
                )
            )
            continue
        builder.transformations.append(transformation_row)


def _reject_literal_secrets(build: _Build) -> None:
    """Break every product that uses a row holding a literal secret."""
    names = {pid: builder.row.Name for pid, builder in build.products.items()}
    reject_literal_secrets(build.snapshot, names, build.fail)


def _check_product_names(build: _Build) -> None:
    """Name and Domain become Dagster names (asset group, key prefix, schedule and sensor
    names), so both must be identifiers."""
    for builder in build.products.values():
        where = f"DataProducts row {builder.row.DataProductID} ({builder.row.Name})"
        try:
            required_identifier(builder.row.Name, where, "Name")
            required_identifier(builder.row.Domain, where, "Domain")
        except MetadataError as error:
            build.fail(builder.row.Name, str(error))


def _resolve_automation(build: _Build) -> None:
    """Each product's schedule and sensor settings from the configuration."""
    for builder in build.products.values():
        values = scoped_values(build.catalog.configuration, build.env, product=builder.row.Name)
        try:
            build.automation[builder.row.Name] = (
                product_schedule(values, build.env),
                sensor_settings(values, build.env),
            )
        except MetadataError as error:
            build.fail(builder.row.Name, str(error))


def _resolve_datasets(build: _Build) -> None:
    """Every product's DataSets, before any transformation: transformations of any product may
    read any product's datasets. Partitions count days in the product's schedule time zone."""
    for builder in build.products.values():
        schedule = build.automation.get(builder.row.Name, (None, None))[0]
        for dataset_row in builder.datasets:
            try:
                build.datasets[dataset_row.DataSetID] = resolve_dataset(
                    dataset_row,
                    builder.row,
                    build.sources.get(dataset_row.DataSourceID),
                    schedule.timezone if schedule else "UTC",
                )
            except MetadataError as error:
                build.fail(builder.row.Name, str(error))


def _link_transformations_to_datasets(build: _Build) -> None:
    """Each transformation's DataSets by role, its explicit dependencies, and the one
    transformation that writes each DataSet (two writers break the second's product)."""
    snapshot = build.snapshot
    for link in snapshot.transformation_data_sets:
        build.roles[link.TransformationID][link.Role.lower()].append(link.DataSetID)
    build.transformation_rows = {row.TransformationID: row for row in snapshot.transformations}
    for dependency in snapshot.transformation_dependencies:
        build.explicit_deps[dependency.TransformationID].append(
            dependency.DependsOnTransformationID
        )
    for transformation_id, by_role in build.roles.items():
        for dataset_id in by_role.get("output", []):
            if dataset_id in build.producer_of and transformation_id in build.transformation_rows:
                other = build.producer_of[dataset_id]
                row = build.transformation_rows[transformation_id]
                product = (
                    build.products[row.DataProductID].row.Name
                    if row.DataProductID in build.products
                    else "?"
                )
                build.fail(
                    product,
                    f"Transformations rows {other} and {transformation_id} both write DataSets "
                    f"row {dataset_id}",
                )
            build.producer_of[dataset_id] = transformation_id


def _resolve_transformations(build: _Build) -> None:
    """Every transformation of an existing product, with its inputs, output and upstreams."""
    for transformation_id, row in build.transformation_rows.items():
        if row.DataProductID not in build.products:
            continue
        product_name = build.products[row.DataProductID].row.Name
        build.product_of_transformation[transformation_id] = product_name
        try:
            build.resolved[transformation_id] = resolve_transformation(
                row,
                product_name,
                build.roles.get(transformation_id, {}),
                build.datasets,
                build.producer_of,
                build.explicit_deps.get(transformation_id, []),
                build.transformation_rows,
            )
        except MetadataError as error:
            build.fail(product_name, str(error))


def _attach_rules(build: _Build) -> None:
    """Each quality rule onto the transformation that computes its DataSet."""
    rules_by_producer: dict[int, list[QualityRuleModel]] = defaultdict(list)
    for rule_row in build.snapshot.data_quality_rules:
        dataset = build.datasets.get(rule_row.DataSetID)
        if dataset is None:
            continue  # the DataSet's own problem is reported already
        try:
            rule = resolve_rule(rule_row, dataset, build.datasets.values(), build.producer_of)
        except MetadataError as error:
            build.fail(dataset.product, str(error))
            continue
        rules_by_producer[build.producer_of[dataset.id]].append(rule)
    for transformation_id, rules in rules_by_producer.items():
        if transformation_id in build.resolved:
            build.resolved[transformation_id] = with_rules(
                build.resolved[transformation_id],
                rules,
                build.producer_of,
                build.transformation_rows,
            )


def _report_cycles(build: _Build) -> None:
    """Break every product with a transformation on a dependency cycle."""
    report_cycles(
        build.resolved, build.product_of_transformation, build.transformation_rows, build.fail
    )


def _apply_dataset_overrides_and_pii(build: _Build) -> None:
    """Each transformation's configured overrides of its output DataSet, and the PII columns
    its output inherits from its inputs."""
    pii_columns = propagated_pii(build.resolved, build.producer_of)
    for tid, transformation in list(build.resolved.items()):
        product = build.product_of_transformation[tid]
        values = scoped_values(
            build.catalog.configuration,
            build.env,
            dataset=transformation.output.name,
            product=product,
        )
        try:
            overrides = dataset_overrides(values)
        except MetadataError as error:
            build.fail(product, str(error))
            continue
        # One copy per transformation with both: the catalog of 10,000 products builds faster.
        build.resolved[tid] = dataclasses.replace(
            transformation, overrides=overrides, pii_columns=pii_columns[tid]
        )


def _keep_loadable_products(build: _Build) -> None:
    """The products with no problem and no broken upstream product; the others are problems."""
    candidates = [
        DataProductModel(
            id=builder.row.DataProductID,
            name=builder.row.Name,
            domain=builder.row.Domain,
            owner=builder.row.Owner,
            description=builder.row.Description,
            datasets=tuple(build.datasets[r.DataSetID] for r in builder.datasets),
            transformations=tuple(
                build.resolved[r.TransformationID] for r in builder.transformations
            ),
            schedule=build.automation[builder.row.Name][0],
            sensors=build.automation[builder.row.Name][1],
        )
        for builder in build.products.values()
        if builder.row.Name not in build.broken
    ]
    producer_product = {
        dataset_id: build.product_of_transformation[tid]
        for dataset_id, tid in build.producer_of.items()
        if tid in build.product_of_transformation
    }
    build.catalog.products, problems = drop_broken_products(
        candidates, build.broken, producer_product
    )
    build.catalog.problems.extend(problems)


def propagated_pii(
    resolved: dict[int, TransformationModel], producer_of: dict[int, int]
) -> dict[int, tuple[str, ...]]:
    """The PII columns of each transformation's output: a column flagged PII on a DataSet stays
    PII in every DataSet computed from it (by name), so samples of downstream checks are masked
    too."""
    pii: dict[int, set[str]] = {
        tid: {c.lower() for c in t.output.pii_columns} for tid, t in resolved.items()
    }
    changed = True
    while changed:
        changed = False
        for tid, transformation in resolved.items():
            for dataset in transformation.inputs:
                inherited = {c.lower() for c in dataset.pii_columns}
                inherited |= pii.get(producer_of.get(dataset.id, -1), set())
                if not inherited <= pii[tid]:
                    pii[tid] |= inherited
                    changed = True
    return {tid: tuple(sorted(columns)) for tid, columns in pii.items()}


def report_cycles(
    resolved: dict[int, TransformationModel],
    product_of: dict[int, str],
    rows: dict[int, TransformationRow],
    fail: Callable[[str, str], None],
) -> None:
    """Mark every product with a transformation on a dependency cycle as broken."""
    by_name = {row.Name: tid for tid, row in rows.items()}
    graph = {t.name: set(t.depends_on) for t in resolved.values()}
    while True:
        try:
            graphlib.TopologicalSorter(graph).prepare()
            return
        except graphlib.CycleError as error:
            cycle = list(dict.fromkeys(error.args[1]))
            message = "dependency cycle between transformations " + " -> ".join([*cycle, cycle[0]])
            for name in cycle:
                fail(product_of[by_name[name]], message)
                graph.pop(name, None)


def drop_broken_products(
    candidates: list[DataProductModel],
    broken: dict[str, str],
    producer_product: dict[int, str],
) -> tuple[list[DataProductModel], list[ProductProblem]]:
    """Split `candidates` into products that load and problems.

    `broken` maps product names to their first problem; a product reading a DataSet produced by
    a broken product (`producer_product`: DataSetID -> producing product) is broken too.
    """
    broken = dict(broken)
    upstream_of: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for product in candidates:
            if product.name in broken:
                continue
            for transformation in product.transformations:
                references = [r.reference for r in transformation.rules if r.reference]
                upstream = next(
                    (
                        producer_product[d.id]
                        for d in [*transformation.inputs, *references]
                        if producer_product.get(d.id, product.name) != product.name
                        and producer_product[d.id] in broken
                    ),
                    None,
                )
                if upstream is not None:
                    upstream_of[product.name] = upstream
                    broken[product.name] = (
                        f"transformation {transformation.name!r} reads the output of broken "
                        f"data product {upstream!r}"
                    )
                    changed = True
                    break
    kept = [p for p in candidates if p.name not in broken]
    return kept, [
        ProductProblem(name, message, upstream_of.get(name)) for name, message in broken.items()
    ]
