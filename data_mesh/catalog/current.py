"""The catalog as the store and the lake say now, for the commands that act on the store
(`validate`, `materialize`, `load`); Dagster definitions are built from the component's state
instead (`data_mesh.component.state`)."""

from __future__ import annotations

import datetime as dt

from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.models import Catalog
from data_mesh.catalog.transformation_configs import PropertiesSequenceConfig
from data_mesh.catalog.validation import check_query_files
from data_mesh.lake.storage import Storage
from data_mesh.resources.lake import lake_resource_for
from data_mesh.settings.model import Settings
from data_mesh.store.connection import ready_store_engine
from data_mesh.store.rows import StoreSnapshot, read_store
from data_mesh.transforms.query_files import query_file_path, sequence_file_path


def lake_storage(settings: Settings) -> Storage:
    """The lake of `settings.env`: the same storage the assets use."""
    return lake_resource_for(settings).storage()


def load_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog of `settings.env`, with the configuration valid at `at` (default: now) and
    the query files checked in the lake."""
    return check_query_files(read_catalog(settings, at), lake_storage(settings))


def read_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog from the store's rows alone (no lake access)."""
    return build_catalog(read_store_rows(settings), settings.env, at)


def read_store_rows(settings: Settings) -> StoreSnapshot:
    """Every row of the store: one SELECT per table, whatever the number of rows."""
    with ready_store_engine(settings) as engine:
        return read_store(engine)


def query_file_paths(catalog: Catalog) -> list[str]:
    """The lake paths of every query and sequence file the catalog's products name."""
    paths = set()
    for product in catalog.products:
        for transformation in product.transformations:
            if isinstance(transformation.config, PropertiesSequenceConfig):
                paths.add(query_file_path(transformation.config))
                paths.add(sequence_file_path(transformation.config))
    return sorted(paths)
