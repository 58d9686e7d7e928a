"""DDZ write benchmark on PostgreSQL (issue: the DDZ IO manager).

throughput: same run, same data (seed 000's target: six columns), three ways into PostgreSQL:
  (a) plain `df.write.jdbc` with its defaults, (b) data_mesh's DdzWriter (replace),
  (c) COPY of the same rows, pre-serialized as CSV, as the server-side reference.
memory: the JVM's peak RSS while DdzWriter writes N rows with spark.driver.memory=512m,
  one fresh process per N.

Usage (PostgreSQL from scripts/start-postgres.sh):
  .venv/bin/python benchmarks/ddz_write.py throughput --rows 5000000 --repeat 3
  .venv/bin/python benchmarks/ddz_write.py memory --rows 1000000 20000000
"""

from __future__ import annotations

import argparse
import json
import os
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
from data_mesh.ddz.dialects import TableName  # noqa: E402
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
    # Every method starts from nothing: no table, no ledger, same data.
    admin.execute("DROP SCHEMA IF EXISTS bench CASCADE")
    admin.execute("DROP SCHEMA IF EXISTS data_mesh CASCADE")
    admin.execute("CREATE SCHEMA bench")

    def plain() -> None:
        data.write.jdbc(
            jdbc,
            "bench.plain",
            mode="overwrite",
            properties={**properties, "driver": "org.postgresql.Driver"},
        )

    writer = DdzWriter(DdzConnection(jdbc, properties), ChunkSettings(), spool_root=work / "spool")

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

    methods = {"a_plain_jdbc": plain, "b_data_mesh": data_mesh, "c_copy": copy_reference}
    tables = {"a_plain_jdbc": "plain", "b_data_mesh": "data_mesh", "c_copy": "copy_ref"}
    # Rounds alternate the methods, so the machine's noise and the process's warm-up (JIT,
    # Spark's Python workers) fall on all of them; every run starts with an empty target.
    runs: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for name, method in methods.items():
            if name == "c_copy":
                admin.execute("TRUNCATE bench.copy_ref")
            else:
                admin.execute(f"DROP TABLE IF EXISTS bench.{tables[name]}")
                admin.execute("DROP SCHEMA IF EXISTS data_mesh CASCADE")
            runs[name].append(timed(method))
            count = admin.execute(f"SELECT COUNT(*) FROM bench.{tables[name]}").fetchone()
            assert count is not None and count[0] == rows, (name, count)
    print(
        f"rows: {rows:,} (seed 000 target, 6 columns), PostgreSQL 15 on 127.0.0.1, Spark local[2]"
    )
    print(f"| method | first run s | best of {repeat} s | rows/s (best) |")
    print("|---|---|---|---|")
    for name, seconds in runs.items():
        print(f"| {name} | {seconds[0]:.2f} | {min(seconds):.2f} | {rows / min(seconds):,.0f} |")
    for label, pick in (("first run", lambda s: s[0]), (f"best of {repeat}", min)):
        a, b, c = (pick(runs[n]) for n in methods)
        print(f"{label}: ratio b/a (target >= 2.5) {a / b:.2f}x; b/c (target >= 0.6) {c / b:.2f}x")


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def java_children() -> list[int]:
    me = os.getpid()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().split()
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat[3]) == me and b"java" in cmd:
                pids.append(int(entry.name))
    return pids


def memory_one(rows: int) -> None:
    """One process: write `rows` with a 512m driver; print the JVM's peak RSS as JSON."""
    url = pg_url()
    jdbc, properties = jdbc_url_of(url)
    spark = spark_session("512m")
    (jvm,) = java_children()
    work = Path(tempfile.mkdtemp(prefix="dm_mem_"))
    writer = DdzWriter(DdzConnection(jdbc, properties), ChunkSettings(), spool_root=work)
    started = time.perf_counter()
    report = writer.write(
        seed_000_target(spark, rows), DdzTarget(TableName("bench", f"mem_{rows}"))
    )
    print(
        json.dumps(
            {
                "rows": report.rows,
                "chunks": report.chunks,
                "seconds": time.perf_counter() - started,
                "jvm_peak_rss_mib": peak_rss_kib(jvm) / 1024,
            }
        )
    )


def memory(rows_list: list[int]) -> None:
    results = []
    for rows in rows_list:
        out = subprocess.run(
            [sys.executable, __file__, "memory-one", "--rows", str(rows)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print("spark.driver.memory=512m, Spark local[2], DdzWriter into PostgreSQL")
    for r in results:
        print(
            f"{r['rows']:>12,} rows  {r['chunks']:>3} chunks  {r['seconds']:7.1f} s  "
            f"JVM peak RSS {r['jvm_peak_rss_mib']:7.0f} MiB"
        )
    first, last = results[0]["jvm_peak_rss_mib"], results[-1]["jvm_peak_rss_mib"]
    print(
        f"peak RSS ratio {results[-1]['rows']:,} / {results[0]['rows']:,} rows "
        f"(target <= 1.2): {last / first:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["throughput", "memory", "memory-one"])
    parser.add_argument("--rows", type=int, nargs="+", default=[5_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="throughput: rounds of a, b, c")
    args = parser.parse_args()
    if args.what == "throughput":
        throughput(args.rows[0], args.repeat)
    elif args.what == "memory":
        memory(args.rows)
    else:
        memory_one(args.rows[0])


if __name__ == "__main__":
    threading.excepthook = lambda a: None
    main()
