"""From settings to a validated catalog: one read of the store, then the query-file checks."""

from __future__ import annotations

from data_mesh.metadata.catalog import Catalog, build_catalog
from data_mesh.metadata.rows import read_store
from data_mesh.metadata.store import make_engine
from data_mesh.settings import Settings
from data_mesh.storage import LocalStorage, Storage
from data_mesh.validation import check_query_files


def lake_storage(settings: Settings) -> Storage:
    return LocalStorage(settings.resolved_lake_root)


def load_catalog(settings: Settings) -> Catalog:
    engine = make_engine(settings.resolved_metadata_url)
    try:
        snapshot = read_store(engine)
    finally:
        engine.dispose()
    return check_query_files(build_catalog(snapshot), lake_storage(settings))
