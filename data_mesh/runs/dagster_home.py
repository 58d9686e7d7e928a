"""The LOCAL Dagster home: where `data-mesh materialize` and `data-mesh dev` keep their runs.

The project writes the home's `dagster.yaml` when there is none, with Dagster's run monitoring
on. With the DefaultRunLauncher of `dagster dev` that covers runs that never start or never
finish cancelling (and a maximum run time when set); it has no health check of a run worker,
so a worker killed after its run STARTED is caught by `data_mesh.runs.liveness` instead.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from data_mesh.settings.model import Settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

DAGSTER_YAML = "dagster.yaml"
# Dagster's own keys (its instance schema validates them when the instance loads).
LOCAL_INSTANCE_CONFIG: dict[str, object] = {
    "run_monitoring": {
        "enabled": True,
        "start_timeout_seconds": 180,
        "cancel_timeout_seconds": 180,
        # The DefaultRunLauncher cannot resume a run: Dagster refuses anything but 0.
        "max_resume_run_attempts": 0,
        "poll_interval_seconds": 30,
        # The pool slot of a run that ended without giving it back (a killed worker).
        "free_slots_after_run_end_seconds": 30,
    },
    # Each data product's DDZ step is in a pool of its own (`product/<name>`): one at a time,
    # so a second run of a product waits for the first instead of loading beside it.
    "concurrency": {"pools": {"default_limit": 1}},
    # As in deploy/dagster/dagster.yaml. Without it the first run prints Dagster's telemetry
    # banner ("add ... to $DAGSTER_HOME/dagster.yaml, creating that file if necessary") to
    # stderr, which reads as a missing-file problem in a home that has its dagster.yaml.
    "telemetry": {"enabled": False},
}
_HEADER = (
    "# The LOCAL Dagster instance of data_mesh, written by `data-mesh materialize` or\n"
    "# `data-mesh dev` because this Dagster home had no dagster.yaml. Edit it freely: it is\n"
    "# never rewritten. Run monitoring fails runs that never start; runs whose process was\n"
    "# killed are marked failed by `data-mesh runs`, `materialize` and `dev`. A product's\n"
    "# DDZ loads run one at a time (a pool per product, limit 1).\n"
)


def dagster_home_in_use(settings: Settings) -> Path:
    """DAGSTER_HOME when it is set (made absolute: Dagster refuses a relative one), otherwise
    the LOCAL home under DATA_MESH_HOME."""
    given = os.environ.get("DAGSTER_HOME")
    return Path(given).expanduser().resolve() if given else settings.dagster_home


def prepare_dagster_home(home: Path, settings: Settings) -> Path:
    """Create `home` and point DAGSTER_HOME at it (absolute). The project's own LOCAL home gets
    its dagster.yaml when it has none; a home elsewhere is the user's and left as it is."""
    home = home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if home == settings.dagster_home and not (home / DAGSTER_YAML).exists():
        write_instance_config(home)
    return home


def write_instance_config(home: Path) -> bool:
    """Write `home`/dagster.yaml unless it exists; False when it did. Two processes may start at
    once: the file appears whole (written aside, then linked), and an existing one is kept."""
    target = home / DAGSTER_YAML
    text = _HEADER + yaml.safe_dump(LOCAL_INSTANCE_CONFIG, sort_keys=False)
    with tempfile.NamedTemporaryFile("w", dir=home, prefix=".dagster-", delete=False) as file:
        file.write(text)
    try:
        os.link(file.name, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(file.name)
    return True


@contextmanager
def open_instance(home: Path) -> Iterator[DagsterInstance]:
    """The Dagster instance of `home`, opened by one process at a time: Dagster's SQLite
    storages create and stamp their databases when opened, and two `data-mesh materialize`
    starting together on a new home otherwise race to it (alembic then finds two heads).
    The lock is held only while opening."""
    from dagster import DagsterInstance

    home.mkdir(parents=True, exist_ok=True)
    with (home / ".data_mesh_open.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            instance = DagsterInstance.from_config(str(home))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    with instance:
        yield instance
