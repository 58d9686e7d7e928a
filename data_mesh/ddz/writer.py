"""Chunked, resumable, memory-bounded writes of a Spark DataFrame into a DDZ table.

Why this shape (seed 000's PROD out-of-memory failure, `shared/reference/sql-writes.md`):
1. Rows go to chunks by a hash of the key columns (or of the whole row), never `rand()`, so the
   same rows always form the same chunk. Chunks are bounded by rows *and* bytes.
2. Every row is written once into the database, into a staging table, one transaction per
   chunk, by at most `max_connections` connections (Azure SQL throttles on log rate):
   - the jdbc load path (every database): the data is spooled once into the lake, one folder
     per chunk, and each chunk is one Spark JDBC task into the stage; the ledger records it;
   - the copy load path (PostgreSQL): one Spark pass streams each chunk through COPY, with its
     ledger row in the same transaction.
3. A re-executed load skips recorded chunks; a load whose input changed is detected by its
   fingerprint and restarted; a stage whose row count is not the ledger's (a chunk committed
   twice by a retried task, or committed but not recorded) is reloaded.
4. One final transaction publishes the stage: `replace` by a metadata-only switch on SQL Server
   (the target keeps its grants, indexes and views), `append`, `merge` or the `replace` of one
   partition's slice by one more move of the rows, so readers see the old table or the new one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import re
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.util import inheritable_thread_target

from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.identifiers import UnsafeIdentifierError, validate_identifier
from data_mesh.catalog.models import WRITE_MODES
from data_mesh.ddz.chunks import (
    CHUNK_COLUMN,
    Chunk,
    ChunkSettings,
    batch_rows,
    chunk_count,
    chunk_expression,
    collect_stats,
    load_fingerprint,
    rows_and_row_bytes,
)
from data_mesh.ddz.claims import LoadClaimedError, claimed, holder_description
from data_mesh.ddz.connection import DdzConnection, DdzConnectionError
from data_mesh.ddz.dialects import Column, TableName
from data_mesh.ddz.loaders import ChunkJob, JdbcChunkLoader
from data_mesh.ddz.progress import report_chunks
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.retry import RetryPolicy, with_retries
from data_mesh.ddz.sessions import DdzSession, open_session, postgres_connect_args, transaction
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.streaming import (
    ChunkResult,
    StreamJob,
    binary_copy_supported,
    chunked_for_streaming,
    stream_chunks,
)
from data_mesh.lake.storage import LocalStorage
from data_mesh.spark.conf import is_spark_connect, spark_config_scope

__all__ = ["DdzConnection", "DdzTarget", "DdzWriteError", "DdzWriter", "WriteReport"]

log = logging.getLogger(__name__)
Result = TypeVar("Result")

ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
PARQUET_BATCH_ROWS = "spark.sql.parquet.columnarReaderBatchSize"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Violation|Shutdown)\b.*: ")


class DdzWriteError(DataMeshError):
    """A DDZ write that failed; names the table, the chunk and the cause. The target table is
    unchanged; committed chunks stay in the ledger for the next attempt to resume from."""


@dataclass(frozen=True)
class DdzTarget:
    table: TableName
    write_mode: str = "replace"
    key_columns: tuple[str, ...] = ()
    # (column, value): a partitioned asset replaces only the rows of its partition.
    partition: tuple[str, str] | None = None
    max_connections: int = 4
    # Days a daily-partitioned table keeps, counted from its newest partition (None: all).
    retention_days: int | None = None

    @property
    def slot(self) -> str:
        """What one load fills; a resumed load continues the same slot."""
        if self.partition is None:
            return str(self.table)
        return f"{self.table}/{self.partition[0]}={self.partition[1]}"

    @property
    def slot_hash(self) -> str:
        return hashlib.sha256(self.slot.encode()).hexdigest()


@dataclass(frozen=True)
class WriteReport:
    table: str
    write_mode: str
    rows: int
    chunks: int
    loaded_chunks: int
    resumed_chunks: int
    retries: int
    row_bytes: int
    batch_rows: int
    duration_s: float
    columns: tuple[tuple[str, str], ...]
    partition: str | None = None

    @property
    def estimated_bytes(self) -> int:
        return self.rows * self.row_bytes

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.duration_s if self.duration_s > 0 else 0.0


def prepare_for_ddz(frame: DataFrame, where: str) -> DataFrame:
    """Check column names are safe identifiers; make types the DDZ can store."""
    for column in frame.schema.fields:
        try:
            validate_identifier(column.name, "column name")
        except UnsafeIdentifierError as error:
            raise DdzWriteError(
                f"{where}: {error} (rename it with the transformation's mapping)"
            ) from error
        if isinstance(column.dataType, T.ArrayType | T.MapType | T.StructType):
            raise DdzWriteError(
                f"{where}: column {column.name!r} has the nested type "
                f"{column.dataType.simpleString()}: flatten or cast it to a string first"
            )
    conversions = {
        column.name: F.col(column.name).cast(T.TimestampType())
        for column in frame.schema.fields
        if isinstance(column.dataType, T.TimestampNTZType)
    }
    return frame.withColumns(conversions) if conversions else frame


def _check_target(target: DdzTarget, columns: list[Column], where: str) -> None:
    """What the target asks of the data: key and partition columns present, and so on."""
    names = [c.name for c in columns]
    for key in target.key_columns:
        if key not in names:
            raise DdzWriteError(f"{where}: key column {key!r} is not in the data ({names})")
    if target.write_mode == "merge" and not target.key_columns:
        raise DdzWriteError(f"{where}: write mode 'merge' needs key columns")
    if target.partition is not None and target.partition[0] not in names:
        raise DdzWriteError(f"{where}: partition column {target.partition[0]!r} is not in the data")
    if target.retention_days is not None:
        partition_type = next(
            (c.data_type for c in columns if target.partition and c.name == target.partition[0]),
            None,
        )
        if not isinstance(partition_type, T.DateType):
            raise DdzWriteError(f"{where}: retention needs a daily partition column of type date")


@dataclass(frozen=True)
class _LoadOutcome:
    chunks: int
    loaded: int
    resumed: int
    rows: int
    row_bytes: int
    batch_rows: int


class _LoadState:
    """What the ledger says about the slot before this attempt."""

    def __init__(self, rows: list[tuple[object, ...]]) -> None:
        self.load_ids = {str(r[0]) for r in rows}
        self.committed = {int(str(r[1])) for r in rows}
        self.chunk_count = int(str(rows[0][2])) if rows else None


class DdzWriter:
    """Writes DataFrames into one DDZ database."""

    def __init__(
        self,
        connection: DdzConnection,
        settings: ChunkSettings | None = None,
        spool: Spool | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.settings = settings or ChunkSettings()
        # None: a folder of this machine, which only a classic (local) Spark driver can use.
        self.spool = spool
        self.retry_policy = retry_policy or RetryPolicy()
        self._retries = 0
        self._lock = threading.Lock()

    # -- sessions ----------------------------------------------------------------------------
    def _count_retry(self, attempt: int, error: BaseException) -> None:
        with self._lock:
            self._retries += 1
        log.warning("transient error (attempt %d), retrying: %s", attempt, describe_error(error))

    def _retrying(self, action: Callable[[], Result]) -> Result:
        """The writer's one retry layer: at most `retry_policy.max_attempts` attempts of
        `action`, which opens its own connections without retrying."""
        return with_retries(action, self.retry_policy, self._count_retry)

    def _transact(self, spark: SparkSession, work: Callable[[DdzSession], Result]) -> Result:
        """`work` in one transaction on a fresh session, retried as a whole on transient errors."""

        def attempt() -> Result:
            session = open_session(spark, self.connection)
            try:
                with transaction(session):
                    return work(session)
            finally:
                session.close()

        return self._retrying(attempt)

    def _run(self, spark: SparkSession, statements: list[tuple[str, list[object]]]) -> None:
        def run_all(session: DdzSession) -> None:
            for sql, params in statements:
                session.execute(sql, params)

        if statements:
            self._transact(spark, run_all)

    def _query(
        self, spark: SparkSession, sql: str, params: list[object]
    ) -> list[tuple[object, ...]]:
        return self._transact(spark, lambda session: session.query(sql, params))

    def _scalar(self, spark: SparkSession, sql: str, params: list[object]) -> int:
        return int(str(self._query(spark, sql, params)[0][0]))

    def _table_columns(self, spark: SparkSession, table: TableName) -> list[str]:
        sql, params = self.dialect.columns_of(table)
        return [str(r[0]) for r in self._query(spark, sql, params)]

    # -- the load ----------------------------------------------------------------------------
    def write(self, frame: DataFrame, target: DdzTarget, run: str = "") -> WriteReport:
        """Load `frame` into `target`; `run` (the Dagster run id) names this load to another
        load of the same table that finds it running."""
        started = time.monotonic()
        self._retries = 0
        spark = frame.sparkSession
        d = self.dialect
        where = f"DDZ table {target.table}"
        if target.write_mode not in WRITE_MODES:
            raise DdzWriteError(f"{where}: unknown write mode {target.write_mode!r}")
        frame = prepare_for_ddz(frame, where)
        columns = [Column(f.name, f.dataType) for f in frame.schema.fields]
        _check_target(target, columns, where)
        for column in columns:
            try:  # fail before any work on a type the DDZ cannot store
                d.column_type(column.data_type)
            except ValueError as error:
                raise DdzWriteError(f"{where}: column {column.name!r}: {error}") from error
        spark_connect = is_spark_connect(spark)
        # Executors elsewhere: Spark Connect, or a classic driver with a cluster master.
        cluster = spark_connect or not str(spark.conf.get("spark.master", "local")).startswith(
            "local"
        )
        try:
            self.connection.check(spark_connect, cluster)
        except DdzConnectionError as error:
            raise DdzWriteError(f"{where}: {error}") from error
        spool = self._spool_for(cluster, where)
        target, settings = self._sized_for_the_database(spark, target)

        hash_columns = list(target.key_columns) or [c.name for c in columns]
        holder = holder_description(run)
        try:
            # Everything of the load (stage, ledger rows, spool) is the slot's: one load of a
            # slot at a time, so two never share them.
            with claimed(
                spark,
                self.connection,
                target.slot_hash,
                where,
                holder,
                self.retry_policy,
                describe_error,
            ):
                self._run(
                    spark,
                    [
                        (d.create_schema(target.table.schema), []),
                        (d.create_schema(d.ledger.schema), []),
                        (d.create_ledger(), []),
                    ],
                )
                state = _LoadState(self._query(spark, d.ledger_rows(), [target.slot]))
                if self.connection.resolved_load_path == "copy":
                    outcome = self._load_copy(spark, frame, target, columns, hash_columns, state)
                else:
                    outcome = self._load_jdbc(
                        spark, frame, target, columns, hash_columns, state, spool, settings
                    )
        except LoadClaimedError as error:
            raise DdzWriteError(str(error)) from error
        except DdzWriteError:
            raise
        except Exception as error:
            raise DdzWriteError(
                f"{where}: {target.write_mode} write failed: {describe_error(error)}"
            ) from error
        return WriteReport(
            table=str(target.table),
            write_mode=target.write_mode,
            rows=outcome.rows,
            chunks=outcome.chunks,
            loaded_chunks=outcome.loaded,
            resumed_chunks=outcome.resumed,
            retries=self._retries,
            row_bytes=outcome.row_bytes,
            batch_rows=outcome.batch_rows,
            duration_s=time.monotonic() - started,
            columns=tuple((c.name, c.data_type.simpleString()) for c in columns),
            partition=None
            if target.partition is None
            else f"{target.partition[0]}={target.partition[1]}",
        )

    def _sized_for_the_database(
        self, spark: SparkSession, target: DdzTarget
    ) -> tuple[DdzTarget, ChunkSettings]:
        """An embedded database (H2 in a file) lives in the Spark driver's JVM and holds each
        open chunk transaction in the heap it shares with Spark: one chunk at a time there,
        of at most an eighth of the heap (measured: two concurrent 100 MB chunks into H2
        exhaust a 512m driver that one chunk at a time does not)."""
        if not self.dialect.embedded(self.connection.url):
            return target, self.settings
        runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()  # type: ignore[union-attr]
        budget = max(self.settings.batch_bytes, int(runtime.maxMemory()) // 8)
        settings = dataclasses.replace(
            self.settings, max_chunk_bytes=min(budget, self.settings.max_chunk_bytes)
        )
        return dataclasses.replace(target, max_connections=1), settings

    def _spool_for(self, cluster: bool, where: str) -> Spool:
        if self.spool is not None:
            return self.spool
        if cluster and self.connection.resolved_load_path == "jdbc":
            raise DdzWriteError(
                f"{where}: with Spark on a cluster the load is spooled where the cluster can "
                "read it: give the writer the lake (the DDZ IO manager spools to "
                "DATA_MESH_DDZ_SPOOL in the lake), not a folder of this machine"
            )
        return Spool(LocalStorage(Path(tempfile.gettempdir())), "data_mesh_spool")

    def _stage(self, target: DdzTarget) -> TableName:
        return target.table.with_suffix(f"__dm_stage_{target.slot_hash[:8]}")

    def _restart_if_stale(
        self,
        spark: SparkSession,
        target: DdzTarget,
        state: _LoadState,
        load_id: str,
        adopt: Callable[[_LoadState], _LoadState | None] | None = None,
    ) -> _LoadState:
        """Forget an interrupted load whose input or layout differs from this one, or whose
        stage holds other rows than its ledger records and `adopt` cannot account for."""
        if not state.committed:
            return state
        stage = self._stage(target)
        if state.load_ids != {load_id} or not self._exists(spark, stage):
            log.warning("DDZ table %s: the interrupted load is stale; restarting", target.table)
        else:
            staged = self._staged_rows(spark, target)
            recorded = self._scalar(spark, self.dialect.ledger_total_rows(), [target.slot])
            if staged == recorded:
                return state
            adopted = adopt(state) if adopt is not None and staged > recorded else None
            if adopted is not None:
                return adopted
            log.warning(
                "DDZ table %s: the stage holds %d rows, its ledger %d (a chunk committed but not "
                "recorded, or lost in a server crash); reloading it",
                target.table,
                staged,
                recorded,
            )
        self._run(spark, [(self.dialect.ledger_clear(), [target.slot])])
        return _LoadState([])

    def _adopt_unrecorded_chunks(
        self,
        spark: SparkSession,
        target: DdzTarget,
        state: _LoadState,
        columns: list[Column],
        hash_columns: list[str],
        chunks: list[Chunk],
        load_id: str,
    ) -> _LoadState | None:
        """Chunks committed but never recorded (the client died first, or a Spark Connect
        client was killed and its server finished the chunk): the cluster counts the stage's
        rows per chunk, and a chunk found whole is recorded, so the load resumes with it. None
        when a chunk is neither absent nor whole (then the stage is reloaded)."""
        stage = read_ddz_table(spark, self.connection, self._stage(target)).select(
            *[F.col(c.name).cast(c.data_type) for c in columns]
        )
        count = len(chunks)
        found = {
            int(r[0]): int(r[1])
            for r in stage.groupBy(chunk_expression(hash_columns, count)).count().collect()
        }
        expected = {c.id: c for c in chunks}
        if any(rows != expected[i].rows if i in expected else True for i, rows in found.items()):
            return None
        adopted = [expected[i] for i in found if i not in state.committed]
        self._run(
            spark,
            [
                (
                    self.dialect.ledger_insert(),
                    [target.slot, load_id, c.id, count, c.rows, c.checksum],
                )
                for c in adopted
            ],
        )
        log.warning(
            "DDZ table %s: chunks %s were committed but not recorded; recorded now, resuming",
            target.table,
            sorted(c.id for c in adopted),
        )
        return _LoadState(self._query(spark, self.dialect.ledger_rows(), [target.slot]))

    def _in_place_replace(self, target: DdzTarget, existing: list[str], names: list[str]) -> bool:
        """A `replace` of a whole table that keeps its columns: the table object stays."""
        return (
            target.write_mode == "replace"
            and target.partition is None
            and bool(existing)
            and [c.lower() for c in existing] == [n.lower() for n in names]
        )

    def _new_stage(self, spark: SparkSession, target: DdzTarget, columns: list[Column]) -> None:
        stage = self._stage(target)
        d = self.dialect
        existing = self._table_columns(spark, target.table)
        if existing and target.key_columns:
            # Before the stage is made like the target, so a SWITCH finds the index on both;
            # and never between a move and its commit where DDL commits on its own (H2).
            self._run(spark, [(d.create_key_index(target.table, list(target.key_columns)), [])])
        like = self.dialect.stage_like_target and self._switches(
            spark, target, existing, [c.name for c in columns], warn=False
        )
        # Without a target the stage becomes it (PostgreSQL then logs it as COPY writes it).
        create = (
            d.create_stage_like(stage, target.table)
            if like
            else d.create_stage(stage, columns, becomes_table=not existing)
        )
        self._run(spark, [(d.drop_table(stage), []), *[(sql, []) for sql in create]])

    def _switches(
        self,
        spark: SparkSession,
        target: DdzTarget,
        existing: list[str],
        names: list[str],
        warn: bool = True,
    ) -> bool:
        """Whether this replace publishes by SWITCH (SQL Server), which needs a stage made like
        the target; where the target has what SWITCH cannot take, its rows are copied."""
        if not self._in_place_replace(target, existing, names):
            return False
        sql, params = self.dialect.switch_blockers(target.table)
        reasons = [str(r[0]) for r in self._query(spark, sql, params)]
        if reasons and warn:
            log.warning(
                "DDZ table %s: a SWITCH cannot replace it (%s); its rows are copied from the "
                "stage instead, which writes them twice",
                target.table,
                "; ".join(reasons),
            )
        return not reasons

    def _reset_stage(self, spark: SparkSession, target: DdzTarget) -> None:
        """Empty the stage (keeping its structure) and forget its chunks."""
        self._run(
            spark,
            [
                (self.dialect.truncate(self._stage(target)), []),
                (self.dialect.ledger_clear(), [target.slot]),
            ],
        )

    def _staged_rows(self, spark: SparkSession, target: DdzTarget) -> int:
        return self._scalar(spark, self.dialect.count_rows(self._stage(target)), [])

    def _load_copy(
        self,
        spark: SparkSession,
        frame: DataFrame,
        target: DdzTarget,
        columns: list[Column],
        hash_columns: list[str],
        state: _LoadState,
    ) -> _LoadOutcome:
        """PostgreSQL: one Spark pass streams every chunk through COPY (see `streaming`)."""
        where = f"DDZ table {target.table}"
        types = [(c.name, c.data_type.simpleString()) for c in columns]
        source_rows, row_bytes = rows_and_row_bytes(frame)
        planned = chunk_count(source_rows, row_bytes, self.settings, target.max_connections)
        copy_format = "binary" if binary_copy_supported(frame) else "csv"
        for attempt in ("resume", "restart"):
            count = state.chunk_count or planned
            load_id = load_fingerprint(target.slot, types, [], count)
            state = self._restart_if_stale(spark, target, state, load_id)
            if not state.committed:
                self._new_stage(spark, target, columns)
            job = StreamJob(
                postgres_connect_args(
                    self.connection.jdbc_url, self.connection.properties, self.connection.timeouts
                ),
                self._stage(target),
                [c.name for c in columns],
                target.slot,
                load_id,
                count,
                target.max_connections,
                copy_format,
            )
            chunked = chunked_for_streaming(frame, hash_columns, count, copy_format)
            batch = batch_rows(row_bytes, self.settings)

            def run(chunked: DataFrame = chunked, job: StreamJob = job) -> list[ChunkResult]:
                return stream_chunks(chunked, job)

            with spark_config_scope(spark, {ARROW_BATCH_ROWS: str(batch)}):
                results = self._retrying(run)
            seen = {r.chunk for r in results}
            stale = [r.chunk for r in results if r.status == "stale"]
            stale += sorted(state.committed - seen)  # committed chunks the new input lacks
            if not stale:
                break
            if attempt == "restart":
                raise DdzWriteError(f"{where}: chunks {stale} changed while loading")
            log.warning("%s: chunks %s differ from the interrupted load; restarting", where, stale)
            self._run(spark, [(self.dialect.ledger_clear(), [target.slot])])
            state = _LoadState([])
        rows = sum(r.rows for r in results)
        report_chunks(str(target.table), len(results), count, rows)
        if rows != source_rows:
            raise DdzWriteError(
                f"{where}: {rows} rows reached the stage, the source has {source_rows} (is the "
                "transformation deterministic?); nothing was published"
            )
        self._check_ledger(spark, target, rows)
        self._publish(spark, target, columns, rows)
        loaded = [r for r in results if r.status == "loaded"]
        sent = sum(r.bytes for r in loaded)
        sent_rows = sum(r.rows for r in loaded)
        return _LoadOutcome(
            chunks=count,
            loaded=len(loaded),
            resumed=sum(1 for r in results if r.status == "resumed"),
            rows=rows,
            row_bytes=math.ceil(sent / sent_rows) if sent_rows else row_bytes,
            batch_rows=batch,
        )

    def _check_ledger(self, spark: SparkSession, target: DdzTarget, rows: int) -> None:
        """The ledger records exactly the source's rows (the stage itself is counted by the
        publish, under its lock)."""
        recorded = self._scalar(spark, self.dialect.ledger_total_rows(), [target.slot])
        if recorded != rows:
            raise DdzWriteError(
                f"DDZ table {target.table}: the ledger records {recorded} rows for this load, "
                f"the source {rows}; nothing was published"
            )

    def _load_jdbc(
        self,
        spark: SparkSession,
        frame: DataFrame,
        target: DdzTarget,
        columns: list[Column],
        hash_columns: list[str],
        state: _LoadState,
        spool: Spool,
        settings: ChunkSettings,
    ) -> _LoadOutcome:
        """Measure, spool once into the lake, load each chunk straight into the stage."""
        where = f"DDZ table {target.table}"
        stats = collect_stats(frame, hash_columns)
        types = [(c.name, c.data_type.simpleString()) for c in columns]
        planned = stats.chunk_count(settings, target.max_connections)
        count = state.chunk_count or planned
        chunks = stats.chunks(count)
        load_id = load_fingerprint(target.slot, types, chunks, count)

        def adopt(state: _LoadState) -> _LoadState | None:
            return self._adopt_unrecorded_chunks(
                spark, target, state, columns, hash_columns, chunks, load_id
            )

        state = self._restart_if_stale(spark, target, state, load_id, adopt)
        if not state.committed:
            count = planned
            chunks = stats.chunks(count)
            load_id = load_fingerprint(target.slot, types, chunks, count)
            self._new_stage(spark, target, columns)
        resumed = len(state.committed)
        rows_per_batch = batch_rows(stats.row_bytes, settings)
        loader = JdbcChunkLoader(spark, self.connection, rows_per_batch)
        folder = spool.folder(target.slot_hash, load_id)
        stage = self._stage(target)
        loaded = 0
        for attempt in ("load", "reload"):
            pending = [c for c in chunks if c.rows > 0 and c.id not in state.committed]
            if pending and not spool.is_complete(folder):
                spool.write(
                    frame.withColumn(CHUNK_COLUMN, chunk_expression(hash_columns, count)), folder
                )
            jobs = [
                ChunkJob(c, count, target.slot, load_id, stage, columns, spool, folder)
                for c in pending
            ]
            # The spool's reader holds a batch of rows per task: as many as a JDBC batch, so
            # wide rows do not make it hold 4,096 of them.
            with spark_config_scope(spark, {PARQUET_BATCH_ROWS: str(min(4096, rows_per_batch))}):
                loaded += self._load_chunks(spark, loader, jobs, target)
            staged = self._staged_rows(spark, target)
            if staged == stats.rows:
                break
            if attempt == "reload":
                raise DdzWriteError(
                    f"{where}: the stage holds {staged} rows after a reload, the source "
                    f"{stats.rows} (is the transformation deterministic?); nothing was published"
                )
            log.warning(
                "%s: the stage holds %d rows, the source %d (a chunk committed twice, e.g. by a "
                "Spark task retried after its commit); reloading the stage",
                where,
                staged,
                stats.rows,
            )
            self._reset_stage(spark, target)
            state, resumed, loaded = _LoadState([]), 0, 0
        self._check_ledger(spark, target, stats.rows)
        self._publish(spark, target, columns, stats.rows)
        try:  # published: a spool left behind costs lake space, not correctness
            spool.remove(target.slot_hash)
        except Exception as error:
            log.warning("DDZ table %s: the spool was not removed: %s", target.table, error)
        return _LoadOutcome(
            chunks=count,
            loaded=loaded,
            resumed=resumed,
            rows=stats.rows,
            row_bytes=stats.row_bytes,
            batch_rows=rows_per_batch,
        )

    def _load_chunks(
        self,
        spark: SparkSession,
        loader: JdbcChunkLoader,
        jobs: list[ChunkJob],
        target: DdzTarget,
    ) -> int:
        """Load `jobs` on at most `target.max_connections` threads; returns the chunks loaded
        now."""
        if not jobs:
            return 0
        where, max_connections = f"DDZ table {target.table}", target.max_connections

        def load(job: ChunkJob) -> bool:
            if self._retrying(lambda: loader.is_loaded(job)):
                return False
            # A failed Spark JDBC task rolls its transaction back, so a retry loads the chunk
            # once; a retry after a commit shows in the stage's row count.
            self._retrying(lambda: self._within_stall_limit(spark, job, where, loader.write_rows))
            self._retrying(lambda: loader.record(job))
            return True

        # The threads inherit the run's Spark job tags, so cancelling the run cancels them.
        load_in_thread = inheritable_thread_target(spark)(load)
        workers = max(1, min(max_connections, len(jobs)))
        loaded = 0
        table, total = str(target.table), jobs[0].chunk_count
        done, rows = total - len(jobs), 0
        report_chunks(table, done, total, rows)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddz-chunk") as pool:
            futures = {pool.submit(load_in_thread, job): job for job in jobs}
            for future in as_completed(futures):
                error = future.exception()
                if error is not None:
                    for other in futures:
                        other.cancel()
                    if isinstance(error, DdzWriteError):
                        raise error
                    job = futures[future]
                    raise DdzWriteError(
                        f"{where}: chunk {job.chunk.id} of {job.chunk_count} "
                        f"({job.chunk.rows} rows) failed: {describe_error(error)}"
                    ) from error
                loaded += int(future.result())
                done, rows = done + 1, rows + futures[future].chunk.rows
                report_chunks(table, done, total, rows)
        return loaded

    def _within_stall_limit(
        self,
        spark: SparkSession,
        job: ChunkJob,
        where: str,
        write: Callable[[ChunkJob], None],
    ) -> None:
        """`write(job)` under a Spark job tag, cancelled if it has not finished after the stall
        timeout: a chunk is one Spark task, so one that runs that long has stopped making
        progress (a dead executor thread, a lock no timeout covers)."""
        limit = self.connection.timeouts.stall
        tag = f"data_mesh_ddz_{job.load_id[:12]}_chunk_{job.chunk.id}"
        stalled = threading.Event()

        # Spark Connect cancels by the session's operation tags; classic Spark by job tags
        # (its session tags only reach SQL executions the session registered).
        connect = is_spark_connect(spark)

        def cancel() -> None:
            stalled.set()
            log.error(
                "%s: chunk %d made no progress in %d s; cancelling", where, job.chunk.id, limit
            )
            if connect:
                spark.interruptTag(tag)
            else:
                spark.sparkContext.cancelJobsWithTag(tag)

        if connect:
            spark.addTag(tag)
        else:
            spark.sparkContext.addJobTag(tag)
            # Interrupt the task's thread too, so a JDBC call blocked in it is abandoned.
            spark.sparkContext.setInterruptOnCancel(True)
        timer = threading.Timer(limit, cancel)
        timer.daemon = True
        timer.start()
        try:
            write(job)
        except Exception as error:
            if stalled.is_set():
                raise DdzWriteError(
                    f"{where}: chunk {job.chunk.id} of {job.chunk_count} ({job.chunk.rows} rows) "
                    f"made no progress in {limit} s (DATA_MESH_DDZ_STALL_TIMEOUT); its Spark job "
                    f"was cancelled: {describe_error(error)}"
                ) from error
            raise
        finally:
            timer.cancel()
            if connect:
                spark.removeTag(tag)
            else:
                spark.sparkContext.removeJobTag(tag)

    def _exists(self, spark: SparkSession, table: TableName) -> bool:
        sql, params = self.dialect.table_exists(table)
        return self._scalar(spark, sql, params) > 0

    def _check_slice(self, spark: SparkSession, target: DdzTarget, column: Column) -> None:
        """Only the partition's own rows may replace its slice: rows of other days would be
        duplicated by their own partition's load and never deleted by this one."""
        assert target.partition is not None
        value = target.partition[1]
        sql = self.dialect.rows_outside_slice(self._stage(target), column)
        count = self._scalar(spark, sql, [value])
        if count:
            raise DdzWriteError(
                f"DDZ table {target.table}: {count} rows have a {column.name} other than the "
                f"partition {value} being loaded (or none); the table is unchanged"
            )

    def _publish(
        self, spark: SparkSession, target: DdzTarget, columns: list[Column], rows: int
    ) -> None:
        """Move the staged rows into the target, with the ledger cleared, in one transaction
        that first locks the stage and checks it holds `rows` rows (a writer that should not
        be there, such as a Spark job of a killed client, cannot add rows in between)."""
        d = self.dialect
        stage = self._stage(target)
        names = [c.name for c in columns]
        partition_column = None
        if target.partition is not None:
            partition_column = next(c for c in columns if c.name == target.partition[0])
            self._check_slice(spark, target, partition_column)
        existing = self._table_columns(spark, target.table)
        keys = list(target.key_columns)
        statements: list[tuple[str, list[object]]] = []
        after: list[tuple[str, list[object]]] = []
        whole_replace = target.write_mode == "replace" and target.partition is None
        if not existing or (whole_replace and not self._in_place_replace(target, existing, names)):
            # First load, or a replace that changes the columns: the stage becomes the table.
            statements += [(sql, []) for sql in d.install_stage(target.table, stage, columns)]
            if keys:
                statements.append((d.create_key_index(target.table, keys), []))
        elif whole_replace:
            # The stage is consumed (switched, renamed or dropped) by these statements.
            blocked = d.stage_like_target and not self._switches(spark, target, existing, names)
            moves = (d.replace_by_copy if blocked else d.replace_existing)(
                target.table, stage, names
            )
            statements += [(sql, []) for sql in moves]
            if keys:  # H2's rename brings a stage without the index
                statements.append((d.create_key_index(target.table, keys), []))
        else:
            if target.partition is not None and partition_column is not None:
                delete = d.delete_slice(target.table, partition_column)
                statements.append((delete, [target.partition[1]]))
            if target.write_mode == "merge":
                statements.append((d.merge_from(target.table, stage, names, keys), []))
            else:
                statements.append((d.insert_from(target.table, stage, names), []))
            (statements if d.transactional_ddl else after).append((d.drop_table(stage), []))
        if target.partition is not None and target.retention_days is not None:
            retention = d.delete_outside_retention(
                target.table, target.partition[0], target.retention_days
            )
            statements.append((retention, []))
        statements.append((d.ledger_clear(), [target.slot]))

        def publish(session: DdzSession) -> None:
            *lock, count = d.lock_and_count(stage)
            for sql in lock:
                session.execute(sql)
            staged = int(str(session.query(count)[0][0]))
            if staged != rows:
                raise DdzWriteError(
                    f"DDZ table {target.table}: the stage holds {staged} rows, {rows} were "
                    "loaded (another writer loading this table, or a server crash that emptied "
                    "it); nothing was published, the next run reloads it"
                )
            for sql, params in statements:
                session.execute(sql, params)

        self._transact(spark, publish)
        try:  # the rows are published: what is left is cleanup, which the next load redoes
            self._run(spark, after)
        except Exception as error:
            log.warning("DDZ table %s: the stage was not dropped: %s", target.table, error)


def describe_error(error: BaseException) -> str:
    """The Java exception's own message for errors raised through py4j, else `str(error)`."""
    java_exception = getattr(error, "java_exception", None)
    if java_exception is not None:
        try:
            return f"{java_exception.getClass().getName()}: {java_exception.getMessage()}"
        except Exception:  # the gateway may be gone; fall back to the Python text
            pass
    text = str(error).strip()
    if not text:
        return type(error).__name__
    lines = text.splitlines()
    if "Python worker" in lines[0]:
        # A task's Python traceback: its last exception line says what went wrong.
        raised = [line for line in lines if _EXCEPTION_LINE.match(line)]
        if raised:
            return f"{lines[0].rstrip(':')}: {raised[-1].strip()}"
    return lines[0]
