"""The Dagster IO manager for DDZ tables: a thin adapter over `data_mesh.ddz.writer`.

The target comes from the asset's definition metadata (set by the factories from the DataSets
row), so the IO manager holds no per-table configuration.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

from dagster import (
    ConfigurableIOManager,
    DagsterInvariantViolationError,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)
from dagster_pyspark import LazyPySparkResource
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from data_mesh.component.naming import DEFAULT_MESH, MESH_TAG
from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.timeouts import DdzTimeouts
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter, WriteReport
from data_mesh.resources.audit import AuditLogResource, audit_write
from data_mesh.resources.lake import LakeStorageResource
from data_mesh.settings.model import Settings
from data_mesh.spark.conf import spark_config_scope
from data_mesh.store.audit import FAILED, SUCCESS
from data_mesh.store.azure_sql import default_token

# Keys of the asset definition metadata the factories set and this IO manager reads.
TARGET_TABLE = "data_mesh/target_table"
WRITE_MODE = "data_mesh/write_mode"
KEY_COLUMNS = "data_mesh/key_columns"
SPARK_CONFIG = "data_mesh/spark_config"
PARTITION_COLUMN = "data_mesh/partition_column"
MAX_CONNECTIONS = "data_mesh/max_connections"
MAX_CHUNK_ROWS = "data_mesh/max_chunk_rows"
MAX_CHUNK_BYTES = "data_mesh/max_chunk_bytes"
BATCH_BYTES = "data_mesh/batch_bytes"
RETENTION_DAYS = "data_mesh/retention_days"


def metadata_text(metadata: dict[str, Any], key: str, default: str = "") -> str:
    value = metadata.get(key, default)
    return str(getattr(value, "value", value))


def metadata_int(metadata: dict[str, Any], key: str, default: int) -> int:
    return int(metadata_text(metadata, key) or default)


def target_from_metadata(
    metadata: dict[str, Any],
    asset: str,
    partition_key: str | None = None,
    default_max_connections: int = 4,
) -> DdzTarget:
    table = metadata_text(metadata, TARGET_TABLE)
    if "." not in table:
        raise ValueError(f"asset {asset} has no '{TARGET_TABLE}' metadata: not a DDZ dataset")
    schema, name = table.split(".", 1)
    keys = tuple(k for k in metadata_text(metadata, KEY_COLUMNS).split(",") if k)
    partition_column = metadata_text(metadata, PARTITION_COLUMN)
    partition = None
    if partition_key is not None:
        if not partition_column:
            raise ValueError(f"asset {asset} is partitioned but has no '{PARTITION_COLUMN}'")
        partition = (partition_column, partition_key)
    connections = metadata_int(metadata, MAX_CONNECTIONS, default_max_connections)
    retention = metadata_text(metadata, RETENTION_DAYS)
    return DdzTarget(
        TableName(schema, name),
        metadata_text(metadata, WRITE_MODE, "replace"),
        keys,
        partition,
        connections,
        retention_days=int(retention) if retention and partition else None,
    )


def connection_from_env(
    url: str,
    user_env: str,
    password_env: str,
    azure_auth: str = "",
    control: str = "",
    load_path: str = "",
    timeouts: DdzTimeouts | None = None,
) -> DdzConnection:
    """Credentials are looked up by env var *name* at use time: never in config, rows or logs.

    `azure_auth="token"` (Azure SQL): an Azure AD token from the managed identity, for the
    Spark JDBC writes (mssql-jdbc's accessToken) and the pyodbc control statements alike."""
    properties = {}
    if azure_auth == "token":
        properties["accessToken"] = default_token()
    else:
        if os.environ.get(user_env):
            properties["user"] = os.environ[user_env]
        if os.environ.get(password_env):
            properties["password"] = os.environ[password_env]
    return DdzConnection(
        url,
        properties,
        control=control,
        odbc_auth=azure_auth,
        load_path=load_path,
        timeouts=timeouts or DdzTimeouts(),
    )


def connection_from_settings(settings: Settings) -> DdzConnection:
    """The DDZ connection of the settings' environment, for commands outside a run."""
    return connection_from_env(
        settings.resolved_ddz_jdbc_url,
        settings.ddz_user_env,
        settings.ddz_password_env,
        settings.ddz_azure_auth,
        settings.ddz_control,
        settings.ddz_load_path,
    )


def report_metadata(report: WriteReport) -> dict[str, Any]:
    """What each materialization shows in the Dagster UI."""
    metadata: dict[str, Any] = {
        "target_table": report.table,
        "write_mode": report.write_mode,
        "dagster/row_count": report.rows,
        "chunks": report.chunks,
        "loaded_chunks": report.loaded_chunks,
        "resumed_chunks": report.resumed_chunks,
        "retries": report.retries,
        "estimated_bytes": report.estimated_bytes,
        "jdbc_batch_rows": report.batch_rows,
        "duration_s": round(report.duration_s, 3),
        "rows_per_s": round(report.rows_per_s, 1),
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(columns=[TableColumn(n, t) for n, t in report.columns])
        ),
    }
    if report.partition:
        metadata["partition_slice"] = report.partition
    return metadata


