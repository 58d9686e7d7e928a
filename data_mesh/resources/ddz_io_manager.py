"""The Dagster IO manager for DDZ tables: a thin adapter over `data_mesh.ddz.writer`.

The target comes from the asset's definition metadata (set by the factories from the DataSets
row), so the IO manager holds no per-table configuration.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dagster import (
    ConfigurableIOManager,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame

from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.writer import (
    ChunkSettings,
    DdzConnection,
    DdzTarget,
    read_ddz_table,
    write_to_ddz,
)
from data_mesh.transforms.execute import spark_config_scope

# Keys of the asset definition metadata the factories set and this IO manager reads.
TARGET_TABLE = "data_mesh/target_table"
WRITE_MODE = "data_mesh/write_mode"
KEY_COLUMNS = "data_mesh/key_columns"
SPARK_CONFIG = "data_mesh/spark_config"


def _metadata_text(metadata: dict[str, Any], key: str, default: str = "") -> str:
    value = metadata.get(key, default)
    return str(getattr(value, "value", value))


def target_from_metadata(metadata: dict[str, Any], asset: str) -> DdzTarget:
    table = _metadata_text(metadata, TARGET_TABLE)
    if "." not in table:
        raise ValueError(f"asset {asset} has no '{TARGET_TABLE}' metadata: not a DDZ dataset")
    schema, name = table.split(".", 1)
    keys = tuple(k for k in _metadata_text(metadata, KEY_COLUMNS).split(",") if k)
    return DdzTarget(TableName(schema, name), _metadata_text(metadata, WRITE_MODE, "replace"), keys)


class DdzIOManager(ConfigurableIOManager):
    """Writes an asset's Spark DataFrame into its DDZ table; reads it back for downstream assets."""

    spark: LazyPySparkResource
    jdbc_url: str
    user_env: str = "DATA_MESH_DDZ_USER"
    password_env: str = "DATA_MESH_DDZ_PASSWORD"
    max_chunk_rows: int = ChunkSettings.max_chunk_rows
    max_chunk_bytes: int = ChunkSettings.max_chunk_bytes
    batch_bytes: int = ChunkSettings.batch_bytes

    def _connection(self) -> DdzConnection:
        # Credentials are looked up by env var name at use time: never stored in config or logs.
        properties = {}
        if os.environ.get(self.user_env):
            properties["user"] = os.environ[self.user_env]
        if os.environ.get(self.password_env):
            properties["password"] = os.environ[self.password_env]
        return DdzConnection(self.jdbc_url, properties)

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        metadata = dict(context.definition_metadata or {})
        target = target_from_metadata(metadata, context.asset_key.to_user_string())
        spark_settings = json.loads(_metadata_text(metadata, SPARK_CONFIG, "{}") or "{}")
        settings = ChunkSettings(
            max_chunk_rows=self.max_chunk_rows,
            max_chunk_bytes=self.max_chunk_bytes,
            batch_bytes=self.batch_bytes,
        )
        # The DataFrame is lazy: the asset's Spark settings must hold while it executes here.
        with spark_config_scope(obj.sparkSession, spark_settings):
            report = write_to_ddz(obj, target, self._connection(), settings)
        context.add_output_metadata(
            {
                "target_table": report.table,
                "write_mode": report.write_mode,
                "dagster/row_count": report.rows,
                "chunks": report.chunks,
                "estimated_bytes": report.estimated_bytes,
                "jdbc_batch_rows": report.batch_rows,
                "duration_s": round(report.duration_s, 3),
                "rows_per_s": round(report.rows / report.duration_s, 1) if report.duration_s else 0,
                "dagster/column_schema": MetadataValue.table_schema(
                    TableSchema(columns=[TableColumn(n, t) for n, t in report.columns])
                ),
            }
        )

    def load_input(self, context: InputContext) -> DataFrame:
        upstream = context.upstream_output
        metadata = dict(upstream.definition_metadata or {}) if upstream else {}
        asset = context.asset_key.to_user_string() if context.has_asset_key else "input"
        target = target_from_metadata(metadata, asset)
        spark = self.spark.spark_session
        return read_ddz_table(spark.read, self._connection(), target.table)
