"""The resource set of each environment, in one place (like hooli's resources by deployment),
for the meshes of one code location: Spark, the lake and the DDZ are the environment's; the
store-bound resources hold every mesh's store by name."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from data_mesh.catalog.errors import DataMeshError
from data_mesh.component.naming import DEFAULT_MESH
from data_mesh.resources.audit import AuditLogResource
from data_mesh.resources.ddz_io_manager import DdzIOManager
from data_mesh.resources.kafka_io_manager import KafkaIOManager
from data_mesh.resources.lake import lake_resource_for
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.resources.quality_history import QualityHistoryResource
from data_mesh.resources.spark import spark_resource
from data_mesh.settings.model import Settings

DDZ_IO_MANAGER_KEY = "ddz_io_manager"
KAFKA_IO_MANAGER_KEY = "kafka_io_manager"
QUALITY_HISTORY_KEY = "quality_history"
AUDIT_LOG_KEY = "audit_log"
METADATA_STORE_KEY = "metadata_store"


# The settings of a mesh's own store; every other setting is the environment's, the same for
# every mesh of a code location.
STORE_SETTINGS = frozenset(
    {
        "metadata_url",
        "metadata_azure_server",
        "metadata_azure_database",
        "metadata_azure_auth",
        "defs_state",
    }
)


class MeshSettingsError(DataMeshError):
    """Meshes of one code location whose environment settings differ."""


def resources_for(settings: Settings, mesh: str = DEFAULT_MESH) -> dict[str, Any]:
    """Resources by key for `settings.env`, with one mesh (`mesh`, the store of `settings`).

    LOCAL: a lake folder, Spark `local[*]` and the embedded H2 DDZ. DEV, INT, QA and PROD use
    the same keys and code: the lake in ADLS Gen2 (dagster-azure's ADLS2Resource), the rest
    pointed elsewhere through `DATA_MESH_*` variables.
    """
    return resources_for_meshes({mesh: settings})


def environment_settings(settings: Settings) -> dict[str, Any]:
    """The settings every mesh of a code location shares (all but its store's)."""
    fields = type(settings).model_fields
    return {name: getattr(settings, name) for name in fields if name not in STORE_SETTINGS}


def check_same_environment(meshes: Mapping[str, Settings]) -> None:
    """Raises `MeshSettingsError` naming two meshes and the first environment setting in
    which they differ: their resources (Spark, lake, DDZ) are one set."""
    items = list(meshes.items())
    if not items:
        return
    first, reference = items[0][0], environment_settings(items[0][1])
    for name, settings in items[1:]:
        values = environment_settings(settings)
        for key, value in reference.items():
            if values.get(key) != value:
                raise MeshSettingsError(
                    f"meshes {first!r} and {name!r} of one code location differ in the "
                    f"environment setting {key!r} (DATA_MESH_{key.upper()}): every mesh of a "
                    "code location shares its Spark, lake and DDZ; only `metadata_url` (and "
                    "the metadata_azure_* settings) may differ"
                )


def resources_for_meshes(meshes: Mapping[str, Settings]) -> dict[str, Any]:
    """Resources by key for several meshes of one environment: Spark, the lake and the DDZ
    are the environment's; the metadata store, audit log and quality history hold every
    mesh's store by name (callers name the mesh). New objects on each call."""
    if not meshes:
        raise ValueError("resources need at least one mesh")
    check_same_environment(meshes)
    settings = next(iter(meshes.values()))
    spark = spark_resource(settings)
    lake = lake_resource_for(settings)
    store = MetadataStoreResource.for_meshes(meshes)
    audit = AuditLogResource(store=store)
    resources: dict[str, Any] = {
        "spark": spark,
        "lake": lake,
        QUALITY_HISTORY_KEY: QualityHistoryResource(store=store),
        AUDIT_LOG_KEY: audit,
        METADATA_STORE_KEY: store,
        DDZ_IO_MANAGER_KEY: DdzIOManager(
            spark=spark,
            jdbc_url=settings.resolved_ddz_jdbc_url,
            user_env=settings.ddz_user_env,
            password_env=settings.ddz_password_env,
            azure_auth=settings.ddz_azure_auth,
            control=settings.ddz_control,
            load_path=settings.ddz_load_path,
            lake=lake,
            spool=settings.ddz_spool,
            login_timeout=settings.ddz_login_timeout,
            lock_timeout=settings.ddz_lock_timeout,
            statement_timeout=settings.ddz_statement_timeout,
            claim_timeout=settings.ddz_claim_timeout,
            stall_timeout=settings.ddz_stall_timeout,
            audit=audit,
        ),
        KAFKA_IO_MANAGER_KEY: KafkaIOManager(lake=lake, audit=audit),
    }
    return resources


# Settings of each mesh (name, JSON) -> the resources built for them, once per process.
_SHARED: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
_SHARED_LOCK = threading.Lock()


def shared_resources(meshes: Mapping[str, Settings]) -> dict[str, Any]:
    """`resources_for_meshes`, built once per process for a set of meshes: every mesh of a
    code location gets the same objects, as `Definitions.merge` (dg's loading of the defs
    folder) requires of resources with one key. A new dict each time, of the same objects."""
    key = tuple(
        sorted(
            (name, repr([(f, getattr(s, f)) for f in Settings.model_fields]))
            for name, s in meshes.items()
        )
    )
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = resources_for_meshes(meshes)
        return dict(_SHARED[key])
