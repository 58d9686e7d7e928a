"""Definitions from a snapshot of the store (run workers never query it), staleness, the
synthetic store generator, and the store read in a constant number of queries."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, update
from typer.testing import CliRunner

from data_mesh.cli.app import app
from data_mesh.component import state_loading as loading
from data_mesh.component.definitions import build_definitions
from data_mesh.component.gc_control import cyclic_gc_paused
from data_mesh.component.snapshot_file import (
    SnapshotFileError,
    read_snapshot,
    store_marker,
    write_snapshot,
)
from data_mesh.component.state_loading import (
    catalog_for_definitions,
    lake_storage,
    load_catalog,
    read_store_rows,
    refresh_snapshot,
)
from data_mesh.definitions import load_definitions
from data_mesh.devtools.synthetic import TIMEZONES, generate_metadata
from data_mesh.resources.environments import resources_for
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh.store.rows import read_store
from data_mesh_tests.conftest import pod_settings


def _keys(settings: Settings, catalog) -> set[str]:
    defs = build_definitions(catalog, resources_for(settings))
    return {k.to_user_string() for k in defs.resolve_all_asset_keys()}


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """`load_definitions` freezes what is alive; the rest of the test process collects as
    usual again after the test."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_definitions_come_from_the_snapshot_without_the_store(
    loaded: Settings, tmp_path: Path, unfrozen: None
) -> None:
    # `data-mesh load` refreshed the snapshot.
    assert loaded.resolved_metadata_snapshot.is_file()
    expected = _keys(loaded, load_catalog(loaded))
    # A store that cannot be opened: definitions still build, from the snapshot alone.
    gone = loaded.model_copy(update={"metadata_url": f"sqlite:///{tmp_path}/missing/store.db"})
    catalog, saved = catalog_for_definitions(gone)
    assert saved is not None and catalog.problems == []
    defs = build_definitions(catalog, resources_for(gone), saved)
    assert {k.to_user_string() for k in defs.resolve_all_asset_keys()} == expected
    assert defs.metadata["data_mesh/snapshot_marker"].value == saved.marker  # type: ignore[union-attr]
    # The entry point a code server loads: same assets, the cyclic GC running again after, and
    # what it built frozen out of later collections.
    loaded_defs = load_definitions(gone)
    assert gc.isenabled() and gc.get_freeze_count() > 0
    assert loaded_defs.get_repository_def().asset_graph.get_all_asset_keys() == (
        defs.get_repository_def().asset_graph.get_all_asset_keys()
    )
    with pytest.raises(Exception, match=r"missing/store.db is not initialized"):
        load_catalog(gone)


def test_a_stale_snapshot_is_visible_and_refreshed(loaded: Settings) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["snapshot", "status", "--check"])
    assert result.exit_code == 0 and "current" in result.output
    with make_engine(loaded.resolved_metadata_url).begin() as connection:
        rules = schema.data_quality_rules
        connection.execute(
            update(rules).where(rules.c.Name == "has_rows").values(Description="edited")
        )
    result = runner.invoke(app, ["snapshot", "status", "--check"])
    assert result.exit_code == 1 and "stale" in result.output
    # Until refreshed, definitions keep the snapshot's rows.
    catalog, _ = catalog_for_definitions(loaded)
    rule = next(
        r
        for t in catalog.product("sor1_payments").transformations
        for r in t.rules
        if r.name == "has_rows"
    )
    assert rule.description != "edited"
    assert runner.invoke(app, ["snapshot", "refresh"]).exit_code == 0
    assert runner.invoke(app, ["snapshot", "status", "--check"]).exit_code == 0


def test_snapshot_file_round_trip(loaded: Settings, tmp_path: Path) -> None:
    import datetime as dt

    rows = read_store_rows(loaded)
    now = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
    saved = write_snapshot(tmp_path / "s.json", rows, {"queries/a.properties": "x = 1"}, now)
    again = read_snapshot(tmp_path / "s.json")
    assert again.snapshot == rows
    assert again.query_files == {"queries/a.properties": "x = 1"}
    assert again.taken_at == now and again.marker == saved.marker == store_marker(rows)


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


