"""The catalog a snapshot file gives, saved next to it, so a run worker or code server does not
read and validate every row again (10,000 products: about 3 s down to under 1 s,
benchmarks/README.md).

A saved catalog is used only for the same snapshot file (its SHA-256), environment and code
(a digest of data_mesh's own source, Python's version and those of the libraries that
validate rows), and only while no configuration version starts or expires (the configuration
resolved at build time still holds). Anything else, or a damaged file, and the catalog is
built from the rows again. Pods that copy the snapshot from the lake at every start save none.

It is a pickle, the one format that loads this many objects fast, and loading a pickle runs
code: it is read only when this user owns it and nobody else can write to it (like ssh's
keys). Whoever can write there can already change the snapshot, and with it what runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import pickle
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_mesh.catalog.models import Catalog
from data_mesh.component.snapshot_file import SnapshotStamp
from data_mesh.lake.storage import write_atomically

log = logging.getLogger(__name__)

FORMAT = 2
# Libraries whose versions change what validation accepts: models, rule SQL, time zones.
VALIDATING_LIBRARIES = ("pydantic", "pydantic-core", "sqlglot", "tzdata")


@dataclass(frozen=True)
class CachedCatalog:
    catalog: Catalog
    stamp: SnapshotStamp
    # The configuration resolved in the catalog holds from `valid_from` until `valid_until`
    # (naive UTC, as the store keeps dates; None: unbounded).
    valid_from: dt.datetime | None
    valid_until: dt.datetime | None


@functools.cache
def code_digest() -> str:
    """What the pickled classes and the validation depend on: data_mesh's source, Python and
    the libraries that validate rows."""
    package = source_digest(Path(__file__).resolve().parents[1])
    libraries = "|".join(f"{name}={_version(name)}" for name in VALIDATING_LIBRARIES)
    return hashlib.sha256(f"{package}|{sys.version}|{libraries}".encode()).hexdigest()[:16]


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "none"


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


def _header(snapshot_digest: str, env: str, cached: CachedCatalog) -> bytes:
    """The first line of a cache file: what its catalog was built from, and when it holds."""
    document = {
        "format": FORMAT,
        "snapshot": snapshot_digest,
        "env": env,
        "code": code_digest(),
        "valid_from": cached.valid_from.isoformat() if cached.valid_from else None,
        "valid_until": cached.valid_until.isoformat() if cached.valid_until else None,
    }
    return json.dumps(document, sort_keys=True).encode() + b"\n"


def _why_not_usable(
    header: dict[str, Any], snapshot_digest: str, env: str, at: dt.datetime
) -> str | None:
    """Why a load at `at` cannot use the catalog with this header; None when it can."""
    if header.get("format") != FORMAT or header.get("code") != code_digest():
        return "saved by other code"
    if header.get("snapshot") != snapshot_digest:
        return "saved from another snapshot file"
    if header.get("env") != env:
        return f"saved for environment {header.get('env')}"
    since, until = (header.get(k) for k in ("valid_from", "valid_until"))
    if since is not None and at < dt.datetime.fromisoformat(since):
        return f"its configuration holds from {since}"
    if until is not None and at >= dt.datetime.fromisoformat(until):
        return f"a configuration version started or ended at {until}"
    return None


def _untrusted(status: os.stat_result) -> str | None:
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_uid != os.getuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "ignored: it must belong to this user and be writable by no one else (a pickle)"
    return None


def saved_catalog_status(
    path: Path, snapshot_digest: str, env: str, at: dt.datetime
) -> tuple[bool, str]:
    """Whether a load at `at` would use the catalog saved at `path`, and why (not); reads the
    header line only."""
    try:
        with path.open("rb") as file:
            problem = _untrusted(os.fstat(file.fileno()))
            if problem is None:
                header = json.loads(file.readline())
                problem = _why_not_usable(header, snapshot_digest, env, at)
    except FileNotFoundError:
        return False, "none saved"
    except (OSError, ValueError, AttributeError) as error:
        return False, f"unreadable ({error})"
    if problem is not None:
        return False, problem
    until = header.get("valid_until")
    return True, f"used until {f'{until} UTC' if until else 'the snapshot or the code changes'}"


def read_cached_catalog(
    path: Path, snapshot_digest: str, env: str, at: dt.datetime
) -> CachedCatalog | None:
    """The catalog saved at `path` from the snapshot file with `snapshot_digest`, for `env`, by
    this code, and valid at `at`; or None."""
    try:
        with path.open("rb") as file:
            untrusted = _untrusted(os.fstat(file.fileno()))
            if untrusted is not None:
                log.warning("catalog cache %s %s", path, untrusted)
                return None
            header = json.loads(file.readline())
            if _why_not_usable(header, snapshot_digest, env, at) is not None:
                return None
            cached = pickle.load(file)
    except FileNotFoundError:
        return None
    except Exception as error:  # a damaged or foreign file: built again, and overwritten
        log.warning("catalog cache %s unreadable (%s): building the catalog", path, error)
        return None
    return cached if isinstance(cached, CachedCatalog) else None


def save_cached_catalog(path: Path, snapshot_digest: str, env: str, cached: CachedCatalog) -> None:
    """Written atomically, readable and writable by this user only. A folder that cannot be
    written (a read-only image) only costs the speed-up."""
    try:
        content = _header(snapshot_digest, env, cached) + pickle.dumps(
            cached, pickle.HIGHEST_PROTOCOL
        )
        write_atomically(path, content)
    except Exception as error:
        log.warning("catalog cache not saved at %s: %s", path, error)
