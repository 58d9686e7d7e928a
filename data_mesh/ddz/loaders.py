"""The jdbc load path: one spooled chunk written straight into the load's staging table.

Spark's JDBC writer runs the chunk as one task (one connection, one transaction, batches sized
in bytes; bulk-copy batches on SQL Server), in the cluster, so each row is written once into
the database. The client then records the chunk in the ledger. A chunk whose commit happened
but whose ledger row did not (the client died in between, or Spark ran the task twice) leaves
the stage's row count above the ledger's: the writer checks that count before it resumes and
before it publishes, and reloads the stage when they differ (`DdzWriter`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import SparkSession

from data_mesh.ddz.chunks import Chunk
from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.dialects import Column, Dialect, TableName
from data_mesh.ddz.sessions import DdzSession, open_session, transaction
from data_mesh.ddz.spool import Spool


@dataclass(frozen=True)
class ChunkJob:
    chunk: Chunk
    chunk_count: int
    slot: str
    load_id: str
    stage: TableName
    columns: list[Column]
    spool: Spool
    spool_folder: str

    def ledger_params(self) -> list[object]:
        return [
            self.slot,
            self.load_id,
            self.chunk.id,
            self.chunk_count,
            self.chunk.rows,
            self.chunk.checksum,
        ]


def already_loaded(session: DdzSession, dialect: Dialect, job: ChunkJob) -> bool:
    """True if an earlier attempt committed this chunk and recorded it."""
    found = session.query(dialect.ledger_has_chunk(), [job.slot, job.chunk.id])
    return int(found[0][0]) > 0


class JdbcChunkLoader:
    """Loads chunks from the spool into the stage with Spark's JDBC writer."""

    def __init__(self, spark: SparkSession, connection: DdzConnection, batch_rows: int) -> None:
        self._spark = spark
        self._connection = connection
        self._batch_rows = batch_rows

    def _session(self) -> DdzSession:
        return open_session(self._spark, self._connection)

    def is_loaded(self, job: ChunkJob) -> bool:
        session = self._session()
        try:
            with transaction(session):
                return already_loaded(session, self._connection.dialect, job)
        finally:
            session.close()

    def write_rows(self, job: ChunkJob) -> None:
        """The chunk's rows into the stage: one Spark task, one transaction."""
        d = self._connection.dialect
        frame = self._spark.read.parquet(job.spool.chunk_uri(job.spool_folder, job.chunk.id))
        # One partition: one connection and one transaction for the chunk, so the connections
        # in use never exceed the writer's threads (`max_connections`).
        frame.select(*[c.name for c in job.columns]).coalesce(1).write.jdbc(
            self._connection.jdbc_url,
            d.qualified(job.stage),
            mode="append",
            properties={
                **self._connection.jdbc_properties,
                "driver": d.driver_class,
                "batchsize": str(self._batch_rows),
                "isolationLevel": "READ_COMMITTED",
                # Spark's own option: each batch statement's limit (Statement.setQueryTimeout).
                "queryTimeout": str(self._connection.timeouts.statement),
            },
        )

    def record(self, job: ChunkJob) -> None:
        """The chunk's ledger row; idempotent, so a retry after a lost reply is no error."""
        session = self._session()
        try:
            with transaction(session):
                if not already_loaded(session, self._connection.dialect, job):
                    session.execute(self._connection.dialect.ledger_insert(), job.ledger_params())
        finally:
            session.close()
