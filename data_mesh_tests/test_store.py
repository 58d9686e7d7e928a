"""The store schema: generated T-SQL in sync, migrations equal to the code, SQLite and PostgreSQL."""

from __future__ import annotations

import sqlglot
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from data_mesh.store.database import current_revision, head_revision, make_engine, upgrade_store
from data_mesh.store.ddl import render_tsql_ddl
from data_mesh.store.schema import metadata_obj
from data_mesh_tests.conftest import REPO

SEED_004_TABLES = {
    "DataSources",
    "DataSets",
    "Transformations",
    "TransformationDependencies",
    "DataQualityRules",
    "TransformationDataSets",
    "ConfigurationCategory",
    "ConfigurationItem",
    "ConfigurationVersion",
}


def test_committed_tsql_ddl_matches_the_schema_in_code() -> None:
    committed = (REPO / "metadata" / "ddl" / "metadata_store.sql").read_text(encoding="utf-8")
    assert committed == render_tsql_ddl(), "run `data-mesh ddl` and commit the result"


def test_tsql_ddl_parses_as_tsql_and_creates_every_table() -> None:
    statements = sqlglot.parse(render_tsql_ddl(), read="tsql")
    creates = [s for s in statements if s is not None and s.key == "create"]
    created = {s.this.this.name for s in creates if s.args["kind"] == "TABLE"}
    assert created == {t.name for t in metadata_obj.sorted_tables}
    assert created >= SEED_004_TABLES
    indexes = {s.this.this.name for s in creates if s.args["kind"] == "INDEX"}
    assert indexes == {i.name for t in metadata_obj.sorted_tables for i in t.indexes}


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, metadata_obj))


def test_migrations_build_exactly_the_schema_in_code_on_sqlite(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url)
    assert upgrade_store(engine) == head_revision()
    assert _schema_diff(url) == []
    # Running init again is an upgrade with nothing to do.
    assert upgrade_store(engine) == head_revision()
    assert set(inspect(engine).get_table_names()) >= SEED_004_TABLES


def test_migrations_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    assert current_revision(engine) is None
    upgrade_store(engine)
    assert current_revision(engine) == head_revision()
    assert _schema_diff(pg_url) == []
