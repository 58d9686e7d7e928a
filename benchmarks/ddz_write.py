"""DDZ write benchmark on PostgreSQL (issue: the DDZ IO manager).

throughput: same run, same data (seed 000's target: six columns), alternating rounds into
  PostgreSQL: (a0) plain `df.write.jdbc` with its defaults, (a1) plain JDBC tuned (batchsize
  10,000, reWriteBatchedInserts, 4 partitions, truncate), (b1) data_mesh's writer, first load,
  (b2) the writer replacing the existing table (the common case), (c) COPY of the same rows,
  pre-serialized as CSV; seconds and WAL bytes (pg_current_wal_lsn before and after) of each.
Memory with wide rows, on every load path: benchmarks/ddz_wide_rows.py.

Usage (PostgreSQL from scripts/start-postgres.sh):
  .venv/bin/python benchmarks/ddz_write.py throughput --rows 5000000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from pyspark.sql import DataFrame, SparkSession

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from data_mesh.ddz.chunks import ChunkSettings  # noqa: E402
from data_mesh.ddz.dialects import PostgresDialect, TableName  # noqa: E402
from data_mesh.ddz.sessions import postgres_connect_args  # noqa: E402
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter  # noqa: E402
from data_mesh_tests.conftest import jdbc_url_of  # noqa: E402

PG_JAR = "/usr/share/java/postgresql.jar"
# CSV as PostgreSQL's COPY (FORMAT csv) reads it, for the reference (c).
CSV_OPTIONS = {
    "header": "false",
    "quote": '"',
    "escape": '"',
    "nullValue": "",
    "emptyValue": '""',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
TARGET_COLUMNS = (
    "UNQ_USER_ID bigint, NAME string, PAYMENT_AMOUNT decimal(18,2), "
    "PAYMENT_CATEGORY string, LOAD_DATE date, SOR_SYS_CD string"
)


def pg_url() -> str:
    url = os.environ.get("DATA_MESH_TEST_PG_URL")
    if url:
        return url
    out = subprocess.run(
        ["bash", str(REPO / "scripts/start-postgres.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def spark_session(driver_memory: str = "2g") -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", driver_memory)
        .config("spark.jars", PG_JAR)
        .config("spark.driver.extraClassPath", PG_JAR)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def seed_000_target(spark: SparkSession, rows: int) -> DataFrame:
    """Deterministic rows shaped like seed 000's DDZ target."""
    return spark.range(rows).selectExpr(
        "id AS UNQ_USER_ID",
        "concat('user_', id % 200000) AS NAME",
        "cast((id * 7919 % 100000) / 100.0 AS decimal(18,2)) AS PAYMENT_AMOUNT",
        "element_at(array('groceries','travel','utilities','electronics','health'), "
        "cast(id % 5 AS int) + 1) AS PAYMENT_CATEGORY",
        "date_add(date'2026-01-01', cast(id % 300 AS int)) AS LOAD_DATE",
        "'sor1' AS SOR_SYS_CD",
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def throughput(rows: int, repeat: int) -> None:
    url = pg_url()
    jdbc, properties = jdbc_url_of(url)
    spark = spark_session()
    work = Path(tempfile.mkdtemp(prefix="dm_bench_"))
    source = work / "source.parquet"
    seed_000_target(spark, rows).write.parquet(str(source))
    data = spark.read.parquet(str(source))
    admin = psycopg.connect(**{**postgres_connect_args(jdbc, properties), "autocommit": True})
    admin.execute("DROP SCHEMA IF EXISTS bench CASCADE")
    admin.execute("DROP SCHEMA IF EXISTS data_mesh CASCADE")
    admin.execute("CREATE SCHEMA bench")
    driver = {**properties, "driver": PostgresDialect.driver_class}

    def plain_defaults() -> None:
        data.write.jdbc(jdbc, "bench.plain", mode="overwrite", properties=driver)

    def plain_tuned() -> None:
        # As a competent user tunes it: big batches rewritten into multi-row INSERTs, 4
        # connections, and `truncate` so an existing table keeps its definition.
        data.repartition(4).write.option("truncate", "true").jdbc(
            f"{jdbc}?reWriteBatchedInserts=true",
            "bench.tuned",
            mode="overwrite",
            properties={**driver, "batchsize": "10000"},
        )

    writer = DdzWriter(DdzConnection(jdbc, properties), ChunkSettings())

    def data_mesh() -> None:
        writer.write(data, DdzTarget(TableName("bench", "data_mesh")))

    csv_dir = work / "csv"
    data.write.options(**CSV_OPTIONS).csv(str(csv_dir))
    files = sorted(csv_dir.glob("part-*"))
    admin.execute(
        "CREATE TABLE bench.copy_ref (UNQ_USER_ID bigint, NAME text, PAYMENT_AMOUNT numeric(18,2),"
        " PAYMENT_CATEGORY text, LOAD_DATE date, SOR_SYS_CD text)"
    )

    def copy_reference() -> None:
        with (
            admin.cursor() as cursor,
            cursor.copy("COPY bench.copy_ref FROM STDIN (FORMAT csv)") as copy,
        ):
            for file in files:
                with file.open("rb") as handle:
                    while block := handle.read(1 << 20):
                        copy.write(block)

    def fresh(table: str) -> Callable[[], None]:
        def drop() -> None:
            admin.execute(f"DROP TABLE IF EXISTS bench.{table}")
            admin.execute("DROP SCHEMA IF EXISTS data_mesh CASCADE")

        return drop

    def nothing() -> None:
        pass

    def empty_copy_table() -> None:
        admin.execute("TRUNCATE bench.copy_ref")

    # (name, what it does, set-up before each run, table it fills)
    methods: list[tuple[str, Callable[[], None], Callable[[], None], str]] = [
        ("a0 plain df.write.jdbc, defaults", plain_defaults, fresh("plain"), "plain"),
        ("a1 plain, tuned (batch 10k, rewrite, 4 partitions)", plain_tuned, nothing, "tuned"),
        ("b1 writer, first load", data_mesh, fresh("data_mesh"), "data_mesh"),
        ("b2 writer, replace of the existing table", data_mesh, nothing, "data_mesh"),
        (
            "c COPY of pre-serialized CSV, one stream",
            copy_reference,
            empty_copy_table,
            "copy_ref",
        ),
    ]
    # Rounds alternate the methods, so the machine's noise and the process's warm-up (JIT,
    # Spark's Python workers) fall on all of them. b2 runs right after b1: the table exists.
    seconds: dict[str, list[float]] = {m[0]: [] for m in methods}
    wal: dict[str, list[int]] = {m[0]: [] for m in methods}
    plain_tuned()  # a1 measures the common case too: its table exists
    for _ in range(repeat):
        for name, method, set_up, table in methods:
            set_up()
            before = admin.execute("SELECT pg_current_wal_lsn()").fetchone()
            seconds[name].append(timed(method))
            after = admin.execute(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [before[0] if before else 0]
            ).fetchone()
            wal[name].append(int(after[0]) if after else 0)
            count = admin.execute(f"SELECT COUNT(*) FROM bench.{table}").fetchone()
            assert count is not None and count[0] == rows, (name, count)
    print(f"rows: {rows:,} (seed 000 target, 6 columns), PostgreSQL on 127.0.0.1, local[2]")
    print(f"| method | median s ({repeat} rounds) | rows/s | WAL MiB (median) |")
    print("|---|---|---|---|")
    median = {name: statistics.median(values) for name, values in seconds.items()}
    median_wal = {name: statistics.median(values) for name, values in wal.items()}
    for name in seconds:
        print(
            f"| {name} | {median[name]:.2f} | {rows / median[name]:,.0f} | "
            f"{median_wal[name] / 2**20:,.0f} |"
        )
    a1, b2, c = (median[methods[i][0]] for i in (1, 3, 4))
    wal_a1, wal_b2 = median_wal[methods[1][0]], median_wal[methods[3][0]]
    print(
        f"b2 vs a1 (target >= 2x): {a1 / b2:.2f}x; b2 vs c (target >= 0.7x): {c / b2:.2f}x; "
        f"WAL b2 / a1 (target <= 1.2x): {wal_b2 / wal_a1:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["throughput"])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="throughput: rounds of a, b, c")
    args = parser.parse_args()
    throughput(args.rows[0], args.repeat)


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()
