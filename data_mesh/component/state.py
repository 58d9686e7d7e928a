"""The component's state: every row of the metadata store and the query files its products name,
as one JSON document. Written by `write_state_to_path` (one SELECT per table, whatever the number
of rows); definitions, code servers and run workers are built from it, never from the store.

Its `marker` is a digest of the rows: the store's marker differing from the state's means the
state is stale (`data-mesh state status`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.current import lake_storage, query_file_paths, read_store_rows
from data_mesh.catalog.errors import DataMeshError
from data_mesh.catalog.models import Catalog
from data_mesh.catalog.validation import check_query_files
from data_mesh.lake.storage import SavedFiles, StorageError
from data_mesh.settings.model import Settings
from data_mesh.store.rows import SNAPSHOT_TABLES, StoreSnapshot, store_now

FORMAT = 2


class StateError(DataMeshError):
    """State that is unreadable or of another format; names the file."""


@dataclass(frozen=True)
class StateStamp:
    """When the state was taken, and the digest of its rows (the store's marker then)."""

    taken_at: dt.datetime
    marker: str

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or dt.datetime.now(dt.UTC)) - self.taken_at


@dataclass(frozen=True)
class MeshState(StateStamp):
    rows: StoreSnapshot
    # Lake path -> text of every query file the products name (missing ones are left out:
    # their product is reported broken when definitions are built).
    query_files: dict[str, str]

    @property
    def stamp(self) -> StateStamp:
        return StateStamp(self.taken_at, self.marker)


def _plain_rows(rows: StoreSnapshot) -> dict[str, list[list[Any]]]:
    """Rows as lists of JSON values, in the order of their dataclass fields."""
    return {
        attribute: [
            [v.isoformat() if isinstance(v, dt.date) else v for v in dataclasses.astuple(row)]
            for row in getattr(rows, attribute)
        ]
        for attribute in SNAPSHOT_TABLES
    }


def store_marker(rows: StoreSnapshot) -> str:
    """A digest of every row: equal markers, equal stores."""
    return _marker_of(_plain_rows(rows))


def _marker_of(plain: dict[str, list[list[Any]]]) -> str:
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reviver(annotation: Any) -> Callable[[Any], Any] | None:
    """How a JSON value goes back to a row field's type (dates and datetimes are ISO text);
    None when it is used as it is."""
    kinds = typing.get_args(annotation) or (annotation,)
    if dt.datetime in kinds:
        return lambda v: None if v is None else dt.datetime.fromisoformat(v)
    if dt.date in kinds:
        return lambda v: None if v is None else dt.date.fromisoformat(v)
    return None


def encode_state(rows: StoreSnapshot, query_files: Mapping[str, str], now: dt.datetime) -> bytes:
    plain = _plain_rows(rows)
    document = {
        "format": FORMAT,
        "taken_at": now.isoformat(),
        "marker": _marker_of(plain),
        "rows": plain,
        "query_files": dict(query_files),
    }
    return json.dumps(document, separators=(",", ":")).encode()


def read_state(path: Path) -> MeshState:
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise StateError(f"data_mesh state {path} is unreadable: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise StateError(
            f"data_mesh state {path} has format {found!r}, this code reads {FORMAT}: "
            "run `dg utils refresh-defs-state`"
        )
    values: dict[str, list[Any]] = {}
    for attribute, (_, row_type) in SNAPSHOT_TABLES.items():
        hints = typing.get_type_hints(row_type)
        revivers = [
            (i, r) for i, f in enumerate(fields(row_type)) if (r := _reviver(hints[f.name]))
        ]
        rows = document["rows"].get(attribute, [])
        for row in rows:
            for index, revive in revivers:
                row[index] = revive(row[index])
        values[attribute] = [row_type(*row) for row in rows]
    return MeshState(
        taken_at=dt.datetime.fromisoformat(document["taken_at"]),
        marker=str(document["marker"]),
        rows=StoreSnapshot(**values),
        query_files=dict(document.get("query_files", {})),
    )


def write_mesh_state(settings: Settings, path: Path) -> None:
    """Read the store once, and the query files its products name from the lake, into `path`."""
    rows = read_store_rows(settings)
    storage = lake_storage(settings)
    files = {}
    for file in query_file_paths(build_catalog(rows, settings.env, store_now())):
        try:
            files[file] = storage.read_text(file)
        except StorageError:
            continue
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_state(rows, files, dt.datetime.now(dt.UTC)))


def catalog_from_state(state: MeshState, env: str, origin: str) -> Catalog:
    """The catalog the state gives now (configuration versions in effect now), without the
    products whose saved query files are missing or broken."""
    catalog = build_catalog(state.rows, env, store_now())
    return check_query_files(catalog, SavedFiles(state.query_files, origin))
