"""The quality results history as a Dagster resource (the metadata store's DataQualityResults)."""

from __future__ import annotations

import logging
from typing import Literal

from dagster import ConfigurableResource
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.azure_sql import AzureSqlTarget
from data_mesh.metadata.quality_results import record_quality_results
from data_mesh.quality.evaluate import QualityReport
from data_mesh.quality.history import history_rows
from data_mesh.store_connection import engine_for_store

log = logging.getLogger(__name__)


class QualityHistoryResource(ConfigurableResource):  # type: ignore[type-arg]
    """Writes one row per evaluated rule per run into the metadata store: Azure SQL (token or
    SQL auth, see `data_mesh.azure_sql`) when `azure_server` is set, else `metadata_url`."""

    metadata_url: str
    azure_server: str | None = None
    azure_database: str = "data_mesh_metadata"
    azure_auth: Literal["token", "sql"] = "token"

    def engine(self) -> Engine:
        azure = None
        if self.azure_server:
            azure = AzureSqlTarget(self.azure_server, self.azure_database, self.azure_auth)
        return engine_for_store(self.metadata_url, azure)

    def record(self, report: QualityReport, run_id: str) -> bool:
        """Store the results; a store outage is logged, not allowed to stop the load."""
        engine = self.engine()
        try:
            record_quality_results(engine, history_rows(report, run_id))
            return True
        except SQLAlchemyError as error:
            log.warning("quality results of run %s not recorded: %s", run_id, error)
            return False
        finally:
            engine.dispose()
