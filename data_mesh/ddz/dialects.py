"""SQL dialects of the DDZ databases, behind one interface.

Every statement the writer sends is built here from validated identifiers, quoted per dialect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from data_mesh.identifiers import validate_identifier


@dataclass(frozen=True)
class TableName:
    schema: str
    table: str

    def __post_init__(self) -> None:
        validate_identifier(self.schema, "schema name")
        validate_identifier(self.table, "table name")

    def with_suffix(self, suffix: str) -> TableName:
        return TableName(self.schema, f"{self.table}{suffix}")

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


class Dialect:
    """The statements one DDZ database needs; subclasses override what differs."""

    name = "generic"
    driver_class = ""
    # Extra JDBC URL settings that make Spark's batched inserts fast on this database.
    url_settings: ClassVar[dict[str, str]] = {}

    def quote(self, identifier: str) -> str:
        validate_identifier(identifier)
        return f'"{identifier}"'

    def qualified(self, name: TableName) -> str:
        return f"{self.quote(name.schema)}.{self.quote(name.table)}"

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def drop_table(self, name: TableName) -> str:
        return f"DROP TABLE IF EXISTS {self.qualified(name)}"

    def rename_table(self, source: TableName, target: TableName) -> str:
        return f"ALTER TABLE {self.qualified(source)} RENAME TO {self.quote(target.table)}"

    def insert_from(self, target: TableName, source: TableName, columns: list[str]) -> str:
        column_list = ", ".join(self.quote(c) for c in columns)
        return (
            f"INSERT INTO {self.qualified(target)} ({column_list}) "
            f"SELECT {column_list} FROM {self.qualified(source)}"
        )

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        raise NotImplementedError(f"merge is not implemented for {self.name}")

    def create_key_index(self, name: TableName, keys: list[str]) -> str:
        """A unique index on the key columns: merges look rows up by key (and need uniqueness)."""
        index = self.quote(f"UX_{name.table}_keys"[:128])
        key_list = ", ".join(self.quote(k) for k in keys)
        return f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {self.qualified(name)} ({key_list})"

    def table_exists_query(self, name: TableName) -> str:
        # Bound values, not identifiers: the names are passed as literals after validation.
        return (
            "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES "
            f"WHERE TABLE_SCHEMA = '{name.schema}' AND TABLE_NAME = '{name.table}'"
        )

    def jdbc_url(self, base_url: str) -> str:
        settings = "".join(f";{k}={v}" for k, v in self.url_settings.items() if k not in base_url)
        return base_url + settings


class H2Dialect(Dialect):
    """The embedded default DDZ (H2 in MSSQLServer mode), used in LOCAL and tests."""

    name = "h2"
    driver_class = "org.h2.Driver"

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        column_list = ", ".join(self.quote(c) for c in columns)
        key_list = ", ".join(self.quote(k) for k in keys)
        return (
            f"MERGE INTO {self.qualified(target)} ({column_list}) KEY ({key_list}) "
            f"SELECT {column_list} FROM {self.qualified(source)}"
        )


def dialect_for_url(url: str) -> Dialect:
    """The dialect of a JDBC URL."""
    if url.startswith("jdbc:h2:"):
        return H2Dialect()
    raise ValueError(
        f"no DDZ dialect for JDBC URL starting {url.split(':', 2)[:2]} (supported: jdbc:h2)"
    )
