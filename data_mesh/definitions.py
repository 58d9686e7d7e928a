"""The entry point `dagster dev` and `workspace.yaml` load.

Nothing is read at import time: `@definitions` defers the read to load time, and then reads the
metadata snapshot file (see `component.state_loading.catalog_for_definitions`), not the store.
"""

from __future__ import annotations

import gc

import dagster as dg

from data_mesh.component.definitions import build_definitions
from data_mesh.component.gc_control import collect_and_freeze, cyclic_gc_paused
from data_mesh.component.state_loading import catalog_for_definitions, copy_published_snapshot
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings, load_settings


def load_definitions(settings: Settings) -> dg.Definitions:
    """What a code server or run worker loads: the snapshot's catalog as Definitions, with the
    repository already built (Dagster caches it), all with the cyclic GC paused; what it built
    is then frozen out of later collections (it lives as long as the process)."""
    copy_published_snapshot(settings)
    resources = resources_for(settings)
    # Cycles left by imports, the lake client of the copy and Dagster's resource schemas are
    # freed now: nothing but what the load builds gets frozen below.
    gc.collect()
    with cyclic_gc_paused():
        catalog, stamp = catalog_for_definitions(settings, copy_published=False)
        definitions = build_definitions(catalog, resources, stamp)
        # The catalog and specs make no reference cycles (a test checks it): frozen as they
        # are, without the collection that would scan them all.
        gc.freeze()
        definitions.get_repository_def()
        # Dagster's resource checks do leave cycles (recursive closures, about 50 objects per
        # product): this collection frees them, scanning only what the repository added.
        collect_and_freeze()
    return definitions


@dg.definitions
def defs() -> dg.Definitions:
    return load_definitions(load_settings())
