"""Database sessions for the writer's control statements (the client's side of the DDZ).

One interface, three implementations, chosen by `DdzConnection.resolved_control`:
- `PyodbcSession`: Azure SQL (msodbcsql, Entra token or SQL auth), or PostgreSQL through
  psqlODBC, which is how the SQL Server control flow is tested here;
- `PsycopgSession`: PostgreSQL;
- `JvmJdbcSession`: H2 (no Python driver) or SQL Server through the JDBC driver on the Spark
  driver's class path, classic Spark only.
Statements use `?` placeholders; values are always bound, never pasted into SQL. Opening a
session is not retried here: the writer retries each statement's whole attempt once, in one
layer (`data_mesh.ddz.retry`), so attempts never multiply.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlparse

from pyspark.sql import SparkSession

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.dialects import postgres_timeout_options
from data_mesh.ddz.retry import RetryPolicy
from data_mesh.ddz.timeouts import DdzTimeouts
from data_mesh.store import azure_sql
from data_mesh.store.azure_sql import AzureSqlTarget, odbc_value

# The writer's retry layer owns retries; connecting inside it tries once.
_CONNECT_ONCE = RetryPolicy(max_attempts=1)
# psqlODBC's driver name in odbcinst.ini (Debian's odbc-postgresql).
POSTGRES_ODBC_DRIVER = "PostgreSQL Unicode"


class DdzSession(Protocol):
    def execute(self, sql: str, params: Sequence[object] = ()) -> int: ...

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@contextmanager
def transaction(session: DdzSession) -> Iterator[DdzSession]:
    """Commit on success, roll back on any error."""
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise


class PyodbcSession:
    """A session over a pyodbc connection (autocommit off): Azure SQL's control statements in
    the cloud, with the Azure AD token or SQL auth of `data_mesh.store.azure_sql.connect`."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._connection.autocommit = False

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, *params)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self._connection.cursor()
        try:
            cursor.execute(sql, *params)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        self._connection.rollback()

    def close(self) -> None:
        self._connection.close()


def azure_sql_target_of(jdbc_url: str, authentication: str) -> AzureSqlTarget:
    """The Azure SQL server and database of `jdbc:sqlserver://host[:port];database=db;...`."""
    body = jdbc_url.removeprefix("jdbc:sqlserver://")
    host, *options = body.split(";")
    values = {k.strip().lower(): v for k, _, v in (o.partition("=") for o in options if o)}
    database = values.get("database") or values.get("databasename")
    if not database:
        raise DataMeshError("the DDZ's jdbc:sqlserver URL names no database (database=...)")
    return AzureSqlTarget(
        server=host.split(":")[0],
        database=database,
        authentication="token" if authentication == "token" else "sql",
    )


class PsycopgSession:
    """A PostgreSQL session over psycopg (autocommit off)."""

    def __init__(self, jdbc_url: str, properties: Mapping[str, str], timeouts: DdzTimeouts) -> None:
        import psycopg

        self._connection = psycopg.connect(**postgres_connect_args(jdbc_url, properties, timeouts))

    @staticmethod
    def _sql(sql: str) -> str:
        # Identifiers are validated (no '?' or '%'), so every '?' is a placeholder.
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        with self._connection.cursor() as cursor:
            cursor.execute(self._sql(sql), list(params))  # type: ignore[arg-type]
            return cursor.rowcount

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self._connection.cursor() as cursor:
            cursor.execute(self._sql(sql), list(params))  # type: ignore[arg-type]
            return list(cursor.fetchall())

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        if not self._connection.closed:
            self._connection.rollback()

    def close(self) -> None:
        self._connection.close()


def postgres_connect_args(
    jdbc_url: str, properties: Mapping[str, str], timeouts: DdzTimeouts | None = None
) -> dict[str, Any]:
    """psycopg connection arguments from `jdbc:postgresql://host:port/db?...` and properties,
    bounded by `timeouts` (login, lock waits, statements)."""
    parsed = urlparse(jdbc_url.removeprefix("jdbc:"))
    query = dict(parse_qsl(parsed.query))
    args: dict[str, Any] = {
        "host": parsed.hostname or "localhost",
        "port": parsed.port or 5432,
        "dbname": parsed.path.lstrip("/"),
        "autocommit": False,
        "application_name": "data_mesh_ddz_writer",
    }
    if timeouts is not None:
        args["connect_timeout"] = timeouts.login
        args["options"] = postgres_timeout_options(timeouts)
    user = properties.get("user") or query.get("user")
    password = properties.get("password") or query.get("password")
    if user:
        args["user"] = user
    if password:
        args["password"] = password
    if "sslmode" in query:
        args["sslmode"] = query["sslmode"]
    return args


