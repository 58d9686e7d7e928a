"""Two loads of one DDZ table at once, on the embedded default (H2) and on PostgreSQL.

One load holds the table's claim in the database; another waits for it (or fails at once,
naming the run that holds it), so two loads never share a stage, ledger rows or a spool; a
killed holder's claim is released by the database. A load whose chunk is stuck on a lock
fails within its timeout, naming the table and the chunk.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import PIPE, Popen

import psycopg
import pytest
from dagster import DagsterEventType, DagsterRunStatus, RunsFilter
from pyspark.sql import SparkSession

from data_mesh.ddz.claims import claimed
from data_mesh.ddz.retry import RetryPolicy
from data_mesh.ddz.sessions import postgres_connect_args
from data_mesh.ddz.timeouts import DdzTimeouts
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriteError
from data_mesh.runs.dagster_home import open_instance
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import (
    SAMPLE_PRODUCTS,
    add_config_item,
    cli_env,
    ddz_rows,
    jdbc_url_of,
    ledger_chunks,
    run_cli,
    start_cli,
)
from data_mesh_tests.ddz_writer_process import TABLE, make_writer, source_rows, start

pytestmark = pytest.mark.slow
ROWS = 120_000
CHUNK_ROWS = 20_000


class Ddz:
    """A DDZ database the test and the writing processes share."""

    def __init__(self, url: str, user: str, password: str, spool: Path) -> None:
        self.url, self.user, self.password, self.spool = url, user, password, spool
        properties = {"user": user, "password": password} if user else {}
        self.connection = DdzConnection(url, properties)

    def query(self, spark: SparkSession, sql: str) -> list[tuple[object, ...]]:
        return ddz_rows(spark, self.connection, sql)

    def ids(self, spark: SparkSession) -> tuple[int, int, int]:
        """Rows, distinct IDs and the sum of the IDs of the table."""
        row = self.query(
            spark,
            'SELECT COUNT(*), COUNT(DISTINCT "ID"), COALESCE(SUM("ID"), 0) FROM "ddz"."FAULTS"',
        )[0]
        return int(str(row[0])), int(str(row[1])), int(str(row[2]))

    def leftovers(self, spark: SparkSession, table: str = TABLE.table) -> list[str]:
        """Tables of the writer's own left beside the target, and ledger rows left behind."""
        tables = self.query(
            spark,
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_name LIKE '{table}%' AND table_name <> '{table}'",
        )
        ledger = self.query(spark, 'SELECT COUNT(*) FROM "data_mesh"."ddz_load_ledger"')
        return [str(t[0]) for t in tables] + [f"ledger rows: {ledger[0][0]}"] * bool(
            int(str(ledger[0][0]))
        )

    def start(self, rows: int, *options: str) -> Popen[bytes]:
        return start(self.url, self.user, self.password, self.spool, rows, CHUNK_ROWS, *options)


@pytest.fixture(params=["h2", "postgresql"])
def ddz(request: pytest.FixtureRequest, tmp_path: Path) -> Ddz:
    if request.param == "h2":
        return Ddz(
            f"jdbc:h2:file:{tmp_path / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE", "", "", tmp_path
        )
    url, properties = jdbc_url_of(request.getfixturevalue("pg_url"))
    return Ddz(url, properties["user"], properties["password"], tmp_path)


