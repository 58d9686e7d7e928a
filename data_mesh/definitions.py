"""The entry point `dagster dev` and `workspace.yaml` load.

Nothing is read at import time: `@definitions` defers the store read to load time.
"""

from __future__ import annotations

import dagster as dg

from data_mesh.factories.definitions import build_definitions
from data_mesh.loading import load_catalog
from data_mesh.resources.environments import resources_for
from data_mesh.settings import load_settings


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    return build_definitions(load_catalog(settings), resources_for(settings))
