"""Resolve store rows into typed data products, validating each product on its own.

A broken product (bad row, bad Configuration, cycle, unsafe identifier ...) is reported as a
`ProductProblem` and left out; every other product still resolves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import graphlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable

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
from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.identifiers import UnsafeIdentifierError, validate_identifier
from data_mesh.catalog.models import (
    DEFAULT_TARGET_SCHEMA,
    LAYERS,
    WRITE_MODES,
    Catalog,
    DataProductModel,
    DataSetModel,
    DeclaredColumn,
    Partitioning,
    ProductProblem,
    QualityRuleModel,
    TransformationModel,
)
from data_mesh.catalog.rule_configs import (
    CustomSqlRule,
    ReferentialIntegrityRule,
    parse_rule_config,
    rule_columns,
)
from data_mesh.catalog.sql_policy import UnsafeSqlError, check_query
from data_mesh.catalog.transformation_configs import (
    AggregateConfig,
    FilterConfig,
    IngestConfig,
    JoinConfig,
    OutputShaping,
    PropertiesSequenceConfig,
    SelectConfig,
    SqlConfig,
    parse_transformation_config,
)
from data_mesh.settings.secrets import literal_secret_in, parse_reference
from data_mesh.store.rows import (
    DataProductRow,
    DataQualityRuleRow,
    DataSetRow,
    DataSourceRow,
    StoreSnapshot,
    TransformationRow,
    store_now,
)


def _identifier(value: str | None, where: str, column: str) -> str:
    if value is None or value == "":
        raise MetadataError(f"{where}: {column} is required")
    try:
        return validate_identifier(value, column)
    except UnsafeIdentifierError as error:
        raise MetadataError(f"{where}: {error}") from error


def _query_tables(where: str, field: str, query: str, allowed: list[str], what: str) -> None:
    """A query may read only `allowed` tables (and its CTEs): an input, not any table or view
    the Spark session or its catalog holds."""
    try:
        check_query(query, allowed, what)
    except UnsafeSqlError as error:
        raise MetadataError(f"{where}: Configuration.{field}: {error}") from error


def _resolve_dataset(
    row: DataSetRow, product: DataProductRow, source: DataSourceRow | None, timezone: str = "UTC"
) -> DataSetModel:
    where = f"DataSets row {row.DataSetID} ({row.Name})"
    if source is None:
        raise MetadataError(f"{where}: DataSourceID {row.DataSourceID} does not exist")
    _identifier(row.Name, where, "Name")
    layer = (row.Layer or "").upper()
    if layer not in LAYERS:
        raise MetadataError(f"{where}: Layer {row.Layer!r} must be one of {', '.join(LAYERS)}")
    target_schema = target_table = write_mode = None
    keys: tuple[str, ...] = ()
    if layer == "CDZ":
        _identifier(source.Name, f"DataSources row {source.DataSourceID}", "Name")
        if not row.Location:
            raise MetadataError(f"{where}: Location (path in the lake) is required for CDZ data")
    else:
        target_schema = _identifier(
            row.TargetSchema or DEFAULT_TARGET_SCHEMA, where, "TargetSchema"
        )
        target_table = _identifier(row.TargetTable, where, "TargetTable")
        write_mode = (row.WriteMode or "replace").lower()
        if write_mode not in WRITE_MODES:
            raise MetadataError(
                f"{where}: WriteMode {row.WriteMode!r} must be one of {', '.join(WRITE_MODES)}"
            )
        keys = tuple(
            _identifier(key.strip(), where, "KeyColumns")
            for key in (row.KeyColumns or "").split(",")
            if key.strip()
        )
        if write_mode == "merge" and not keys:
            raise MetadataError(f"{where}: WriteMode 'merge' needs KeyColumns")
    columns = _declared_columns(row.Schema, where)
    return DataSetModel(
        id=row.DataSetID,
        name=row.Name,
        product=product.Name,
        domain=product.Domain,
        layer=layer,
        source_name=source.Name,
        source_type=source.Type,
        source_format=source.Format,
        location=row.Location,
        target_schema=target_schema,
        target_table=target_table,
        write_mode=write_mode,
        key_columns=keys,
        description=row.Description,
        columns=columns,
        partition=_partitioning(row, where, write_mode, columns, timezone),
        source_connection=source.ConnectionString,
    )


def _partitioning(
    row: DataSetRow,
    where: str,
    write_mode: str | None,
    columns: tuple[DeclaredColumn, ...],
    timezone: str,
) -> Partitioning | None:
    if not row.PartitionColumn:
        if row.PartitionStart is not None or row.RetentionDays is not None:
            raise MetadataError(f"{where}: PartitionStart and RetentionDays need a PartitionColumn")
        return None
    column = _identifier(row.PartitionColumn, where, "PartitionColumn")
    if row.PartitionStart is None:
        raise MetadataError(f"{where}: PartitionColumn {column!r} needs a PartitionStart date")
    if write_mode not in (None, "replace"):
        raise MetadataError(
            f"{where}: a partitioned DataSet replaces one day's rows per run; WriteMode "
            f"{write_mode!r} is not supported with PartitionColumn"
        )
    if row.RetentionDays is not None and row.RetentionDays < 1:
        raise MetadataError(f"{where}: RetentionDays must be at least 1, got {row.RetentionDays}")
    declared = {c.name.lower(): c for c in columns}
    if declared and column.lower() not in declared:
        raise MetadataError(f"{where}: PartitionColumn {column!r} is not in its Schema")
    return Partitioning(column, row.PartitionStart, row.RetentionDays, timezone)


def _declared_columns(text: str | None, where: str) -> tuple[DeclaredColumn, ...]:
    """DataSets.Schema: a JSON list of {name, type, pii} objects, or an object name -> type."""
    if not text or not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise MetadataError(f"{where}: Schema is not valid JSON: {error}") from error
    if isinstance(raw, dict):
        raw = [{"name": name, "type": type_} for name, type_ in raw.items()]
    if not isinstance(raw, list) or not all(isinstance(c, dict) and "name" in c for c in raw):
        raise MetadataError(
            f'{where}: Schema must be a JSON list of {{"name", "type", "pii"}} objects'
        )
    return tuple(
        DeclaredColumn(
            name=_identifier(str(c["name"]), where, "Schema column"),
            type=str(c["type"]) if c.get("type") else None,
            pii=bool(c.get("pii", False)),
        )
        for c in raw
    )


def _referenced_inputs(config: OutputShaping) -> list[str]:
    """DataSet names a configuration refers to; each must be an input of the transformation."""
    match config:
        case JoinConfig():
            return [config.input_dataset, config.second_dataset]
        case FilterConfig() | SelectConfig() | AggregateConfig() | IngestConfig():
            return [config.input_dataset]
        case _:
            return []


class _ProductBuilder:
    """One product's rows, gathered before they are resolved."""

    def __init__(self, row: DataProductRow) -> None:
        self.row = row
        self.datasets: list[DataSetRow] = []
        self.transformations: list[TransformationRow] = []


