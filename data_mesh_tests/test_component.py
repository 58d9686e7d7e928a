"""`DataMeshComponent`: its state is the store's rows and query files, refreshed by
`data-mesh load` through Dagster's own command; definitions, code servers and run workers are
built from the state and never query the store; a stale state shows; the `dg` project's
commands work; deployed pods load the version the refresh published."""

from __future__ import annotations

import datetime as dt
import gc
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import Engine, event, update
from typer.testing import CliRunner

from data_mesh.catalog.current import load_catalog, read_store_rows
from data_mesh.cli.app import app
from data_mesh.component.definitions import build_definitions
from data_mesh.component.mesh import DataMeshComponent
from data_mesh.component.project import project_root, refresh_state, saved_state
from data_mesh.component.state import encode_state, read_state, store_marker
from data_mesh.definitions import cyclic_gc_paused
from data_mesh.devtools.synthetic import TIMEZONES, generate_metadata
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh.store.rows import read_store

BIN = Path(sys.executable).parent


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_all_asset_keys()}


def _expected_keys(settings: Settings) -> set[str]:
    return _keys(build_definitions(load_catalog(settings), resources_for(settings)))


def _built_from_state(component: DataMeshComponent, path: Path) -> dg.Definitions:
    context = dg.ComponentTree.for_test().load_context
    return component.build_defs_from_state(context, path)


def _run(*command: str | Path, logs: bool = False) -> str:
    """The output of a command run in the project; with `logs`, Dagster's log lines too."""
    done = subprocess.run(
        [str(c) for c in command],
        cwd=project_root(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + (done.stderr if logs else "")


def test_load_refreshes_the_state_and_definitions_need_no_store(
    loaded: Settings, tmp_path: Path
) -> None:
    saved = saved_state(DataMeshComponent(), None)
    assert saved.state is not None and saved.key.startswith("data_mesh_local_")
    assert saved.state.marker == store_marker(read_store_rows(loaded))
    assert set(saved.state.query_files) == {
        "queries/sor1_payments/sor1_payments_query.properties",
        "queries/sor1_payments/sor1_payments_sequence.properties",
    }
    # A store that cannot be opened: the definitions still build, from the state alone.
    gone = f"sqlite:///{tmp_path}/missing/store.db"
    defs = _built_from_state(DataMeshComponent(metadata_url=gone), Path(saved.where))
    assert _keys(defs) == _expected_keys(loaded)
    assert defs.metadata["data_mesh/state_marker"].value == saved.state.marker  # type: ignore[union-attr]


def test_the_code_location_loads_like_a_run_worker_without_the_store(loaded: Settings) -> None:
    """What a code server or run worker does (Dagster's loader, no refresh): the store moved
    away, the assets are all there."""
    expected = _expected_keys(loaded)
    store = Path(loaded.resolved_metadata_url.removeprefix("sqlite:///"))
    store.rename(store.with_suffix(".moved"))
    listed = _run(BIN / "dagster", "asset", "list", "-m", "data_mesh.definitions")
    # It lists the assets that can be materialized: the DDZ DataSets (CDZ ones are external).
    assert set(listed.split()) == {k for k in expected if "/ddz/" in k}


def test_dg_lists_the_definitions_and_refreshes_the_state(loaded: Settings) -> None:
    """`dg list defs` (like `dg dev`) refreshes the state from the store first: a product
    loaded after the last refresh shows without another `data-mesh load`."""
    rules = schema.data_quality_rules
    with make_engine(loaded.resolved_metadata_url).begin() as connection:
        connection.execute(
            update(rules).where(rules.c.Name == "has_rows").values(Description="edited")
        )
    listed = json.loads(_run(BIN / "dg", "list", "defs", "--json"))
    assets = {a["asset_key"] for a in listed["assets"]}
    assert assets == _expected_keys(loaded)
    saved = saved_state(DataMeshComponent(), None)
    assert saved.state is not None
    assert saved.state.marker == store_marker(read_store_rows(loaded))


def test_a_stale_state_is_visible_until_refreshed(loaded: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["state", "status", "--check"])
    assert result.exit_code == 0 and "current" in result.output, result.output
    with make_engine(loaded.resolved_metadata_url).begin() as connection:
        rules = schema.data_quality_rules
        connection.execute(
            update(rules).where(rules.c.Name == "has_rows").values(Description="edited")
        )
    result = runner.invoke(app, ["state", "status", "--check"])
    assert result.exit_code == 1 and "stale" in result.output
    # Until refreshed, definitions keep the state's rows.
    saved = saved_state(DataMeshComponent(), None)
    defs = _built_from_state(DataMeshComponent(), Path(saved.where))
    specs = {
        spec.key.name: spec.description
        for assets in defs.assets or []
        if isinstance(assets, dg.AssetsDefinition)
        for spec in assets.check_specs
    }
    assert specs["has_rows"] != "edited"
    refresh_state(loaded, loaded.dagster_home)
    assert runner.invoke(app, ["state", "status", "--check"]).exit_code == 0


def test_deployed_pods_load_the_version_the_refresh_published(
    loaded: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, azurite: str
) -> None:
    """DEV/INT/QA/PROD: the CD pipeline's refresh uploads a version to the instance's state
    storage (a blob container through adlfs, as deploy/dagster/dagster.yaml has it; Azurite
    here) and every pod loads that version, with no store to query."""
    from azure.storage.blob import BlobServiceClient

    BlobServiceClient.from_connection_string(azurite).create_container("dagster")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)  # adlfs reads it
    home = tmp_path / "instance"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "defs_state_storage:\n  module: dagster\n  class: UPathDefsStateStorage\n"
        "  config:\n    base_path: az://dagster/defs_state\n"
        "telemetry:\n  enabled: false\n"
    )
    monkeypatch.setenv("DATA_MESH_DEFS_STATE", "VERSIONED_STATE_STORAGE")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    versioned = loaded.model_copy(update={"defs_state": "VERSIONED_STATE_STORAGE"})
    refresh_state(versioned, None)
    component = DataMeshComponent()
    with dg.DagsterInstance.get() as instance:
        saved = saved_state(component, instance)
    assert saved.state is not None and "version" in saved.where
    container = BlobServiceClient.from_connection_string(azurite).get_container_client("dagster")
    assert [b.name for b in container.list_blobs()] == [
        f"defs_state/{saved.key}/{saved.where.rsplit(' ', 1)[-1]}"
    ]
    store = Path(loaded.resolved_metadata_url.removeprefix("sqlite:///"))
    store.rename(store.with_suffix(".moved"))
    # A code server's load: it opens the instance, whose state storage holds the version.
    validated = _run(BIN / "dagster", "definitions", "validate", "-w", "workspace.yaml", logs=True)
    assert "3 data products (0 skipped) from the state taken at" in validated
    assert f"marker {saved.state.marker}" in validated


