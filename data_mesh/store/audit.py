"""The audit log in the metadata store (seed 001's columns): one row per materialization and
per failure."""

from __future__ import annotations

import datetime as dt
import getpass
import socket
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, select

from data_mesh.store.rows import store_now
from data_mesh.store.schema import audit_log

SUCCESS = "SUCCESS"
FAILED = "FAILED"
# A blocking quality rule kept the load out of the DDZ table.
BLOCKED = "BLOCKED"
# Error details are capped: a stack of Spark errors can be megabytes.
MAX_ERROR_CHARS = 4000


@dataclass(frozen=True)
class AuditRow:
    AssetKey: str
    SourceTable: str
    LoadTimestamp: dt.datetime
    ProcessedBy: str
    ProcessingTime: float
    Status: str
    RowCount: int | None
    ErrorDetails: str | None
    JobRunID: str
    RecordID: int | None = None


def processed_by() -> str:
    """Who ran it: the OS user and host of the run worker (a pod name in the cloud)."""
    return f"{getpass.getuser()}@{socket.gethostname()}"[:255]


def audit_row(
    asset: str,
    table: str,
    run_id: str,
    status: str,
    seconds: float,
    rows: int | None = None,
    error: str | None = None,
) -> AuditRow:
    return AuditRow(
        AssetKey=asset,
        SourceTable=table,
        LoadTimestamp=store_now(),
        ProcessedBy=processed_by(),
        ProcessingTime=round(seconds, 3),
        Status=status,
        RowCount=rows,
        ErrorDetails=error[:MAX_ERROR_CHARS] if error else None,
        JobRunID=run_id,
    )


def record_audit(engine: Engine, row: AuditRow) -> None:
    values = asdict(row)
    values.pop("RecordID")
    with engine.begin() as connection:
        connection.execute(audit_log.insert().values(**values))


def latest_audit(
    engine: Engine, limit: int = 20, assets: list[str] | None = None, status: str | None = None
) -> list[AuditRow]:
    """The newest rows first; only of `assets` (keys as users write them) and `status` if
    given."""
    query = select(*[audit_log.c[name] for name in AuditRow.__dataclass_fields__])
    if assets is not None:
        query = query.where(audit_log.c.AssetKey.in_(assets))
    if status is not None:
        query = query.where(audit_log.c.Status == status)
    query = query.order_by(audit_log.c.LoadTimestamp.desc(), audit_log.c.RecordID.desc()).limit(
        limit
    )
    with engine.connect() as connection:
        return [AuditRow(**row._mapping) for row in connection.execute(query)]
