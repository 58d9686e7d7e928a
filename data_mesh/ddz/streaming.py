"""PostgreSQL: rows stream from Spark's tasks straight into COPY, one pass over the data.

Each task gets one whole chunk (rows hashed to chunks, partition i = chunk i) as Arrow
batches, encodes them natively (pgpq: PostgreSQL's binary COPY format; pyarrow's CSV writer
where a type needs it) and streams them through `COPY ... FROM STDIN` into the staging
table; each chunk commits together with its ledger row. A chunk the ledger
already holds is only re-hashed: the same checksum means it is skipped (a resumed load), a
different one marks the load as stale. At most `max_connections` tasks hold a connection and
write at once (slots taken as advisory locks).

Only a row count and a sample of row widths are taken first (cheap: Parquet answers a count
from file footers), so chunks are bounded by rows exactly and by bytes as sampled; the bytes
each chunk really sent are reported.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from data_mesh.ddz.chunks import CHECKSUM_MODULUS, CHUNK_COLUMN, chunk_expression
from data_mesh.ddz.dialects import PostgresDialect, TableName

HASH_COLUMN = "__dm_row_hash"
SLOT_WAIT_S = 0.2
RESULT_SCHEMA = "chunk int, rows long, checksum long, bytes long, status string"


@dataclass(frozen=True)
class StreamJob:
    """Everything a task needs, pickled to the executors (credentials included, as Spark's
    own JDBC options are; never logged)."""

    connect_args: dict[str, Any]
    stage: TableName
    columns: list[str]
    slot: str
    load_id: str
    chunk_count: int
    max_connections: int
    copy_format: str = "binary"  # binary (pgpq) or csv


@dataclass(frozen=True)
class ChunkResult:
    chunk: int
    rows: int
    checksum: int
    bytes: int
    status: str  # loaded | resumed | stale


_MASK32 = 0xFFFFFFFF
# Spark's HashPartitioning: partition = pmod(Murmur3Hash(key, seed 42), partitions).
_SPARK_HASH_SEED = 42


def _rotl32(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (32 - bits))) & _MASK32


def _mix_h1(h1: int, word: int) -> int:
    k1 = _rotl32((word * 0xCC9E2D51) & _MASK32, 15) * 0x1B873593 & _MASK32
    return (_rotl32(h1 ^ k1, 13) * 5 + 0xE6546B64) & _MASK32


def spark_hash_long(value: int, seed: int = _SPARK_HASH_SEED) -> int:
    """Spark's `hash(bigint)` (Murmur3_x86_32.hashLong), as a signed 32-bit int."""
    unsigned = value & 0xFFFFFFFFFFFFFFFF
    h1 = _mix_h1(_mix_h1(seed & _MASK32, unsigned & _MASK32), unsigned >> 32)
    h1 ^= 8
    h1 ^= h1 >> 16
    h1 = (h1 * 0x85EBCA6B) & _MASK32
    h1 ^= h1 >> 13
    h1 = (h1 * 0xC2B2AE35) & _MASK32
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def partition_keys(count: int) -> list[int]:
    """For each chunk c, a bigint that `repartition(count, key)` sends to partition c.

    Spark puts a row in partition pmod(hash(key), count); the smallest such key per partition
    is found here without a Spark job (`spark_hash_long` is Spark's hash, checked against Spark
    by the tests). Partition i then holds chunk i and nothing else, with no sort.
    """
    found: dict[int, int] = {}
    candidate = 0
    while len(found) < count:
        found.setdefault(spark_hash_long(candidate) % count, candidate)
        candidate += 1
    return [found[c] for c in range(count)]


def binary_copy_supported(frame: DataFrame) -> bool:
    """Whether pgpq can encode every column for COPY (FORMAT binary), PostgreSQL's fastest."""
    try:
        import pgpq
        from pyspark.sql.pandas.types import to_arrow_schema

        pgpq.ArrowToPostgresBinaryEncoder(to_arrow_schema(frame.schema))
        return True
    except Exception:  # pgpq missing or a type it cannot encode: CSV works for all
        return False


def chunked_for_streaming(
    frame: DataFrame, hash_columns: list[str], count: int, copy_format: str = "binary"
) -> DataFrame:
    """Rows tagged with their chunk and row hash; partition i holds exactly chunk i."""
    # COPY in CSV reads bytea as '\\x' + hex; the row hash is taken from the original values.
    binary = {
        f.name: F.concat(F.lit("\\x"), F.lower(F.hex(F.col(f.name))))
        for f in frame.schema.fields
        if isinstance(f.dataType, T.BinaryType) and copy_format == "csv"
    }
    keys = partition_keys(count)
    chunk = chunk_expression(hash_columns, count)
    # bigint literals: the keys were found by hashing bigints, and hash depends on the type.
    partition_key = F.element_at(F.array(*[F.lit(k).cast("bigint") for k in keys]), chunk + 1)
    # Only the data crosses the shuffle; chunk and row hash are computed on the other side.
    tagged = frame.repartition(count, partition_key).withColumns(
        {
            HASH_COLUMN: F.xxhash64(*[F.col(c) for c in frame.columns]),
            CHUNK_COLUMN: chunk,
        }
    )
    return tagged.withColumns(binary) if binary else tagged


