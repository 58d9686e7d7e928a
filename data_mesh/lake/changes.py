"""What changed in the lake since last time: digests of watched folders, for storage sensors.

A folder's digest covers its files' versions (size and mtime locally, ETags in ADLS). Writers
in progress are ignored: files under `_`- or `.`-prefixed folders (Spark's `_temporary/`) and
hidden files do not count. When a folder holds `_SUCCESS` markers, only the markers count, so a
landing that writes many files triggers once, when its writer marks it complete.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from data_mesh.lake.storage import Storage

MARKER = "_SUCCESS"


@dataclass(frozen=True)
class WatchedFolder:
    path: str
    # Daily-partitioned CDZ data: each `<column>=<day>/` folder is tracked on its own.
    partition_column: str | None = None


def _counts(relative: str) -> bool:
    parts = relative.split("/")
    if any(part.startswith(("_", ".")) for part in parts[:-1]):
        return False
    return parts[-1] == MARKER or not parts[-1].startswith(("_", "."))


def _digest(files: Mapping[str, str]) -> str:
    markers = {p: v for p, v in files.items() if p.rsplit("/", 1)[-1] == MARKER}
    counted = markers or files
    text = "\n".join(f"{path}\t{version}" for path, version in sorted(counted.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def folder_digests(storage: Storage, folders: Sequence[WatchedFolder]) -> dict[str, str]:
    """Digest by key: the folder's path, or `<path>@<day>` for each day of a partitioned one.
    Empty folders have no key, so their first file shows as a change."""
    digests: dict[str, str] = {}
    for folder in folders:
        base = folder.path.rstrip("/")
        day_folder = (
            re.compile(rf"^{re.escape(folder.partition_column)}=(\d{{4}}-\d{{2}}-\d{{2}})/")
            if folder.partition_column
            else None
        )
        groups: dict[str, dict[str, str]] = defaultdict(dict)
        for path, version in storage.list_versions(base).items():
            relative = path[len(base) + 1 :]
            if not _counts(relative):
                continue
            key = base
            if day_folder is not None:
                match = day_folder.match(relative)
                if match is None:
                    continue
                key = f"{base}@{match.group(1)}"
            groups[key][relative] = version
        digests.update({key: _digest(files) for key, files in groups.items()})
    return digests


def changed_keys(previous: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """Keys that are new or whose digest differs; removed folders are not changes to run."""
    return sorted(key for key, digest in current.items() if previous.get(key) != digest)


def day_of(key: str) -> str | None:
    """The day of a `<path>@<day>` key, None for a whole folder."""
    return key.rsplit("@", 1)[1] if "@" in key else None
