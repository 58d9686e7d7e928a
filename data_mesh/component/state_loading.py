"""From settings to a validated catalog: one read of the store, then the query-file checks."""

from __future__ import annotations

import datetime as dt
import logging

from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.configuration import validity_window
from data_mesh.catalog.models import Catalog
from data_mesh.catalog.transformation_configs import PropertiesSequenceConfig
from data_mesh.catalog.validation import check_query_files
from data_mesh.component.catalog_cache import (
    CachedCatalog,
    cache_path,
    file_digest,
    read_cached_catalog,
    save_cached_catalog,
)
from data_mesh.component.snapshot_file import (
    SavedSnapshot,
    SnapshotFileError,
    SnapshotStamp,
    encode_snapshot,
    read_snapshot,
)
from data_mesh.lake.storage import SavedFiles, Storage, StorageError, write_atomically
from data_mesh.resources.lake import lake_resource_for
from data_mesh.settings.model import Settings
from data_mesh.store.connection import ready_store_engine
from data_mesh.store.rows import StoreSnapshot, read_store, store_now
from data_mesh.transforms.query_files import query_file_path, sequence_file_path

log = logging.getLogger(__name__)


def lake_storage(settings: Settings) -> Storage:
    """The lake of `settings.env`: the same storage the assets use."""
    return lake_resource_for(settings).storage()


def load_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog of `settings.env`, with the configuration valid at `at` (default: now) and
    the query files checked in the lake."""
    return check_query_files(read_catalog(settings, at), lake_storage(settings))


def read_catalog(settings: Settings, at: dt.datetime | None = None) -> Catalog:
    """The catalog from the store's rows alone (no lake access)."""
    return build_catalog(read_store_rows(settings), settings.env, at)


def read_store_rows(settings: Settings) -> StoreSnapshot:
    """Every row of the store: one SELECT per table, whatever the number of rows."""
    with ready_store_engine(settings) as engine:
        return read_store(engine)


def query_file_paths(catalog: Catalog) -> list[str]:
    paths = set()
    for product in catalog.products:
        for transformation in product.transformations:
            if isinstance(transformation.config, PropertiesSequenceConfig):
                paths.add(query_file_path(transformation.config))
                paths.add(sequence_file_path(transformation.config))
    return sorted(paths)


def refresh_snapshot(settings: Settings) -> SavedSnapshot:
    """Read the store once (and the query files its products name) into the snapshot file,
    published first to the lake when settings say where (deployed environments). Query files
    that are missing are left out: the product is reported broken at load."""
    return _refreshed(settings, publish=True)[0]


def copy_published_snapshot(settings: Settings) -> None:
    """The snapshot the last refresh published to the lake, copied over the local file, so the
    code server and run worker pods load it and none queries the store. Nothing published
    yet: the local copy, or the store when there is none, with a warning. The lake
    unreachable: the local copy with a warning, or an error naming the lake path."""
    lake_path = settings.resolved_metadata_snapshot_lake
    if lake_path is None:
        return
    path = settings.resolved_metadata_snapshot
    storage = lake_storage(settings)
    where = f"{lake_path} ({storage.describe()})"
    try:
        content = storage.read_text(lake_path).encode()
    except StorageError:
        log.warning("no metadata snapshot published at %s: run `data-mesh snapshot refresh`", where)
        return
    except Exception as error:  # the SDK's own errors (network, rights): name the lake path
        if not path.is_file():
            raise SnapshotFileError(f"metadata snapshot {where} unreadable: {error}") from error
        log.warning("metadata snapshot %s unreadable (%s): loading the local copy", where, error)
        return
    if not path.is_file() or path.read_bytes() != content:
        write_atomically(path, content)


def _refreshed(settings: Settings, publish: bool) -> tuple[SavedSnapshot, Catalog]:
    """The new snapshot and its checked catalog (built once, also to find the query files).
    With `publish`, the bytes written are first published to the lake, so no load copies an
    older published file over them."""
    rows = read_store_rows(settings)
    storage = lake_storage(settings)
    at = store_now()
    catalog = build_catalog(rows, settings.env, at)
    files = {}
    for path in query_file_paths(catalog):
        try:
            files[path] = storage.read_text(path)
        except StorageError:
            continue
    content, saved = encode_snapshot(rows, files, dt.datetime.now(dt.UTC))
    lake_path = settings.resolved_metadata_snapshot_lake
    if publish and lake_path is not None:
        try:
            storage.write_bytes(lake_path, content)
        except Exception as error:  # the SDK's own errors: say what was being done, and where
            raise SnapshotFileError(
                f"metadata snapshot not published to {lake_path} ({storage.describe()}): {error}"
            ) from error
    write_atomically(settings.resolved_metadata_snapshot, content)
    return saved, _checked_and_saved(settings, saved, catalog, at)


def _checked_and_saved(
    settings: Settings, saved: SavedSnapshot, catalog: Catalog, at: dt.datetime
) -> Catalog:
    """`catalog` (built from `saved` at `at`) without products whose saved query files are
    broken; saved next to the snapshot for the next load, unless pods copy the snapshot from
    the lake at every start (a run pod's saved catalog would never be read)."""
    path = settings.resolved_metadata_snapshot
    checked = check_query_files(catalog, SavedFiles(saved.query_files, f"metadata snapshot {path}"))
    if settings.resolved_metadata_snapshot_lake is None:
        since, until = validity_window(saved.snapshot, at)
        save_cached_catalog(
            cache_path(path, settings.env),
            saved.file_digest,
            settings.env,
            CachedCatalog(checked, saved.stamp, since, until),
        )
    return checked


def catalog_for_definitions(
    settings: Settings, copy_published: bool = True
) -> tuple[Catalog, SnapshotStamp | None]:
    """The catalog Dagster definitions are built from: the snapshot file (copied from the lake
    first in deployed environments, unless the caller did; made from the store when there is
    none yet), so run workers never query the store; or the store itself. The catalog saved
    with the snapshot is used while it holds (`catalog_cache`)."""
    if settings.definitions_from == "store":
        return load_catalog(settings), None
    if copy_published:
        copy_published_snapshot(settings)
    path = settings.resolved_metadata_snapshot
    if not path.exists():
        saved, catalog = _refreshed(settings, publish=False)
        return catalog, saved.stamp
    at = store_now()
    if settings.resolved_metadata_snapshot_lake is None:
        try:
            digest = file_digest(path)
        except OSError as error:
            raise SnapshotFileError(f"metadata snapshot {path} is unreadable: {error}") from error
        cached = read_cached_catalog(cache_path(path, settings.env), digest, settings.env, at)
        if cached is not None:
            return cached.catalog, cached.stamp
    try:
        saved = read_snapshot(path)
    except SnapshotFileError as error:
        lake_path = settings.resolved_metadata_snapshot_lake
        if lake_path is None:
            raise
        raise SnapshotFileError(f"{error} (copied from the lake: {lake_path})") from error
    catalog = build_catalog(saved.snapshot, settings.env, at)
    return _checked_and_saved(settings, saved, catalog, at), saved.stamp
