"""The DDZ writer against real databases: the embedded H2 and a real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from data_mesh.ddz.chunks import (
    BUCKETS,
    ChunkSettings,
    batch_rows,
    chunk_count,
    chunk_expression,
    collect_stats,
)
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.loaders import JdbcChunkLoader
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.sessions import open_session, transaction
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.streaming import partition_keys, spark_hash_long
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriteError, DdzWriter
from data_mesh.lake.storage import LocalStorage
from data_mesh_tests.conftest import AWKWARD_SCHEMA, awkward_rows, jdbc_url_of

pytestmark = pytest.mark.slow
TABLE = TableName("ddz", "ORDERS")
SCHEMA = "ID long, NAME string, AMOUNT double"


@pytest.fixture(params=["h2", "postgresql"])
def ddz(request, tmp_path: Path) -> DdzConnection:
    if request.param == "h2":
        return DdzConnection(f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")
    url, properties = jdbc_url_of(request.getfixturevalue("pg_url"))
    return DdzConnection(url, properties)


def writer(ddz: DdzConnection, tmp_path: Path, **chunking: int) -> DdzWriter:
    return DdzWriter(ddz, ChunkSettings(**chunking), Spool(LocalStorage(tmp_path), "spool/ddz"))


def rows_of(spark: SparkSession, ddz: DdzConnection, table: TableName = TABLE) -> list[tuple]:
    return sorted(tuple(r) for r in read_ddz_table(spark, ddz, table).collect())


def scalar(spark: SparkSession, ddz: DdzConnection, sql: str, params=()) -> object:
    session = open_session(spark, ddz)
    try:
        with transaction(session):
            return session.query(sql, list(params))[0][0]
    finally:
        session.close()


def frame(spark: SparkSession, rows: list[tuple], schema: str = SCHEMA) -> DataFrame:
    return spark.createDataFrame(rows, schema)


# -- chunk planning (no database) ------------------------------------------------------------
def test_chunk_count_is_bounded_by_rows_and_by_bytes(spark: SparkSession) -> None:
    data = frame(spark, [(i, "x" * 100, 1.0) for i in range(5000)])
    stats = collect_stats(data, ["ID"])
    assert stats.rows == 5000
    assert stats.row_bytes == 8 + 8 + 100
    assert stats.chunk_count(ChunkSettings(max_chunk_rows=1000)) == 5
    by_bytes = ChunkSettings(max_chunk_rows=10**9, max_chunk_bytes=116 * 500)
    assert stats.chunk_count(by_bytes) == 10
    # With 4 connections, 5 chunks' worth of rows is split into 8: no half-idle last wave.
    parallel = ChunkSettings(max_chunk_rows=1000, min_parallel_chunk_rows=100)
    assert stats.chunk_count(parallel, connections=4) == 8
    assert stats.chunk_count(parallel, connections=1) == 5
    # Fewer chunks than connections stay one wave; rounding never makes chunks tiny.
    assert chunk_count(300_000, 2_900, ChunkSettings(), connections=8) == 7
    small = ChunkSettings(max_chunk_rows=60_000)
    assert chunk_count(250_000, 10, small, connections=4) == 5
    # Wide rows get small JDBC batches: batches are sized in bytes, not rows.
    assert batch_rows(5_000, ChunkSettings(batch_bytes=1_000_000)) == 200
    assert batch_rows(10, ChunkSettings(batch_bytes=1_000_000, max_batch_rows=50_000)) == 50_000


def test_chunks_are_deterministic_and_match_the_stats(spark: SparkSession) -> None:
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(3000)])
    stats = collect_stats(data, ["ID"])
    planned = {c.id: c.rows for c in stats.chunks(7)}
    counted = dict(data.groupBy(chunk_expression(["ID"], 7)).count().collect())
    assert {k: v for k, v in planned.items() if v} == counted
    again = collect_stats(data.orderBy(F.desc("ID")).repartition(5), ["ID"])
    assert again.chunks(7) == stats.chunks(7)  # same rows, other order: same chunks and sums
    changed = collect_stats(data.withColumn("AMOUNT", F.col("AMOUNT") + 1), ["ID"])
    assert [c.checksum for c in changed.chunks(7)] != [c.checksum for c in stats.chunks(7)]


def test_partition_keys_match_sparks_hash_partitioning(spark: SparkSession) -> None:
    values = [0, 1, -1, 42, 2**31, -(2**31) - 7, 2**62 + 12345, -(2**63)]
    expected = spark.createDataFrame([(v,) for v in values], "v bigint").select(F.hash("v"))
    assert [spark_hash_long(v) for v in values] == [r[0] for r in expected.collect()]
    # Spark's partitioner sends each key to its own partition (one real shuffle)...
    keys = partition_keys(7)
    placed = (
        spark.createDataFrame([(k,) for k in keys], "k bigint")
        .repartition(7, "k")
        .select("k", F.spark_partition_id().alias("p"))
        .collect()
    )
    assert {r.k: r.p for r in placed} == {k: i for i, k in enumerate(keys)}
    # ... which is pmod(hash(key), count): other layouts, up to BUCKETS, without a shuffle.
    for count in (1, 20, 256, BUCKETS):
        keys = partition_keys(count)
        spark_partition = spark.createDataFrame([(k,) for k in keys], "k bigint").select(
            F.expr(f"pmod(hash(k), {count})")
        )
        assert [r[0] for r in spark_partition.collect()] == list(range(count))


# -- write modes on H2 and PostgreSQL ---------------------------------------------------------
def test_replace_append_merge(spark: SparkSession, ddz: DdzConnection, tmp_path: Path) -> None:
    w = writer(ddz, tmp_path, max_chunk_rows=100)
    first = [(i, f"n{i}", i * 1.5) for i in range(1, 501)]
    report = w.write(frame(spark, first), DdzTarget(TABLE))
    assert (report.rows, report.chunks, report.loaded_chunks, report.resumed_chunks) == (
        500,
        5,
        5,
        0,
    )
    assert rows_of(spark, ddz) == first

    w.write(frame(spark, [(1, "only", 0.0)]), DdzTarget(TABLE, "replace"))
    assert rows_of(spark, ddz) == [(1, "only", 0.0)]
    w.write(frame(spark, [(2, "two", 2.0)]), DdzTarget(TABLE, "append"))
    assert rows_of(spark, ddz) == [(1, "only", 0.0), (2, "two", 2.0)]

    keyed = TableName("ddz", "KEYED")
    w.write(frame(spark, first[:3]), DdzTarget(keyed, "merge", ("ID",)))
    changes = [(2, "changed", 9.0), (600, "new", 6.0)]
    w.write(frame(spark, changes), DdzTarget(keyed, "merge", ("ID",)))
    assert rows_of(spark, ddz, keyed) == [first[0], changes[0], first[2], changes[1]]
    # Nothing of the loads is left behind: no stage tables, no ledger rows.
    assert scalar(spark, ddz, 'SELECT COUNT(*) FROM "data_mesh"."ddz_load_ledger"') == 0
    stages = scalar(
        spark,
        ddz,
        "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME LIKE '%dm_stage%'",
    )
    assert int(str(stages)) == 0


def test_partitioned_replace_touches_only_its_slice(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path
) -> None:
    schema = "ID long, LOAD_DATE string, V double"
    w = writer(ddz, tmp_path)
    for day in ("2026-11-20", "2026-11-21"):
        rows = [(i, day, 1.0) for i in range(10)]
        w.write(frame(spark, rows, schema), DdzTarget(TABLE, partition=("LOAD_DATE", day)))
    w.write(
        frame(spark, [(99, "2026-11-21", 2.0)], schema),
        DdzTarget(TABLE, partition=("LOAD_DATE", "2026-11-21")),
    )
    result = rows_of(spark, ddz)
    assert [r for r in result if r[1] == "2026-11-20"] == [
        (i, "2026-11-20", 1.0) for i in range(10)
    ]
    assert [r for r in result if r[1] == "2026-11-21"] == [(99, "2026-11-21", 2.0)]


@pytest.mark.parametrize("copy_format", ["binary", "csv"])
def test_types_unicode_nulls_and_awkward_strings(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path, copy_format: str, monkeypatch
) -> None:
    if copy_format == "csv":
        if not ddz.url.startswith("jdbc:postgresql:"):
            pytest.skip("the COPY format only matters on PostgreSQL")
        # The CSV path is PostgreSQL's fallback for types pgpq cannot encode.
        monkeypatch.setattr("data_mesh.ddz.writer.binary_copy_supported", lambda frame: False)
    schema, rows = AWKWARD_SCHEMA, awkward_rows()
    w = writer(ddz, tmp_path)
    w.write(frame(spark, rows, schema), DdzTarget(TableName("ddz", "TYPED")))
    back = read_ddz_table(spark, ddz, TableName("ddz", "TYPED"))
    assert sorted(tuple(r) for r in back.collect()) == rows
    types = dict(back.dtypes)
    assert types["D"] == "decimal(18,2)" and types["DT"] == "date" and types["B"] == "boolean"


def test_empty_dataframe_gives_an_empty_table(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path
) -> None:
    report = writer(ddz, tmp_path).write(frame(spark, []), DdzTarget(TABLE))
    assert (report.rows, report.loaded_chunks) == (0, 0)
    assert read_ddz_table(spark, ddz, TABLE).columns == ["ID", "NAME", "AMOUNT"]
    assert rows_of(spark, ddz) == []


def test_wide_rows(spark: SparkSession, ddz: DdzConnection, tmp_path: Path) -> None:
    rows = [(i, chr(65 + i % 26) * 5000, float(i)) for i in range(300)]
    report = writer(ddz, tmp_path, max_chunk_bytes=400_000, batch_bytes=100_000).write(
        frame(spark, rows), DdzTarget(TABLE)
    )
    assert report.row_bytes >= 5000
    assert report.chunks >= 4  # 1.5 MB in chunks of at most 400 kB
    assert report.batch_rows == 100  # floor: 100 kB / 5 kB would be 20 rows
    assert rows_of(spark, ddz) == rows


def test_failed_publish_leaves_target_unchanged(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path
) -> None:
    keyed = TableName("ddz", "KEYED_FAIL")
    original = [(1, "a", 1.0), (2, "b", 2.0)]
    w = writer(ddz, tmp_path)
    w.write(frame(spark, original), DdzTarget(keyed, "merge", ("ID",)))
    # Appending a duplicate key violates the key index: the publish transaction fails.
    with pytest.raises(DdzWriteError, match=r"DDZ table ddz.KEYED_FAIL: append write failed"):
        w.write(frame(spark, [(3, "c", 3.0), (1, "dup", 0.0)]), DdzTarget(keyed, "append"))
    assert rows_of(spark, ddz, keyed) == original


def test_unsafe_column_name_is_rejected_before_anything_is_written(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path
) -> None:
    data = spark.createDataFrame([(1, 2)], "ID long, `x; DROP TABLE y` long")
    with pytest.raises(DdzWriteError, match=r"ddz.ORDERS: column name 'x; DROP TABLE y'"):
        writer(ddz, tmp_path).write(data, DdzTarget(TABLE))
    found = scalar(
        spark, ddz, "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'ddz'"
    )
    assert int(str(found)) == 0


# -- resume and stale loads -----------------------------------------------------------------
def _crash_before_publish(w: DdzWriter, data: DataFrame, target: DdzTarget, monkeypatch) -> None:
    """Every chunk is committed to the stage and the ledger, then the process 'dies'."""

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before publish")

    monkeypatch.setattr(w, "_publish", crash)
    with pytest.raises(DdzWriteError, match="simulated crash before publish"):
        w.write(data, target)
    monkeypatch.undo()


def test_resume_after_a_crash_before_publish(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path, monkeypatch
) -> None:
    w = writer(ddz, tmp_path, max_chunk_rows=100, min_parallel_chunk_rows=100)
    w.write(frame(spark, [(0, "old", 0.0)]), DdzTarget(TABLE))
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    _crash_before_publish(w, data, DdzTarget(TABLE), monkeypatch)
    assert rows_of(spark, ddz) == [(0, "old", 0.0)]  # nothing published
    report = w.write(data, DdzTarget(TABLE))
    assert report.loaded_chunks == 0 and report.resumed_chunks >= 1
    assert rows_of(spark, ddz) == sorted(tuple(r) for r in data.collect())


def test_stale_load_is_restarted_not_mixed(
    spark: SparkSession, ddz: DdzConnection, tmp_path: Path, monkeypatch
) -> None:
    w = writer(ddz, tmp_path, max_chunk_rows=100, min_parallel_chunk_rows=100)
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    _crash_before_publish(w, data, DdzTarget(TABLE), monkeypatch)
    changed = data.withColumn("NAME", F.concat(F.col("NAME"), F.lit("-v2")))
    report = w.write(changed, DdzTarget(TABLE))
    assert report.resumed_chunks == 0 and report.loaded_chunks >= 1
    assert rows_of(spark, ddz) == sorted(tuple(r) for r in changed.collect())


def test_partial_resume_of_spooled_chunks(spark: SparkSession, tmp_path: Path, monkeypatch) -> None:
    # The H2 / SQL Server path: one chunk fails, the next attempt loads only what is missing.
    ddz = DdzConnection(f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")
    w = writer(ddz, tmp_path, max_chunk_rows=100)
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    real_load = JdbcChunkLoader.write_rows

    def fail_chunk_3(self, job):
        if job.chunk.id == 3:
            raise RuntimeError(f"simulated crash in chunk {job.chunk.id}")
        real_load(self, job)

    monkeypatch.setattr(JdbcChunkLoader, "write_rows", fail_chunk_3)
    with pytest.raises(DdzWriteError, match=r"chunk 3 of 6 .*simulated crash"):
        w.write(data, DdzTarget(TABLE, max_connections=1))
    monkeypatch.undo()
    report = w.write(data, DdzTarget(TABLE))
    assert report.resumed_chunks >= 1 and report.loaded_chunks >= 1
    assert report.resumed_chunks + report.loaded_chunks == 6
    assert rows_of(spark, ddz) == sorted(tuple(r) for r in data.collect())


# -- reads ----------------------------------------------------------------------------------
def test_partitioned_read(spark: SparkSession, ddz: DdzConnection, tmp_path: Path) -> None:
    rows = [(i, f"n{i}", 1.0) for i in range(1000)]
    writer(ddz, tmp_path).write(frame(spark, rows), DdzTarget(TABLE, key_columns=("ID",)))
    back = read_ddz_table(spark, ddz, TABLE, partition_column="ID", num_partitions=4)
    assert back.rdd.getNumPartitions() == 4
    assert sorted(tuple(r) for r in back.collect()) == rows


@pytest.fixture(params=["h2", "postgresql-jdbc"])
def jdbc_ddz(request, tmp_path: Path) -> DdzConnection:
    """The jdbc load path: the embedded H2, and PostgreSQL with SQL Server's control flow."""
    if request.param == "h2":
        return DdzConnection(f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")
    url, properties = jdbc_url_of(request.getfixturevalue("pg_url"))
    return DdzConnection(url, properties, control="odbc", load_path="jdbc")


def test_a_chunk_committed_twice_is_detected_and_repaired(
    spark: SparkSession, jdbc_ddz: DdzConnection, tmp_path: Path, monkeypatch
) -> None:
    """What a Spark task retried after its commit does: the chunk's rows reach the stage twice.
    The stage's row count gives it away before the publish, and the stage is reloaded."""
    real_write = JdbcChunkLoader.write_rows
    twice: list[int] = []

    def write_chunk_2_twice(self, job):
        real_write(self, job)
        if job.chunk.id == 2 and not twice:
            twice.append(job.chunk.id)
            real_write(self, job)

    monkeypatch.setattr(JdbcChunkLoader, "write_rows", write_chunk_2_twice)
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    report = writer(jdbc_ddz, tmp_path, max_chunk_rows=100).write(data, DdzTarget(TABLE))
    assert twice == [2]
    assert report.loaded_chunks == report.chunks == 6  # all reloaded once, none twice
    assert rows_of(spark, jdbc_ddz) == sorted(tuple(r) for r in data.collect())


def test_a_chunk_committed_but_not_recorded_is_found_whole_and_kept_on_resume(
    spark: SparkSession, jdbc_ddz: DdzConnection, tmp_path: Path, monkeypatch
) -> None:
    """The client dies between a chunk's commit and its ledger row (or, under Spark Connect,
    the server finishes a killed client's chunk): the next attempt finds the stage holding
    more rows than the ledger records, counts them per chunk, and keeps the whole chunk."""
    real_record = JdbcChunkLoader.record

    def die_before_recording_chunk_3(self, job):
        if job.chunk.id == 3:
            raise RuntimeError("the client died after the chunk's commit")
        real_record(self, job)

    w = writer(jdbc_ddz, tmp_path, max_chunk_rows=100)
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    monkeypatch.setattr(JdbcChunkLoader, "record", die_before_recording_chunk_3)
    with pytest.raises(DdzWriteError, match="the client died"):
        w.write(data, DdzTarget(TABLE, max_connections=1))
    monkeypatch.undo()
    report = w.write(data, DdzTarget(TABLE))
    # Chunks 0-2 were recorded and 3 committed unrecorded (the one thread may also have taken
    # chunk 4 before the failure stopped the load): all of them are kept, none loaded again.
    assert report.resumed_chunks >= 4 and report.resumed_chunks + report.loaded_chunks == 6
    assert rows_of(spark, jdbc_ddz) == sorted(tuple(r) for r in data.collect())


def test_a_stage_holding_part_of_a_chunk_is_reloaded(
    spark: SparkSession, jdbc_ddz: DdzConnection, tmp_path: Path, monkeypatch
) -> None:
    """Rows the ledger does not account for that are not whole chunks (here a chunk's rows
    twice): nothing of the stage is trusted, it is reloaded."""
    real_write, real_record = JdbcChunkLoader.write_rows, JdbcChunkLoader.record

    def write_chunk_3_twice_then_die(self, job):
        real_write(self, job)
        if job.chunk.id == 3:
            real_write(self, job)
            raise RuntimeError("the client died after the chunk's commits")

    w = writer(jdbc_ddz, tmp_path, max_chunk_rows=100)
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])
    monkeypatch.setattr(JdbcChunkLoader, "write_rows", write_chunk_3_twice_then_die)
    with pytest.raises(DdzWriteError, match="the client died"):
        w.write(data, DdzTarget(TABLE, max_connections=1))
    monkeypatch.undo()
    assert JdbcChunkLoader.record is real_record
    report = w.write(data, DdzTarget(TABLE))
    assert (report.resumed_chunks, report.loaded_chunks) == (0, 6)
    assert rows_of(spark, jdbc_ddz) == sorted(tuple(r) for r in data.collect())
