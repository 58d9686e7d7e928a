"""The lake in an ADLS Gen2 account, through the Blob API.

ADLS Gen2 accounts serve the Blob API as well as the DFS API, and the Blob API is what Azurite
emulates (`shared/reference/azurite.md`), so the same code runs in the cloud and in tests.
Spark reads the data itself from `abfss://` URIs; this class only handles files data_mesh
reads or writes (query files, markers, listings).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from data_mesh.lake.storage import StorageError, normalize_path


class BlobStorage:
    """A `Storage` over one storage account; paths are `<container>/<path>`."""

    def __init__(
        self,
        service: BlobServiceClient,
        account: str,
        endpoint_suffix: str = "core.windows.net",
    ) -> None:
        self.service = service
        self.account = account
        self.endpoint_suffix = endpoint_suffix

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        container, _, name = normalize_path(path).partition("/")
        return container, name

    def ensure_container(self, container: str) -> bool:
        """Create the container if it does not exist; True if it was created."""
        try:
            self.service.create_container(container)
            return True
        except ResourceExistsError:
            return False

    def read_text(self, path: str) -> str:
        container, name = self._split(path)
        try:
            blob = self.service.get_blob_client(container, name)
            return blob.download_blob().readall().decode("utf-8")
        except ResourceNotFoundError as error:
            raise StorageError(
                f"{normalize_path(path)} not found in the lake ({self.describe()})"
            ) from error

    def write_bytes(self, path: str, data: bytes) -> None:
        container, name = self._split(path)
        self.ensure_container(container)
        # One upload commits the whole blob: readers see the old content or the new, never half.
        self.service.get_blob_client(container, name).upload_blob(data, overwrite=True)

    def exists(self, path: str) -> bool:
        container, name = self._split(path)
        client = self.service.get_container_client(container)
        if not client.exists():
            return False
        if not name:
            return True
        if client.get_blob_client(name).exists():
            return True
        # A folder exists when any blob lies under it (the Blob API has no empty folders).
        return any(True for _ in client.list_blobs(name_starts_with=name.rstrip("/") + "/"))

    def list_files(self, prefix: str) -> list[str]:
        return sorted(self.list_versions(prefix))

    def _blobs(self, prefix: str) -> Iterator[tuple[str, Any]]:
        """(path, blob properties) of every blob under `prefix`."""
        container, name = self._split(prefix)
        client = self.service.get_container_client(container)
        if not client.exists():
            return
        start = name.rstrip("/") + "/" if name else ""
        for blob in client.list_blobs(name_starts_with=start):
            yield f"{container}/{blob.name}", blob

    def list_versions(self, prefix: str) -> dict[str, str]:
        """Blob paths with their ETag, which changes on every write of the blob."""
        return {path: str(blob.etag) for path, blob in self._blobs(prefix)}

    def file_sizes(self, prefix: str) -> dict[str, int]:
        return {path: int(blob.size) for path, blob in self._blobs(prefix)}

    def remove_tree(self, prefix: str) -> None:
        container, name = self._split(prefix)
        client = self.service.get_container_client(container)
        if not client.exists():
            return
        start = name.rstrip("/") + "/" if name else ""
        # Deepest first: on an ADLS Gen2 account folders are objects that must be empty.
        names = sorted((b.name for b in client.list_blobs(name_starts_with=start)), reverse=True)
        for blob in names:
            client.delete_blob(blob)
        if name and client.get_blob_client(name.rstrip("/")).exists():
            client.delete_blob(name.rstrip("/"))

    def spark_uri(self, path: str) -> str:
        container, name = self._split(path)
        return f"abfss://{container}@{self.account}.dfs.{self.endpoint_suffix}/{name}"

    def describe(self) -> str:
        return f"storage account {self.account}"
