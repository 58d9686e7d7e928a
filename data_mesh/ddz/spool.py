"""The spool: the data of one load written once, in the lake, one folder per chunk.

Spark writes it with `partitionBy(chunk)` (no shuffle: every task writes its rows straight into
their chunk's folder), so the upstream plan runs once for the load, in parallel, streaming. It
lives in the lake because the cluster (a Spark Connect server, Databricks) writes and reads it,
and nothing on the client's disk is visible there; the client only checks that it is complete
and removes it, through the lake's own API. A resumed load reuses a complete spool.

Layout: `<root>/<slot>/<load>/__dm_chunk=<i>/part-*.parquet`, complete when Spark's `_SUCCESS`
marker is there; the load's fingerprint in the path keeps a spool of other data from being
mistaken for this one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame

from data_mesh.ddz.chunks import CHUNK_COLUMN
from data_mesh.lake.storage import Storage

SUCCESS_MARKER = "_SUCCESS"


@dataclass(frozen=True)
class Spool:
    """Spool folders under `root` (`<container>/<path>`) of `storage`, the lake."""

    storage: Storage
    root: str = "spool/ddz"

    def slot_folder(self, slot_hash: str) -> str:
        return f"{self.root}/{slot_hash[:16]}"

    def folder(self, slot_hash: str, load_id: str) -> str:
        return f"{self.slot_folder(slot_hash)}/{load_id[:16]}"

    def is_complete(self, folder: str) -> bool:
        return self.storage.exists(f"{folder}/{SUCCESS_MARKER}")

    def write(self, frame: DataFrame, folder: str) -> None:
        """Write `frame` (with the chunk column) as Parquet into `folder`, replacing it."""
        uri = self.storage.spark_uri(folder)
        frame.write.mode("overwrite").partitionBy(CHUNK_COLUMN).parquet(uri)
        if not self.is_complete(folder):
            # Spark writes the marker unless told not to (marksuccessfuljobs=false).
            raise RuntimeError(
                f"the spool {uri} has no {SUCCESS_MARKER} marker after Spark wrote it: keep "
                "mapreduce.fileoutputcommitter.marksuccessfuljobs at true"
            )

    def chunk_uri(self, folder: str, chunk_id: int) -> str:
        return self.storage.spark_uri(f"{folder}/{CHUNK_COLUMN}={chunk_id}")

    def remove(self, slot_hash: str) -> None:
        """Remove every spool of the slot (this load's and any stale one)."""
        self.storage.remove_tree(self.slot_folder(slot_hash))