def build_catalog(
    snapshot: StoreSnapshot, env: str = "LOCAL", at: dt.datetime | None = None
) -> Catalog:
    """Typed, validated data products of environment `env` from one snapshot of the store,
    with the configuration valid at `at` (default: now, UTC)."""
    at = at or store_now()
    catalog = Catalog(
        env=env,
        configuration=resolve_configuration(snapshot, at),
        configuration_problems=check_configuration(snapshot, at),
    )
    products = {row.DataProductID: _ProductBuilder(row) for row in snapshot.data_products}
    sources = {row.DataSourceID: row for row in snapshot.data_sources}
    broken: dict[str, str] = {}

    def fail(product: str, message: str) -> None:
        broken.setdefault(product, message)

    for dataset_row in snapshot.data_sets:
        builder = products.get(dataset_row.DataProductID)
        if builder is None:
            catalog.problems.append(
                ProductProblem(
                    f"#{dataset_row.DataProductID}",
                    f"DataSets row {dataset_row.DataSetID} refers to a missing DataProductID",
                )
            )
            continue
        builder.datasets.append(dataset_row)
    for transformation_row in snapshot.transformations:
        builder = products.get(transformation_row.DataProductID)
        if builder is None:
            catalog.problems.append(
                ProductProblem(
                    f"#{transformation_row.DataProductID}",
                    f"Transformations row {transformation_row.TransformationID} refers to a "
                    "missing DataProductID",
                )
            )
            continue
        builder.transformations.append(transformation_row)

    _reject_literal_secrets(snapshot, products, fail)
    for builder in products.values():
        # Both become Dagster names (asset group, key prefix, schedule and sensor names).
        where = f"DataProducts row {builder.row.DataProductID} ({builder.row.Name})"
        try:
            _identifier(builder.row.Name, where, "Name")
            _identifier(builder.row.Domain, where, "Domain")
        except MetadataError as error:
            fail(builder.row.Name, str(error))

    automation: dict[str, tuple[ProductSchedule | None, SensorSettings]] = {}
    for builder in products.values():
        values = scoped_values(catalog.configuration, env, product=builder.row.Name)
        try:
            automation[builder.row.Name] = (
                product_schedule(values, env),
                sensor_settings(values, env),
            )
        except MetadataError as error:
            fail(builder.row.Name, str(error))

    # DataSets first: transformations of any product may read any product's datasets.
    datasets: dict[int, DataSetModel] = {}
    for builder in products.values():
        schedule = automation.get(builder.row.Name, (None, None))[0]
        for dataset_row in builder.datasets:
            try:
                datasets[dataset_row.DataSetID] = _resolve_dataset(
                    dataset_row,
                    builder.row,
                    sources.get(dataset_row.DataSourceID),
                    schedule.timezone if schedule else "UTC",
                )
            except MetadataError as error:
                fail(builder.row.Name, str(error))

    roles: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for link in snapshot.transformation_data_sets:
        roles[link.TransformationID][link.Role.lower()].append(link.DataSetID)
    transformation_rows = {row.TransformationID: row for row in snapshot.transformations}
    explicit_deps: dict[int, list[int]] = defaultdict(list)
    for dependency in snapshot.transformation_dependencies:
        explicit_deps[dependency.TransformationID].append(dependency.DependsOnTransformationID)

    producer_of: dict[int, int] = {}
    for transformation_id, by_role in roles.items():
        for dataset_id in by_role.get("output", []):
            if dataset_id in producer_of and transformation_id in transformation_rows:
                other = producer_of[dataset_id]
                row = transformation_rows[transformation_id]
                product = (
                    products[row.DataProductID].row.Name if row.DataProductID in products else "?"
                )
                fail(
                    product,
                    f"Transformations rows {other} and {transformation_id} both write DataSets "
                    f"row {dataset_id}",
                )
            producer_of[dataset_id] = transformation_id

    resolved: dict[int, TransformationModel] = {}
    product_of_transformation: dict[int, str] = {}
    for transformation_id, row in transformation_rows.items():
        if row.DataProductID not in products:
            continue
        product_name = products[row.DataProductID].row.Name
        product_of_transformation[transformation_id] = product_name
        try:
            resolved[transformation_id] = _resolve_transformation(
                row,
                product_name,
                roles.get(transformation_id, {}),
                datasets,
                producer_of,
                explicit_deps.get(transformation_id, []),
                transformation_rows,
            )
        except MetadataError as error:
            fail(product_name, str(error))

    rules_by_producer: dict[int, list[QualityRuleModel]] = defaultdict(list)
    for rule_row in snapshot.data_quality_rules:
        dataset = datasets.get(rule_row.DataSetID)
        if dataset is None:
            continue  # the DataSet's own problem is reported already
        try:
            rule = _resolve_rule(rule_row, dataset, datasets.values(), producer_of)
        except MetadataError as error:
            fail(dataset.product, str(error))
            continue
        rules_by_producer[producer_of[dataset.id]].append(rule)
    for transformation_id, rules in rules_by_producer.items():
        if transformation_id in resolved:
            resolved[transformation_id] = _with_rules(
                resolved[transformation_id], rules, producer_of, transformation_rows
            )

    _report_cycles(resolved, product_of_transformation, transformation_rows, fail)
    pii_columns = _propagated_pii(resolved, producer_of)
    for tid, transformation in list(resolved.items()):
        values = scoped_values(
            catalog.configuration,
            env,
            dataset=transformation.output.name,
            product=product_of_transformation[tid],
        )
        try:
            overrides = dataset_overrides(values)
        except MetadataError as error:
            fail(product_of_transformation[tid], str(error))
            continue
        # One copy per transformation with both: the catalog of 10,000 products builds faster.
        resolved[tid] = dataclasses.replace(
            transformation, overrides=overrides, pii_columns=pii_columns[tid]
        )

    candidates = [
        DataProductModel(
            id=builder.row.DataProductID,
            name=builder.row.Name,
            domain=builder.row.Domain,
            owner=builder.row.Owner,
            description=builder.row.Description,
            datasets=tuple(datasets[r.DataSetID] for r in builder.datasets),
            transformations=tuple(resolved[r.TransformationID] for r in builder.transformations),
            schedule=automation[builder.row.Name][0],
            sensors=automation[builder.row.Name][1],
        )
        for builder in products.values()
        if builder.row.Name not in broken
    ]
    producer_product = {
        dataset_id: product_of_transformation[tid]
        for dataset_id, tid in producer_of.items()
        if tid in product_of_transformation
    }
    catalog.products, problems = drop_broken_products(candidates, broken, producer_product)
    catalog.problems.extend(problems)
    return catalog


