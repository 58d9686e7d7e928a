"""The engine of the metadata store: Azure SQL over pyodbc with an Azure AD token in the
cloud, or any SQLAlchemy URL (SQLite in LOCAL, PostgreSQL in tests): the same code above it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import Engine

from data_mesh.catalog.errors import DataMeshError
from data_mesh.settings.model import Settings
from data_mesh.settings.secrets import without_password
from data_mesh.store.azure_sql import AzureSqlTarget, azure_sql_engine
from data_mesh.store.database import current_revision, head_revision, make_engine


class StoreNotReadyError(DataMeshError):
    """The store has no tables yet, or an older schema than this code."""


def store_target(settings: Settings) -> AzureSqlTarget | None:
    if not settings.metadata_azure_server:
        return None
    return AzureSqlTarget(
        server=settings.metadata_azure_server,
        database=settings.metadata_azure_database,
        authentication=settings.metadata_azure_auth,
    )


def engine_for_store(url: str, azure: AzureSqlTarget | None) -> Engine:
    return azure_sql_engine(azure) if azure else make_engine(url)


def store_engine(settings: Settings) -> Engine:
    """A new engine: the caller disposes of it (prefer `store_engine_in_use`)."""
    return engine_for_store(settings.resolved_metadata_url, store_target(settings))


@contextmanager
def disposing(engine: Engine) -> Iterator[Engine]:
    """`engine` for one piece of work, disposed after it: its pooled connections would stay
    open until garbage collection otherwise."""
    try:
        yield engine
    finally:
        engine.dispose()


def store_engine_in_use(settings: Settings) -> AbstractContextManager[Engine]:
    """The store's engine for one piece of work, disposed after it."""
    return disposing(store_engine(settings))


@contextmanager
def ready_store_engine(settings: Settings) -> Iterator[Engine]:
    """`store_engine_in_use` for every command but `init`: a store without tables (or with an
    older schema) is refused with one line saying to run `data-mesh init`, before any query
    fails on a missing table with a driver traceback."""
    with store_engine_in_use(settings) as engine:
        revision = current_revision(engine)
        if revision != head_revision():
            state = "is not initialized" if revision is None else f"is at revision {revision}"
            raise StoreNotReadyError(
                f"metadata store {describe_store(settings)} {state}: "
                "run `data-mesh init` to create or upgrade it"
            )
        yield engine


def describe_store(settings: Settings) -> str:
    """Where the store is, without credentials (for messages and `config show`)."""
    target = store_target(settings)
    if target:
        return f"Azure SQL {target.server}/{target.database} ({target.authentication} auth)"
    # The URL alone: no engine (nor a SQLite folder) just to print where the store is.
    return without_password(settings.resolved_metadata_url)
