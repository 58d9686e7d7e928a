"""The `dg` project data_mesh is, seen from the `data-mesh` command: its mesh components, the
state Dagster saved for each, and refreshing it the way `dg` does."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster.components.utils.project_paths import get_local_state_path

from data_mesh.component.mesh import DataMeshComponent
from data_mesh.component.state import MeshState, read_state
from data_mesh.runs.dagster_home import open_instance
from data_mesh.settings.model import Settings
from data_mesh.store.connection import describe_store


def project_root() -> Path:
    """The folder of pyproject.toml's `[tool.dg]`: the data_mesh package's parent."""
    return Path(__file__).resolve().parents[2]


def mesh_components() -> list[DataMeshComponent]:
    """Every `DataMeshComponent` the project's `defs/` folder declares."""
    tree = dg.ComponentTree.for_project(project_root())
    return tree.get_all_components(of_type=DataMeshComponent)


def refresh_state(settings: Settings, dagster_home: Path | None) -> list[str]:
    """Refresh the state of every mesh that reads the store of `settings`, as `dg utils
    refresh-defs-state` does (Dagster's `refresh_state`), with the instance of `dagster_home`
    (default: DAGSTER_HOME's), whose state storage then holds the new version. In this process:
    the command would import everything again. Returns the keys refreshed: none when no mesh
    reads that store (a store loaded for another code location)."""
    store = describe_store(settings)
    meshes = [c for c in mesh_components() if describe_store(c.settings) == store]
    if not meshes:
        return []
    # While the instance is open, Dagster's state storage is the instance's.
    with open_instance(dagster_home) if dagster_home else dg.DagsterInstance.get():
        for mesh in meshes:
            asyncio.run(mesh.refresh_state(project_root()))
    return [mesh.defs_state_config.key for mesh in meshes]


@dataclass(frozen=True)
class SavedState:
    key: str
    where: str
    state: MeshState | None


def saved_state(component: DataMeshComponent, instance: dg.DagsterInstance | None) -> SavedState:
    """The state Dagster would load for `component` now: the project's file (LOCAL_FILESYSTEM)
    or the latest version in the instance's state storage."""
    config = component.defs_state_config
    key = config.key
    if config.management_type.value == "LOCAL_FILESYSTEM":
        path = get_local_state_path(key, project_root())
        return SavedState(key, str(path), read_state(path) if path.is_file() else None)
    storage = instance.defs_state_storage if instance is not None else None
    if storage is None:
        return SavedState(key, "no state storage (set DAGSTER_HOME)", None)
    version = storage.get_latest_version(key)
    if version is None:
        return SavedState(key, f"{type(storage).__name__}: no version", None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state"
        storage.download_state_to_path(key, version, path)
        return SavedState(key, f"{type(storage).__name__} version {version}", read_state(path))
