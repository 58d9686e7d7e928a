"""The bronze ingestion engine against a real PostgreSQL and a real Spark: partitioned and
incremental JDBC reads, files checked against a declared schema, the bronze columns."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T
from sqlalchemy import create_engine, text

from data_mesh.ingest import (
    BRONZE_COLUMNS,
    DatabaseRead,
    IngestError,
    JdbcSource,
    add_bronze_columns,
    read_database,
    read_files,
)
from data_mesh_tests.conftest import jdbc_url_of

pytestmark = pytest.mark.slow

T0 = datetime(2024, 3, 1, 8, 0, 0, 123456)


def _rows(start: int, stop: int) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"n{i}",
            "amount": Decimal(i) / 4,
            "updated_at": T0 + timedelta(minutes=i, microseconds=i),
        }
        for i in range(start, stop)
    ]


@pytest.fixture
def source_db(pg_url: str):
    """src_test.orders with 10 rows, and a function that inserts more."""
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA src_test"))
        connection.execute(
            text(
                "CREATE TABLE src_test.orders (id INTEGER PRIMARY KEY, name TEXT, "
                "amount NUMERIC(10, 2), updated_at TIMESTAMP)"
            )
        )

    def insert(rows: list[dict[str, object]]) -> None:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO src_test.orders VALUES (:id, :name, :amount, :updated_at)"),
                rows,
            )

    insert(_rows(1, 11))
    yield insert
    engine.dispose()


@pytest.fixture
def pg_source(pg_url: str) -> JdbcSource:
    url, properties = jdbc_url_of(pg_url)
    return JdbcSource(url, properties)


def _ids(frame) -> list[int]:
    return sorted(row["id"] for row in frame.select("id").collect())


def test_full_read_is_three_parallel_range_reads(spark, source_db, pg_source):
    read = DatabaseRead("src_test.orders", partition_column="id", num_partitions=3)

    batch = read_database(spark, pg_source, read)

    assert batch.watermark is None
    assert batch.frame.rdd.getNumPartitions() == 3
    got = {(r["id"], r["name"], r["amount"], r["updated_at"]) for r in batch.frame.collect()}
    assert got == {(r["id"], r["name"], r["amount"], r["updated_at"]) for r in _rows(1, 11)}
    assert batch.frame.schema["amount"].dataType == T.DecimalType(10, 2)


def test_given_bounds_are_used_and_rows_outside_them_still_read(spark, source_db, pg_source):
    read = DatabaseRead(
        "src_test.orders", partition_column="id", lower_bound=4, upper_bound=6, num_partitions=2
    )

    frame = read_database(spark, pg_source, read).frame

    assert frame.rdd.getNumPartitions() == 2
    assert _ids(frame) == list(range(1, 11))


def test_incremental_by_integer_watermark(spark, source_db, pg_source, capsys):
    read = DatabaseRead(
        "src_test.orders", partition_column="id", num_partitions=2, watermark_column="id"
    )

    first = read_database(spark, pg_source, read)
    assert (_ids(first.frame), first.watermark) == (list(range(1, 11)), "10")

    source_db(_rows(11, 14))
    second = read_database(spark, pg_source, read, after_watermark=first.watermark)
    # The frame is lazy: a row committed after the high mark was fixed is not in this batch...
    source_db(_rows(14, 15))
    assert (_ids(second.frame), second.watermark) == ([11, 12, 13], "13")
    assert second.frame.rdd.getNumPartitions() == 2  # bounds probed within the window

    # ...but in the next one, exactly once.
    third = read_database(spark, pg_source, read, after_watermark=second.watermark)
    assert (_ids(third.frame), third.watermark) == ([14], "14")

    fourth = read_database(spark, pg_source, read, after_watermark=third.watermark)
    assert (fourth.frame.count(), fourth.watermark) == (0, "14")

    # The window is pushed down to PostgreSQL with typed literals.
    third.frame.explain()
    plan = capsys.readouterr().out
    assert "PushedFilters: [*IsNotNull(id), *GreaterThan(id,13), *LessThanOrEqual(id,14)]" in plan


def test_incremental_by_timestamp_watermark(spark, source_db, pg_source):
    read = DatabaseRead("src_test.orders", watermark_column="updated_at")

    first = read_database(spark, pg_source, read)
    assert _ids(first.frame) == list(range(1, 11))
    newest = T0 + timedelta(minutes=10, microseconds=10)
    assert first.watermark == newest.isoformat()  # ISO 8601, to the microsecond

    # One row a microsecond after the mark: a timestamp literal that lost precision would
    # read it twice or never.
    later = _rows(11, 13)
    later[0]["updated_at"] = newest + timedelta(microseconds=1)
    source_db(later)
    second = read_database(spark, pg_source, read, after_watermark=first.watermark)
    assert _ids(second.frame) == [11, 12]
    assert datetime.fromisoformat(second.watermark) == later[1]["updated_at"]

    third = read_database(spark, pg_source, read, after_watermark=second.watermark)
    assert (third.frame.count(), third.watermark) == (0, second.watermark)


def test_incremental_timestamp_with_timestamp_partitions(spark, source_db, pg_source):
    """Timestamp bounds probed within the window: the probe's SQL literals are rendered here."""
    read = DatabaseRead(
        "src_test.orders",
        partition_column="updated_at",
        num_partitions=2,
        watermark_column="updated_at",
    )
    first = read_database(spark, pg_source, read)
    source_db(_rows(11, 15))

    second = read_database(spark, pg_source, read, after_watermark=first.watermark)

    assert second.frame.rdd.getNumPartitions() == 2
    assert _ids(second.frame) == [11, 12, 13, 14]


