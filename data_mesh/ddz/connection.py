"""Where the DDZ is and how the writer reaches it.

Two choices, independent of the SQL dialect:
- the **load path**, how rows travel: `jdbc` (Spark's JDBC writer, in the cluster, straight into
  the stage; every database) or `copy` (PostgreSQL's COPY from the Spark tasks);
- the **control session**, how the client (code server, run worker) sends the writer's own
  statements (stage, ledger, publish): `odbc` (pyodbc: Azure SQL with an Entra token, or
  PostgreSQL through psqlODBC), `psycopg` (PostgreSQL) or `jvm` (JDBC in the Spark driver's
  JVM, which exists only with classic Spark).
Combinations that cannot work are refused by `check` before anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.dialects import Dialect, dialect_for_url
from data_mesh.ddz.timeouts import DdzTimeouts

CONTROLS = ("jvm", "odbc", "psycopg")
LOAD_PATHS = ("jdbc", "copy")


class DdzConnectionError(DataMeshError):
    """A DDZ connection setting that cannot work; says why and what to set."""


@dataclass(frozen=True)
class DdzConnection:
    """`properties` (user, password, accessToken) are resolved secrets: never log them."""

    url: str
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)
    table_lock: bool = False
    # Empty: the dialect's default (PostgreSQL: psycopg; SQL Server with `odbc_auth`: odbc;
    # otherwise jvm).
    control: str = ""
    # SQL Server over ODBC: "token" (Entra ID, managed identity) or "sql" (user, password).
    odbc_auth: str = ""
    # Empty: PostgreSQL copy, every other database jdbc.
    load_path: str = ""
    timeouts: DdzTimeouts = field(default_factory=DdzTimeouts)

    @property
    def dialect(self) -> Dialect:
        return dialect_for_url(self.url)

    @property
    def jdbc_url(self) -> str:
        return self.dialect.jdbc_url(self.url, self.table_lock)

    @property
    def jdbc_properties(self) -> dict[str, str]:
        """What every JDBC connection of the writer gets: the credentials and the timeouts."""
        return {**self.dialect.timeout_properties(self.timeouts), **self.properties}

    @property
    def resolved_control(self) -> str:
        if self.control:
            return self.control
        if self.dialect.name == "postgresql":
            return "psycopg"
        if self.dialect.name == "sqlserver" and self.odbc_auth:
            return "odbc"
        return "jvm"

    @property
    def resolved_load_path(self) -> str:
        return self.load_path or ("copy" if self.dialect.name == "postgresql" else "jdbc")

    def check(self, spark_connect: bool, cluster: bool = False) -> None:
        """Refuse what cannot work, naming the setting to change. `cluster`: Spark's executors
        run on other machines (Spark Connect, or a classic driver with a cluster master)."""
        name, control, path = self.dialect.name, self.resolved_control, self.resolved_load_path
        if control not in CONTROLS:
            raise DdzConnectionError(
                f"DDZ control session {control!r} is unknown: set DATA_MESH_DDZ_CONTROL to one of "
                f"{', '.join(CONTROLS)}"
            )
        if path not in LOAD_PATHS:
            raise DdzConnectionError(
                f"DDZ load path {path!r} is unknown: set DATA_MESH_DDZ_LOAD_PATH to one of "
                f"{', '.join(LOAD_PATHS)}"
            )
        if path == "copy" and name != "postgresql":
            raise DdzConnectionError(
                f"the copy load path is PostgreSQL's COPY; the DDZ is {name}: set "
                "DATA_MESH_DDZ_LOAD_PATH=jdbc"
            )
        if control == "psycopg" and name != "postgresql":
            raise DdzConnectionError(
                f"psycopg only reaches PostgreSQL; the DDZ is {name}: set DATA_MESH_DDZ_CONTROL "
                "to odbc or jvm"
            )
        if control == "odbc" and name == "h2":
            raise DdzConnectionError(
                "the embedded H2 DDZ has no ODBC driver: unset DATA_MESH_DDZ_CONTROL"
            )
        if control == "odbc" and name == "sqlserver" and self.odbc_auth not in ("token", "sql"):
            raise DdzConnectionError(
                "control statements to Azure SQL over ODBC need an authentication: set "
                "DATA_MESH_DDZ_AZURE_AUTH to token (managed identity) or sql"
            )
        if spark_connect and name == "h2":
            raise DdzConnectionError(
                "an H2 DDZ is reached through the Spark driver's JVM (the embedded one is a file "
                "of this machine), which Spark Connect does not expose: point "
                "DATA_MESH_DDZ_JDBC_URL at a database server (Azure SQL or PostgreSQL), or unset "
                "DATA_MESH_SPARK_REMOTE"
            )
        if cluster and self.dialect.embedded(self.url):
            raise DdzConnectionError(
                "the embedded H2 DDZ is a file of this machine, which the Spark cluster's "
                "executors cannot write: point DATA_MESH_DDZ_JDBC_URL at a database server, or "
                "run Spark locally (DATA_MESH_SPARK_MASTER=local[*])"
            )
        if spark_connect and control == "jvm":
            instead = (
                "set DATA_MESH_DDZ_AZURE_AUTH=token (or sql) to send them over pyodbc"
                if name == "sqlserver"
                else "set DATA_MESH_DDZ_CONTROL to psycopg or odbc"
            )
            raise DdzConnectionError(
                "the DDZ's control statements would go through the Spark driver's JVM, which "
                f"Spark Connect does not expose: {instead}"
            )
