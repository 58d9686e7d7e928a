"""Runs whose process is gone are marked failed, so a killed run does not stay STARTED.

Dagster's run monitoring cannot see it on a LOCAL instance: `data-mesh materialize` runs
in-process (no launcher to ask), and `dagster dev`'s DefaultRunLauncher has no run-worker health
check (`supports_check_run_worker_health` is False), so monitoring only times out runs that never
start. Instead each run names the process that executes it:
- runs of `data-mesh materialize` carry tags with the host, the pid and the process's start
  (so a pid the system gave to another process later is not taken for the run's);
- runs launched from the UI have Dagster's own "Started process for run (pid: N)" event, written
  by the run worker; on a LOCAL instance that worker ran on this host.
`fail_runs_of_dead_processes` reports a run failed (CANCELING ones canceled) when that process is
gone: `data-mesh runs`, `materialize` and `dev` call it. Only public Dagster APIs are used.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

HOST_TAG = "data_mesh/host"
PID_TAG = "data_mesh/pid"
PROCESS_START_TAG = "data_mesh/process_start"
# The run worker's first event: Dagster writes it with the worker's pid as metadata.
RUN_WORKER_STARTED = "Started process for run"
# /proc's start times are in clock ticks; a wall-clock start derived from them can be a second
# off, and the run worker's event is written after its process started.
_CLOCK_SLACK_S = 2.0
_IN_PROGRESS = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class RunProcess:
    host: str
    pid: int
    # "<boot id>:<start ticks>" of the process, when tagged; exact, survives nothing but it.
    start: str | None = None
    # A UI run's worker reported itself at this time: a process with its pid that started
    # later is another one.
    reported_at: float | None = None

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}"


@dataclass(frozen=True)
class MarkedRun:
    run_id: str
    job_name: str
    status: DagsterRunStatus  # what it was marked
    message: str


def run_process_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    start = _process_start(os.getpid())
    if start is not None:
        tags[PROCESS_START_TAG] = start
    return tags


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start ticks since boot) from /proc, or None without /proc (not Linux) or pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: fields restart after its `)`.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _process_start(pid: int) -> str | None:
    stat = _proc_stat(pid)
    boot = _boot_id()
    return f"{boot}:{stat[1]}" if stat is not None and boot else None


def _started_wall_clock(ticks: int) -> float | None:
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    boot = next((float(line.split()[1]) for line in lines if line.startswith("btime ")), None)
    return None if boot is None else boot + ticks / os.sysconf("SC_CLK_TCK")


def process_gone(process: RunProcess) -> bool:
    """True when `process` (on this host) no longer runs: no such pid, a zombie (killed, not yet
    reaped by its parent), or a pid that now belongs to a process started after it."""
    if process.pid <= 1:
        return False  # not a pid to probe (0 and -1 would signal groups)
    try:
        os.kill(process.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # another user's process: it exists
    stat = _proc_stat(process.pid)
    if stat is None:
        return False  # no /proc: the pid exists, take it for the run's
    state, ticks = stat
    if state in ("Z", "X"):
        return True
    if process.start is not None:
        return process.start != f"{_boot_id()}:{ticks}"
    if process.reported_at is not None:
        started = _started_wall_clock(ticks)
        return started is not None and started > process.reported_at + _CLOCK_SLACK_S
    return False


def run_process(
    instance: DagsterInstance, run: DagsterRun, trust_run_worker_event: bool
) -> RunProcess | None:
    """The process executing `run`: from its tags, else (when trusted, i.e. on a LOCAL instance
    whose run workers run on this host) from its run worker's start event; None if unknown."""
    tags = run.tags
    if HOST_TAG in tags and tags.get(PID_TAG, "").isdigit():
        return RunProcess(tags[HOST_TAG], int(tags[PID_TAG]), tags.get(PROCESS_START_TAG))
    if not trust_run_worker_event:
        return None
    events = instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
    for entry in reversed(events):  # the latest worker, should the run have had several
        event = entry.dagster_event
        if event is None or not (event.message or "").startswith(RUN_WORKER_STARTED):
            continue
        pid = event.engine_event_data.metadata.get("pid")
        text = str(getattr(pid, "value", ""))
        if text.isdigit():
            return RunProcess(socket.gethostname(), int(text), reported_at=entry.timestamp)
    return None


def fail_runs_of_dead_processes(
    instance: DagsterInstance, trust_run_worker_event: bool
) -> list[MarkedRun]:
    """Mark each unfinished run whose process on this host is gone: failed (canceled when it
    was being canceled), with a message saying why. Runs of other hosts are left alone."""
    host = socket.gethostname()
    marked = []
    for record in instance.get_run_records(filters=RunsFilter(statuses=_IN_PROGRESS)):
        run = record.dagster_run
        process = run_process(instance, run, trust_run_worker_event)
        if process is None or process.host != host or not process_gone(process):
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.status != run.status:
            continue  # it moved on while we looked: its process reported after all
        message = (
            f"The process that ran this run ({process}) is gone: it was killed (SIGKILL, out of "
            "memory) or crashed before it could record the run's end, so data_mesh marked the "
            "run {}. A DDZ load it left unfinished resumes at the next run of its product."
        )
        if run.status == DagsterRunStatus.CANCELING:
            text = message.format("canceled")
            instance.report_run_canceled(current, text)
            marked.append(MarkedRun(run.run_id, run.job_name, DagsterRunStatus.CANCELED, text))
        else:
            text = message.format("failed")
            instance.report_run_failed(current, text)
            marked.append(MarkedRun(run.run_id, run.job_name, DagsterRunStatus.FAILURE, text))
        if instance.event_log_storage.supports_global_concurrency_limits:
            # Its pool slots would otherwise stay taken: the next run of its product waits.
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
    return marked