def _resolve_transformation(
    row: TransformationRow,
    product_name: str,
    by_role: dict[str, list[int]],
    datasets: dict[int, DataSetModel],
    producer_of: dict[int, int],
    explicit_deps: list[int],
    transformation_rows: dict[int, TransformationRow],
) -> TransformationModel:
    where = f"Transformations row {row.TransformationID} ({row.Name})"
    _identifier(row.Name, where, "Name")
    config = parse_transformation_config(
        row.TransformationID, row.Type, row.Configuration, row.Name
    )
    unknown_roles = set(by_role) - {"input", "output"}
    if unknown_roles:
        raise MetadataError(
            f"{where}: TransformationDataSets Role must be 'input' or 'output', got "
            f"{', '.join(sorted(unknown_roles))}"
        )
    outputs = by_role.get("output", [])
    if len(outputs) != 1:
        raise MetadataError(
            f"{where}: needs exactly one TransformationDataSets row with Role 'output', "
            f"found {len(outputs)}"
        )
    for dataset_id in [*outputs, *by_role.get("input", [])]:
        if dataset_id not in datasets:
            raise MetadataError(f"{where}: DataSets row {dataset_id} is missing or invalid")
    output = datasets[outputs[0]]
    if output.layer != "DDZ":
        raise MetadataError(f"{where}: output DataSets row {output.id} must be in layer DDZ")
    inputs = tuple(datasets[i] for i in by_role.get("input", []))
    input_names = {d.name for d in inputs}
    for name in _referenced_inputs(config):
        if name not in input_names:
            raise MetadataError(
                f"{where}: Configuration names input DataSet {name!r}, which is not one of its "
                f"inputs ({', '.join(sorted(input_names)) or 'none'})"
            )
    if isinstance(config, IngestConfig):
        _check_ingestion(where, config, inputs, output)
    if isinstance(config, SqlConfig):
        what = "an input of the transformation"
        _query_tables(where, "query", config.query, [d.sql_name for d in inputs], what)
    if isinstance(config, PropertiesSequenceConfig) and config.table not in (
        None,
        output.target_table,
        output.target,
    ):
        raise MetadataError(
            f"{where}: Configuration.table {config.table!r} does not match the output DataSet's "
            f"target table {output.target!r}"
        )
    depends: list[str] = []
    for upstream_id in [*explicit_deps, *(producer_of.get(d.id) for d in inputs)]:
        if upstream_id is None:
            continue
        upstream = transformation_rows.get(upstream_id)
        if upstream is None:
            raise MetadataError(
                f"{where}: TransformationDependencies names missing TransformationID {upstream_id}"
            )
        if upstream.Name not in depends:
            depends.append(upstream.Name)
    return TransformationModel(
        id=row.TransformationID,
        name=row.Name,
        description=row.Description,
        type=row.Type,
        config=config,
        product=product_name,
        inputs=inputs,
        output=output,
        depends_on=tuple(depends),
    )


