"""The entry point `dagster dev` and `workspace.yaml` load.

Nothing is read at import time: `@definitions` defers the read to load time, and then reads the
metadata snapshot file (see `data_mesh.loading.catalog_for_definitions`), not the store.
"""

from __future__ import annotations

import dagster as dg

from data_mesh.factories.definitions import build_definitions
from data_mesh.loading import catalog_for_definitions
from data_mesh.resources.environments import resources_for
from data_mesh.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    catalog, saved = catalog_for_definitions(settings)
    return build_definitions(catalog, resources_for(settings), saved)
