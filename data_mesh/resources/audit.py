"""The audit log as a Dagster resource: the framework records every materialization and every
failure (the DDZ IO manager and the asset factory call it; assets never do)."""

from __future__ import annotations

import logging

from dagster import ConfigurableResource
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.metadata.audit import AuditRow, record_audit
from data_mesh.resources.metadata_store import MetadataStoreResource

log = logging.getLogger(__name__)


class AuditLogResource(ConfigurableResource):  # type: ignore[type-arg]
    store: MetadataStoreResource

    def record(self, row: AuditRow) -> bool:
        """Store one row; a store outage is logged, not allowed to fail the run."""
        engine = self.store.engine()
        try:
            record_audit(engine, row)
            return True
        except SQLAlchemyError as error:
            log.warning("audit row for %s not recorded: %s", row.AssetKey, error)
            return False
        finally:
            engine.dispose()
