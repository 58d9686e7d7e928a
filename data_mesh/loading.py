"""From settings to a validated catalog: one read of the store, then the query-file checks."""

from __future__ import annotations

import datetime as dt

from data_mesh.errors import DataMeshError
from data_mesh.metadata.catalog import Catalog, build_catalog
from data_mesh.metadata.rows import read_store
from data_mesh.metadata.store import current_revision, head_revision
from data_mesh.resources.lake import lake_resource_for
from data_mesh.settings import Settings
from data_mesh.storage import Storage
from data_mesh.store_connection import store_engine
from data_mesh.validation import check_query_files


def lake_storage(settings: Settings) -> Storage:
    """The lake of `settings.env`: the same storage the assets use."""
    return lake_resource_for(settings).storage()


class StoreNotReadyError(DataMeshError):
    """The store has no tables yet, or an older schema than this code."""


def load_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog of `settings.env`, with the configuration valid at `at` (default: now) and
    the query files checked in the lake."""
    return check_query_files(read_catalog(settings, at), lake_storage(settings))


def read_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog from the store's rows alone (no lake access)."""
    engine = store_engine(settings)
    try:
        revision = current_revision(engine)
        if revision != head_revision():
            where = engine.url.render_as_string(hide_password=True)
            state = "is not initialized" if revision is None else f"is at revision {revision}"
            raise StoreNotReadyError(
                f"metadata store {where} {state}: run `data-mesh init` to create or upgrade it"
            )
        snapshot = read_store(engine)
    finally:
        engine.dispose()
    return build_catalog(snapshot, settings.env, at)
