"""The catalog a snapshot file gives, saved next to it, so a run worker or code server does not
read and validate every row again (10,000 products: about 3 s down to under 1 s,
benchmarks/README.md).

A saved catalog is used only for the same snapshot file (its SHA-256), environment and code
(the digest of data_mesh's own source, Python's and pydantic's versions), and only while no
configuration version starts or expires (the configuration resolved at build time still
holds). Anything else, or a damaged file, and the catalog is built from the rows again.

It is a pickle, the one format that loads this many objects fast, and loading a pickle runs
code: it is read only when this user owns it and nobody else can write to it (like ssh's
keys). Whoever can write there can already change the snapshot, and with it what runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from data_mesh.metadata.catalog import Catalog
from data_mesh.metadata.snapshot_file import SnapshotStamp, write_atomically

log = logging.getLogger(__name__)

FORMAT = 1


@dataclass(frozen=True)
class CachedCatalog:
    catalog: Catalog
    stamp: SnapshotStamp
    # The configuration resolved in the catalog holds from `valid_from` until `valid_until`
    # (naive UTC, as the store keeps dates; None: unbounded).
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None

    def valid_at(self, at: dt.datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= at) and (
            self.valid_until is None or at < self.valid_until
        )


@functools.cache
def code_digest() -> str:
    """What the pickled classes depend on: data_mesh's source, Python and pydantic."""
    import pydantic

    package = source_digest(Path(__file__).resolve().parents[1])
    return hashlib.sha256(f"{package}|{sys.version}|{pydantic.VERSION}".encode()).hexdigest()[:16]


def source_digest(root: Path) -> str:
    """A digest of the names and contents of every Python file under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def cache_path(snapshot_path: Path, env: str) -> Path:
    return snapshot_path.with_name(f"{snapshot_path.stem}.catalog-{env}.pickle")


def _header(snapshot_digest: str, env: str) -> bytes:
    """The first line of a cache file: what its catalog was built from."""
    document = {"format": FORMAT, "snapshot": snapshot_digest, "env": env, "code": code_digest()}
    return json.dumps(document, sort_keys=True).encode() + b"\n"


def _trusted(path: Path, status: os.stat_result) -> bool:
    if status.st_uid != os.getuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning(
            "catalog cache %s ignored: it must belong to this user and be writable by no one "
            "else (it is a pickle)",
            path,
        )
        return False
    return True


def read_cached_catalog(
    path: Path, snapshot_digest: str, env: str, at: dt.datetime
) -> CachedCatalog | None:
    """The catalog saved at `path` from the snapshot file with `snapshot_digest`, for `env`, by
    this code, and valid at `at`; or None."""
    try:
        with path.open("rb") as file:
            if not _trusted(path, os.fstat(file.fileno())) or file.readline() != _header(
                snapshot_digest, env
            ):
                return None
            cached = pickle.load(file)
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged or foreign file: built again, and overwritten
        log.warning("catalog cache %s unreadable (%s): building the catalog", path, error)
        return None
    if not isinstance(cached, CachedCatalog) or not cached.valid_at(at):
        return None
    return cached


def save_cached_catalog(path: Path, snapshot_digest: str, env: str, cached: CachedCatalog) -> None:
    """Written atomically, readable and writable by this user only. A folder that cannot be
    written (a read-only image) only costs the speed-up."""
    try:
        content = _header(snapshot_digest, env) + pickle.dumps(cached, pickle.HIGHEST_PROTOCOL)
        write_atomically(path, content)
    except Exception as error:
        log.warning("catalog cache not saved at %s: %s", path, error)
