"""Two meshes (two metadata stores, one environment) in one code location: one set of resources
serves both, the store-bound ones writing to the store of the mesh named; a mesh other than
the default prefixes its jobs, sensors, pools and code location metadata; two `defs.yaml`
files load together."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine

from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.current import load_catalog
from data_mesh.catalog.models import Catalog
from data_mesh.component.automation import _run_owner, all_products_job, daily_job_names
from data_mesh.component.definitions import build_definitions
from data_mesh.component.naming import MESH_TAG
from data_mesh.component.project import project_root
from data_mesh.component.specs import dataset_asset_key
from data_mesh.devtools.synthetic import generate_metadata
from data_mesh.quality.evaluate import QualityReport, RuleOutcome
from data_mesh.resources.audit import audit_write
from data_mesh.resources.ddz_io_manager import mesh_of
from data_mesh.resources.environments import (
    AUDIT_LOG_KEY,
    DDZ_IO_MANAGER_KEY,
    METADATA_STORE_KEY,
    QUALITY_HISTORY_KEY,
    MeshSettingsError,
    resources_for_meshes,
    shared_resources,
)
from data_mesh.settings.model import Settings
from data_mesh.store.audit import SUCCESS, audit_row, latest_audit
from data_mesh.store.database import make_engine, upgrade_store
from data_mesh.store.quality_results import latest_quality_results
from data_mesh.store.rows import read_store

BIN = Path(sys.executable).parent
OTHER = "sales"


def _synthetic_store(settings: Settings, tmp_path: Path) -> tuple[Settings, Engine]:
    """The settings of a second mesh: same environment, its own store of synthetic products."""
    url = f"sqlite:///{tmp_path}/sales.db"
    engine = make_engine(url)
    upgrade_store(engine)
    generate_metadata(engine, 3)
    return settings.model_copy(update={"metadata_url": url}), engine


def test_store_bound_resources_write_to_the_store_of_the_mesh_named(
    settings: Settings, store: Engine, tmp_path: Path
) -> None:
    sales, sales_engine = _synthetic_store(settings, tmp_path)
    resources = resources_for_meshes({"data_mesh": settings, OTHER: sales})

    audit = resources[AUDIT_LOG_KEY]
    assert audit.record(audit_row("a/ddz/one", "t", "run-a", SUCCESS, 1.0), "data_mesh")
    assert audit.record(audit_row("b/ddz/two", "t", "run-b", SUCCESS, 1.0), OTHER)
    # The DDZ IO manager's audit log is the same resource: the step's mesh names the store.
    ddz = resources[DDZ_IO_MANAGER_KEY]
    audit_write(ddz.audit, OTHER, "b/ddz/three", "t", "run-c", SUCCESS, time.monotonic(), rows=3)
    assert [r.AssetKey for r in latest_audit(store)] == ["a/ddz/one"]
    assert sorted(r.AssetKey for r in latest_audit(sales_engine)) == ["b/ddz/three", "b/ddz/two"]

    rule = next(
        r
        for p in build_catalog(read_store(sales_engine)).products
        for t in p.transformations
        for r in t.rules
    )
    outcome = RuleOutcome(rule, True, 10, 0, "no failing rows", "SELECT 1")
    report = QualityReport((outcome,), 10, None, None, 0)  # type: ignore[arg-type]
    assert resources[QUALITY_HISTORY_KEY].record(report, "run-q", OTHER)
    assert [r.RunID for r in latest_quality_results(sales_engine)] == ["run-q"]
    assert latest_quality_results(store) == []

    metadata_store = resources[METADATA_STORE_KEY]
    with metadata_store.engine_in_use(OTHER) as engine:
        assert str(engine.url) == sales.resolved_metadata_url
    with metadata_store.engine_in_use("data_mesh") as engine:
        assert str(engine.url) == settings.resolved_metadata_url
    with pytest.raises(KeyError, match="no metadata store for mesh 'nowhere'"):
        metadata_store.engine("nowhere")


def test_the_io_manager_reads_the_mesh_of_the_step() -> None:
    @dg.op(tags={MESH_TAG: OTHER})
    def tagged() -> None: ...

    @dg.op
    def untagged() -> None: ...

    assert mesh_of(dg.build_output_context(op_def=tagged)) == OTHER
    assert mesh_of(dg.build_output_context(op_def=untagged)) == "data_mesh"
    assert mesh_of(dg.build_output_context()) == "data_mesh"


def test_meshes_share_one_environment_and_one_set_of_resources(
    settings: Settings, tmp_path: Path
) -> None:
    sales = settings.model_copy(update={"metadata_url": f"sqlite:///{tmp_path}/sales.db"})
    first = shared_resources({"data_mesh": settings, OTHER: sales})
    again = shared_resources({OTHER: sales, "data_mesh": settings})
    assert first is not again and all(first[key] is again[key] for key in first)
    assert first[AUDIT_LOG_KEY].store is first[METADATA_STORE_KEY]
    assert set(first[METADATA_STORE_KEY].stores) == {"data_mesh", OTHER}

    elsewhere = sales.model_copy(update={"spark_master": "local[1]"})
    with pytest.raises(MeshSettingsError) as error:
        resources_for_meshes({"data_mesh": settings, OTHER: elsewhere})
    assert "'data_mesh' and 'sales'" in str(error.value)
    assert "'spark_master'" in str(error.value)


def test_two_meshes_have_distinct_names_and_merge(loaded: Settings, tmp_path: Path) -> None:
    sales, _ = _synthetic_store(loaded, tmp_path)
    meshes = {"data_mesh": loaded, OTHER: sales}
    first = load_catalog(loaded)
    second = dataclasses.replace(load_catalog(sales), mesh=OTHER)
    assert second.products and not second.problems
    defs = dg.Definitions.merge(
        build_definitions(first, shared_resources(meshes), alone=False),
        build_definitions(second, shared_resources(meshes), alone=False),
    )
    repository = defs.get_repository_def()

    first_jobs = {"all_data_products", *daily_job_names(first).values()}
    second_jobs = {all_products_job(second), *daily_job_names(second).values()}
    assert {job.name for job in defs.jobs or []} == first_jobs | second_jobs
    assert f"{OTHER}__all_data_products" in second_jobs
    assert all(job.startswith(f"{OTHER}__") for job in second_jobs)
    names = [s.name for s in defs.sensors or []]
    sensors = set(names)
    assert {"metadata_store_sensor", "run_failure_sensor"} <= sensors
    assert {f"{OTHER}__metadata_store_sensor", f"{OTHER}__run_failure_sensor"} <= sensors
    assert len(sensors) == len(names)

    pools = {
        a.op.pool: a.op.tags.get(MESH_TAG)
        for a in defs.assets or []
        if isinstance(a, dg.AssetsDefinition) and a.is_executable
    }
    assert {pool for pool, mesh in pools.items() if mesh == OTHER} == {
        f"{OTHER}__product/{p.name}" for p in second.products
    }
    assert {pool for pool, mesh in pools.items() if mesh == "data_mesh"} == {
        f"product/{p.name}" for p in first.products
    }

    # Each mesh's all-products job runs its own assets only.
    def job_keys(name: str) -> set[str]:
        job = repository.get_job(name)
        return {k.to_user_string() for k in job.asset_layer.executable_asset_keys}

    own = job_keys("all_data_products")
    other = job_keys(f"{OTHER}__all_data_products")
    assert own and other
    assert own <= _ddz_keys(first) and other <= _ddz_keys(second)

    # A failed run is audited by its own mesh's run failure sensor only.
    first_owns, second_owns = _run_owner(first), _run_owner(second)
    sales_run = dg.DagsterRun(job_name=f"{OTHER}__all_data_products", tags={MESH_TAG: OTHER})
    own_run = dg.DagsterRun(job_name="all_data_products")
    sales_key = dataset_asset_key(second.products[0].transformations[0].output)
    sales_assets = dg.DagsterRun(job_name="__ASSET_JOB", asset_selection=frozenset({sales_key}))
    assert second_owns(sales_run) and not first_owns(sales_run)
    assert first_owns(own_run) and not second_owns(own_run)
    assert second_owns(sales_assets) and not first_owns(sales_assets)
    sales_check = dg.AssetCheckKey(sales_key, "a_rule")
    sales_checks = dg.DagsterRun(
        job_name="__ASSET_JOB", asset_selection=None, asset_check_selection={sales_check}
    )
    assert second_owns(sales_checks) and not first_owns(sales_checks)  # a rerun of checks

    assert defs.metadata["data_mesh/products_loaded"].value == len(first.products)  # type: ignore[union-attr]
    assert defs.metadata[f"{OTHER}/products_loaded"].value == len(second.products)  # type: ignore[union-attr]


def _project_copy(target: Path) -> Path:
    """The files of the project git knows (tracked, or new and not ignored), copied to
    `target`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=project_root(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = project_root() / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.slow
def test_two_defs_yaml_files_load_in_one_code_location(loaded: Settings, tmp_path: Path) -> None:
    """A second `defs.yaml` (another `name` and `metadata_url`) in a copy of the project: `dg`
    and `dagster` load both meshes together, with one set of resources."""
    sales, _ = _synthetic_store(loaded, tmp_path)
    project = _project_copy(tmp_path / "project")
    mesh = project / "data_mesh" / "defs" / OTHER
    mesh.mkdir()
    (mesh / "defs.yaml").write_text(
        "type: data_mesh.component.mesh.DataMeshComponent\n"
        "attributes:\n"
        f"  name: {OTHER}\n"
        f"  metadata_url: {sales.resolved_metadata_url}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(project)}

    def run(*command: str | Path) -> str:
        done = subprocess.run(
            [str(c) for c in command],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    run(BIN / "dg", "check", "defs")
    listed = json.loads(run(BIN / "dg", "list", "defs", "--json"))
    assets = {a["asset_key"] for a in listed["assets"]}
    assert _ddz_keys(load_catalog(loaded)) <= assets
    assert _ddz_keys(load_catalog(sales)) <= assets
    jobs = {j["name"] for j in listed["jobs"]}
    assert {"all_data_products", f"{OTHER}__all_data_products"} <= jobs
    sensors = {s["name"] for s in listed["sensors"]}
    assert {"metadata_store_sensor", f"{OTHER}__metadata_store_sensor"} <= sensors
    # Dagster's own loader (code servers, run workers): the same location validates.
    run(BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml")
    # The real project is untouched: its defs folder still declares one mesh.
    assert not (project_root() / "data_mesh" / "defs" / OTHER).exists()


def _ddz_keys(catalog: Catalog) -> set[str]:
    return {
        dataset_asset_key(t.output).to_user_string()
        for p in catalog.products
        for t in p.transformations
    }


def test_a_mesh_with_its_own_url_is_not_the_environments_azure_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DEV..PROD name the Azure SQL store in the environment, which wins over a URL: a mesh
    with its own `metadata_url` must read that URL, not the other mesh's server."""
    from data_mesh.component.mesh import DataMeshComponent
    from data_mesh.store.connection import describe_store

    monkeypatch.setenv("DATA_MESH_METADATA_AZURE_SERVER", "sql-x.database.windows.net")
    default = describe_store(DataMeshComponent().settings)
    other = describe_store(
        DataMeshComponent(name=OTHER, metadata_url="sqlite:////tmp/other/store.db").settings
    )
    assert default.startswith("Azure SQL sql-x.database.windows.net")
    assert other == "sqlite:////tmp/other/store.db"


def test_two_meshes_on_one_store_are_refused(settings: Settings) -> None:
    from data_mesh.component.mesh import DataMeshComponent

    first = DataMeshComponent()
    second = DataMeshComponent(name=OTHER, metadata_url=settings.resolved_metadata_url)

    class Tree:
        def get_all_components(self, of_type: type) -> list[DataMeshComponent]:
            return [first, second]

    context = dataclasses.replace(dg.ComponentTree.for_test().load_context)
    object.__setattr__(context, "component_tree", Tree())
    with pytest.raises(ValueError, match=r"meshes 'data_mesh' and .* read the same store"):
        first.meshes_of(context)
