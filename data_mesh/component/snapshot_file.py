"""The store's rows (and the query files they name) saved as one JSON file, so definitions can be
rebuilt on every run-worker start without touching the store or the lake.

The file is refreshed on purpose (`data-mesh snapshot refresh`, `data-mesh dev`, the CD
pipeline); its `marker` is a digest of the rows, so a stale snapshot shows as a marker that
differs from the store's.
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

from data_mesh.catalog.errors import DataMeshError
from data_mesh.lake.storage import write_atomically
from data_mesh.store.rows import SNAPSHOT_TABLES, StoreSnapshot

FORMAT = 1


class SnapshotFileError(DataMeshError):
    """A snapshot file that is missing, unreadable or of another format; names the file."""


@dataclass(frozen=True)
class SnapshotStamp:
    """When a snapshot was taken, and the digest of its rows (the store's marker then)."""

    taken_at: dt.datetime
    marker: str

    def age(self, now: dt.datetime | None = None) -> dt.timedelta:
        return (now or dt.datetime.now(dt.UTC)) - self.taken_at


@dataclass(frozen=True)
class SavedSnapshot(SnapshotStamp):
    snapshot: StoreSnapshot
    # Lake path -> text of every query file the snapshot's products name.
    query_files: dict[str, str]
    # SHA-256 of the file's bytes: what a catalog saved from it is keyed by.
    file_digest: str

    @property
    def stamp(self) -> SnapshotStamp:
        return SnapshotStamp(self.taken_at, self.marker)


def _plain_rows(snapshot: StoreSnapshot) -> dict[str, list[list[Any]]]:
    """Rows as lists of JSON values, in the order of their dataclass fields."""
    plain: dict[str, list[list[Any]]] = {}
    for attribute in SNAPSHOT_TABLES:
        plain[attribute] = [
            [v.isoformat() if isinstance(v, dt.date) else v for v in dataclasses.astuple(row)]
            for row in getattr(snapshot, attribute)
        ]
    return plain


def store_marker(snapshot: StoreSnapshot) -> str:
    """A digest of every row: equal markers, equal stores."""
    return _marker_of(_plain_rows(snapshot))


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


def write_snapshot(
    path: Path, snapshot: StoreSnapshot, query_files: Mapping[str, str], now: dt.datetime
) -> SavedSnapshot:
    """Write atomically: a run worker never reads a half-written file."""
    content, saved = encode_snapshot(snapshot, query_files, now)
    write_atomically(path, content)
    return saved


def encode_snapshot(
    snapshot: StoreSnapshot, query_files: Mapping[str, str], now: dt.datetime
) -> tuple[bytes, SavedSnapshot]:
    """The bytes of a snapshot file, and what reading them back gives."""
    plain = _plain_rows(snapshot)  # once, for the marker and the file
    marker = _marker_of(plain)
    document = {
        "format": FORMAT,
        "taken_at": now.isoformat(),
        "marker": marker,
        "rows": plain,
        "query_files": dict(query_files),
    }
    content = json.dumps(document, separators=(",", ":")).encode()
    saved = SavedSnapshot(
        taken_at=now,
        marker=marker,
        snapshot=snapshot,
        query_files=dict(query_files),
        file_digest=hashlib.sha256(content).hexdigest(),
    )
    return content, saved


def read_snapshot(path: Path) -> SavedSnapshot:
    try:
        content = path.read_bytes()
        document = json.loads(content)
    except FileNotFoundError as error:
        raise SnapshotFileError(
            f"no metadata snapshot at {path}: run `data-mesh snapshot refresh`"
        ) from error
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError
        raise SnapshotFileError(f"metadata snapshot {path} is unreadable: {error}") from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        found = document.get("format") if isinstance(document, dict) else None
        raise SnapshotFileError(
            f"metadata snapshot {path} has format {found!r}, this code reads "
            f"{FORMAT}: run `data-mesh snapshot refresh`"
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
    return SavedSnapshot(
        taken_at=dt.datetime.fromisoformat(document["taken_at"]),
        marker=str(document["marker"]),
        snapshot=StoreSnapshot(**values),
        query_files=dict(document.get("query_files", {})),
        file_digest=hashlib.sha256(content).hexdigest(),
    )
