"""Fault injection on a real PostgreSQL server: connections terminated mid-load, and the
writing process killed mid-load. After re-execution the target holds exactly the source
rows, and readers only ever saw the old table or the new one."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg
import pytest
from pyspark.sql import SparkSession

from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.sessions import postgres_connect_args
from data_mesh.ddz.writer import DdzTarget
from data_mesh_tests.conftest import ddz_rows, jdbc_url_of, ledger_chunks
from data_mesh_tests.ddz_writer_process import TABLE, make_writer, source_rows, start


def expected_amount(spark: SparkSession, rows: int):
    """SUM(AMOUNT) of the source rows, computed by Spark from the same definition."""
    from decimal import Decimal

    total = source_rows(spark, rows).selectExpr("sum(cast(AMOUNT AS decimal(38,2)))").first()[0]
    return Decimal(total)


pytestmark = pytest.mark.slow
ROWS = 600_000
CHUNK_ROWS = 50_000


def _connect(url: str, properties: dict[str, str]) -> psycopg.Connection:
    args = postgres_connect_args(url, properties)
    args.update(autocommit=True, application_name="data_mesh_test_observer")
    return psycopg.connect(**args)


def _fingerprint(connection: psycopg.Connection) -> tuple[int, int, int]:
    row = connection.execute(
        'SELECT COUNT(*), COALESCE(SUM("ID"), 0), COALESCE(SUM(hashtext("NAME")::bigint), 0) '
        'FROM ddz."FAULTS"'
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def _expected(connection: psycopg.Connection, rows: int) -> tuple[int, int, int]:
    row = connection.execute(
        "SELECT COUNT(*), SUM(i), SUM(hashtext('name-' || i)::bigint) "
        "FROM generate_series(0, %s - 1) AS i",
        [rows],
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


class _Reader(threading.Thread):
    """Counts the target table over and over while a load runs."""

    def __init__(self, url: str, properties: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.connection = _connect(url, properties)
        self.seen: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.seen.add(_fingerprint(self.connection)[0])
            time.sleep(0.005)


@pytest.fixture
def pg(pg_url: str) -> tuple[str, dict[str, str]]:
    return jdbc_url_of(pg_url)


def test_terminated_connections_are_retried(spark: SparkSession, pg, tmp_path: Path) -> None:
    url, properties = pg
    writer = make_writer(url, properties["user"], properties["password"], str(tmp_path), CHUNK_ROWS)
    observer = _connect(url, properties)
    killed: list[int] = []
    done = threading.Event()

    def terminate_copies() -> None:
        deadline = time.monotonic() + 120
        while len(killed) < 2 and time.monotonic() < deadline and not done.is_set():
            rows = observer.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = "
                "'data_mesh_ddz_writer' AND state = 'active' AND query LIKE 'COPY%%'"
            ).fetchall()
            for (pid,) in rows:
                if pid not in killed:
                    observer.execute("SELECT pg_terminate_backend(%s)", [pid])
                    killed.append(pid)
            time.sleep(0.002)

    killer = threading.Thread(target=terminate_copies, daemon=True)
    killer.start()
    try:
        report = writer.write(source_rows(spark, ROWS), DdzTarget(TABLE, max_connections=2))
    finally:
        done.set()  # the killer must not outlive this test and hit the next one's writes
        killer.join(timeout=30)
    assert killed, "no COPY was caught in flight"
    # Connections killed during one attempt fail that attempt once: at least one retry.
    assert report.retries >= 1
    assert _fingerprint(observer) == _expected(observer, ROWS)


def test_killed_process_resumes_with_exact_rows(spark: SparkSession, pg, tmp_path: Path) -> None:
    url, properties = pg
    observer = _connect(url, properties)
    writer = make_writer(url, properties["user"], properties["password"], str(tmp_path), CHUNK_ROWS)
    writer.write(source_rows(spark, 1000), DdzTarget(TABLE))  # the old table: 1000 rows
    reader = _Reader(url, properties)
    reader.start()

    process = start(url, properties["user"], properties["password"], tmp_path, ROWS, CHUNK_ROWS)
    committed = 0
    deadline = time.monotonic() + 240
    while committed < 3 and time.monotonic() < deadline and process.poll() is None:
        exists = observer.execute("SELECT to_regclass('data_mesh.ddz_load_ledger')").fetchone()
        if exists and exists[0]:
            row = observer.execute("SELECT COUNT(*) FROM data_mesh.ddz_load_ledger").fetchone()
            committed = int(row[0]) if row else 0
        time.sleep(0.05)
    assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert 3 <= committed < ROWS // CHUNK_ROWS
    assert _fingerprint(observer)[0] == 1000  # the kill left the old table as it was

    report = writer.write(source_rows(spark, ROWS), DdzTarget(TABLE))
    reader.stop.set()
    reader.join(timeout=5)
    assert report.resumed_chunks >= 3
    assert report.resumed_chunks + report.loaded_chunks == ROWS // CHUNK_ROWS
    assert _fingerprint(observer) == _expected(observer, ROWS)
    assert reader.seen <= {1000, ROWS} and ROWS in reader.seen


def test_connection_cap_holds_with_more_tasks_than_slots(
    spark: SparkSession, pg, tmp_path: Path
) -> None:
    url, properties = pg
    writer = make_writer(url, properties["user"], properties["password"], str(tmp_path), CHUNK_ROWS)
    observer = _connect(url, properties)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            row = observer.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = "
                "'data_mesh_ddz_writer' AND query LIKE 'COPY%%' AND state = 'active'"
            ).fetchone()
            seen.append(int(row[0]) if row else 0)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    # local[2] runs two chunk tasks at once; one slot lets only one of them write.
    report = writer.write(source_rows(spark, ROWS), DdzTarget(TABLE, max_connections=1))
    stop.set()
    watcher.join(timeout=5)
    assert report.chunks >= 2
    assert max(seen) == 1
    assert _fingerprint(observer) == _expected(observer, ROWS)


def test_killed_process_resumes_with_exact_rows_on_h2(spark: SparkSession, tmp_path: Path) -> None:
    """The embedded default, killed for real (SIGKILL to the writing process, which holds the
    H2 file), then written again by another process: the exact rows, the old table until then."""
    url = f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE"
    ddz = DdzConnection(url)

    def fingerprint() -> tuple:
        return ddz_rows(
            spark,
            ddz,
            'SELECT COUNT(*), COUNT(DISTINCT "ID"), COALESCE(SUM("ID"), 0), '
            'COALESCE(SUM(CAST("AMOUNT" AS DECIMAL(38,2))), 0) FROM "ddz"."FAULTS"',
        )[0]

    def committed_chunks() -> int:
        return ledger_chunks(spark, ddz)

    make_writer(url, "", "", str(tmp_path), CHUNK_ROWS).write(
        source_rows(spark, 1000), DdzTarget(TABLE)
    )
    old = fingerprint()
    process = start(url, "", "", tmp_path, ROWS, CHUNK_ROWS)
    committed = 0
    deadline = time.monotonic() + 300
    lock = tmp_path / "ddz.lock.db"
    # Look only once the writer holds the file (then this process reaches it through H2's
    # AUTO_SERVER), so the two processes do not race to open it.
    while not lock.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    while committed < 2 and time.monotonic() < deadline and process.poll() is None:
        committed = committed_chunks()
        time.sleep(0.5)
    assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    # H2 takes over a dead holder's lock file once nothing has touched it for a few seconds.
    while lock.exists() and time.time() - lock.stat().st_mtime < 4:
        time.sleep(0.5)
    assert 2 <= committed < ROWS // CHUNK_ROWS
    assert fingerprint() == old  # the kill left the old table as it was

    report = make_writer(url, "", "", str(tmp_path), CHUNK_ROWS).write(
        source_rows(spark, ROWS), DdzTarget(TABLE)
    )
    assert report.resumed_chunks >= 2
    assert report.resumed_chunks + report.loaded_chunks == report.chunks
    assert fingerprint() == (ROWS, ROWS, ROWS * (ROWS - 1) // 2, expected_amount(spark, ROWS))
