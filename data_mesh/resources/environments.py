"""The resource set of each environment, in one place (like hooli's resources by deployment)."""

from __future__ import annotations

from typing import Any

from data_mesh.resources.audit import AuditLogResource
from data_mesh.resources.ddz_io_manager import DdzIOManager
from data_mesh.resources.lake import lake_resource_for
from data_mesh.resources.metadata_store import MetadataStoreResource
from data_mesh.resources.quality_history import QualityHistoryResource
from data_mesh.resources.spark import spark_resource
from data_mesh.settings.model import Settings

DDZ_IO_MANAGER_KEY = "ddz_io_manager"
QUALITY_HISTORY_KEY = "quality_history"
AUDIT_LOG_KEY = "audit_log"
METADATA_STORE_KEY = "metadata_store"


def resources_for(settings: Settings) -> dict[str, Any]:
    """Resources by key for `settings.env`.

    LOCAL: a lake folder, Spark `local[*]` and the embedded H2 DDZ. DEV, INT, QA and PROD use
    the same keys and code: the lake in ADLS Gen2 (dagster-azure's ADLS2Resource), the rest
    pointed elsewhere through `DATA_MESH_*` variables.
    """
    spark = spark_resource(settings)
    lake = lake_resource_for(settings)
    store = MetadataStoreResource.from_settings(settings)
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
    }
    return resources
