"""The audit log as a Dagster resource: the framework records every materialization and every
failure (the DDZ IO manager and the asset factory call it; assets never do)."""

from __future__ import annotations

from dagster import ConfigurableResource

from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.store.audit import AuditRow, record_audit


class AuditLogResource(ConfigurableResource):  # type: ignore[type-arg]
    store: MetadataStoreResource

    def record(self, row: AuditRow, mesh: str) -> bool:
        """Writes `row` into the store of `mesh`."""
        return self.store.write_or_warn(
            lambda engine: record_audit(engine, row), f"audit row for {row.AssetKey}", mesh
        )
