"""The lake as data_mesh sees it: containers of files, addressed `<container>/<path>`.

LOCAL uses a folder laid out like the ADLS account (`<root>/<container>/<path>`); the Azure
implementation (same interface) lives with the resources. Engine code only needs this protocol.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Protocol


def write_atomically(path: Path, content: bytes) -> None:
    """A reader never sees a half-written file; the file is readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class StorageError(FileNotFoundError):
    """A file that is missing or a path that is not allowed; the message names the path."""


def normalize_path(path: str) -> str:
    """`container/dir/file` with no leading slash, no `..`, no empty parts."""
    parts = PurePosixPath(path.strip("/")).parts
    if not parts or any(part in ("..", ".", "") for part in parts):
        raise StorageError(f"lake path {path!r} is not a plain '<container>/<path>'")
    return "/".join(parts)


class Storage(Protocol):
    def read_text(self, path: str) -> str: ...

    def write_bytes(self, path: str, data: bytes) -> None: ...

    def exists(self, path: str) -> bool: ...

    def list_files(self, prefix: str) -> list[str]: ...

    def list_versions(self, prefix: str) -> dict[str, str]:
        """Every file under `prefix` with a version that changes whenever the file does."""
        ...

    def file_sizes(self, prefix: str) -> dict[str, int]:
        """Every file under `prefix` with its size in bytes."""
        ...

    def spark_uri(self, path: str) -> str:
        """The URI Spark reads `path` from (a local path, or abfss:// in the cloud)."""
        ...

    def remove_tree(self, prefix: str) -> None:
        """Remove `prefix` and every file under it; nothing there is not an error."""
        ...

    def describe(self) -> str: ...


class LocalStorage:
    """A local folder standing in for the ADLS account (environment LOCAL)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _file(self, path: str) -> Path:
        return self.root / normalize_path(path)

    def read_text(self, path: str) -> str:
        file = self._file(path)
        if not file.is_file():
            raise StorageError(f"{normalize_path(path)} not found in the lake ({self.root})")
        return file.read_text(encoding="utf-8")

    def write_bytes(self, path: str, data: bytes) -> None:
        write_atomically(self._file(path), data)

    def exists(self, path: str) -> bool:
        return self._file(path).exists()

    def list_files(self, prefix: str) -> list[str]:
        base = self._file(prefix)
        if not base.is_dir():
            return []
        return sorted(
            str(PurePosixPath(p.relative_to(self.root))) for p in base.rglob("*") if p.is_file()
        )

    def list_versions(self, prefix: str) -> dict[str, str]:
        versions = {}
        for path in self.list_files(prefix):
            stat = (self.root / path).stat()
            versions[path] = f"{stat.st_size}:{stat.st_mtime_ns}"
        return versions

    def file_sizes(self, prefix: str) -> dict[str, int]:
        return {path: (self.root / path).stat().st_size for path in self.list_files(prefix)}

    def spark_uri(self, path: str) -> str:
        return str(self._file(path))

    def remove_tree(self, prefix: str) -> None:
        target = self._file(prefix)
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

    def describe(self) -> str:
        return f"local folder {self.root}"


class SavedFiles:
    """Files kept in memory (the query files saved in a metadata snapshot), for checking query
    files at load: they can be read, nothing else."""

    def __init__(self, files: dict[str, str], origin: str) -> None:
        self.files = {normalize_path(path): text for path, text in files.items()}
        self.origin = origin

    def read_text(self, path: str) -> str:
        try:
            return self.files[normalize_path(path)]
        except KeyError:
            raise StorageError(f"{normalize_path(path)} not found in {self.origin}") from None

    def exists(self, path: str) -> bool:
        return normalize_path(path) in self.files

    def describe(self) -> str:
        return self.origin

    def _unsupported(self) -> StorageError:
        return StorageError(f"{self.origin} only holds query files to read")

    def write_bytes(self, path: str, data: bytes) -> None:
        raise self._unsupported()

    def list_files(self, prefix: str) -> list[str]:
        raise self._unsupported()

    def list_versions(self, prefix: str) -> dict[str, str]:
        raise self._unsupported()

    def file_sizes(self, prefix: str) -> dict[str, int]:
        raise self._unsupported()

    def spark_uri(self, path: str) -> str:
        raise self._unsupported()

    def remove_tree(self, prefix: str) -> None:
        raise self._unsupported()