INGEST_SOURCE_TYPES = ("database", "file")
FILE_FORMATS = ("csv", "json", "parquet")


def _check_ingestion(
    where: str, config: IngestConfig, inputs: tuple[DataSetModel, ...], output: DataSetModel
) -> None:
    if len(inputs) != 1 or inputs[0].layer != "CDZ":
        raise MetadataError(f"{where}: an ingest transformation reads exactly one source DataSet")
    source = inputs[0]
    kind = source.source_type.lower()
    if kind not in INGEST_SOURCE_TYPES:
        raise MetadataError(
            f"{where}: DataSet {source.name!r} comes from a DataSource of Type "
            f"{source.source_type!r}; ingest reads Type {' or '.join(INGEST_SOURCE_TYPES)}"
        )
    if kind == "file":
        if source.source_format.lower() not in FILE_FORMATS:
            raise MetadataError(
                f"{where}: Format {source.source_format!r} of DataSet {source.name!r} is not "
                f"one of {', '.join(FILE_FORMATS)}"
            )
        if not source.columns or any(c.type is None for c in source.columns):
            raise MetadataError(
                f"{where}: DataSet {source.name!r} needs a Schema with a type for every column "
                "(rows are checked against it)"
            )
        if config.watermark_column or config.partition_column:
            raise MetadataError(f"{where}: watermark and partition columns are for databases")
    if config.watermark_column and output.write_mode == "replace":
        raise MetadataError(
            f"{where}: an incremental load (watermark_column) adds rows: give output DataSet "
            f"{output.name!r} WriteMode append or merge, not replace"
        )


