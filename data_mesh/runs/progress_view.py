"""The progress display of `data-mesh materialize` (rich): product steps and assets done of
all, the step running now, and the DDZ chunks of the table being written with rows/s."""

from __future__ import annotations

import time
from contextlib import ExitStack
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from data_mesh.ddz.progress import chunk_listener


class MaterializeProgress:
    """A `RunProgress` (data_mesh.runs.materialize) and a listener of the DDZ writer's chunks,
    shown live on `console` inside a `with` block."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        self._products = self._progress.add_task("products", total=None, note="")
        self._assets = self._progress.add_task("assets", total=None, note="")
        self._chunks = self._progress.add_task("chunks", total=None, note="", visible=False)
        self._table = ""
        self._table_started = 0.0
        self._stack = ExitStack()

    def __enter__(self) -> MaterializeProgress:
        self._stack.enter_context(self._progress)
        self._stack.enter_context(chunk_listener(self.chunks))
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stack.close()

    # -- RunProgress ------------------------------------------------------------------------
    def planned(self, products: int, assets: int) -> None:
        self._progress.update(self._products, total=products)
        self._progress.update(self._assets, total=assets)

    def step_started(self, product: str) -> None:
        self._progress.update(self._products, note=f"running {product}")

    def step_ended(self, product: str) -> None:
        self._progress.advance(self._products)
        self._progress.update(self._products, note=f"done {product}")

    def asset_done(self, asset: str) -> None:
        self._progress.advance(self._assets)
        self._progress.update(self._assets, note=f"done {asset}")

    # -- the DDZ writer ---------------------------------------------------------------------
    def chunks(self, table: str, done: int, total: int, rows: int) -> None:
        now = time.monotonic()
        if table != self._table:
            self._table, self._table_started = table, now
        seconds = now - self._table_started
        rate = f"{rows / seconds:,.0f} rows/s" if rows and seconds > 0 else "- rows/s"
        self._progress.update(
            self._chunks,
            completed=done,
            total=total,
            note=f"{table}, {rows:,} rows, {rate}",
            visible=True,
        )
        self._progress.update(self._assets, note=f"writing {table}")
