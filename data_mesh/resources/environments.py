"""The resource set of each environment, in one place (like hooli's resources by deployment)."""

from __future__ import annotations

from typing import Any

from data_mesh.resources.ddz_io_manager import DdzIOManager
from data_mesh.resources.lake import LakeResource
from data_mesh.resources.quality_history import QualityHistoryResource
from data_mesh.resources.spark import spark_resource
from data_mesh.settings import Settings

DDZ_IO_MANAGER_KEY = "ddz_io_manager"
QUALITY_HISTORY_KEY = "quality_history"


def resources_for(settings: Settings) -> dict[str, Any]:
    """Resources by key for `settings.env`.

    LOCAL: a lake folder, Spark `local[*]` and the embedded H2 DDZ. DEV, INT, QA and PROD use
    the same keys and code, pointed elsewhere through `DATA_MESH_*` variables (Azure-native
    clients for ADLS and Azure SQL come with the environments work, issue 5).
    """
    spark = spark_resource(settings)
    resources: dict[str, Any] = {
        "spark": spark,
        "lake": LakeResource(root=str(settings.resolved_lake_root)),
        QUALITY_HISTORY_KEY: QualityHistoryResource(metadata_url=settings.resolved_metadata_url),
        DDZ_IO_MANAGER_KEY: DdzIOManager(
            spark=spark,
            jdbc_url=settings.resolved_ddz_jdbc_url,
            user_env=settings.ddz_user_env,
            password_env=settings.ddz_password_env,
            spool_dir=str(settings.home_dir / "spool"),
        ),
    }
    return resources
