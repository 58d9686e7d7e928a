"""The chunked DDZ writer on the embedded H2 DDZ, through real Spark JDBC writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from data_mesh.ddz.control import JdbcControl
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.writer import (
    ChunkSettings,
    DdzConnection,
    DdzTarget,
    DdzWriteError,
    assign_chunks,
    estimate_row_bytes,
    plan_chunks,
    read_ddz_table,
    write_to_ddz,
)

pytestmark = pytest.mark.slow
TABLE = TableName("ddz", "ORDERS")


@pytest.fixture
def ddz(tmp_path: Path) -> DdzConnection:
    return DdzConnection(f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")


def _rows(spark: SparkSession, ddz: DdzConnection, table: TableName = TABLE) -> list[tuple]:
    return sorted(tuple(r) for r in read_ddz_table(spark.read, ddz, table).collect())


def _frame(spark: SparkSession, rows: list[tuple]):
    return spark.createDataFrame(rows, "ID long, NAME string, AMOUNT double")


def test_plan_chunks_is_bounded_by_rows_and_by_bytes() -> None:
    settings = ChunkSettings(max_chunk_rows=1000, max_chunk_bytes=10_000, batch_bytes=1_000)
    assert plan_chunks(0, 10, settings) == (1, 100)
    assert plan_chunks(5000, 1, settings)[0] == 5  # rows bound
    assert plan_chunks(5000, 100, settings)[0] == 50  # bytes bound: 500 kB / 10 kB
    # Wide rows get small batches: the batch is sized in bytes, not rows.
    assert plan_chunks(10, 5_000, ChunkSettings(batch_bytes=1_000_000))[1] == 200


def test_row_width_estimate_grows_with_columns(spark: SparkSession) -> None:
    narrow = spark.createDataFrame([(1,)], "a int").schema
    wide = spark.createDataFrame([(1, "x", 2.0)], "a int, b string, c double").schema
    assert estimate_row_bytes(wide) > estimate_row_bytes(narrow) > 0


def test_replace_append_and_merge(spark: SparkSession, ddz: DdzConnection) -> None:
    first = [(i, f"n{i}", i * 1.5) for i in range(1, 501)]
    small_chunks = ChunkSettings(max_chunk_rows=100)
    report = write_to_ddz(_frame(spark, first), DdzTarget(TABLE), ddz, small_chunks)
    assert (report.rows, report.chunks) == (500, 5)
    assert _rows(spark, ddz) == first

    replacement = [(1, "only", 0.0)]
    write_to_ddz(_frame(spark, replacement), DdzTarget(TABLE, "replace"), ddz)
    assert _rows(spark, ddz) == replacement

    write_to_ddz(_frame(spark, [(2, "two", 2.0)]), DdzTarget(TABLE, "append"), ddz)
    assert _rows(spark, ddz) == [(1, "only", 0.0), (2, "two", 2.0)]

    keyed = TableName("ddz", "KEYED")
    write_to_ddz(_frame(spark, first[:3]), DdzTarget(keyed, "merge", ("ID",)), ddz)
    changes = [(2, "changed", 9.0), (600, "new", 6.0)]
    write_to_ddz(_frame(spark, changes), DdzTarget(keyed, "merge", ("ID",)), ddz)
    assert _rows(spark, ddz, keyed) == [first[0], changes[0], first[2], changes[1]]


def test_failed_publish_leaves_target_unchanged_and_no_stage(
    spark: SparkSession, ddz: DdzConnection
) -> None:
    keyed = TableName("ddz", "KEYED_FAIL")
    original = [(1, "a", 1.0), (2, "b", 2.0)]
    write_to_ddz(_frame(spark, original), DdzTarget(keyed, "merge", ("ID",)), ddz)
    # Appending a duplicate key violates the unique key index: the final statement fails.
    with pytest.raises(DdzWriteError, match=r"DDZ table ddz.KEYED_FAIL: append write failed:.*"):
        write_to_ddz(
            _frame(spark, [(3, "c", 3.0), (1, "dup", 0.0)]), DdzTarget(keyed, "append"), ddz
        )
    assert _rows(spark, ddz, keyed) == original
    control = JdbcControl(spark, ddz.jdbc_url, ddz.properties)
    stages = control.scalar(
        "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME LIKE '%__dm_stage'"
    )
    assert int(stages) == 0


def test_unsafe_column_name_is_rejected_before_anything_is_written(
    spark: SparkSession, ddz: DdzConnection
) -> None:
    frame = spark.createDataFrame([(1, 2)], "ID long, `x; DROP TABLE y` long")
    with pytest.raises(DdzWriteError, match=r"ddz.ORDERS: column name 'x; DROP TABLE y'"):
        write_to_ddz(frame, DdzTarget(TABLE), ddz)
    control = JdbcControl(spark, ddz.jdbc_url, ddz.properties)
    assert (
        int(
            control.scalar(
                "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'ddz'"
            )
        )
        == 0
    )


def test_chunks_are_deterministic(spark: SparkSession) -> None:
    # The same rows land in the same chunk on every attempt (hash of the key, not rand()).
    from pyspark.sql import functions as F

    frame = _frame(spark, [(i, f"n{i}", 1.0) for i in range(400)])

    def assignment(source) -> dict[int, int]:
        chunked = assign_chunks(source, 4, ["ID"])
        return dict(chunked.select("ID", F.spark_partition_id()).collect())

    first = assignment(frame)
    assert first == assignment(frame.orderBy(F.desc("ID")))  # input order does not matter
    sizes = [list(first.values()).count(chunk) for chunk in range(4)]
    assert sorted(first.values())[0] == 0 and max(sizes) < 200  # spread over the chunks
