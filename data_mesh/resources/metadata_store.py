"""The metadata store as a Dagster resource: Azure SQL over pyodbc in the cloud (Azure AD token
or SQL auth, retried connects: `data_mesh.store.azure_sql`), any SQLAlchemy URL otherwise (SQLite in
LOCAL, PostgreSQL in tests). Its config holds no secret: tokens and passwords are fetched when
a connection opens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Literal

from dagster import ConfigurableResource
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.settings.model import Settings
from data_mesh.store.azure_sql import AzureSqlTarget
from data_mesh.store.connection import disposing, engine_for_store

log = logging.getLogger(__name__)


class MetadataStoreResource(ConfigurableResource):  # type: ignore[type-arg]
    metadata_url: str
    azure_server: str | None = None
    azure_database: str = "data_mesh_metadata"
    azure_auth: Literal["token", "sql"] = "token"

    @classmethod
    def from_settings(cls, settings: Settings) -> MetadataStoreResource:
        return cls(
            metadata_url=settings.resolved_metadata_url,
            azure_server=settings.metadata_azure_server,
            azure_database=settings.metadata_azure_database,
            azure_auth=settings.metadata_azure_auth,
        )

    def azure_target(self) -> AzureSqlTarget | None:
        if not self.azure_server:
            return None
        return AzureSqlTarget(self.azure_server, self.azure_database, self.azure_auth)

    def engine(self) -> Engine:
        """A new engine: the caller disposes of it (prefer `engine_in_use`)."""
        return engine_for_store(self.metadata_url, self.azure_target())

    def engine_in_use(self) -> AbstractContextManager[Engine]:
        """An engine for one piece of work (a sensor tick, a step), disposed after it."""
        return disposing(self.engine())

    def write_or_warn(self, write: Callable[[Engine], None], what: str) -> bool:
        """Run `write` on the store; an outage is logged, not allowed to fail the run (history
        and audit rows must not stop a load that itself succeeded)."""
        with self.engine_in_use() as engine:
            try:
                write(engine)
                return True
            except SQLAlchemyError as error:
                log.warning("%s not recorded: %s", what, error)
                return False
