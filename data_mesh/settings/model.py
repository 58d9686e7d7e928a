"""Settings from the environment (`DATA_MESH_*`); LOCAL needs none of them.

LOCAL keeps everything under `DATA_MESH_HOME` (default `./.data_mesh`): the SQLite metadata
store, the lake folder, the embedded H2 DDZ and Dagster's own storage.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from data_mesh.lake.storage import StorageError, normalize_path

# mssql-jdbc from Maven Central, which scripts/setup.sh puts under .tools/jars of the checkout
# (its version is pinned there); a path only, absent outside a checkout (then skipped).
MSSQL_JDBC_JAR = str(Path(__file__).parents[2] / ".tools" / "jars" / "mssql-jdbc-13.6.2.jre11.jar")
# JDBC drivers from Debian packages (libh2-java, libpostgresql-jdbc-java; see .ci/run) and
# mssql-jdbc; the Spark session gets those that exist (data_mesh.resources.spark).
DEFAULT_JDBC_JARS = ("/usr/share/java/h2.jar", "/usr/share/java/postgresql.jar", MSSQL_JDBC_JAR)


class Environment(StrEnum):
    LOCAL = "LOCAL"
    DEV = "DEV"
    INT = "INT"
    QA = "QA"
    PROD = "PROD"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DATA_MESH_", extra="ignore")

    env: Environment = Environment.LOCAL
    home: Path = Field(default=Path(".data_mesh"), description="Folder for LOCAL state.")
    metadata_url: str | None = Field(default=None, description="SQLAlchemy URL of the store.")
    metadata_azure_server: str | None = Field(
        default=None,
        description="Azure SQL server of the store (x.database.windows.net); wins over the URL.",
    )
    metadata_azure_database: str = "data_mesh_metadata"
    metadata_azure_auth: Literal["token", "sql"] = Field(
        default="token",
        description="Azure AD token (managed identity), or SQL auth from DATA_MESH_SQL_USER / "
        "DATA_MESH_SQL_PASSWORD.",
    )
    lake_root: Path | None = Field(default=None, description="Local folder standing in for ADLS.")
    ddz_jdbc_url: str | None = Field(default=None, description="JDBC URL of the DDZ database.")
    ddz_user_env: str = Field(
        default="DATA_MESH_DDZ_USER", description="Name of the env var holding the DDZ user."
    )
    ddz_password_env: str = Field(
        default="DATA_MESH_DDZ_PASSWORD",
        description="Name of the env var holding the DDZ password.",
    )
    lake: Literal["local", "adls"] | None = Field(
        default=None, description="Where the lake is; default: local in LOCAL, adls elsewhere."
    )
    adls_account: str | None = Field(default=None, description="ADLS Gen2 storage account.")
    adls_credential: Literal["default", "key", "sas"] = Field(
        default="default",
        description="DefaultAzureCredential (managed identity), or a key / SAS token from "
        "DATA_MESH_ADLS_KEY / DATA_MESH_ADLS_SAS.",
    )
    adls_endpoint_suffix: str = "core.windows.net"
    adls_connection_string_env: str | None = Field(
        default=None,
        description="Name of an env var holding a storage connection string (Azurite).",
    )
    ddz_azure_auth: Literal["", "token", "sql"] = Field(
        default="",
        description="Azure SQL DDZ: 'token' (Azure AD, managed identity) or 'sql' (user and "
        "password from the env vars above) for pyodbc control statements; empty: JDBC only.",
    )
    ddz_control: Literal["", "jvm", "odbc", "psycopg"] = Field(
        default="",
        description="How the client sends the DDZ writer's control statements: odbc (pyodbc: "
        "Azure SQL, or PostgreSQL through psqlODBC), psycopg (PostgreSQL) or jvm (the Spark "
        "driver's JDBC, classic Spark only); empty: odbc with DATA_MESH_DDZ_AZURE_AUTH, "
        "psycopg for PostgreSQL, jvm otherwise.",
    )
    ddz_load_path: Literal["", "jdbc", "copy"] = Field(
        default="",
        description="How rows travel into the DDZ: jdbc (Spark's JDBC writer, from the "
        "cluster) or copy (PostgreSQL COPY from the Spark tasks); empty: copy for PostgreSQL, "
        "jdbc otherwise.",
    )
    ddz_spool: str = Field(
        default="spool/ddz",
        description="Lake folder (<container>/<path>) where the jdbc load path spools each "
        "load once; the cluster writes and reads it, so it must be in the lake.",
    )
    # Nothing of a DDZ load may wait forever (data_mesh.ddz.timeouts), in seconds.
    ddz_login_timeout: int = Field(default=30, ge=1, description="Opening a DDZ connection.")
    ddz_lock_timeout: int = Field(
        default=60, ge=1, description="A DDZ statement waiting for a lock another session holds."
    )
    ddz_statement_timeout: int = Field(
        default=3600, ge=1, description="One DDZ statement or one JDBC batch of a chunk."
    )
    ddz_claim_timeout: int = Field(
        default=600,
        ge=0,
        description="A load waiting for another load of the same DDZ table (or partition slice) "
        "to finish; 0: fail at once, naming the run that holds it.",
    )
    ddz_stall_timeout: int = Field(
        default=1800, ge=1, description="A chunk's Spark job still running after this is cancelled."
    )
    defs_state: Literal["LOCAL_FILESYSTEM", "VERSIONED_STATE_STORAGE"] | None = Field(
        default=None,
        description="Where the state Dagster definitions are built from lives: a file in the "
        "project, or the Dagster instance's state storage (dagster.yaml `defs_state_storage`), "
        "so every pod loads the version last published; default: the file in LOCAL, the "
        "instance's storage elsewhere.",
    )
    spark_master: str = "local[*]"
    spark_remote: str | None = Field(
        default=None,
        description="Spark Connect URL (sc://host:port); when set, Spark runs there, not here.",
    )
    spark_driver_memory: str = "2g"
    jdbc_jars: tuple[str, ...] = DEFAULT_JDBC_JARS

    @field_validator("ddz_spool")
    @classmethod
    def _spool_folder(cls, value: str) -> str:
        try:
            path = normalize_path(value)
        except StorageError as error:
            raise ValueError(str(error)) from None
        if "/" not in path:
            raise ValueError(f"{value!r} names no folder in a container: give <container>/<path>")
        return path

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def resolved_metadata_url(self) -> str:
        return self.metadata_url or f"sqlite:///{self.home_dir / 'metadata.db'}"

    @property
    def resolved_lake_root(self) -> Path:
        return (self.lake_root or self.home_dir / "lake").expanduser().resolve()

    @property
    def resolved_lake_kind(self) -> str:
        return self.lake or ("local" if self.env == Environment.LOCAL else "adls")

    @property
    def resolved_ddz_jdbc_url(self) -> str:
        if self.ddz_jdbc_url:
            return self.ddz_jdbc_url
        # AUTO_SERVER lets `dagster dev`, the CLI and a SQL shell open the same file at once.
        return f"jdbc:h2:file:{self.home_dir / 'ddz' / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE"

    @property
    def resolved_defs_state(self) -> str:
        if self.defs_state is not None:
            return self.defs_state
        return "LOCAL_FILESYSTEM" if self.env == Environment.LOCAL else "VERSIONED_STATE_STORAGE"

    @property
    def dagster_home(self) -> Path:
        return self.home_dir / "dagster_home"

    def missing_settings(self) -> dict[str, str]:
        """DATA_MESH_<NAME> -> what it is, for each setting this environment needs and lacks.
        Only LOCAL has defaults for them (SQLite, the H2 file, a lake folder): a cloud
        environment falling back to those would run against this machine's files."""
        if self.env == Environment.LOCAL:
            return {}
        missing = {}
        if not self.metadata_azure_server and not self.metadata_url:
            missing["DATA_MESH_METADATA_AZURE_SERVER"] = (
                "the metadata store's Azure SQL server (or DATA_MESH_METADATA_URL)"
            )
        if not self.ddz_jdbc_url:
            missing["DATA_MESH_DDZ_JDBC_URL"] = "the JDBC URL of the DDZ database"
        if self.resolved_lake_kind == "adls" and not self.adls_account:
            missing["DATA_MESH_ADLS_ACCOUNT"] = "the lake's ADLS Gen2 storage account"
        return missing


def load_settings(**overrides: object) -> Settings:
    """Settings from `DATA_MESH_*` variables; `overrides` (field names) win over them."""
    return Settings(**overrides)  # type: ignore[arg-type]