def test_empty_table_gives_no_rows_and_no_watermark(spark, pg_url, pg_source):
    engine = create_engine(pg_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA src_test"))
        connection.execute(text("CREATE TABLE src_test.empty (id BIGINT, day DATE)"))
    engine.dispose()

    batch = read_database(
        spark,
        pg_source,
        DatabaseRead("src_test.empty", partition_column="id", watermark_column="day"),
    )

    assert (batch.frame.count(), batch.watermark) == (0, None)


def test_a_stored_watermark_that_is_not_of_the_column_type_is_named(spark, source_db, pg_source):
    read = DatabaseRead("src_test.orders", watermark_column="updated_at")

    with pytest.raises(IngestError, match=r"src_test\.orders.*'yesterday'.*updated_at"):
        read_database(spark, pg_source, read, after_watermark="yesterday")


@pytest.mark.parametrize(
    ("read", "expected"),
    [
        (DatabaseRead("src_test.missing"), r"table src_test\.missing: cannot read.*does not exist"),
        (
            DatabaseRead("src_test.orders", watermark_column="changed_at"),
            r"table src_test\.orders: watermark column 'changed_at' does not exist",
        ),
        (
            DatabaseRead("src_test.orders", partition_column="order_no"),
            r"table src_test\.orders: partition column 'order_no' does not exist",
        ),
        (
            DatabaseRead("src_test.orders", partition_column="name"),
            r"table src_test\.orders: partition column name is string; it must be numeric",
        ),
        (
            DatabaseRead("src_test.orders", watermark_column="name"),
            r"table src_test\.orders: watermark column name is string",
        ),
    ],
)
def test_errors_name_the_table_and_column_but_not_the_password(
    spark, source_db, pg_url, read, expected
):
    url, properties = jdbc_url_of(pg_url)
    source = JdbcSource(url, properties)

    with pytest.raises(IngestError, match=expected) as raised:
        read_database(spark, source, read)

    assert properties["password"] not in str(raised.value)


def test_unreachable_database_error_hides_passwords(spark):
    source = JdbcSource(
        "jdbc:postgresql://127.0.0.1:1/nowhere?user=u&password=url-Secret-1",
        {"user": "u", "password": "prop-Secret-2"},
    )

    with pytest.raises(IngestError, match=r"table src_test\.orders: cannot read") as raised:
        read_database(spark, source, DatabaseRead("src_test.orders"))

    message = str(raised.value)
    assert "url-Secret-1" not in message and "prop-Secret-2" not in message
    assert "url-Secret-1" not in repr(source) and "prop-Secret-2" not in repr(source)


def test_unsafe_names_are_refused():
    with pytest.raises(ValueError, match="not a safe identifier"):
        DatabaseRead("src_test.orders; DROP TABLE x")
    with pytest.raises(ValueError, match="not a safe identifier"):
        DatabaseRead("src_test.orders", watermark_column='id" > 0 --')


# -- files ---------------------------------------------------------------------------------

COLUMNS = [("id", "bigint"), ("amount", "decimal(18,2)"), ("day", "date"), ("name", "string")]


def test_csv_bad_rows_are_rejected_with_a_reason(spark, tmp_path: Path):
    folder = tmp_path / "orders"
    folder.mkdir()
    (folder / "part1.csv").write_text(
        "id,amount,day,name\n"
        "1,1.50,2024-01-02,ann\n"
        "abc,2.00,2024-01-03,bob\n"
        "3,3.25,2024-13-01,cy\n"
        "4,4.00,2024-01-05,dee,extra\n"
        "5,,,\n"
    )

    batch = read_files(spark, str(folder), "csv", COLUMNS, where="DataSets row 7 (orders)")

    assert [(f.name, f.dataType.simpleString()) for f in batch.frame.schema.fields] == COLUMNS
    assert sorted(batch.frame.collect()) == [
        (1, Decimal("1.50"), date(2024, 1, 2), "ann"),
        (5, None, None, None),
    ]
    # Counts reference only the corrupt-record column once pruned: Spark would refuse them
    # on the raw files.
    assert (batch.frame.count(), batch.rejected.count()) == (2, 3)
    rejected = {r["_raw_record"]: r for r in batch.rejected.collect()}
    assert (
        rejected["abc,2.00,2024-01-03,bob"]["_reason"] == "column id: 'abc' is not a valid bigint"
    )
    assert rejected["3,3.25,2024-13-01,cy"]["_reason"] == (
        "column day: '2024-13-01' is not a valid date"
    )
    assert "more than 4 fields" in rejected["4,4.00,2024-01-05,dee,extra"]["_reason"]
    assert all(r["_source_file"].endswith("orders/part1.csv") for r in rejected.values())
    batch.release()


def test_json_bad_records_are_rejected_with_a_reason(spark, tmp_path: Path):
    path = tmp_path / "orders.json"
    path.write_text(
        "\n".join(
            [
                json.dumps({"id": 1, "amount": 1.5, "day": "2024-01-02", "name": "ann"}),
                json.dumps({"id": "x1", "amount": 2, "day": "2024-01-03", "name": "bob"}),
                '{"id": 3, "amount": ',
                json.dumps({"id": 4, "amount": 4, "day": "2024-02-30", "name": "dee"}),
            ]
        )
        + "\n"
    )

    batch = read_files(spark, str(path), "json", COLUMNS)

    assert batch.frame.collect() == [(1, Decimal("1.50"), date(2024, 1, 2), "ann")]
    reasons = {r["_raw_record"]: r["_reason"] for r in batch.rejected.collect()}
    assert len(reasons) == 3
    assert reasons[json.dumps({"id": "x1", "amount": 2, "day": "2024-01-03", "name": "bob"})] == (
        "column id: 'x1' is not a valid bigint"
    )
    assert reasons['{"id": 3, "amount": '].startswith("the record does not match")
    assert "column day: '2024-02-30' is not a valid date" in reasons.values()
    batch.release()


def test_parquet_missing_declared_column_names_path_and_column(spark, tmp_path: Path):
    path = str(tmp_path / "orders.parquet")
    spark.createDataFrame([(1, "ann")], "id bigint, name string").write.parquet(path)

    with pytest.raises(
        IngestError,
        match=r"DataSets row 7: parquet files at .*orders\.parquet have no column 'amount'",
    ):
        read_files(spark, path, "parquet", COLUMNS, where="DataSets row 7")


def test_parquet_values_that_do_not_cast_are_rejected(spark, tmp_path: Path):
    path = str(tmp_path / "orders.parquet")
    spark.createDataFrame(
        [("1", "1.5", date(2024, 1, 2), "ann"), ("two", "2", date(2024, 1, 3), "bob")],
        "ID string, amount string, day date, name string",
    ).coalesce(1).write.parquet(path)

    batch = read_files(spark, path, "parquet", COLUMNS)

    assert batch.frame.collect() == [(1, Decimal("1.50"), date(2024, 1, 2), "ann")]
    assert batch.frame.schema["id"].dataType == T.LongType()
    [bad] = batch.rejected.collect()
    assert bad["_reason"] == "column id: 'two' is not a valid bigint"
    assert json.loads(bad["_raw_record"]) == {
        "id": "two",
        "amount": "2",
        "day": "2024-01-03",
        "name": "bob",
    }
    assert ".parquet" in bad["_source_file"]


def test_unknown_format_and_bad_type_are_refused(spark, tmp_path: Path):
    with pytest.raises(IngestError, match=r"orders: format 'xml' is not readable"):
        read_files(spark, str(tmp_path), "xml", COLUMNS, where="orders")
    with pytest.raises(IngestError, match=r"column id: 'bigintt' is not a Spark SQL type"):
        read_files(spark, str(tmp_path), "csv", [("id", "bigintt")])


# -- bronze columns -------------------------------------------------------------------------


def test_bronze_columns_carry_one_timestamp_per_load(spark):
    frame = spark.range(0, 1000, numPartitions=4)

    bronze = add_bronze_columns(frame, "erp", "run-42")

    assert tuple(bronze.columns[-3:]) == BRONZE_COLUMNS
    values = bronze.select(*BRONZE_COLUMNS).distinct().collect()
    assert len(values) == 1
    stamp, system, run_id = values[0]
    assert (system, run_id) == ("erp", "run-42")
    assert abs(stamp.astimezone(UTC) - datetime.now(UTC)) < timedelta(minutes=5)  # naive: local
    assert bronze.schema["LOAD_TIMESTAMP"].dataType == T.TimestampType()


def test_bronze_timestamp_given_is_used(spark):
    given = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)

    bronze = add_bronze_columns(spark.range(3), "erp", "r1", load_timestamp=given)

    stamps = {r[0] for r in bronze.select(F.unix_timestamp("LOAD_TIMESTAMP")).collect()}
    assert stamps == {int(given.timestamp())}


def test_bronze_column_clash_raises(spark):
    frame = spark.createDataFrame([(1, "x")], "id int, run_id string")

    with pytest.raises(IngestError, match="run_id"):
        add_bronze_columns(frame, "erp", "r1")
