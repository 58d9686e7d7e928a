"""Control statements (create schema, swap, merge) sent over JDBC from the Spark driver's JVM.

The embedded H2 DDZ has no Python driver, and the JDBC driver is on the Spark driver's class
path anyway, so control statements go through the same driver Spark writes with.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from pyspark.sql import SparkSession


class JdbcControl:
    """Runs statements in one transaction on a short-lived JDBC connection."""

    def __init__(self, spark: SparkSession, url: str, properties: Mapping[str, str]) -> None:
        self._spark = spark
        self._url = url
        self._properties = dict(properties)

    def _connect(self) -> Any:
        jvm = self._spark._jvm  # type: ignore[attr-defined]
        if jvm is None:
            raise RuntimeError("JDBC control statements need a classic (non-Connect) Spark session")
        properties = jvm.java.util.Properties()
        for key, value in self._properties.items():
            properties.setProperty(key, value)
        return jvm.java.sql.DriverManager.getConnection(self._url, properties)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Yields a `java.sql.Statement`; commits on success, rolls back on any error."""
        connection = self._connect()
        try:
            connection.setAutoCommit(False)
            statement = connection.createStatement()
            try:
                yield statement
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
            finally:
                statement.close()
        finally:
            connection.close()

    def execute(self, *sql: str) -> None:
        with self.transaction() as statement:
            for text in sql:
                statement.execute(text)

    def scalar(self, sql: str) -> Any:
        with self.transaction() as statement:
            result = statement.executeQuery(sql)
            try:
                return result.getObject(1) if result.next() else None
            finally:
                result.close()
