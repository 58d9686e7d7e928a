"""The catalog saved next to the metadata snapshot: used only for the same snapshot file,
environment, code and configuration window; an untrusted or damaged file is ignored."""

from __future__ import annotations

import datetime as dt
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine

from data_mesh.catalog.configuration import validity_window
from data_mesh.catalog.models import Catalog
from data_mesh.component import catalog_cache
from data_mesh.component import state_loading as loading
from data_mesh.component.catalog_cache import (
    CachedCatalog,
    cache_path,
    code_digest,
    read_cached_catalog,
    save_cached_catalog,
    saved_catalog_status,
    source_digest,
)
from data_mesh.component.snapshot_file import SnapshotStamp, read_snapshot, write_snapshot
from data_mesh.component.state_loading import catalog_for_definitions, refresh_snapshot
from data_mesh.devtools.synthetic import generate_metadata
from data_mesh.settings.model import Environment, Settings
from data_mesh.store.rows import StoreSnapshot, read_store
from data_mesh_tests.conftest import add_config_item


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The environments `catalog_for_definitions` built a catalog from rows for."""
    built: list[str] = []
    real = loading.build_catalog

    def counting(snapshot: StoreSnapshot, env: str = "LOCAL", at: dt.datetime | None = None):
        built.append(env)
        return real(snapshot, env, at)

    monkeypatch.setattr(loading, "build_catalog", counting)
    return built


def _cache(settings: Settings) -> Path:
    return cache_path(settings.resolved_metadata_snapshot, settings.env)


def _refresh_with_products(
    store: Engine, settings: Settings, builds: list[str], products: int
) -> None:
    """`products` synthetic products, and the snapshot refreshed; the refresh's own build of
    the catalog is not counted."""
    generate_metadata(store, products)
    refresh_snapshot(settings)
    builds.clear()


def test_the_refresh_saves_the_catalog_and_loads_use_it(
    loaded: Settings, builds: list[str]
) -> None:
    path = _cache(loaded)
    assert path.is_file()  # `data-mesh load` refreshed the snapshot, and saved the catalog
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    from_cache, stamp = catalog_for_definitions(loaded)
    assert builds == []
    path.unlink()
    from_rows, _ = catalog_for_definitions(loaded)  # built from rows, and saved again
    assert builds == ["LOCAL"] and path.is_file()
    assert from_cache == from_rows and len(from_rows.products) >= 3
    saved = read_snapshot(loaded.resolved_metadata_snapshot)
    assert stamp == saved.stamp
    again, _ = catalog_for_definitions(loaded)
    assert builds == ["LOCAL"] and again == from_rows


def test_a_saved_catalog_serves_only_its_snapshot_env_and_code(
    store: Engine, settings: Settings, builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _refresh_with_products(store, settings, builds, 3)
    assert len(catalog_for_definitions(settings)[0].products) == 3 and builds == []
    # Another snapshot file (written without refreshing the saved catalog): built again.
    generate_metadata(store, 1, first=4)
    write_snapshot(
        settings.resolved_metadata_snapshot, read_store(store), {}, dt.datetime.now(dt.UTC)
    )
    assert len(catalog_for_definitions(settings)[0].products) == 4 and builds == ["LOCAL"]
    # Another environment, even from the same snapshot file, has its own.
    dev = settings.model_copy(
        update={
            "env": Environment.DEV,
            "metadata_snapshot": settings.resolved_metadata_snapshot,
            "lake": "local",
        }
    )
    catalog_for_definitions(dev)
    assert builds == ["LOCAL", "DEV"] and _cache(dev) != _cache(settings)
    assert _cache(dev).is_file()
    catalog_for_definitions(dev)
    catalog_for_definitions(settings)
    assert builds == ["LOCAL", "DEV"]
    # Other code (a deploy): built again.
    monkeypatch.setattr(catalog_cache, "code_digest", lambda: "another version")
    catalog_for_definitions(settings)
    assert builds == ["LOCAL", "DEV", "LOCAL"]


def test_an_untrusted_or_damaged_saved_catalog_is_ignored(
    store: Engine, settings: Settings, builds: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    _refresh_with_products(store, settings, builds, 2)
    path = _cache(settings)
    path.chmod(0o664)  # others could have written code into it
    with caplog.at_level(logging.WARNING):
        catalog, _ = catalog_for_definitions(settings)
    assert builds == ["LOCAL"] and len(catalog.products) == 2
    assert "must belong to this user and be writable by no one else" in caplog.text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # saved again, private
    header = path.read_bytes().split(b"\n", 1)[0]
    path.write_bytes(header + b"\nnot a pickle")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        catalog, _ = catalog_for_definitions(settings)
    assert builds == ["LOCAL", "LOCAL"] and len(catalog.products) == 2
    assert f"catalog cache {path} unreadable" in caplog.text
    catalog_for_definitions(settings)
    assert builds == ["LOCAL", "LOCAL"]  # the rewritten one is used


def test_a_saved_catalog_holds_only_until_a_configuration_version_starts_or_ends(
    store: Engine, settings: Settings, builds: list[str]
) -> None:
    generate_metadata(store, 1)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    starts, ends = now + dt.timedelta(days=1), now + dt.timedelta(days=2)
    add_config_item(store, "global", "ddz.max_connections", "4", [(1, "2", starts, ends)])
    add_config_item(
        store,
        "global",
        "ddz.max_chunk_rows",
        "1000",
        [(1, "500", now - dt.timedelta(days=3), None)],
    )
    rows = read_store(store)
    assert validity_window(rows, now) == (now - dt.timedelta(days=3), starts)
    assert validity_window(rows, starts) == (starts, ends)
    assert validity_window(rows, ends) == (ends, None)
    assert validity_window(StoreSnapshot(), now) == (None, None)

    refresh_snapshot(settings)
    builds.clear()  # the refresh's own build
    path, digest = _cache(settings), read_snapshot(settings.resolved_metadata_snapshot).file_digest
    assert read_cached_catalog(path, digest, "LOCAL", now) is not None
    assert read_cached_catalog(path, digest, "LOCAL", starts) is None  # version 1 applies then
    assert read_cached_catalog(path, digest, "LOCAL", now - dt.timedelta(days=4)) is None
    assert read_cached_catalog(path, digest, "PROD", now) is None
    assert builds == []


def test_a_folder_that_cannot_be_written_only_loses_the_speed_up(tmp_path: Path) -> None:
    stamp = SnapshotStamp(dt.datetime.now(dt.UTC), "marker")
    (tmp_path / "a_file").write_text("not a folder")
    unwritable = tmp_path / "a_file" / "c.pickle"
    save_cached_catalog(unwritable, "digest", "LOCAL", CachedCatalog(Catalog(), stamp, None, None))
    assert (tmp_path / "a_file").read_text() == "not a folder"
    saved = tmp_path / "c.pickle"
    save_cached_catalog(saved, "digest", "LOCAL", CachedCatalog(Catalog(), stamp, None, None))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    cached = read_cached_catalog(saved, "digest", "LOCAL", now)
    assert cached is not None and cached.stamp == stamp and cached.catalog == Catalog()
    assert read_cached_catalog(saved, "other digest", "LOCAL", now) is None
    assert sorted(tmp_path.iterdir()) == [tmp_path / "a_file", saved]  # no temporary file left


def test_the_code_digest_follows_every_source_file(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "models.py").write_text("class A: x: int\n")
    (tmp_path / "cli.py").write_text("print()\n")
    first = source_digest(tmp_path)
    assert source_digest(tmp_path) == first
    (tmp_path / "pkg" / "models.py").write_text("class A: x: str\n")
    changed = source_digest(tmp_path)
    (tmp_path / "pkg" / "models.py").rename(tmp_path / "pkg" / "other.py")
    assert len({first, changed, source_digest(tmp_path)}) == 3
    assert len(code_digest()) == 16 and code_digest() == code_digest()


def test_snapshot_status_says_whether_loads_use_a_saved_catalog(loaded: Settings) -> None:
    from typer.testing import CliRunner

    from data_mesh.cli.app import app

    def status(*env: tuple[str, str]) -> str:
        result = CliRunner().invoke(app, ["snapshot", "status"], env=dict(env))
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())  # unwrapped

    assert (
        "catalog saved (metadata_local.catalog-LOCAL.pickle): used until the snapshot or the "
        "code changes" in status()
    )
    assert "catalog none: loads copy the snapshot from queries/s.json and validate it" in status(
        ("DATA_MESH_METADATA_SNAPSHOT_LAKE", "queries/s.json")
    )
    _cache(loaded).unlink()
    assert "catalog not used (metadata_local.catalog-LOCAL.pickle): none saved" in status()


def test_why_a_saved_catalog_is_not_used(store: Engine, settings: Settings) -> None:
    generate_metadata(store, 1)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    later = now + dt.timedelta(hours=1)
    add_config_item(store, "global", "ddz.max_connections", "4", [(1, "2", later, None)])
    refresh_snapshot(settings)
    path, digest = _cache(settings), read_snapshot(settings.resolved_metadata_snapshot).file_digest
    assert saved_catalog_status(path, digest, "LOCAL", now) == (
        True,
        f"used until {later.isoformat()} UTC",
    )
    assert (
        saved_catalog_status(path, "other", "LOCAL", now)[1] == "saved from another snapshot file"
    )
    assert saved_catalog_status(path, digest, "QA", now)[1] == "saved for environment LOCAL"
    assert saved_catalog_status(path, digest, "LOCAL", later)[1] == (
        f"a configuration version started or ended at {later.isoformat()}"
    )


def test_after_a_configuration_version_starts_the_load_uses_it(
    store: Engine, settings: Settings, builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    generate_metadata(store, 1)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    later = now + dt.timedelta(hours=1)
    add_config_item(store, "global", "ddz.max_connections", "4", [(1, "2", later, None)])
    refresh_snapshot(settings)
    builds.clear()  # the refresh's own build

    def connections(catalog: Catalog) -> set[int]:
        return {
            t.overrides.ddz["max_connections"] for p in catalog.products for t in p.transformations
        }

    assert connections(catalog_for_definitions(settings)[0]) == {4} and builds == []
    monkeypatch.setattr(loading, "store_now", lambda: later + dt.timedelta(minutes=1))
    assert connections(catalog_for_definitions(settings)[0]) == {2} and builds == ["LOCAL"]
    assert connections(catalog_for_definitions(settings)[0]) == {2} and builds == ["LOCAL"]


def test_settings_name_a_lake_file_for_the_snapshot() -> None:
    assert Settings(metadata_snapshot_lake="queries/x/s.json").resolved_metadata_snapshot_lake == (
        "queries/x/s.json"
    )
    assert (
        Settings(metadata_snapshot_lake="none", lake="adls").resolved_metadata_snapshot_lake is None
    )
    assert Settings(lake="adls").resolved_metadata_snapshot_lake == (
        "queries/_data_mesh/metadata_local.json"
    )
    assert Settings().resolved_metadata_snapshot_lake is None  # LOCAL's folder lake
    for bad, problem in (("queries", "names no file"), ("q/../s.json", "is not a plain")):
        with pytest.raises(ValueError, match=problem):
            Settings(metadata_snapshot_lake=bad)
