"""The metadata store of each mesh as a Dagster resource: Azure SQL over pyodbc in the cloud
(Azure AD token or SQL auth, retried connects: `data_mesh.store.azure_sql`), any SQLAlchemy URL
otherwise (SQLite in LOCAL, PostgreSQL in tests). Its config holds no secret: tokens and
passwords are fetched when a connection opens."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import Literal

from dagster import Config, ConfigurableResource
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data_mesh.component.naming import DEFAULT_MESH
from data_mesh.settings.model import Settings
from data_mesh.store.azure_sql import AzureSqlTarget
from data_mesh.store.connection import disposing, engine_for_store

log = logging.getLogger(__name__)


class StoreConfig(Config):
    """Where one mesh's metadata store is (no secret: tokens and passwords are fetched when a
    connection opens)."""

    metadata_url: str
    azure_server: str | None = None
    azure_database: str = "data_mesh_metadata"
    azure_auth: Literal["token", "sql"] = "token"

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreConfig:
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


class MetadataStoreResource(ConfigurableResource):  # type: ignore[type-arg]
    """The metadata store of every mesh of the code location, by mesh name (one resource
    serves them all: steps and sensors name the mesh of their product)."""

    stores: dict[str, StoreConfig]

    @classmethod
    def from_settings(cls, settings: Settings, mesh: str = DEFAULT_MESH) -> MetadataStoreResource:
        return cls.for_meshes({mesh: settings})

    @classmethod
    def for_meshes(cls, meshes: Mapping[str, Settings]) -> MetadataStoreResource:
        return cls(stores={name: StoreConfig.from_settings(s) for name, s in meshes.items()})

    def store(self, mesh: str) -> StoreConfig:
        try:
            return self.stores[mesh]
        except KeyError:
            known = ", ".join(sorted(self.stores)) or "none"
            raise KeyError(f"no metadata store for mesh {mesh!r} (meshes: {known})") from None

    def azure_target(self, mesh: str) -> AzureSqlTarget | None:
        return self.store(mesh).azure_target()

    def engine(self, mesh: str) -> Engine:
        """A new engine on `mesh`'s store: the caller disposes of it (prefer `engine_in_use`)."""
        store = self.store(mesh)
        return engine_for_store(store.metadata_url, store.azure_target())

    def engine_in_use(self, mesh: str) -> AbstractContextManager[Engine]:
        """An engine on `mesh`'s store for one piece of work (a sensor tick, a step), disposed
        after it."""
        return disposing(self.engine(mesh))

    def write_or_warn(self, write: Callable[[Engine], None], what: str, mesh: str) -> bool:
        """Run `write` on `mesh`'s store; an outage is logged, not allowed to fail the run
        (history and audit rows must not stop a load that itself succeeded)."""
        with self.engine_in_use(mesh) as engine:
            try:
                write(engine)
                return True
            except SQLAlchemyError as error:
                log.warning("%s not recorded in the store of %s: %s", what, mesh, error)
                return False
