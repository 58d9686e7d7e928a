"""The lake in ADLS Gen2 through the Azure SDK, against Azurite: query files, listings,
containers created on demand, and the same CLI and catalog code as LOCAL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.catalog.errors import DataMeshError
from data_mesh.cli.app import app
from data_mesh.component.mesh import DataMeshComponent
from data_mesh.component.project import saved_state
from data_mesh.component.state import catalog_from_state
from data_mesh.lake.blob_storage import BlobStorage
from data_mesh.lake.storage import StorageError
from data_mesh.resources.environments import resources_for
from data_mesh.resources.lake import AdlsLakeResource, LakeResource, lake_resource_for
from data_mesh.settings.model import Settings
from data_mesh.transforms.query_files import load_query_plan
from data_mesh_tests.conftest import AZURITE_ACCOUNT, SAMPLE_PRODUCTS

CONNECTION_ENV = "DATA_MESH_TEST_AZURITE_CONNECTION"


@pytest.fixture
def blob_storage(azurite: str) -> BlobStorage:
    return BlobStorage(BlobServiceClient.from_connection_string(azurite), AZURITE_ACCOUNT)


def test_write_read_list_and_exists(blob_storage: BlobStorage) -> None:
    container = f"c{uuid.uuid4().hex[:12]}"
    assert not blob_storage.exists(container)
    assert blob_storage.list_files(container) == []
    blob_storage.write_bytes(f"{container}/p/q/a.properties", b"x = 1\n")
    blob_storage.write_bytes(f"{container}/p/b.txt", b"b")
    blob_storage.write_bytes(f"{container}/other/c.txt", b"c")
    assert blob_storage.read_text(f"{container}/p/q/a.properties") == "x = 1\n"
    assert blob_storage.list_files(f"{container}/p") == [
        f"{container}/p/b.txt",
        f"{container}/p/q/a.properties",
    ]
    assert blob_storage.exists(f"{container}/p/q")  # a folder: blobs lie under it
    assert not blob_storage.exists(f"{container}/p/missing.txt")
    with pytest.raises(StorageError, match=f"{container}/p/missing.txt not found"):
        blob_storage.read_text(f"{container}/p/missing.txt")


def test_remove_tree_removes_a_folder_and_nothing_else(blob_storage: BlobStorage) -> None:
    """How the DDZ spool is removed after a publish: a folder of Spark's files, and only it."""
    container = f"c{uuid.uuid4().hex[:12]}"
    for name in ("_SUCCESS", "__dm_chunk=0/part-0.parquet", "__dm_chunk=1/part-0.parquet"):
        blob_storage.write_bytes(f"{container}/spool/ddz/slot/load/{name}", b"x")
    blob_storage.write_bytes(f"{container}/spool/ddz/other/_SUCCESS", b"x")
    blob_storage.remove_tree(f"{container}/spool/ddz/slot")
    assert blob_storage.list_files(f"{container}/spool") == [
        f"{container}/spool/ddz/other/_SUCCESS"
    ]
    blob_storage.remove_tree(f"{container}/spool/ddz/slot")  # nothing there: not an error
    blob_storage.remove_tree(f"c{uuid.uuid4().hex[:12]}/spool")  # no container either


def test_container_is_created_if_missing(blob_storage: BlobStorage) -> None:
    container = f"c{uuid.uuid4().hex[:12]}"
    assert blob_storage.ensure_container(container) is True
    assert blob_storage.ensure_container(container) is False
    assert blob_storage.exists(container)


def test_spark_reads_abfss_uris_in_the_cloud(blob_storage: BlobStorage) -> None:
    assert (
        blob_storage.spark_uri("cdz/analytics_sor1_cdz/sor1_driver_table")
        == f"abfss://cdz@{AZURITE_ACCOUNT}.dfs.core.windows.net/analytics_sor1_cdz/sor1_driver_table"
    )


@pytest.fixture
def adls_settings(
    settings: Settings, store: object, azurite: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """LOCAL settings whose lake is the Azurite account (DATA_MESH_LAKE=adls)."""
    monkeypatch.setenv(CONNECTION_ENV, azurite)
    return settings.model_copy(
        update={
            "lake": "adls",
            "adls_account": AZURITE_ACCOUNT,
            "adls_connection_string_env": CONNECTION_ENV,
        }
    )


def test_load_publishes_query_files_to_adls_and_validate_reads_them(
    adls_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATA_MESH_LAKE", "adls")
    monkeypatch.setenv("DATA_MESH_ADLS_ACCOUNT", AZURITE_ACCOUNT)
    monkeypatch.setenv("DATA_MESH_ADLS_CONNECTION_STRING_ENV", CONNECTION_ENV)
    runner = CliRunner()
    result = runner.invoke(app, ["load", str(SAMPLE_PRODUCTS)])
    assert result.exit_code == 0, result.output
    storage = lake_storage(adls_settings)
    assert isinstance(storage, BlobStorage)
    assert storage.list_files("queries/sor1_payments") == [
        "queries/sor1_payments/sor1_payments_query.properties",
        "queries/sor1_payments/sor1_payments_sequence.properties",
    ]
    catalog = load_catalog(adls_settings)  # checks every query file, read from Azurite
    assert catalog.problems == []
    transformation = catalog.product("sor1_payments").transformations[0]
    plan = load_query_plan(storage, transformation.config)  # type: ignore[arg-type]
    assert [s.name for s in plan.statements] == ["df_driver", "df_payments", "df_target"]
    validate = runner.invoke(app, ["validate"])
    assert validate.exit_code == 0, validate.output

    # The state the load refreshed holds the query files read from Azurite: definitions
    # built from it alone have every product.
    saved = saved_state(DataMeshComponent(), None)
    assert saved.state is not None
    from_state = catalog_from_state(saved.state, "LOCAL", "state")
    assert [p.name for p in from_state.products] == [p.name for p in catalog.products]

    storage.write_bytes("queries/sor1_payments/sor1_payments_sequence.properties", b"df_nope\n")
    broken = load_catalog(adls_settings)
    assert [p.product for p in broken.problems] == ["sor1_payments"]


def test_resources_by_environment(settings: Settings) -> None:
    assert isinstance(resources_for(settings)["lake"], LakeResource)
    cloud = settings.model_copy(update={"env": "PROD", "adls_account": "prodlake"})
    lake = lake_resource_for(cloud)
    assert isinstance(lake, AdlsLakeResource) and lake.credential == "default"
    # DefaultAzureCredential: no secret anywhere; the client addresses the account's endpoint.
    client = lake.adls2().blob_client
    assert client.url == "https://prodlake.blob.core.windows.net/"
    with pytest.raises(DataMeshError, match="DATA_MESH_ADLS_ACCOUNT"):
        lake_resource_for(settings.model_copy(update={"env": "DEV"}))
    keyed = AdlsLakeResource(storage_account="prodlake", credential="key", key_env="NO_SUCH_VAR")
    with pytest.raises(DataMeshError, match="set the env var NO_SUCH_VAR"):
        keyed.storage()