class Output(threading.Thread):
    """A process's output, read as it comes (the pipe must not fill up)."""

    def __init__(self, process: Popen[bytes]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.text = ""
        self.start()

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.text += line.decode(errors="replace")

    def wait_for(self, fragment: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while fragment not in self.text and time.monotonic() < deadline:
            assert self.process.poll() is None, self.text
            time.sleep(0.2)
        assert fragment in self.text, self.text

    def finished(self, seconds: float) -> int:
        code = self.process.wait(timeout=seconds)
        self.join(timeout=10)
        return code


@pytest.fixture
def processes() -> Iterator[list[Popen[bytes]]]:
    started: list[Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def _sum(first: int, rows: int) -> int:
    return (2 * first + rows - 1) * rows // 2


def test_two_loads_of_one_table_take_turns(
    spark: SparkSession, ddz: Ddz, processes: list[Popen[bytes]]
) -> None:
    """Two processes append to one table while the test holds its claim: both wait, naming
    the holder; once it is released they load one after the other, and the table holds each
    process's rows exactly once, with nothing of theirs left behind."""
    make_writer(ddz.url, ddz.user, ddz.password, str(ddz.spool), CHUNK_ROWS).write(
        source_rows(spark, 10), DdzTarget(TABLE)
    )
    slot_hash = DdzTarget(TABLE).slot_hash
    with claimed(spark, ddz.connection, slot_hash, "test", "run test-holder", RetryPolicy()):
        first = ddz.start(ROWS, "--mode", "append", "--first-id", "1000000", "--run", "one")
        second = ddz.start(ROWS, "--mode", "append", "--first-id", "2000000", "--run", "two")
        processes += [first, second]
        outputs = [Output(first), Output(second)]
        for output in outputs:
            output.wait_for("is being loaded by run test-holder", 180)
    assert [output.finished(300) for output in outputs] == [0, 0], [o.text for o in outputs]
    # Each waited for the test; the one that loaded second also waited for the other.
    assert any("is being loaded by run one" in o.text or "by run two" in o.text for o in outputs)
    expected_sum = _sum(0, 10) + _sum(1_000_000, ROWS) + _sum(2_000_000, ROWS)
    assert ddz.ids(spark) == (10 + 2 * ROWS, 10 + 2 * ROWS, expected_sum)
    assert ddz.leftovers(spark) == []


def test_a_load_that_may_not_wait_fails_at_once_naming_the_holder(
    spark: SparkSession, ddz: Ddz
) -> None:
    writer = make_writer(
        ddz.url, ddz.user, ddz.password, str(ddz.spool), CHUNK_ROWS, DdzTimeouts(claim=0)
    )
    slot_hash = DdzTarget(TABLE).slot_hash
    started = time.monotonic()
    holder = "run 4f2a (host ci)"
    with (
        claimed(spark, ddz.connection, slot_hash, "test", holder, RetryPolicy()),
        pytest.raises(DdzWriteError) as raised,
    ):
        writer.write(source_rows(spark, 100), DdzTarget(TABLE))
    assert time.monotonic() - started < 30
    message = str(raised.value)
    assert "DDZ table ddz.FAULTS is being loaded by run 4f2a (host ci)" in message
    assert "nothing was written" in message
    tables = ddz.query(
        spark, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE 'FAULTS%'"
    )
    assert int(str(tables[0][0])) == 0
    # Released with its session: the same load now runs.
    assert writer.write(source_rows(spark, 100), DdzTarget(TABLE)).rows == 100


def test_a_killed_holders_claim_is_released(
    spark: SparkSession, ddz: Ddz, processes: list[Popen[bytes]]
) -> None:
    """SIGKILL to a process in the middle of its load: the database ends its session and the
    claim with it, so the next load (which may not wait) resumes it to the exact rows."""
    rows = ROWS * 3
    process = ddz.start(rows, "--run", "doomed")
    processes.append(process)
    lock_file = ddz.spool / "ddz.lock.db"
    deadline = time.monotonic() + 300
    if ddz.connection.dialect.name == "h2":
        # Look only once the writer holds the file (then this process reaches it through H2's
        # AUTO_SERVER), so the two processes do not race to open it.
        while not lock_file.exists() and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.2)
    while ledger_chunks(spark, ddz.connection) < 1 and time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    while lock_file.exists() and time.time() - lock_file.stat().st_mtime < 4:
        time.sleep(0.5)  # H2 takes over a dead holder's file once it has been still a while

    writer = make_writer(
        ddz.url, ddz.user, ddz.password, str(ddz.spool), CHUNK_ROWS, DdzTimeouts(claim=0)
    )
    report = writer.write(source_rows(spark, rows), DdzTarget(TABLE))
    if ddz.connection.dialect.name == "postgresql":
        # H2 writes its file up to half a second after a commit (WRITE_DELAY): the last
        # chunks a killed H2 host committed may be gone, and the load may start over.
        assert report.resumed_chunks >= 1
    assert ddz.ids(spark) == (rows, rows, _sum(0, rows))
    assert ddz.leftovers(spark) == []


@pytest.mark.parametrize(
    ("timeouts", "says"),
    [
        (DdzTimeouts(lock=2), "lock timeout"),
        (DdzTimeouts(lock=600, stall=4), "made no progress in 4 s"),
    ],
    ids=["lock-timeout", "stalled-job"],
)
def test_a_chunk_stuck_on_a_lock_fails_within_its_timeout(
    spark: SparkSession, pg_url: str, tmp_path: Path, timeouts: DdzTimeouts, says: str
) -> None:
    """Another session locks the stage once the load has made it: the chunk's insert waits
    for the lock until the lock timeout ends it, or, where locks may be waited for longer,
    the stall timeout cancels the chunk's Spark job. Either way the run fails in seconds,
    naming the table and the chunk, and the next load writes the exact rows."""
    url, properties = jdbc_url_of(pg_url)
    user, password = properties["user"], properties["password"]
    writer = make_writer(url, user, password, str(tmp_path), CHUNK_ROWS, timeouts, "jdbc")
    locker = psycopg.connect(**{**postgres_connect_args(url, properties), "autocommit": False})
    locked = threading.Event()
    done = threading.Event()

    def lock_the_stage() -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            found = locker.execute(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relname LIKE 'FAULTS__dm_stage%%'"
            ).fetchone()
            locker.rollback()
            if found:
                locker.execute(f"LOCK TABLE {found[0]} IN SHARE MODE")  # held: no commit
                locked.set()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=lock_the_stage, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(DdzWriteError) as raised:
            writer.write(source_rows(spark, ROWS), DdzTarget(TABLE, max_connections=1))
        elapsed = time.monotonic() - started
    finally:
        done.set()
        thread.join(timeout=30)
        locker.rollback()  # releases the stage
        locker.close()
    assert locked.is_set()
    message = str(raised.value)
    assert message.startswith("DDZ table ddz.FAULTS: chunk ")
    assert says in message
    assert elapsed < 90
    report = make_writer(
        url, properties["user"], properties["password"], str(tmp_path), CHUNK_ROWS
    ).write(source_rows(spark, ROWS), DdzTarget(TABLE))
    assert report.rows == ROWS
    ddz = Ddz(url, properties["user"], properties["password"], tmp_path)
    assert ddz.ids(spark) == (ROWS, ROWS, _sum(0, ROWS))


def test_two_materializations_of_one_product_queue_in_its_pool(
    spark: SparkSession, tmp_path: Path, processes: list[Popen[bytes]]
) -> None:
    """Two `data-mesh materialize --product sor1_payments` at once, on the embedded default
    (the issue's case): the second run's step waits in the product's Dagster pool until the
    first has loaded, then loads; both succeed and the table holds the exact rows."""
    home = tmp_path / "home"
    env = cli_env(home)
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    # Many small chunks: the first load lasts long enough for the second run to reach it.
    store = make_engine(f"sqlite:///{home / 'metadata.db'}")
    add_config_item(store, "global", "ddz.max_chunk_rows", "1000")
    store.dispose()
    run_cli(env, "generate-sample-data", "--rows", "60000")

    def materialize() -> Popen[bytes]:
        process = start_cli(env, "materialize", "-p", "sor1_payments", output=PIPE)
        processes.append(process)
        return process

    first = Output(materialize())
    deadline = time.monotonic() + 600
    while not (home / "dagster_home" / "dagster.yaml").exists():  # written by the first run
        assert time.monotonic() < deadline and first.process.poll() is None, first.text
        time.sleep(0.2)
    with open_instance(home / "dagster_home") as instance:
        while not instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
            assert time.monotonic() < deadline and first.process.poll() is None, first.text
            time.sleep(0.2)
        second = Output(materialize())
        assert first.finished(600) == 0, first.text
        assert second.finished(600) == 0, second.text
        runs = instance.get_runs()
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS] * 2
        blocked = [
            run.run_id
            for run in runs
            for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            if "blocked by limit for pool product/sor1_payments" in (entry.message or "")
        ]
        assert blocked == [runs[0].run_id]  # the later run waited, the first did not
    ddz = Ddz(
        f"jdbc:h2:file:{home / 'ddz' / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE", "", "", home
    )
    rows = ddz.query(spark, 'SELECT COUNT(*) FROM "ddz"."SOR1_PAYMENTS"')
    assert int(str(rows[0][0])) == 60_000  # loaded twice, replaced once: never doubled
    assert ddz.leftovers(spark, "SOR1_PAYMENTS") == []