def stream_chunks(frame: DataFrame, job: StreamJob) -> list[ChunkResult]:
    """Run the load's one Spark job; returns what happened to every non-empty chunk."""
    rows = frame.mapInArrow(lambda batches: _copy_task(batches, job), RESULT_SCHEMA).collect()
    return [
        ChunkResult(int(r.chunk), int(r.rows), int(r.checksum), int(r.bytes), str(r.status))
        for r in rows
    ]


def _connect_with_slot(job: StreamJob) -> Any:
    """A connection holding one of `max_connections` slots (a session advisory lock, released
    when the connection closes): at most that many tasks write at once, whatever the cluster's
    size; Azure SQL and PostgreSQL throttle on log rate, not on Spark's cores. A task that finds
    no free slot disconnects while it waits, so waiting tasks hold no connections."""
    import random
    import time

    import psycopg

    while True:
        connection = psycopg.connect(**job.connect_args)
        for slot in range(job.max_connections):
            taken = connection.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s), %s)", [job.slot, slot]
            ).fetchone()
            if taken and taken[0]:
                connection.commit()
                return connection
        connection.close()
        time.sleep(random.uniform(SLOT_WAIT_S, 2 * SLOT_WAIT_S))


def _copy_task(batches: Iterator[Any], job: StreamJob) -> Iterator[Any]:
    """Runs inside a Spark task (Python worker)."""
    import pgpq
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    dialect = PostgresDialect()
    copy_sql = (
        f"COPY {dialect.qualified(job.stage)} ({dialect.column_list(job.columns)}) "
        f"FROM STDIN (FORMAT {job.copy_format})"
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    connection = _connect_with_slot(job)
    results: list[dict[str, Any]] = []

    class _Chunk:
        def __init__(self, chunk_id: int) -> None:
            self.id, self.rows, self.checksum, self.bytes = chunk_id, 0, 0, 0
            found = connection.execute(
                dialect.ledger_checksum().replace("?", "%s"), [job.slot, chunk_id]
            ).fetchone()
            self.expected = None if found is None else int(found[0])
            self.cursor = connection.cursor()
            self.copying = contextlib.ExitStack()
            self.copy: Any = None
            self.encoder: Any = None
            if found is None:
                self.copy = self.copying.enter_context(self.cursor.copy(copy_sql))

        def add(self, part: Any) -> None:
            self.rows += part.num_rows
            hashes = part.column(HASH_COLUMN)
            high = pc.sum(pc.shift_right(hashes, 32)).as_py() or 0
            low = pc.sum(pc.bit_wise_and(hashes, 0xFFFFFFFF)).as_py() or 0
            self.checksum = (self.checksum + (high << 32) + low) % CHECKSUM_MODULUS
            if self.copy is not None:
                rows = part.select(job.columns)
                if job.copy_format == "binary":
                    if self.encoder is None:
                        self.encoder = pgpq.ArrowToPostgresBinaryEncoder(rows.schema)
                        self._send(self.encoder.write_header())
                    for batch in rows.to_batches():
                        self._send(self.encoder.write_batch(batch))
                else:
                    buffer = io.BytesIO()
                    pa_csv.write_csv(rows, buffer, options)
                    self._send(buffer.getvalue())

        def _send(self, data: bytes) -> None:
            if data:
                self.bytes += len(data)
                self.copy.write(data)

        def finish(self) -> None:
            if self.copy is None:
                connection.rollback()
                status = "resumed" if self.checksum == self.expected else "stale"
            else:
                if self.encoder is not None:
                    self._send(self.encoder.finish())
                self.copying.close()  # ends the COPY
                self.cursor.execute(
                    dialect.ledger_insert().replace("?", "%s"),
                    [job.slot, job.load_id, self.id, job.chunk_count, self.rows, self.checksum],
                )
                connection.commit()
                status = "loaded"
            self.cursor.close()
            results.append(
                {
                    "chunk": self.id,
                    "rows": self.rows,
                    "checksum": self.checksum,
                    "bytes": self.bytes,
                    "status": status,
                }
            )

    current: _Chunk | None = None
    done: set[int] = set()
    try:
        for batch in batches:
            table = pa.Table.from_batches([batch])
            chunk_ids = table.column(CHUNK_COLUMN)
            present = pc.unique(chunk_ids).to_pylist()
            for chunk_id in present:  # one, unless hash partitioning changed under us
                part = table if len(present) == 1 else table.filter(pc.equal(chunk_ids, chunk_id))
                if current is None or current.id != chunk_id:
                    if current is not None:
                        current.finish()
                        done.add(current.id)
                    if chunk_id in done:
                        raise RuntimeError(f"rows of chunk {chunk_id} are not contiguous")
                    current = _Chunk(int(chunk_id))
                current.add(part)
        if current is not None:
            current.finish()
    finally:
        connection.close()
    yield pa.RecordBatch.from_pylist(
        results,
        schema=pa.schema(
            [
                ("chunk", pa.int32()),
                ("rows", pa.int64()),
                ("checksum", pa.int64()),
                ("bytes", pa.int64()),
                ("status", pa.string()),
            ]
        ),
    )
