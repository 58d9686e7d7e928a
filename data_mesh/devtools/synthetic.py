"""A synthetic but valid metadata store for scale tests (`data-mesh generate-metadata`).

Every product is a function of its number, so the same N always gives the same rows: two CDZ
inputs, a chain of 2-4 transformations (filter, join, aggregate, sql) writing DDZ DataSets, an
explicit dependency row, 3-5 quality rules, and on request a schedule in its own configuration
category (`product.<name>`), as real products have. Rows are inserted in bulk, a few statements per
table whatever N.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, Table, func, select

from data_mesh.store import schema

DOMAINS = 20
LAKE_SOURCE = "synthetic_cdz"
DDZ_SOURCE = "synthetic_ddz"
_BATCH = 5_000
TIMEZONES = ("UTC", "Europe/Amsterdam", "Asia/Kolkata", "America/New_York")


def _next_ids(engine: Engine, tables: list[Table]) -> dict[str, int]:
    """The first free primary key of each table (rows get explicit ids to link them)."""
    ids = {}
    with engine.connect() as connection:
        for table in tables:
            key = next(iter(table.primary_key.columns))
            ids[table.name] = int(connection.execute(select(func.max(key))).scalar() or 0) + 1
    return ids


class _Rows:
    """Rows per table with ids handed out in order."""

    def __init__(self, first_ids: dict[str, int]) -> None:
        self.next = dict(first_ids)
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def add(self, table: Table, **values: Any) -> int:
        key = next(iter(table.primary_key.columns)).name
        row_id = self.next[table.name]
        self.next[table.name] += 1
        self.rows[table.name].append({key: row_id, **values})
        return row_id


def _product(rows: _Rows, number: int, lake: int, ddz: int, schedule: bool) -> None:
    name = f"product_{number:05d}"
    domain = f"domain_{number % DOMAINS:02d}"
    product = rows.add(
        schema.data_products,
        Name=name,
        Domain=domain,
        Owner=f"team-{number % 50}@example.com",
        Description=f"Synthetic data product {number}.",
    )
    columns = [
        {"name": "id", "type": "bigint"},
        {"name": "customer_id", "type": "bigint"},
        {"name": "amount", "type": "double"},
        {"name": "status", "type": "string"},
    ]

    def dataset(suffix: str, layer: str, schema_: list[dict[str, str]] | None = None) -> int:
        cdz = layer == "CDZ"
        return rows.add(
            schema.data_sets,
            DataSourceID=lake if cdz else ddz,
            Name=f"{name}_{suffix}",
            Schema=json.dumps(schema_ or []),
            DataProductID=product,
            Layer=layer,
            Location=f"cdz/synthetic/{name}/{suffix}" if cdz else None,
            TargetSchema=None if cdz else "ddz",
            TargetTable=None if cdz else f"P{number:05d}_{suffix.upper()}",
            WriteMode=None if cdz else "replace",
            KeyColumns=None,
            Description=None,
        )

    orders = dataset("orders", "CDZ", columns)
    customers = dataset("customers", "CDZ", [{"name": "customer_id", "type": "bigint"}])
    steps = 2 + number % 3  # 2-4 transformations
    outputs = [dataset(f"step{i}", "DDZ") for i in range(steps)]
    configs: list[tuple[str, dict[str, Any], list[int]]] = [
        ("filter", {"input_dataset": f"{name}_orders", "condition": "amount > 0"}, [orders]),
        (
            "join",
            {
                "input_dataset": f"{name}_step0",
                "second_dataset": f"{name}_customers",
                "join_columns": ["customer_id"],
            },
            [outputs[0], customers],
        ),
        (
            "aggregate",
            {
                "input_dataset": f"{name}_step1",
                "groupby_columns": ["status"],
                "agg_functions": {"total": "sum(amount)", "orders": "count(*)"},
            },
            [outputs[1]] if steps > 2 else [],
        ),
        ("sql", {"query": f"select * from {name}_step2 where orders > 0"}, [outputs[-2]]),
    ]
    transformation_ids = []
    for index in range(steps):
        kind, config, inputs = configs[index]
        transformation = rows.add(
            schema.transformations,
            Name=f"{name}_t{index}",
            Description=None,
            Type=kind,
            Configuration=json.dumps(config, sort_keys=True),
            DataProductID=product,
        )
        transformation_ids.append(transformation)
        for role, dataset_id in [("output", outputs[index])] + [("input", i) for i in inputs]:
            rows.add(
                schema.transformation_data_sets,
                TransformationID=transformation,
                DataSetID=dataset_id,
                Role=role,
            )
    rows.add(
        schema.transformation_dependencies,
        TransformationID=transformation_ids[-1],
        DependsOnTransformationID=transformation_ids[0],
    )
    if schedule:
        category = rows.add(schema.configuration_category, CategoryName=f"product.{name}")
        items = {
            "schedule.cron": f"0 {number % 60} {number % 24} * * ?",  # Quartz, as seed 001
            "schedule.timezone": TIMEZONES[number % len(TIMEZONES)],
        }
        for key, value in items.items():
            rows.add(schema.configuration_item, CategoryID=category, ItemKey=key, ItemValue=value)
    rules: list[tuple[str, dict[str, Any]]] = [
        ("not_null", {"column": "id"}),
        ("range", {"column": "amount", "min": 0}),
        ("row_count", {"min": 1}),
        ("accepted_values", {"column": "status", "values": ["COMPLETED", "PENDING"]}),
        ("unique", {"columns": ["id"]}),
    ]
    for index, (kind, config) in enumerate(rules[: 3 + number % 3]):  # 3-5 rules
        rows.add(
            schema.data_quality_rules,
            DataSetID=outputs[0],
            Name=f"rule_{index}_{kind}",
            Description=None,
            Type=kind,
            Configuration=json.dumps(config, sort_keys=True),
        )


def generate_metadata(
    engine: Engine, products: int, first: int = 1, schedules: bool = False
) -> dict[str, int]:
    """Insert `products` synthetic products numbered from `first` (with `schedules`, each with
    a schedule); returns rows per table."""
    if products < 1:
        raise ValueError("products must be at least 1")
    tables = [
        schema.data_products,
        schema.data_sources,
        schema.data_sets,
        schema.transformations,
        schema.transformation_data_sets,
        schema.transformation_dependencies,
        schema.data_quality_rules,
        schema.configuration_category,
        schema.configuration_item,
    ]
    rows = _Rows(_next_ids(engine, tables))
    with engine.connect() as connection:
        sources = dict(
            connection.execute(
                select(schema.data_sources.c.Name, schema.data_sources.c.DataSourceID).where(
                    schema.data_sources.c.Name.in_([LAKE_SOURCE, DDZ_SOURCE])
                )
            ).all()
        )
    lake = sources.get(LAKE_SOURCE) or rows.add(
        schema.data_sources,
        Name=LAKE_SOURCE,
        Type="lake",
        ConnectionString="lake://cdz/synthetic",
        Format="parquet",
    )
    ddz = sources.get(DDZ_SOURCE) or rows.add(
        schema.data_sources,
        Name=DDZ_SOURCE,
        Type="ddz",
        ConnectionString="env:DATA_MESH_DDZ_JDBC_URL",
        Format="table",
    )
    for number in range(first, first + products):
        _product(rows, number, lake, ddz, schedules)
    with engine.begin() as connection:
        for table in tables:  # parents before children
            batch = rows.rows.get(table.name, [])
            for start in range(0, len(batch), _BATCH):
                connection.execute(table.insert(), batch[start : start + _BATCH])
    return {table.name: len(rows.rows.get(table.name, [])) for table in tables}
