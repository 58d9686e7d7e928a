"""`data-mesh materialize` killed for real (SIGKILL) in the middle of its DDZ load, on the
embedded default: `data-mesh runs` shows the run failed, saying why, and the next run resumes
the load to the exact rows. While it ran, its Spark JVM had no secret in its environment."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from pyspark.sql import SparkSession

from data_mesh.ddz.connection import DdzConnection
from data_mesh.runs.dagster_home import open_instance
from data_mesh.runs.liveness import PID_TAG, RUN_WORKER_STARTED
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import (
    REPO,
    SAMPLE_PRODUCTS,
    add_config_item,
    cli_env,
    ddz_rows,
    ledger_chunks,
    run_cli,
    start_cli,
    wait_for_port,
)

pytestmark = pytest.mark.slow
ROWS = 40_000  # payments, so 40,000 DDZ rows, loaded in chunks of 1,000
SECRET = "never-in-the-jvm-5c1f"
ASSET = AssetKey(["payments", "ddz", "sor1_payments"])


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _jvm_environments(pid: int) -> list[bytes]:
    environments = []
    for child in _descendants(pid):
        try:
            if Path(f"/proc/{child}/comm").read_text().strip() == "java":
                environments.append(Path(f"/proc/{child}/environ").read_bytes())
        except OSError:
            continue
    return environments


def test_a_killed_materialize_is_marked_failed_and_its_load_resumes(
    spark: SparkSession, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = cli_env(
        home,
        # Secrets of the process (not used by the embedded default): never in the JVM's.
        DATA_MESH_SQL_PASSWORD=SECRET,
        AZURE_CLIENT_SECRET=SECRET,
        COLUMNS="200",
    )
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    # Small chunks, so a load has many and can be killed between them.
    add_config_item(
        make_engine(f"sqlite:///{home / 'metadata.db'}"), "global", "ddz.max_chunk_rows", "1000"
    )
    run_cli(env, "generate-sample-data", "--rows", str(ROWS))
    run_cli(env, "materialize", "--product", "sor1_payments")
    assert (home / "dagster_home" / "dagster.yaml").is_file()
    ddz = DdzConnection(f"jdbc:h2:file:{home / 'ddz' / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")

    def fingerprint() -> tuple:
        return ddz_rows(
            spark,
            ddz,
            'SELECT COUNT(*), SUM("UNQ_USER_ID"), SUM("PAYMENT_AMOUNT") FROM "ddz"."SOR1_PAYMENTS"',
        )[0]

    def committed_chunks() -> int:
        return ledger_chunks(spark, ddz)

    expected = fingerprint()
    assert expected[0] == ROWS

    process = start_cli(env, "materialize", "-p", "sor1_payments")
    try:
        with open_instance(home / "dagster_home") as instance:
            deadline = time.monotonic() + 600
            run_id = None
            while run_id is None and time.monotonic() < deadline and process.poll() is None:
                started = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
                run_id = next(
                    (r.run_id for r in started if r.tags.get(PID_TAG) == str(process.pid)), None
                )
                time.sleep(0.2)
            assert run_id is not None, "the run did not start"
            # Only once the writer holds the H2 file does this process reach it (AUTO_SERVER).
            lock = home / "ddz" / "ddz.lock.db"
            while not lock.exists() and time.monotonic() < deadline and process.poll() is None:
                time.sleep(0.2)
            while committed_chunks() < 3 and time.monotonic() < deadline:
                assert process.poll() is None, "the run ended before it could be killed mid-load"
                time.sleep(0.1)
            # The run's Spark JVM (started lazily, now loading) never got the secrets.
            jvms = _jvm_environments(process.pid)
            assert jvms and all(b"DATA_MESH_HOME=" in e for e in jvms)
            assert not [e for e in jvms if SECRET.encode() in e]
            assert SECRET.encode() in Path(f"/proc/{process.pid}/environ").read_bytes()
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            run = instance.get_run_by_id(run_id)
            assert run is not None and run.status == DagsterRunStatus.STARTED  # as Dagster left it
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    shown = run_cli(env, "runs")
    line = next(line for line in shown.stdout.splitlines() if run_id[:8] in line)
    assert "FAILURE" in line
    assert f"run {run_id[:8]} (all_data_products) marked FAILURE" in shown.stderr
    assert f"pid {process.pid} on" in shown.stderr.replace("\n", " ")
    with open_instance(home / "dagster_home") as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.FAILURE

    # H2 takes over a dead holder's lock file once nothing has touched it for a few seconds.
    while lock.exists() and time.time() - lock.stat().st_mtime < 4:
        time.sleep(0.5)
    assert fingerprint() == expected  # the kill left the table as it was
    run_cli(env, "materialize", "--product", "sor1_payments")
    assert fingerprint() == expected
    with open_instance(home / "dagster_home") as instance:
        event = instance.get_latest_materialization_event(ASSET)
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    # It resumed: chunks the killed run committed were not loaded again (as in
    # test_ddz_faults, the last one recorded may be loaded again).
    assert metadata["resumed_chunks"].value >= 2  # type: ignore[operator]
    assert (
        metadata["resumed_chunks"].value + metadata["loaded_chunks"].value  # type: ignore[operator]
        == metadata["chunks"].value
    )


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run_worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid Dagster's run worker reported in its first event."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        event = entry.dagster_event
        if event is not None and (event.message or "").startswith(RUN_WORKER_STARTED):
            return int(event.engine_event_data.metadata["pid"].value)  # type: ignore[arg-type]
    return None


def _kill_tree(pid: int) -> None:
    """SIGKILL `pid`, its process group and everything below it."""
    below = _descendants(pid)
    for target in [pid, *below]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _failure_message(instance: DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type={DagsterEventType.RUN_FAILURE}).records
    event = records[-1].event_log_entry.dagster_event if records else None
    return (event.message or "") if event is not None else ""


def test_killed_runs_are_marked_failed_while_dev_runs_and_after_it_was_killed(
    tmp_path: Path,
) -> None:
    """`data-mesh dev` (dagster dev, DefaultRunLauncher, whose run monitoring has no run-worker
    health check):
    - a `data-mesh materialize` run SIGKILLed while dev runs is marked failed within seconds;
    - a run submitted through the UI's GraphQL API, then everything SIGKILLed (dev, the code
      server, the run worker: a crash of the machine's session), stays STARTED until
      `data-mesh runs` finds its run worker gone and marks it failed."""
    from dagster_graphql import DagsterGraphQLClient

    home = tmp_path / "home"
    # dev uses the LOCAL home whatever DAGSTER_HOME says; the CLI commands use DAGSTER_HOME.
    env = cli_env(home, COLUMNS="200")
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    run_cli(env, "generate-sample-data", "--rows", "2000")
    port = _free_port()
    log = tmp_path / "dev.log"
    data_mesh = str(Path(sys.executable).with_name("data-mesh"))
    with log.open("wb") as output:
        dev = subprocess.Popen(
            [data_mesh, "dev", "--port", str(port)],
            env={**env, "DAGSTER_HOME": "relative/is/ignored"},
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    cli = None
    try:
        wait_for_port(dev, port, 180, "data-mesh dev", log)
        with open_instance(home / "dagster_home") as instance:
            assert instance.run_monitoring_enabled  # the dagster.yaml data-mesh dev wrote

            # 1. A CLI run killed while dev runs: marked failed by dev's periodic look.
            cli = start_cli(env, "materialize", "-p", "sor1_payments")
            deadline = time.monotonic() + 300
            cli_run = None
            while cli_run is None:
                assert cli.poll() is None and time.monotonic() < deadline, "no CLI run started"
                started = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
                cli_run = next(
                    (r.run_id for r in started if r.tags.get(PID_TAG) == str(cli.pid)), None
                )
                time.sleep(0.2)
            _kill_tree(cli.pid)
            cli.wait(timeout=30)
            killed_at = time.monotonic()
            while (run := instance.get_run_by_id(cli_run)) is not None and not run.is_finished:
                assert time.monotonic() - killed_at < 60, "the killed CLI run stayed STARTED"
                time.sleep(0.5)
            assert run is not None and run.status == DagsterRunStatus.FAILURE
            assert f"pid {cli.pid} on" in _failure_message(instance, cli_run)

            # 2. A UI run, then dev and all its processes killed: nothing is left to notice.
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            ui_run = client.submit_job_execution("all_data_products", asset_selection=[ASSET.path])
            worker = None
            while worker is None:
                run = instance.get_run_by_id(ui_run)
                assert run is not None and not run.is_finished, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the UI run did not start"
                if run.status == DagsterRunStatus.STARTED:
                    worker = _run_worker_pid(instance, ui_run)
                time.sleep(0.2)
            _kill_tree(dev.pid)
            dev.wait(timeout=30)
            time.sleep(3)
            run = instance.get_run_by_id(ui_run)
            assert run is not None and run.status == DagsterRunStatus.STARTED

        shown = run_cli(env, "runs")
        assert f"run {ui_run[:8]} (all_data_products) marked FAILURE" in shown.stderr
        line = next(line for line in shown.stdout.splitlines() if ui_run[:8] in line)
        assert "FAILURE" in line
        with open_instance(home / "dagster_home") as instance:
            run = instance.get_run_by_id(ui_run)
            assert run is not None and run.status == DagsterRunStatus.FAILURE
            assert f"pid {worker} on" in _failure_message(instance, ui_run)
    finally:
        for process in (cli, dev):
            if process is not None and process.poll() is None:
                _kill_tree(process.pid)
                process.wait(timeout=30)
