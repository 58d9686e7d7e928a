"""The quality results history in the metadata store: one row per rule per run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, delete, select

from data_mesh.store.schema import data_quality_results


@dataclass(frozen=True)
class QualityResultRow:
    RuleID: int
    RuleName: str
    DataSetID: int
    DataSetName: str
    RunID: str
    EvaluatedAt: dt.datetime
    Passed: bool
    Severity: str
    TotalRows: int
    FailingRows: int | None
    FailingPercent: float | None
    Threshold: str
    Observed: str


def record_quality_results(engine: Engine, rows: Sequence[QualityResultRow]) -> None:
    """Store `rows`, replacing earlier results of the same rule in the same run (a step retry
    evaluates again), in one transaction."""
    if not rows:
        return
    table = data_quality_results
    with engine.begin() as connection:
        # Per run, not with a row-value IN: T-SQL has none.
        for run_id in {row.RunID for row in rows}:
            rule_ids = [row.RuleID for row in rows if row.RunID == run_id]
            connection.execute(
                delete(table).where(table.c.RunID == run_id, table.c.RuleID.in_(rule_ids))
            )
        connection.execute(table.insert(), [asdict(row) for row in rows])


def latest_quality_results(
    engine: Engine, limit: int = 20, rule: str | None = None
) -> list[QualityResultRow]:
    """The newest results first, optionally of one rule (by name)."""
    table = data_quality_results
    query = select(*[table.c[name] for name in QualityResultRow.__dataclass_fields__])
    if rule is not None:
        query = query.where(table.c.RuleName == rule)
    query = query.order_by(table.c.EvaluatedAt.desc(), table.c.ResultID.desc()).limit(limit)
    with engine.connect() as connection:
        return [QualityResultRow(**row._mapping) for row in connection.execute(query)]
