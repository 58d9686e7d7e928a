"""The engine of the metadata store: Azure SQL over pyodbc with an Azure AD token in the
cloud, or any SQLAlchemy URL (SQLite in LOCAL, PostgreSQL in tests): the same code above it."""

from __future__ import annotations

from sqlalchemy import Engine

from data_mesh.azure_sql import AzureSqlTarget, azure_sql_engine
from data_mesh.metadata.store import make_engine
from data_mesh.settings import Settings


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
    return engine_for_store(settings.resolved_metadata_url, store_target(settings))


def describe_store(settings: Settings) -> str:
    """Where the store is, without credentials (for messages and `config show`)."""
    target = store_target(settings)
    if target:
        return f"Azure SQL {target.server}/{target.database} ({target.authentication} auth)"
    return make_engine(settings.resolved_metadata_url).url.render_as_string(hide_password=True)