class JvmJdbcSession:
    """A JDBC session opened in the Spark driver's JVM (classic Spark only, not Connect)."""

    def __init__(
        self,
        spark: SparkSession,
        jdbc_url: str,
        properties: Mapping[str, str],
        statement_timeout: int,
    ) -> None:
        jvm = getattr(spark, "_jvm", None)
        if jvm is None:  # `DdzConnection.check` says so earlier, with what to set
            raise DataMeshError("JDBC control sessions need the classic Spark driver's JVM")
        self._jvm = jvm
        java_properties = jvm.java.util.Properties()
        for key, value in properties.items():
            java_properties.setProperty(key, value)
        self._connection = jvm.java.sql.DriverManager.getConnection(jdbc_url, java_properties)
        self._connection.setAutoCommit(False)
        self._statement_timeout = statement_timeout

    def _prepare(self, sql: str, params: Sequence[object]) -> Any:
        statement = self._connection.prepareStatement(sql)
        statement.setQueryTimeout(self._statement_timeout)
        for index, value in enumerate(params, start=1):
            if value is None:
                statement.setObject(index, None)
            elif isinstance(value, bool):
                statement.setBoolean(index, value)
            elif isinstance(value, int):
                statement.setLong(index, value)
            elif isinstance(value, float):
                statement.setDouble(index, value)
            else:
                statement.setString(index, str(value))
        return statement

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        statement = self._prepare(sql, params)
        try:
            statement.execute()
            return int(statement.getUpdateCount())
        finally:
            statement.close()

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        statement = self._prepare(sql, params)
        try:
            result = statement.executeQuery()
            width = result.getMetaData().getColumnCount()
            rows = []
            while result.next():
                rows.append(tuple(_python_value(result.getObject(i)) for i in range(1, width + 1)))
            return rows
        finally:
            statement.close()

    def commit(self) -> None:
        self._connection.commit()

    def rollback(self) -> None:
        if not self._connection.isClosed():
            self._connection.rollback()

    def close(self) -> None:
        self._connection.close()


def _python_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value.toString()) if hasattr(value, "toString") else value


def postgres_odbc_string(jdbc_url: str, properties: Mapping[str, str]) -> str:
    """A psqlODBC connection string for `jdbc:postgresql://host:port/db` and its credentials."""
    args = postgres_connect_args(jdbc_url, properties)
    parts = {
        "Driver": POSTGRES_ODBC_DRIVER,
        "Server": args["host"],
        "Port": str(args["port"]),
        "Database": args["dbname"],
        "UID": args.get("user", ""),
        "PWD": args.get("password", ""),
        "SSLmode": args.get("sslmode", "prefer"),
    }
    # psqlODBC reads braces only around PWD (elsewhere they are part of the value), and
    # decodes `+` and `%xx` in an unbraced one: the password is always braced, nothing else.
    return "".join(
        f"{key}={odbc_value(value) if key == 'PWD' else value};" for key, value in parts.items()
    )


def open_session(
    spark: SparkSession | None, connection: DdzConnection
) -> PsycopgSession | JvmJdbcSession | PyodbcSession:
    """A control session of the kind `connection` resolves to (see `DdzConnection`); only
    `jvm` control needs `spark`."""
    control = connection.resolved_control
    url, properties, timeouts = connection.jdbc_url, connection.properties, connection.timeouts
    if control == "psycopg":
        return PsycopgSession(url, properties, timeouts)
    if control == "odbc":
        if connection.dialect.name == "postgresql":
            import pyodbc

            odbc = pyodbc.connect(postgres_odbc_string(url, properties), timeout=timeouts.login)
        else:
            target = azure_sql_target_of(url, connection.odbc_auth)
            credentials = None
            if connection.odbc_auth == "sql":
                credentials = (properties.get("user", ""), properties.get("password", ""))
            odbc = azure_sql.connect(target, credentials=credentials, policy=_CONNECT_ONCE)
            # Each statement's limit (psqlODBC has no such attribute: PostgreSQL's own
            # statement_timeout, set below, does it there).
            odbc.timeout = timeouts.statement
        session = PyodbcSession(odbc)
        with transaction(session):
            for sql in connection.dialect.session_timeouts(timeouts):
                session.execute(sql)
        return session
    if spark is None:
        raise DataMeshError("JDBC control sessions need the classic Spark driver's JVM")
    return JvmJdbcSession(spark, url, connection.jdbc_properties, timeouts.statement)
