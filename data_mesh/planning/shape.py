"""What a transformation does that costs memory and shuffles: joins, aggregations, windows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from data_mesh.catalog.models import TransformationModel
from data_mesh.catalog.transformation_configs import (
    AggregateConfig,
    JoinConfig,
    PropertiesSequenceConfig,
    SqlConfig,
)
from data_mesh.lake.storage import Storage
from data_mesh.transforms.query_files import load_query_plan


@dataclass(frozen=True)
class Shape:
    joins: int = 0
    aggregations: int = 0
    windows: int = 0

    @property
    def shuffles(self) -> int:
        """Exchanges Spark plans (a broadcast join has none; counted anyway: sizes change)."""
        return self.joins + self.aggregations + self.windows

    def __add__(self, other: Shape) -> Shape:
        return Shape(
            self.joins + other.joins,
            self.aggregations + other.aggregations,
            self.windows + other.windows,
        )


def _sql_shape(texts: Iterable[str]) -> Shape:
    shape = Shape()
    for text in texts:
        tree = sqlglot.parse_one(text, read="spark")
        shape = shape + Shape(
            joins=len(list(tree.find_all(exp.Join))),
            aggregations=len(list(tree.find_all(exp.Group)))
            + len(list(tree.find_all(exp.Distinct))),
            windows=len(list(tree.find_all(exp.Window))),
        )
    return shape


def transformation_shape(transformation: TransformationModel, storage: Storage) -> Shape:
    """The shape of one transformation, read from its configuration or its SQL."""
    config = transformation.config
    match config:
        case JoinConfig():
            return Shape(joins=1)
        case AggregateConfig():
            return Shape(aggregations=1)
        case SqlConfig():
            return _sql_shape([config.query])
        case PropertiesSequenceConfig():
            plan = load_query_plan(storage, config)
            return _sql_shape(s.sql for s in plan.statements)
    return Shape()
