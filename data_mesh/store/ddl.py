"""T-SQL DDL for Azure SQL, generated from the one schema definition in `schema.py`."""

from __future__ import annotations

from sqlalchemy.dialects import mssql
from sqlalchemy.schema import CreateIndex, CreateTable

from data_mesh.store.schema import metadata_obj

HEADER = (
    "-- Metadata store of data_mesh for Azure SQL (T-SQL).\n"
    "-- GENERATED from data_mesh/store/schema.py by `data-mesh ddl`: do not edit by hand.\n"
    "-- Deployed stores are created and upgraded with `data-mesh init --url ...` (Alembic).\n"
)


def render_tsql_ddl() -> str:
    """CREATE TABLE statements for every metadata-store table, in foreign-key order."""
    dialect = mssql.dialect()
    statements = []
    for table in metadata_obj.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    return HEADER + "\n" + "\n\n".join(statements) + "\n"
