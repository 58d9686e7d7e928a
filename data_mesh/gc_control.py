"""Python's cyclic garbage collector, paused while big, long-lived object graphs are built.

Building definitions for thousands of products allocates millions of objects that all stay
alive; each automatic full collection on the way rescans every one of them. At 10,000
products that was about a fifth of the load time (benchmarks/README.md).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No automatic cyclic collection inside the block; reference counting still frees what is
    no longer used, and collection resumes (as it was) after the block."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
