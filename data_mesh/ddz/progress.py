"""Chunks of the DDZ write as they commit, for a progress display (`data-mesh materialize`).

A process-wide listener rather than a context variable: the writer runs inside a Dagster step,
whose thread is Dagster's to choose. No listener (the default, e.g. in run workers): nothing
happens. A listener's error never reaches the write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

# (DDZ table, chunks committed, chunks in all, rows committed by this process)
ChunkListener = Callable[[str, int, int, int], None]

_listener: ChunkListener | None = None
_lock = threading.Lock()


@contextmanager
def chunk_listener(listener: ChunkListener) -> Iterator[None]:
    """`listener` hears every chunk the writer commits inside the block."""
    global _listener
    with _lock:
        previous, _listener = _listener, listener
    try:
        yield
    finally:
        with _lock:
            _listener = previous


def report_chunks(table: str, done: int, total: int, rows: int) -> None:
    listener = _listener
    if listener is None:
        return
    with suppress(Exception):  # a display must not fail a load
        listener(table, done, total, rows)
