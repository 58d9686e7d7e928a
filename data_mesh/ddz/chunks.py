"""Deterministic chunks: which rows go together, how big they are, and their checksums.

One aggregation over the data gives, per hash bucket, the row count, an order-independent
checksum and the bytes of variable-width values. Chunks are contiguous ranges of buckets, so
their number can be chosen after the pass, from real sizes, and the same rows always land in
the same chunk (a hash of the key columns or of the whole row; never `rand()`).
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.util import inheritable_thread_target

BUCKETS = 4096
CHUNK_COLUMN = "__dm_chunk"
# Row checksums add up modulo this, so a chunk's sum fits a signed 64-bit column.
CHECKSUM_MODULUS = 2**63 - 1

# Wire bytes of fixed-width values; variable-width values are measured by the stats pass.
_FIXED_WIDTHS: dict[type[T.DataType], int] = {
    T.BooleanType: 1,
    T.ByteType: 1,
    T.ShortType: 2,
    T.IntegerType: 4,
    T.LongType: 8,
    T.FloatType: 4,
    T.DoubleType: 8,
    T.DateType: 4,
    T.TimestampType: 8,
    T.TimestampNTZType: 8,
    T.DecimalType: 17,
}
_VARIABLE = (T.StringType, T.VarcharType, T.CharType, T.BinaryType)


@dataclass(frozen=True)
class ChunkSettings:
    max_chunk_rows: int = 1_000_000
    max_chunk_bytes: int = 128 * 1024 * 1024
    batch_bytes: int = 4 * 1024 * 1024
    min_batch_rows: int = 100
    max_batch_rows: int = 50_000
    min_parallel_chunk_rows: int = 50_000


@dataclass(frozen=True)
class Chunk:
    id: int
    rows: int
    checksum: int


@dataclass(frozen=True)
class DataStats:
    """Per-bucket figures of one DataFrame, from a single pass."""

    bucket_rows: dict[int, int]
    bucket_checksums: dict[int, int]
    fixed_row_bytes: int
    variable_bytes: int

    @property
    def rows(self) -> int:
        return sum(self.bucket_rows.values())

    @property
    def row_bytes(self) -> int:
        """Average bytes of one row: fixed widths plus the measured variable-width values."""
        if not self.rows:
            return max(self.fixed_row_bytes, 1)
        return max(self.fixed_row_bytes + math.ceil(self.variable_bytes / self.rows), 1)

    def chunk_count(self, settings: ChunkSettings, connections: int = 1) -> int:
        return chunk_count(self.rows, self.row_bytes, settings, connections)

    def chunks(self, count: int) -> list[Chunk]:
        """Chunks 0..count-1 with their rows and checksums (bucket b goes to b*count//BUCKETS)."""
        rows = [0] * count
        sums = [0] * count
        for bucket, bucket_rows in self.bucket_rows.items():
            chunk = bucket * count // BUCKETS
            rows[chunk] += bucket_rows
            sums[chunk] = (sums[chunk] + self.bucket_checksums[bucket]) % CHECKSUM_MODULUS
        return [Chunk(i, rows[i], sums[i]) for i in range(count)]


def chunk_count(rows: int, row_bytes: int, settings: ChunkSettings, connections: int = 1) -> int:
    """Chunks for `rows` rows of `row_bytes` bytes: bounded by rows and by bytes."""
    by_rows = math.ceil(rows / settings.max_chunk_rows)
    by_bytes = math.ceil(rows * row_bytes / settings.max_chunk_bytes)
    # Enough chunks to keep every connection busy, unless chunks would get tiny.
    parallel = min(connections, rows // settings.min_parallel_chunk_rows)
    needed = max(1, by_rows, by_bytes, parallel)
    if needed > connections > 1:
        # More chunks than connections: a multiple of them, so the last wave is not half idle
        # (5 chunks on 4 connections take as long as 8 smaller ones), unless chunks get tiny.
        waves = math.ceil(needed / connections) * connections
        if rows // waves >= settings.min_parallel_chunk_rows:
            needed = waves
    # A chunk is one or more buckets, so there can be at most BUCKETS chunks.
    return min(BUCKETS, needed)


def _variable_width(frame: DataFrame) -> SparkColumn:
    variable = [f.name for f in frame.schema.fields if isinstance(f.dataType, _VARIABLE)]
    return sum((F.coalesce(F.octet_length(F.col(c)), F.lit(0)) for c in variable), F.lit(0))


def sampled_row_bytes(frame: DataFrame, sample_rows: int = 1000) -> int:
    """Row width from the first `sample_rows` rows (Spark reads as little as it can for that)."""
    sample = (
        frame.limit(sample_rows)
        .select(F.count(F.lit(1)).alias("n"), F.sum(_variable_width(frame)).alias("w"))
        .first()
    )
    rows = int(sample.n) if sample else 0
    variable = math.ceil(int(sample.w or 0) / rows) if sample and rows else 0
    return max(1, fixed_row_bytes(frame.schema) + variable)


def rows_and_row_bytes(frame: DataFrame) -> tuple[int, int]:
    """`frame`'s row count and sampled row width: the two Spark jobs run at once (the count in
    a thread that inherits the session's job properties and tags, so cancelling the run's jobs
    cancels it too)."""
    count = inheritable_thread_target(frame.sparkSession)(frame.count)
    with ThreadPoolExecutor(max_workers=1) as pool:
        rows = pool.submit(count)
        row_bytes = sampled_row_bytes(frame)
        return rows.result(), row_bytes


def batch_rows(row_bytes: int, settings: ChunkSettings) -> int:
    """JDBC batch size in rows, derived from a byte budget (never a fixed row count)."""
    rows = settings.batch_bytes // max(row_bytes, 1)
    return max(settings.min_batch_rows, min(settings.max_batch_rows, rows))


def _bucket(hash_columns: list[str]) -> SparkColumn:
    return F.pmod(F.xxhash64(*[F.col(c) for c in hash_columns]), F.lit(BUCKETS))


def chunk_expression(hash_columns: list[str], count: int) -> SparkColumn:
    """The chunk of each row: its bucket's range, as `chunks()` computes it."""
    return (_bucket(hash_columns) * F.lit(count) / F.lit(BUCKETS)).cast("int")


def fixed_row_bytes(schema: T.StructType) -> int:
    return sum(
        0 if isinstance(f.dataType, _VARIABLE) else _FIXED_WIDTHS.get(type(f.dataType), 16)
        for f in schema.fields
    )


def collect_stats(frame: DataFrame, hash_columns: list[str]) -> DataStats:
    """One aggregation over `frame`; returns at most BUCKETS small rows to the driver."""
    width = _variable_width(frame)
    row_hash = F.xxhash64(*[F.col(c) for c in frame.columns]).cast("decimal(38,0)")
    grouped = (
        frame.select(_bucket(hash_columns).alias("b"), row_hash.alias("h"), width.alias("w"))
        .groupBy("b")
        .agg(F.count(F.lit(1)).alias("n"), F.sum("h").alias("h"), F.sum("w").alias("w"))
        .collect()
    )
    return DataStats(
        bucket_rows={int(r.b): int(r.n) for r in grouped},
        bucket_checksums={int(r.b): int(r.h) % CHECKSUM_MODULUS for r in grouped},
        fixed_row_bytes=fixed_row_bytes(frame.schema),
        variable_bytes=sum(int(r.w) for r in grouped),
    )


def load_fingerprint(
    slot: str, columns: list[tuple[str, str]], chunks: list[Chunk], chunk_count: int
) -> str:
    """Identifies one load: slot, columns, chunk layout and (when measured first) the data."""
    digest = hashlib.sha256(slot.encode())
    digest.update(repr((columns, chunk_count)).encode())
    for chunk in chunks:
        digest.update(f"{chunk.id}:{chunk.rows}:{chunk.checksum};".encode())
    return digest.hexdigest()[:32]
