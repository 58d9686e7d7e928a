"""Chunked, resumable, memory-bounded writes of a Spark DataFrame into a DDZ table.

Why this shape (seed 000's PROD out-of-memory failure, `shared/reference/sql-writes.md`):
1. One aggregation pass measures the data per hash bucket (rows, checksum, bytes). Chunks are
   ranges of buckets sized by rows *and* bytes; the same rows always form the same chunk.
2. The data is spooled once, one folder per chunk, by Spark (streaming, no `collect()`).
3. Each chunk is loaded in its own transaction together with a ledger row, by at most
   `max_connections` connections at a time (Azure SQL throttles on log rate), retried with
   backoff on transient errors. A re-executed load skips committed chunks; a load whose input
   changed is detected by its fingerprint and restarted cleanly.
4. All rows land in a staging table; one final transaction publishes them (replace, replace
   of one partition's slice, append or merge), so readers see the old table or the new one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.ddz.chunks import (
    CHUNK_COLUMN,
    ChunkSettings,
    batch_rows,
    chunk_count,
    chunk_expression,
    collect_stats,
    load_fingerprint,
    rows_and_row_bytes,
)
from data_mesh.ddz.dialects import Column, Dialect, PostgresDialect, TableName, dialect_for_url
from data_mesh.ddz.loaders import ChunkJob, ChunkLoader, JdbcChunkLoader
from data_mesh.ddz.retry import RetryPolicy, with_retries
from data_mesh.ddz.sessions import DdzSession, open_session, postgres_connect_args, transaction
from data_mesh.ddz.spool import is_complete, remove_spool, write_spool
from data_mesh.ddz.streaming import (
    ChunkResult,
    StreamJob,
    binary_copy_supported,
    chunked_for_streaming,
    stream_chunks,
)
from data_mesh.errors import DataMeshError
from data_mesh.identifiers import UnsafeIdentifierError, validate_identifier
from data_mesh.spark_conf import spark_config_scope

log = logging.getLogger(__name__)
Result = TypeVar("Result")

ARROW_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Violation|Shutdown)\b.*: ")

WRITE_MODES = ("replace", "append", "merge")


class DdzWriteError(DataMeshError):
    """A DDZ write that failed; names the table, the chunk and the cause. The target table is
    unchanged; committed chunks stay in the ledger for the next attempt to resume from."""


@dataclass(frozen=True)
class DdzConnection:
    """Where the DDZ is. `properties` (user, password) are resolved secrets: never log them."""

    url: str
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    table_lock: bool = False
    # SQL Server in the cloud: control statements over pyodbc with "token" (Azure AD) or
    # "sql" authentication; empty: through JDBC in the Spark driver's JVM.
    odbc_auth: str = ""

    @property
    def dialect(self) -> Dialect:
        return dialect_for_url(self.url)

    @property
    def jdbc_url(self) -> str:
        return self.dialect.jdbc_url(self.url, self.table_lock)


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
        spool_root: Path | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.settings = settings or ChunkSettings()
        self.spool_root = spool_root or Path(tempfile.gettempdir()) / "data_mesh_spool"
        self.retry_policy = retry_policy or RetryPolicy()
        self._retries = 0
        self._lock = threading.Lock()

    # -- sessions ----------------------------------------------------------------------------
    def _count_retry(self, attempt: int, error: BaseException) -> None:
        with self._lock:
            self._retries += 1
        log.warning("transient error (attempt %d), retrying: %s", attempt, describe_error(error))

    def _transact(self, spark: SparkSession, work: Callable[[DdzSession], Result]) -> Result:
        """`work` in one transaction on a fresh session, retried as a whole on transient errors."""

        def attempt() -> Result:
            session = open_session(
                spark,
                self.connection.jdbc_url,
                self.connection.properties,
                self.connection.odbc_auth,
            )
            try:
                with transaction(session):
                    return work(session)
            finally:
                session.close()

        return with_retries(attempt, self.retry_policy, self._count_retry)

    def _run(self, spark: SparkSession, statements: list[tuple[str, list[object]]]) -> None:
        def run_all(session: DdzSession) -> None:
            for sql, params in statements:
                session.execute(sql, params)

        self._transact(spark, run_all)

    def _query(
        self, spark: SparkSession, sql: str, params: list[object]
    ) -> list[tuple[object, ...]]:
        return self._transact(spark, lambda session: session.query(sql, params))

    def _table_columns(self, spark: SparkSession, table: TableName) -> list[str]:
        sql, params = self.dialect.columns_of(table)
        return [str(r[0]) for r in self._query(spark, sql, params)]

    # -- the load ----------------------------------------------------------------------------
    def write(self, frame: DataFrame, target: DdzTarget) -> WriteReport:
        started = time.monotonic()
        self._retries = 0
        spark = frame.sparkSession
        d = self.dialect
        where = f"DDZ table {target.table}"
        if target.write_mode not in WRITE_MODES:
            raise DdzWriteError(f"{where}: unknown write mode {target.write_mode!r}")
        frame = prepare_for_ddz(frame, where)
        columns = [Column(f.name, f.dataType) for f in frame.schema.fields]
        names = [c.name for c in columns]
        for key in target.key_columns:
            if key not in names:
                raise DdzWriteError(f"{where}: key column {key!r} is not in the data ({names})")
        if target.write_mode == "merge" and not target.key_columns:
            raise DdzWriteError(f"{where}: write mode 'merge' needs key columns")
        if target.partition is not None and target.partition[0] not in names:
            raise DdzWriteError(
                f"{where}: partition column {target.partition[0]!r} is not in the data"
            )
        if target.retention_days is not None:
            partition_type = next(
                (
                    c.data_type
                    for c in columns
                    if target.partition and c.name == target.partition[0]
                ),
                None,
            )
            if not isinstance(partition_type, T.DateType):
                raise DdzWriteError(
                    f"{where}: retention needs a daily partition column of type date"
                )
        for column in columns:
            try:  # fail before any work on a type the DDZ cannot store
                d.column_type(column.data_type)
            except ValueError as error:
                raise DdzWriteError(f"{where}: column {column.name!r}: {error}") from error

        hash_columns = list(target.key_columns) or names
        try:
            self._run(
                spark,
                [
                    (d.create_schema(target.table.schema), []),
                    (d.create_schema(d.ledger.schema), []),
                    (d.create_ledger(), []),
                ],
            )
            state = _LoadState(self._query(spark, d.ledger_rows(), [target.slot]))
            if isinstance(d, PostgresDialect):
                outcome = self._load_streaming(spark, frame, target, columns, hash_columns, state)
            else:
                outcome = self._load_spooled(spark, frame, target, columns, hash_columns, state)
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

    def _stage(self, target: DdzTarget) -> TableName:
        return target.table.with_suffix(f"__dm_stage_{target.slot_hash[:8]}")

    def _restart_if_stale(
        self, spark: SparkSession, target: DdzTarget, state: _LoadState, load_id: str
    ) -> _LoadState:
        """Forget an interrupted load whose input or layout differs from this one."""
        if state.committed and (
            state.load_ids != {load_id} or not self._exists(spark, self._stage(target))
        ):
            log.warning("DDZ table %s: the interrupted load is stale; restarting", target.table)
            self._run(spark, [(self.dialect.ledger_clear(), [target.slot])])
            return _LoadState([])
        return state

    def _new_stage(self, spark: SparkSession, target: DdzTarget, columns: list[Column]) -> None:
        stage = self._stage(target)
        d = self.dialect
        self._run(spark, [(d.drop_table(stage), []), (d.create_table(stage, columns), [])])

    def _load_streaming(
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
                postgres_connect_args(self.connection.jdbc_url, self.connection.properties),
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
                results = with_retries(run, self.retry_policy, self._count_retry)
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
        if rows != source_rows:
            raise DdzWriteError(
                f"{where}: {rows} rows reached the stage, the source has {source_rows} (is the "
                "transformation deterministic?); nothing was published"
            )
        self._check_ledger(spark, target, rows)
        self._publish(spark, target, self._stage(target), columns)
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
        total = int(str(self._query(spark, self.dialect.ledger_total_rows(), [target.slot])[0][0]))
        if total != rows:
            raise DdzWriteError(
                f"DDZ table {target.table}: the ledger holds {total} rows for this load, the "
                f"source {rows}; nothing was published"
            )

    def _load_spooled(
        self,
        spark: SparkSession,
        frame: DataFrame,
        target: DdzTarget,
        columns: list[Column],
        hash_columns: list[str],
        state: _LoadState,
    ) -> _LoadOutcome:
        """H2 and SQL Server: measure, spool once, load chunk tables through Spark's JDBC writer."""
        stats = collect_stats(frame, hash_columns)
        types = [(c.name, c.data_type.simpleString()) for c in columns]
        planned = stats.chunk_count(self.settings, target.max_connections)
        count = state.chunk_count or planned
        load_id = load_fingerprint(target.slot, types, stats.chunks(count), count)
        state = self._restart_if_stale(spark, target, state, load_id)
        if not state.committed:
            count = planned
            load_id = load_fingerprint(target.slot, types, stats.chunks(count), count)
            self._new_stage(spark, target, columns)
        chunks = stats.chunks(count)

        rows_per_batch = batch_rows(stats.row_bytes, self.settings)
        loader = JdbcChunkLoader(
            spark,
            self.dialect,
            self.connection.jdbc_url,
            self.connection.properties,
            rows_per_batch,
            self.connection.odbc_auth,
        )
        spool = self.spool_root / target.slot_hash[:16]
        pending = [c for c in chunks if c.rows > 0 and c.id not in state.committed]
        if pending and not is_complete(spool, load_id):
            chunked = frame.withColumn(CHUNK_COLUMN, chunk_expression(hash_columns, count))
            write_spool(chunked, spool, load_id)
        stage = self._stage(target)
        jobs = [ChunkJob(c, count, target.slot, load_id, stage, columns, spool) for c in pending]
        self._load_chunks(loader, jobs, target, f"DDZ table {target.table}")
        self._check_ledger(spark, target, stats.rows)
        self._publish(spark, target, stage, columns)
        remove_spool(spool)
        return _LoadOutcome(
            chunks=count,
            loaded=len(pending),
            resumed=len(state.committed),
            rows=stats.rows,
            row_bytes=stats.row_bytes,
            batch_rows=rows_per_batch,
        )

    def _load_chunks(
        self, loader: ChunkLoader, jobs: list[ChunkJob], target: DdzTarget, where: str
    ) -> None:
        if not jobs:
            return
        workers = max(1, min(target.max_connections, len(jobs)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ddz-chunk") as pool:
            futures = {
                pool.submit(
                    with_retries, lambda j=job: loader.load(j), self.retry_policy, self._count_retry
                ): job
                for job in jobs
            }
            for future in as_completed(futures):
                error = future.exception()
                if error is not None:
                    for other in futures:
                        other.cancel()
                    job = futures[future]
                    raise DdzWriteError(
                        f"{where}: chunk {job.chunk.id} of {job.chunk_count} "
                        f"({job.chunk.rows} rows) failed: {describe_error(error)}"
                    ) from error

    def _exists(self, spark: SparkSession, table: TableName) -> bool:
        sql, params = self.dialect.table_exists(table)
        return int(str(self._query(spark, sql, params)[0][0])) > 0

    def _check_slice(
        self, spark: SparkSession, target: DdzTarget, stage: TableName, column: Column
    ) -> None:
        """Only the partition's own rows may replace its slice: rows of other days would be
        duplicated by their own partition's load and never deleted by this one."""
        assert target.partition is not None
        value = target.partition[1]
        outside = self._query(spark, self.dialect.rows_outside_slice(stage, column), [value])
        count = int(str(outside[0][0]))
        if count:
            raise DdzWriteError(
                f"DDZ table {target.table}: {count} rows have a {column.name} other than the "
                f"partition {value} being loaded (or none); the table is unchanged"
            )

    def _publish(
        self, spark: SparkSession, target: DdzTarget, stage: TableName, columns: list[Column]
    ) -> None:
        """Move the staged rows into the target, with the ledger cleared, in one transaction."""
        d = self.dialect
        names = [c.name for c in columns]
        partition_column = None
        if target.partition is not None:
            partition_column = next(c for c in columns if c.name == target.partition[0])
            self._check_slice(spark, target, stage, partition_column)
        existing = self._table_columns(spark, target.table)
        keys = list(target.key_columns)
        statements: list[tuple[str, list[object]]] = []
        stage_consumed = False
        if not existing or (
            target.write_mode == "replace"
            and target.partition is None
            and [c.lower() for c in existing] != [n.lower() for n in names]
        ):
            # First load, or a replace that changes the columns: the stage becomes the table.
            statements += [
                (d.drop_table(target.table), []),
                (d.rename_table(stage, target.table), []),
            ]
            stage_consumed = True
        elif target.write_mode == "replace" and target.partition is None:
            replace = d.replace_from(target.table, stage, names)
            statements += [(sql, []) for sql in replace]
            stage_consumed = d.replace_swaps_tables
        elif target.write_mode == "replace":
            assert target.partition is not None and partition_column is not None
            statements += [
                (d.delete_slice(target.table, partition_column), [target.partition[1]]),
                (d.insert_from(target.table, stage, names), []),
            ]
        elif target.write_mode == "append":
            statements.append((d.insert_from(target.table, stage, names), []))
        else:
            statements.append((d.merge_from(target.table, stage, names, keys), []))
        if keys:
            statements.append((d.create_key_index(target.table, keys), []))
        if target.partition is not None and target.retention_days is not None:
            statements.append(
                (
                    d.delete_outside_retention(
                        target.table, target.partition[0], target.retention_days
                    ),
                    [],
                )
            )
        statements.append((d.ledger_clear(), [target.slot]))
        if not stage_consumed and d.transactional_ddl:
            statements.append((d.drop_table(stage), []))
        self._run(spark, statements)
        if not stage_consumed and not d.transactional_ddl:
            self._run(spark, [(d.drop_table(stage), [])])


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
