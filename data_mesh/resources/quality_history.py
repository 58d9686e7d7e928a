"""The quality results history as a Dagster resource (the metadata store's DataQualityResults)."""

from __future__ import annotations

import logging

from dagster import ConfigurableResource
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.metadata.quality_results import record_quality_results
from data_mesh.quality.evaluate import QualityReport
from data_mesh.quality.history import history_rows
from data_mesh.resources.metadata_store import MetadataStoreResource

log = logging.getLogger(__name__)


class QualityHistoryResource(ConfigurableResource):  # type: ignore[type-arg]
    """Writes one row per evaluated rule per run into the metadata store."""

    store: MetadataStoreResource

    def record(self, report: QualityReport, run_id: str) -> bool:
        """Store the results; a store outage is logged, not allowed to stop the load."""
        engine = self.store.engine()
        try:
            record_quality_results(engine, history_rows(report, run_id))
            return True
        except SQLAlchemyError as error:
            log.warning("quality results of run %s not recorded: %s", run_id, error)
            return False
        finally:
            engine.dispose()