def _reject_literal_secrets(
    snapshot: StoreSnapshot,
    products: dict[int, _ProductBuilder],
    fail: Callable[[str, str], None],
) -> None:
    """A password, key or token written into a row breaks the product that uses the row: rows
    hold references (env:NAME, keyvault://vault/secret). Messages never quote the value."""
    advice = "store a reference instead (env:NAME or keyvault://<vault>/<secret>)"
    product_name = {pid: b.row.Name for pid, b in products.items()}
    source_users: dict[int, set[str]] = defaultdict(set)
    dataset_product: dict[int, str] = {}
    for dataset in snapshot.data_sets:
        name = product_name.get(dataset.DataProductID, f"#{dataset.DataProductID}")
        source_users[dataset.DataSourceID].add(name)
        dataset_product[dataset.DataSetID] = name
    for source in snapshot.data_sources:
        if parse_reference(source.ConnectionString):
            continue
        kind = literal_secret_in(source.ConnectionString)
        if kind:
            message = (
                f"DataSources row {source.DataSourceID} ({source.Name}): ConnectionString "
                f"holds {kind}; {advice}"
            )
            for user in sorted(source_users[source.DataSourceID]):
                fail(user, message)
    texts: list[tuple[str, str, str | None]] = []
    for dataset in snapshot.data_sets:
        where = f"DataSets row {dataset.DataSetID} ({dataset.Name})"
        for column in ("Location", "Schema", "Description"):
            texts.append(
                (dataset_product[dataset.DataSetID], f"{where}: {column}", getattr(dataset, column))
            )
    for transformation in snapshot.transformations:
        name = product_name.get(transformation.DataProductID, "")
        where = f"Transformations row {transformation.TransformationID} ({transformation.Name})"
        texts.append((name, f"{where}: Configuration", transformation.Configuration))
    for rule in snapshot.data_quality_rules:
        where = f"DataQualityRules row {rule.RuleID} ({rule.Name})"
        texts.append(
            (dataset_product.get(rule.DataSetID, ""), f"{where}: Configuration", rule.Configuration)
        )
    for product, where, text in texts:
        kind = literal_secret_in(text or "")
        if kind and product:
            key = _secret_key(text or "")
            fail(product, f"{where}{f' (key {key!r})' if key else ''} holds {kind}; {advice}")