def test_state_round_trip(loaded: Settings, tmp_path: Path) -> None:
    rows = read_store_rows(loaded)
    now = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    (tmp_path / "state").write_bytes(encode_state(rows, {"queries/a.properties": "x = 1"}, now))
    again = read_state(tmp_path / "state")
    assert again.rows == rows
    assert again.query_files == {"queries/a.properties": "x = 1"}
    assert again.taken_at == now and again.marker == store_marker(rows)


def test_unreadable_state_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_text('{"format": 1}')
    with pytest.raises(Exception, match=rf"{path} has format 1, this code reads 2"):
        read_state(path)


def _statements(engine: Engine) -> Counter[str]:
    counted: Counter[str] = Counter()

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        counted[statement.split()[0].upper()] += 1

    event.listen(engine, "before_cursor_execute", count)
    read_store(engine)
    event.remove(engine, "before_cursor_execute", count)
    return counted


def test_generated_store_is_valid_and_read_in_constant_queries(store: Engine) -> None:
    counts = generate_metadata(store, 30, schedules=True)
    assert counts["DataProducts"] == 30
    small = _statements(store)
    generate_metadata(store, 270, first=31, schedules=True)
    large = _statements(store)
    assert small == large and small["SELECT"] == 10  # one per table, whatever N
    assert counts["ConfigurationCategory"] == 30 and counts["ConfigurationItem"] == 60

    from data_mesh.catalog.build import build_catalog

    catalog = build_catalog(read_store(store))
    assert catalog.problems == [] and len(catalog.products) == 300
    for product in catalog.products:
        assert 2 <= len(product.transformations) <= 4
        rules = sum(len(t.rules) for t in product.transformations)
        assert 3 <= rules <= 5
        assert product.schedule is not None and product.schedule.timezone in TIMEZONES
    # Generating again continues the numbering instead of colliding.
    more = generate_metadata(store, 1, first=301)
    assert more["DataProducts"] == 1 and more["ConfigurationItem"] == 0  # no schedule asked


def test_cyclic_gc_is_paused_only_inside_the_block() -> None:
    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a caller that had it off keeps it off
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), cyclic_gc_paused():
        raise RuntimeError("fails while building")
    assert gc.isenabled()


def test_the_code_location_builds_its_repository_with_the_gc_paused(
    loaded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry point a code server loads builds the repository inside the pause, once:
    Dagster then takes the one kept with the Definitions."""
    from data_mesh.definitions import defs

    enabled_at_builds: list[bool] = []
    real = dg.Definitions.get_repository_def

    def spy(self: dg.Definitions) -> object:
        enabled_at_builds.append(gc.isenabled())
        return real(self)

    monkeypatch.setattr(dg.Definitions, "get_repository_def", spy)
    definitions = defs()
    assert enabled_at_builds == [False] and gc.isenabled()
    assert real(definitions) is real(definitions)  # kept, not built again
    keys = {k.to_user_string() for k in real(definitions).asset_graph.get_all_asset_keys()}
    assert keys == _expected_keys(loaded)


def test_loading_another_store_refreshes_no_mesh(loaded: Settings, tmp_path: Path) -> None:
    """`load --url` into a store no mesh of the project reads: the rows are loaded, and the
    command says that no state was refreshed (the meshes' states are left as they were)."""
    from data_mesh_tests.conftest import SAMPLE_PRODUCTS

    before = saved_state(DataMeshComponent(), None).state
    other = f"sqlite:///{tmp_path}/other.db"
    runner = CliRunner()
    assert runner.invoke(app, ["init", "--url", other]).exit_code == 0
    result = runner.invoke(app, ["load", str(SAMPLE_PRODUCTS / "sor1_payments"), "--url", other])
    assert result.exit_code == 0, result.output
    assert "no mesh of data_mesh/defs/ reads this store: no state refreshed" in result.output
    assert "loaded sor1_payments" in result.output
    assert saved_state(DataMeshComponent(), None).state == before


def test_outside_local_load_needs_dagster_home_before_writing(
    store: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEV..PROD keep the state in the instance's state storage: without DAGSTER_HOME, `load`
    and `state status` say so in one line, and `load` writes nothing to the store."""
    from data_mesh_tests.conftest import SAMPLE_PRODUCTS

    monkeypatch.setenv("DATA_MESH_ENV", "DEV")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    runner = CliRunner()
    for args in (["load", str(SAMPLE_PRODUCTS)], ["state", "status"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, result.output
        assert "DAGSTER_HOME is not set: DEV keeps the state" in result.output
    assert read_store(store).data_products == []
