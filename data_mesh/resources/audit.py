"""The audit log as a Dagster resource: the framework records every materialization and every
failure (the DDZ IO manager and the asset factory call it; assets never do)."""

from __future__ import annotations

import time

from dagster import ConfigurableResource

from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.store.audit import AuditRow, audit_row, record_audit


class AuditLogResource(ConfigurableResource):  # type: ignore[type-arg]
    store: MetadataStoreResource

    def record(self, row: AuditRow, mesh: str) -> bool:
        """Writes `row` into the store of `mesh`."""
        return self.store.write_or_warn(
            lambda engine: record_audit(engine, row), f"audit row for {row.AssetKey}", mesh
        )

    def record_write(
        self,
        mesh: str,
        asset: str,
        target: str,
        run_id: str,
        status: str,
        started: float,
        rows: int | None = None,
        error: BaseException | None = None,
    ) -> bool:
        """Records an IO manager's write (or failed write) of `asset` into `target`, begun at
        `started` (time.monotonic())."""
        seconds = time.monotonic() - started
        detail = f"{type(error).__name__}: {error}" if error else None
        return self.record(audit_row(asset, target, run_id, status, seconds, rows, detail), mesh)


def audit_write(
    audit: AuditLogResource | None,
    mesh: str,
    asset: str,
    target: str,
    run_id: str,
    status: str,
    started: float,
    rows: int | None = None,
    error: BaseException | None = None,
) -> None:
    """An IO manager's write recorded in the audit log, when it has one (None: not audited)."""
    if audit is not None:
        audit.record_write(mesh, asset, target, run_id, status, started, rows, error)