class DdzIOManager(ConfigurableIOManager):
    """Writes an asset's Spark DataFrame into its DDZ table; steps read DDZ tables with
    `read_table`."""

    spark: LazyPySparkResource
    jdbc_url: str
    user_env: str = "DATA_MESH_DDZ_USER"
    password_env: str = "DATA_MESH_DDZ_PASSWORD"
    # Azure SQL DDZ: "token" (managed identity) or "sql" for pyodbc control statements.
    azure_auth: str = ""
    # How control statements and rows travel (`data_mesh.ddz.connection`); empty: defaults.
    control: str = ""
    load_path: str = ""
    max_chunk_rows: int = ChunkSettings.max_chunk_rows
    max_chunk_bytes: int = ChunkSettings.max_chunk_bytes
    batch_bytes: int = ChunkSettings.batch_bytes
    max_connections: int = 4
    # The lake, and the folder in it (<container>/<path>) where loads are spooled: the Spark
    # cluster writes and reads the spool, so it never lives on this machine's disk.
    lake: LakeStorageResource
    spool: str = "spool/ddz"
    read_partitions: int = 4
    # Seconds (data_mesh.ddz.timeouts.DdzTimeouts): nothing of a load waits forever.
    login_timeout: int = DdzTimeouts.login
    lock_timeout: int = DdzTimeouts.lock
    statement_timeout: int = DdzTimeouts.statement
    claim_timeout: int = DdzTimeouts.claim
    stall_timeout: int = DdzTimeouts.stall
    # Where each write (and each failed write) is recorded, in the store of the step's mesh
    # (its op tag `data_mesh/mesh`); None: not audited.
    audit: AuditLogResource | None = None

    def _connection(self) -> DdzConnection:
        return connection_from_env(
            self.jdbc_url,
            self.user_env,
            self.password_env,
            self.azure_auth,
            self.control,
            self.load_path,
            DdzTimeouts(
                login=self.login_timeout,
                lock=self.lock_timeout,
                statement=self.statement_timeout,
                claim=self.claim_timeout,
                stall=self.stall_timeout,
            ),
        )

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        metadata = dict(context.definition_metadata or {})
        partition_key = context.asset_partition_key if context.has_asset_partitions else None
        target = target_from_metadata(
            metadata, context.asset_key.to_user_string(), partition_key, self.max_connections
        )
        spark_settings = json.loads(metadata_text(metadata, SPARK_CONFIG, "{}") or "{}")
        writer = DdzWriter(
            self._connection(),
            ChunkSettings(
                max_chunk_rows=metadata_int(metadata, MAX_CHUNK_ROWS, self.max_chunk_rows),
                max_chunk_bytes=metadata_int(metadata, MAX_CHUNK_BYTES, self.max_chunk_bytes),
                batch_bytes=metadata_int(metadata, BATCH_BYTES, self.batch_bytes),
            ),
            Spool(self.lake.storage(), self.spool),
        )
        asset = context.asset_key.to_user_string()
        mesh = mesh_of(context)
        started = time.monotonic()
        try:
            # The DataFrame is lazy: the asset's Spark settings must hold while it runs here.
            with spark_config_scope(obj.sparkSession, spark_settings):
                report = writer.write(obj, target, run=context.run_id)
        except Exception as error:
            audit_write(
                self.audit,
                mesh,
                asset,
                str(target.table),
                context.run_id,
                FAILED,
                started,
                error=error,
            )
            raise
        context.add_output_metadata(report_metadata(report))
        audit_write(
            self.audit,
            mesh,
            asset,
            report.table,
            context.run_id,
            SUCCESS,
            started,
            rows=report.rows,
        )

    def read_table(
        self,
        table: TableName,
        partition_column: str | None = None,
        day_column: str | None = None,
        days: Sequence[str] = (),
    ) -> DataFrame:
        """A DDZ table as a lazy DataFrame, read by `read_partitions` parallel JDBC reads on
        `partition_column`; with `days`, only those days of `day_column` (pushed down to the
        database as a WHERE clause)."""
        frame = read_ddz_table(
            self.spark.spark_session,
            self._connection(),
            table,
            partition_column=partition_column,
            num_partitions=self.read_partitions,
        )
        if day_column and days:
            frame = frame.where(F.col(day_column).isin([F.lit(d).cast("date") for d in days]))
        return frame

    def load_input(self, context: InputContext) -> DataFrame:
        # Dagster's IOManager requires this method, but no asset takes a DDZ table as an
        # argument: a step reads its inputs itself with `read_table` (its partitions, its
        # days), and dependencies between products are deps, not inputs.
        asset = context.asset_key.to_user_string() if context.has_asset_key else "an input"
        raise NotImplementedError(
            f"DDZ inputs are read by the step (DdzIOManager.read_table), not loaded by the IO "
            f"manager: declare {asset} as a dep of the asset, not as an argument"
        )


def mesh_of(context: OutputContext) -> str:
    """The mesh of the step that produced the output (its op tag), whose store audits it; the
    default mesh when the context has no op (an output context built by hand)."""
    try:
        tags = context.op_def.tags
    except DagsterInvariantViolationError:
        return DEFAULT_MESH
    return str(tags.get(MESH_TAG) or DEFAULT_MESH)
