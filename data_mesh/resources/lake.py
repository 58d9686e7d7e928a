"""The lake as a Dagster resource: a local folder in LOCAL, ADLS Gen2 in the cloud."""

from __future__ import annotations

import os
from typing import Literal

from azure.storage.blob import BlobServiceClient
from dagster import ConfigurableResource
from dagster_azure.adls2 import (
    ADLS2DefaultAzureCredential,
    ADLS2Key,
    ADLS2Resource,
    ADLS2SASToken,
)

from data_mesh.catalog.errors import DataMeshError
from data_mesh.lake.blob_storage import BlobStorage
from data_mesh.lake.storage import LocalStorage, Storage
from data_mesh.settings.model import Settings


class LakeStorageResource(ConfigurableResource):  # type: ignore[type-arg]
    """The lake, whichever it is: what other resources (the DDZ IO manager's spool) depend on."""

    def storage(self) -> Storage:
        raise NotImplementedError


class LakeResource(LakeStorageResource):
    """A local folder laid out like the ADLS account: `<root>/<container>/<path>`."""

    root: str

    def storage(self) -> Storage:
        return LocalStorage(self.root)


class AdlsLakeResource(LakeStorageResource):
    """The lake in an ADLS Gen2 account. Clients come from dagster-azure's `ADLS2Resource`
    with an account key, a SAS token or DefaultAzureCredential (managed identity).

    Secrets are read from the env vars named here when the lake is used, so the resource's
    config (shown in the UI) holds names, never values. `connection_string_env` names an env
    var with a storage connection string; when that is set it wins (Azurite in tests).
    """

    storage_account: str
    credential: Literal["default", "key", "sas"] = "default"
    key_env: str = "DATA_MESH_ADLS_KEY"
    sas_env: str = "DATA_MESH_ADLS_SAS"
    endpoint_suffix: str = "core.windows.net"
    connection_string_env: str | None = None

    def adls2(self) -> ADLS2Resource:
        credential: ADLS2Key | ADLS2SASToken | ADLS2DefaultAzureCredential
        if self.credential == "key":
            credential = ADLS2Key(key=_required_env(self.key_env, "the storage account key"))
        elif self.credential == "sas":
            credential = ADLS2SASToken(token=_required_env(self.sas_env, "a SAS token"))
        else:
            credential = ADLS2DefaultAzureCredential(kwargs={})
        return ADLS2Resource(
            storage_account=self.storage_account,
            credential=credential,
            endpoint_suffix=self.endpoint_suffix,
        )

    def storage(self) -> BlobStorage:
        connection_string = os.environ.get(self.connection_string_env or "")
        if connection_string:
            service = BlobServiceClient.from_connection_string(connection_string)
            return BlobStorage(service, self.storage_account, self.endpoint_suffix)
        return BlobStorage(self.adls2().blob_client, self.storage_account, self.endpoint_suffix)


def _required_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise DataMeshError(f"set the env var {name} to {what} (DATA_MESH_ADLS_CREDENTIAL)")
    return value


def lake_resource_for(settings: Settings) -> LakeStorageResource:
    """LOCAL: a folder. Cloud environments (or DATA_MESH_LAKE=adls): the ADLS account."""
    if settings.resolved_lake_kind == "local":
        return LakeResource(root=str(settings.resolved_lake_root))
    if not settings.adls_account:
        raise DataMeshError(
            f"environment {settings.env} uses ADLS: set DATA_MESH_ADLS_ACCOUNT (and "
            "DATA_MESH_ADLS_CREDENTIAL: default, key or sas)"
        )
    return AdlsLakeResource(
        storage_account=settings.adls_account,
        credential=settings.adls_credential,
        endpoint_suffix=settings.adls_endpoint_suffix,
        connection_string_env=settings.adls_connection_string_env,
    )