def _secret_key(text: str) -> str | None:
    """The dotted path of the first key of JSON `text` whose value holds a literal secret (the
    key names the setting, never its value); None when `text` is not JSON or none is found."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    todo: list[tuple[str, object]] = [("", found)]
    while todo:
        path, value = todo.pop(0)
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(item, str) and literal_secret_in(json.dumps({key: item})):
                    return name
                todo.append((name, item))
        elif isinstance(value, list):
            todo += [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    return None


def _resolve_rule(
    row: DataQualityRuleRow,
    dataset: DataSetModel,
    all_datasets: Iterable[DataSetModel],
    producer_of: dict[int, int],
) -> QualityRuleModel:
    where = f"DataQualityRules row {row.RuleID} ({row.Name})"
    # The name becomes the Dagster check name: letters, digits and '_' only.
    _identifier(row.Name, where, "Name")
    config = parse_rule_config(row.RuleID, row.Name, row.Type, row.Configuration)
    if dataset.layer != "DDZ" or dataset.id not in producer_of:
        raise MetadataError(
            f"{where}: DataSet {dataset.name!r} is not produced by a transformation; rules "
            "are checked where their DataSet is computed, so put them on a DDZ DataSet"
        )
    _check_declared_columns(where, dataset, rule_columns(config))
    if isinstance(config, CustomSqlRule):
        # The query runs over the checked rows, registered under the DataSet's name alone.
        _query_tables(where, "query", config.query, [dataset.name], "the checked DataSet")
    reference = None
    if isinstance(config, ReferentialIntegrityRule):
        matches = [
            d
            for d in all_datasets
            if config.reference_dataset in (d.name, d.sql_name, f"{d.source_name}.{d.name}")
        ]
        if len(matches) != 1:
            found = "no DataSet" if not matches else f"{len(matches)} DataSets"
            raise MetadataError(
                f"{where}: reference_dataset {config.reference_dataset!r} matches {found}"
                + (" (write it as '<source>.<dataset>')" if matches else "")
            )
        reference = matches[0]
        if reference.layer == "DDZ" and reference.id not in producer_of:
            raise MetadataError(
                f"{where}: reference DataSet {reference.name!r} is not produced by any "
                "transformation"
            )
        _check_declared_columns(where, reference, [config.reference_column])
    return QualityRuleModel(
        id=row.RuleID,
        name=row.Name,
        description=row.Description,
        type=row.Type,
        config=config,
        dataset=dataset,
        reference=reference,
    )


def _check_declared_columns(where: str, dataset: DataSetModel, columns: list[str]) -> None:
    """Columns a rule names must exist when the DataSet's Schema lists its columns."""
    declared = {c.name.lower() for c in dataset.columns}
    if not declared:
        return  # checked against the computed DataFrame at run time
    missing = [c for c in columns if c.lower() not in declared]
    if missing:
        raise MetadataError(
            f"{where}: column {', '.join(map(repr, missing))} is not in DataSet "
            f"{dataset.name!r} (columns: {', '.join(c.name for c in dataset.columns)})"
        )


def _with_rules(
    transformation: TransformationModel,
    rules: list[QualityRuleModel],
    producer_of: dict[int, int],
    rows: dict[int, TransformationRow],
) -> TransformationModel:
    """Attach rules; a referential_integrity rule on a DDZ reference runs after its producer."""
    depends = list(transformation.depends_on)
    for rule in rules:
        if rule.reference is None or rule.reference.id not in producer_of:
            continue
        upstream = rows[producer_of[rule.reference.id]].Name
        if upstream not in depends and upstream != transformation.name:
            depends.append(upstream)
    return dataclasses.replace(
        transformation,
        rules=tuple(sorted(rules, key=lambda r: r.id)),
        depends_on=tuple(depends),
    )


def _propagated_pii(
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


def _report_cycles(
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