def test_loading_and_building_definitions_make_no_reference_cycles(
    store: Engine, settings: Settings
) -> None:
    """`load_definitions` freezes what it loaded and built without a collection: a reference
    cycle made on the way would never be freed, once per load. Covers the catalog from the
    rows and from the saved catalog, the resources and the build; the synthetic products
    cover every transformation and rule type the generator makes."""
    from data_mesh.component.catalog_cache import cache_path

    generate_metadata(store, 40, schedules=True)
    refresh_snapshot(settings)
    cache_path(settings.resolved_metadata_snapshot, settings.env).unlink()
    resources = resources_for(settings)  # Dagster's resource schemas do make cycles: collected
    gc.collect()  # before the pause, as `load_definitions` does
    with cyclic_gc_paused():
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in ("from the rows", "from the saved catalog"):
                catalog, stamp = catalog_for_definitions(settings)
                build_definitions(catalog, resources, stamp)
            gc.collect()
            garbage = Counter(type(o).__qualname__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    # Not one cyclic object per product (the few left are Python's own, made once per build).
    assert len(catalog.products) == 40
    assert sum(garbage.values()) < len(catalog.products), garbage


def test_dagsters_loader_reuses_the_repository_built_with_the_gc_paused(
    loaded: Settings, monkeypatch: pytest.MonkeyPatch, unfrozen: None
) -> None:
    """The code server's own loading path: the repository is built once, inside
    `load_definitions` (GC paused); Dagster then takes the cached one."""
    from dagster._core.code_pointer import CodePointer
    from dagster._core.definitions import definitions_class
    from dagster._core.definitions.reconstruct import initialize_repository_def_from_pointer

    gc_enabled_at_builds: list[bool] = []
    real_build = definitions_class._create_repository_using_definitions_args

    def counting_build(*args: object, **kwargs: object) -> object:
        gc_enabled_at_builds.append(gc.isenabled())
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(
        definitions_class, "_create_repository_using_definitions_args", counting_build
    )
    pointer = CodePointer.from_module("data_mesh.definitions", "defs", working_directory=None)
    repository = initialize_repository_def_from_pointer(pointer)
    assert gc_enabled_at_builds == [False]
    keys = {k.to_user_string() for k in repository.asset_graph.get_all_asset_keys()}
    assert keys == _keys(loaded, load_catalog(loaded))


def test_a_published_snapshot_is_what_pods_without_it_load(
    loaded: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Deployed: the refresh (CD's `data-mesh load`) publishes the snapshot to the lake; a code
    server or run worker pod with no copy of it and no store loads it, and sees the next
    refresh at its next load."""
    published = loaded.model_copy(
        update={"metadata_snapshot_lake": "queries/_data_mesh/metadata_local.json"}
    )
    refresh_snapshot(published)
    assert lake_storage(published).exists("queries/_data_mesh/metadata_local.json")
    pod = pod_settings(published, tmp_path)
    catalog, stamp = catalog_for_definitions(pod)
    assert stamp is not None and stamp.marker == store_marker(read_store_rows(loaded))
    expected = {p.name for p in load_catalog(loaded).products}
    assert {p.name for p in catalog.products} == expected
    generate_metadata(make_engine(loaded.resolved_metadata_url), 1)
    refresh_snapshot(published)
    again, _ = catalog_for_definitions(pod)
    assert {p.name for p in again.products} == expected | {"product_00001"}

    # Nothing published there yet: the pod's own copy, with a warning naming the lake path.
    elsewhere = pod.model_copy(update={"metadata_snapshot_lake": "queries/_data_mesh/none.json"})
    with caplog.at_level("WARNING"):
        kept, _ = catalog_for_definitions(elsewhere)
    assert kept == again and "no metadata snapshot published at queries/_data_mesh/none.json" in (
        caplog.text
    )


def test_a_snapshot_that_cannot_be_published_fails_the_refresh(loaded: Settings) -> None:
    lake = lake_storage(loaded)
    lake.write_bytes("queries/blocked", b"a file where the folder would be")
    blocked = loaded.model_copy(update={"metadata_snapshot_lake": "queries/blocked/s.json"})
    before = read_snapshot(loaded.resolved_metadata_snapshot)
    generate_metadata(make_engine(loaded.resolved_metadata_url), 1)  # a change to refresh
    with pytest.raises(SnapshotFileError, match=r"not published to queries/blocked/s.json \(local"):
        refresh_snapshot(blocked)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["snapshot", "refresh"],
        env={"DATA_MESH_METADATA_SNAPSHOT_LAKE": "queries/blocked/s.json"},
    )
    assert result.exit_code == 1 and "not published to queries/blocked/s.json" in result.output
    # Published first: the local file is not replaced by a snapshot the pods never see.
    assert read_snapshot(loaded.resolved_metadata_snapshot) == before


def test_an_unreadable_lake_keeps_the_local_copy_or_names_the_lake(
    loaded: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:

    published = loaded.model_copy(update={"metadata_snapshot_lake": "queries/_data_mesh/s.json"})
    refresh_snapshot(published)
    expected = {p.name for p in load_catalog(loaded).products}
    real = loading.lake_storage

    class Unreachable:
        """The lake's SDK failing (network, rights), not a missing file."""

        def __init__(self, settings: Settings) -> None:
            self.origin = real(settings).describe()

        def read_text(self, path: str) -> str:
            raise ConnectionError("connection reset by peer")

        def describe(self) -> str:
            return self.origin

    monkeypatch.setattr(loading, "lake_storage", Unreachable)
    with caplog.at_level("WARNING"):
        catalog, _ = catalog_for_definitions(published)  # this pod has a copy
    assert {p.name for p in catalog.products} == expected
    assert "unreadable (connection reset by peer): loading the local copy" in caplog.text
    pod = pod_settings(published, tmp_path)
    with pytest.raises(
        SnapshotFileError,
        match=r"metadata snapshot queries/_data_mesh/s.json \(local folder .*\) unreadable: "
        "connection reset by peer",
    ):
        catalog_for_definitions(pod)
    assert not pod.resolved_metadata_snapshot.exists()
