"""Connections to Azure SQL over pyodbc (ODBC Driver 18), for the metadata store and the DDZ's
control statements in the cloud.

Authentication is an Azure AD access token from azure-identity (DefaultAzureCredential: the
managed identity of the Dagster pods), passed as the driver's access-token connection
attribute, with SQL authentication (user and password from env vars) as the fallback.
Connecting is retried on Azure SQL's transient errors (40613 database unavailable, 40197,
40501 throttling, 4060, ...), as the DDZ writer's statements are.
"""

from __future__ import annotations

import functools
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine, create_engine

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.retry import RetryPolicy, with_retries

# msodbcsql's connection attribute for an Azure AD access token (SQL_COPT_SS_ACCESS_TOKEN).
SQL_COPT_SS_ACCESS_TOKEN = 1256
TOKEN_SCOPE = "https://database.windows.net/.default"
ODBC_DRIVER = "ODBC Driver 18 for SQL Server"


@dataclass(frozen=True)
class AzureSqlTarget:
    server: str  # e.g. sql-data-mesh-prod.database.windows.net
    database: str
    authentication: Literal["token", "sql"] = "token"
    user_env: str = "DATA_MESH_SQL_USER"
    password_env: str = "DATA_MESH_SQL_PASSWORD"
    driver: str = ODBC_DRIVER

    def connection_string(self) -> str:
        """The ODBC connection string without any credential (they are added at connect time)."""
        return (
            f"Driver={odbc_value(self.driver)};Server={odbc_value(f'tcp:{self.server},1433')};"
            f"Database={odbc_value(self.database)};"
            "Encrypt=yes;TrustServerCertificate=no;Connection Timeout=30;"
        )


def odbc_value(text: str) -> str:
    """`text` as one ODBC connection-string value: in braces, so `;` and `=` are data, with each
    `}` doubled (the ODBC rule), so a `}` cannot end the value early."""
    return "{" + text.replace("}", "}}") + "}"


def access_token_struct(token: str) -> bytes:
    """The token as msodbcsql wants it: UTF-16-LE bytes prefixed by their length."""
    encoded = token.encode("utf-16-le")
    return struct.pack(f"<I{len(encoded)}s", len(encoded), encoded)


@functools.cache
def _credential() -> Any:
    # One per process: it caches its token until shortly before expiry, so the writer's many
    # control sessions ask Entra ID once an hour, not once each.
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def default_token() -> str:
    return str(_credential().get_token(TOKEN_SCOPE).token)


def connect(
    target: AzureSqlTarget,
    connect_fn: Callable[..., Any] | None = None,
    token_provider: Callable[[], str] = default_token,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    credentials: tuple[str, str] | None = None,
) -> Any:
    """A pyodbc connection, retried on transient errors. A fresh token per attempt (tokens
    expire); SQL credentials come from `credentials` (already resolved) or the target's env
    vars, only now, and are never logged."""
    if connect_fn is None:
        import pyodbc

        connect_fn = pyodbc.connect

    def attempt() -> Any:
        if target.authentication == "token":
            attrs = {SQL_COPT_SS_ACCESS_TOKEN: access_token_struct(token_provider())}
            return connect_fn(target.connection_string(), attrs_before=attrs)
        user, password = credentials or (
            os.environ.get(target.user_env),
            os.environ.get(target.password_env),
        )
        if not user or not password:
            raise DataMeshError(
                f"SQL authentication to {target.server}: set {target.user_env} and "
                f"{target.password_env}"
            )
        login = f"UID={odbc_value(user)};PWD={odbc_value(password)};"
        return connect_fn(target.connection_string() + login)

    return with_retries(attempt, policy or RetryPolicy(), sleep=sleep)


def azure_sql_engine(target: AzureSqlTarget, **connect_options: Any) -> Engine:
    """A SQLAlchemy engine (mssql+pyodbc) whose connections come from `connect`."""
    return create_engine(
        "mssql+pyodbc://", creator=lambda: connect(target, **connect_options), future=True
    )
