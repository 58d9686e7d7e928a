"""Loading one spooled chunk into the load's staging table, together with its ledger row
(H2 and SQL Server; PostgreSQL streams instead, see `streaming`).

Each chunk is one transaction: its rows reach the staging table in the same commit as the
ledger row that records them, so a resumed load knows exactly which chunks are in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pyspark.sql import SparkSession

from data_mesh.ddz.chunks import Chunk
from data_mesh.ddz.dialects import Column, Dialect, TableName
from data_mesh.ddz.sessions import DdzSession, open_session, transaction
from data_mesh.ddz.spool import chunk_folder
from data_mesh.errors import DataMeshError


class ChunkIntegrityError(DataMeshError):
    """A chunk whose loaded row count differs from its source (never retried)."""


@dataclass(frozen=True)
class ChunkJob:
    chunk: Chunk
    chunk_count: int
    slot: str
    load_id: str
    stage: TableName
    columns: list[Column]
    spool: Path

    def ledger_params(self, rows: int) -> list[object]:
        return [self.slot, self.load_id, self.chunk.id, self.chunk_count, rows, self.chunk.checksum]

    def check_rows(self, loaded: int) -> None:
        if loaded != self.chunk.rows:
            raise ChunkIntegrityError(
                f"chunk {self.chunk.id}: loaded {loaded} rows, the source has {self.chunk.rows}"
            )


def already_loaded(session: DdzSession, dialect: Dialect, job: ChunkJob) -> bool:
    """True if an earlier attempt committed this chunk (e.g. the commit's reply was lost)."""
    found = session.query(dialect.ledger_has_chunk(), [job.slot, job.chunk.id])
    return int(found[0][0]) > 0


class ChunkLoader(Protocol):
    def load(self, job: ChunkJob) -> None: ...


class JdbcChunkLoader:
    """H2 and SQL Server: Spark's JDBC writer fills a per-chunk table (bulk-copy batches on
    SQL Server, batch size from bytes), then one transaction moves the rows into the staging
    table and writes the ledger row."""

    def __init__(
        self,
        spark: SparkSession,
        dialect: Dialect,
        jdbc_url: str,
        properties: Mapping[str, str],
        batch_rows: int,
        odbc_auth: str = "",
    ) -> None:
        self._spark = spark
        self._odbc_auth = odbc_auth
        self._dialect = dialect
        self._url = jdbc_url
        self._properties = dict(properties)
        self._batch_rows = batch_rows

    def load(self, job: ChunkJob) -> None:
        d = self._dialect
        chunk_table = job.stage.with_suffix(f"_c{job.chunk.id}")
        names = [c.name for c in job.columns]
        session = open_session(self._spark, self._url, self._properties, self._odbc_auth)
        try:
            with transaction(session):
                if already_loaded(session, d, job):
                    return
                session.execute(d.drop_table(chunk_table))
                session.execute(d.create_table(chunk_table, job.columns))
            # One partition per chunk: the connections in use never exceed the loader threads.
            frame = self._spark.read.parquet(str(chunk_folder(job.spool, job.chunk.id)))
            frame.select(*names).coalesce(1).write.jdbc(
                self._url,
                d.qualified(chunk_table),
                mode="append",
                properties={
                    **self._properties,
                    "driver": d.driver_class,
                    "batchsize": str(self._batch_rows),
                    "isolationLevel": "READ_COMMITTED",
                },
            )
            with transaction(session):
                loaded = int(
                    session.query(f"SELECT COUNT(*) FROM {d.qualified(chunk_table)}")[0][0]
                )
                job.check_rows(loaded)
                session.execute(d.insert_from(job.stage, chunk_table, names))
                session.execute(d.ledger_insert(), job.ledger_params(loaded))
                if d.transactional_ddl:
                    session.execute(d.drop_table(chunk_table))
            if not d.transactional_ddl:
                with transaction(session):
                    session.execute(d.drop_table(chunk_table))
        finally:
            session.close()
