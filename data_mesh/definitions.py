"""The code location: `dg` (`[tool.dg]` in pyproject.toml), `dagster dev -w workspace.yaml` and
the deployed code servers load this module. Its definitions are what the components in
`data_mesh/defs/` build (`DataMeshComponent`: one per metadata store). Nothing is read at
import time: `@dg.definitions` defers the load.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    # The repository is built here too, inside the pause; Dagster keeps it with the
    # Definitions, so the code server does not build it again.
    with cyclic_gc_paused():
        definitions = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
        definitions.get_repository_def()
    return definitions


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No automatic cyclic collection while the code location loads: its definitions are
    millions of objects that all stay alive, and each automatic full collection on the way
    would rescan every one of them (benchmarks/README.md). Reference counting still frees what
    is no longer used; collection resumes as it was after the block."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
