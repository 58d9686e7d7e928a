"""A killed run is marked failed: the LOCAL Dagster home has run monitoring on, and runs whose
process is gone (real processes, SIGKILLed) are reported failed by data_mesh; live ones are not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from data_mesh.runs.dagster_home import DAGSTER_YAML, dagster_home_in_use, prepare_dagster_home
from data_mesh.runs.liveness import (
    HOST_TAG,
    PID_TAG,
    PROCESS_START_TAG,
    RunProcess,
    fail_runs_of_dead_processes,
    process_gone,
    run_process_tags,
)
from data_mesh.settings.model import Settings
from data_mesh_tests.conftest import REPO

# A run executed in-process, as `data-mesh materialize` does, that waits until it is killed.
SLEEPY_RUN = """
import sys, time
from dagster import DagsterInstance, job, op
from data_mesh.runs.liveness import run_process_tags

@op
def wait() -> None:
    time.sleep(600)

@job
def sleepy() -> None:
    wait()

with DagsterInstance.from_config(sys.argv[1]) as instance:
    sleepy.execute_in_process(instance=instance, tags=run_process_tags())
"""


def test_the_local_dagster_home_gets_run_monitoring(settings: Settings, tmp_path: Path) -> None:
    home = prepare_dagster_home(dagster_home_in_use(settings), settings)
    assert home == settings.dagster_home and os.environ["DAGSTER_HOME"] == str(home)
    assert home.is_absolute()
    # Dagster validates the file against its instance schema when it loads it.
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_max_resume_run_attempts == 0
    # A file that exists is the user's: kept as it is.
    (home / DAGSTER_YAML).write_text("telemetry:\n  enabled: false\n")
    prepare_dagster_home(home, settings)
    assert (home / DAGSTER_YAML).read_text() == "telemetry:\n  enabled: false\n"
    # A home outside DATA_MESH_HOME is not the project's: nothing written there.
    elsewhere = prepare_dagster_home(tmp_path / "mine", settings)
    assert elsewhere.is_dir() and not (elsewhere / DAGSTER_YAML).exists()


def test_a_relative_dagster_home_is_made_absolute(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "relative/dagster_home")
    assert dagster_home_in_use(settings) == tmp_path / "relative" / "dagster_home"


def _start_sleepy_run(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", SLEEPY_RUN, str(home)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for_started(instance: DagsterInstance, count: int) -> list[str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        if len(runs) >= count:
            return [run.run_id for run in runs]
        time.sleep(0.2)
    pytest.fail(f"{count} runs did not start")


def test_a_sigkilled_in_process_run_is_marked_failed(settings: Settings) -> None:
    home = prepare_dagster_home(settings.dagster_home, settings)
    # The instance's storage is made here first: two processes making it at once collide.
    with DagsterInstance.from_config(str(home)) as instance:
        killed = _start_sleepy_run(home)
        alive = _start_sleepy_run(home)
        try:
            _wait_for_started(instance, 2)
            by_pid = {
                int(run.tags[PID_TAG]): run.run_id
                for run in instance.get_runs(
                    filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])
                )
            }
            assert set(by_pid) == {killed.pid, alive.pid}
            os.killpg(killed.pid, signal.SIGKILL)
            killed.wait(timeout=30)
            # Nothing reports the end of a SIGKILLed run: Dagster leaves it STARTED.
            run = instance.get_run_by_id(by_pid[killed.pid])
            assert run is not None and run.status == DagsterRunStatus.STARTED

            marked = fail_runs_of_dead_processes(instance, trust_run_worker_event=True)

            assert [m.run_id for m in marked] == [by_pid[killed.pid]]
            run = instance.get_run_by_id(by_pid[killed.pid])
            assert run is not None and run.status == DagsterRunStatus.FAILURE
            failure = instance.get_records_for_run(
                run.run_id, of_type={DagsterEventType.RUN_FAILURE}
            ).records
            message = failure[-1].event_log_entry.dagster_event.message or ""  # type: ignore[union-attr]
            assert f"pid {killed.pid}" in message and "is gone" in message
            assert "resumes at the next run" in message
            # The live run is left alone, and a second look changes nothing.
            live = instance.get_run_by_id(by_pid[alive.pid])
            assert live is not None and live.status == DagsterRunStatus.STARTED
            assert fail_runs_of_dead_processes(instance, trust_run_worker_event=True) == []
        finally:
            for process in (killed, alive):
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)


def test_a_reused_pid_or_a_zombie_is_not_the_runs_process() -> None:
    tags = run_process_tags()
    me = RunProcess(tags[HOST_TAG], int(tags[PID_TAG]), tags.get(PROCESS_START_TAG))
    assert not process_gone(me)
    # The same pid with another start: the system gave the pid to a newer process.
    assert process_gone(RunProcess(me.host, me.pid, "another-boot:1"))
    # A UI run's worker reported itself before this process started: not this process.
    assert process_gone(RunProcess(me.host, me.pid, reported_at=time.time() - 10 * 86400))
    assert not process_gone(RunProcess(me.host, me.pid, reported_at=time.time()))
    # Killed but not reaped by its parent yet: a zombie, gone for the run.
    child = subprocess.Popen(["sleep", "60"])
    try:
        child.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert process_gone(RunProcess(me.host, child.pid))
    finally:
        child.wait(timeout=10)
    assert process_gone(RunProcess(me.host, child.pid))
