"""Python's cyclic garbage collector, kept off the big, long-lived object graphs definitions are.

Building definitions for thousands of products allocates millions of objects that all stay
alive; each automatic full collection on the way rescans every one of them. At 10,000
products that was about a fifth of the load time, and the first collection after it another
2 s (benchmarks/README.md).
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


def collect_and_freeze() -> None:
    """Collects the cyclic garbage among the objects made since the last freeze, then moves
    every object still alive out of the collector's reach (`gc.freeze`): later collections
    never rescan them. Reference counting still frees them. For objects that live as long as
    the process; garbage cycles frozen among them would never be freed."""
    gc.collect()
    gc.freeze()
