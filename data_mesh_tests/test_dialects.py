"""What each dialect would send. SQL Server cannot run here, so its T-SQL is parsed with
sqlglot's tsql dialect; PostgreSQL's and H2's statements run for real in test_ddz_writer."""

from __future__ import annotations

import pytest
import sqlglot
from pyspark.sql import types as T

from data_mesh.catalog.identifiers import UnsafeIdentifierError
from data_mesh.ddz.dialects import (
    Column,
    H2Dialect,
    PostgresDialect,
    SqlServerDialect,
    TableName,
    dialect_for_url,
    jdbc_driver_class,
)

TARGET = TableName("ddz", "SOR1_PAYMENTS")
STAGE = TARGET.with_suffix("__dm_stage_0123abcd")
COLUMNS = [
    Column("UNQ_USER_ID", T.LongType()),
    Column("NAME", T.StringType()),
    Column("PAYMENT_AMOUNT", T.DecimalType(18, 2)),
    Column("PAYMENT_CATEGORY", T.VarcharType(40)),
    Column("LOAD_DATE", T.DateType()),
    Column("LOADED_AT", T.TimestampType()),
    Column("ACTIVE", T.BooleanType()),
    Column("SCORE", T.DoubleType()),
]
NAMES = [c.name for c in COLUMNS]


def _every_statement(dialect) -> list[str]:
    return [
        dialect.create_schema("ddz"),
        dialect.create_table(STAGE, COLUMNS),
        dialect.drop_table(STAGE),
        *dialect.create_stage(STAGE, COLUMNS),
        *dialect.install_stage(TARGET, STAGE, COLUMNS),
        *dialect.replace_existing(TARGET, STAGE, NAMES),
        dialect.count_rows(STAGE),
        dialect.truncate(STAGE),
        dialect.delete_slice(TARGET, Column("LOAD_DATE", T.DateType())),
        dialect.rows_outside_slice(STAGE, Column("LOAD_DATE", T.DateType())),
        dialect.delete_outside_retention(TARGET, "LOAD_DATE", 7),
        dialect.insert_from(TARGET, STAGE, NAMES),
        dialect.merge_from(TARGET, STAGE, NAMES, ["UNQ_USER_ID"]),
        dialect.create_key_index(TARGET, ["UNQ_USER_ID"]),
        dialect.create_ledger(),
        dialect.ledger_rows(),
        dialect.ledger_insert(),
        dialect.ledger_has_chunk(),
        dialect.ledger_total_rows(),
        dialect.ledger_clear(),
        dialect.key_bounds(TARGET, "UNQ_USER_ID"),
        dialect.table_exists(TARGET)[0],
        dialect.columns_of(TARGET)[0],
    ]


def test_every_sql_server_statement_parses_as_tsql() -> None:
    for sql in _every_statement(SqlServerDialect()):
        parsed = sqlglot.parse(sql, read="tsql")
        assert parsed and all(p is not None for p in parsed), sql


def test_sql_server_statements_say_what_azure_sql_needs() -> None:
    d = SqlServerDialect()
    assert d.create_table(STAGE, COLUMNS) == (
        "CREATE TABLE [ddz].[SOR1_PAYMENTS__dm_stage_0123abcd] ([UNQ_USER_ID] BIGINT, "
        "[NAME] NVARCHAR(MAX), [PAYMENT_AMOUNT] DECIMAL(18,2), [PAYMENT_CATEGORY] NVARCHAR(40), "
        "[LOAD_DATE] DATE, [LOADED_AT] DATETIME2(6), [ACTIVE] BIT, [SCORE] FLOAT)"
    )
    merge = sqlglot.parse_one(d.merge_from(TARGET, STAGE, NAMES, ["UNQ_USER_ID"]), read="tsql")
    assert merge.key == "merge"
    assert "WITH (HOLDLOCK)" in d.merge_from(TARGET, STAGE, NAMES, ["UNQ_USER_ID"])
    # replace keeps the target object: TRUNCATE + a metadata-only SWITCH, never a rename.
    assert d.replace_existing(TARGET, STAGE, NAMES) == [
        "TRUNCATE TABLE [ddz].[SOR1_PAYMENTS]",
        "ALTER TABLE [ddz].[SOR1_PAYMENTS__dm_stage_0123abcd] SWITCH TO [ddz].[SOR1_PAYMENTS]",
        "DROP TABLE IF EXISTS [ddz].[SOR1_PAYMENTS__dm_stage_0123abcd]",
    ]
    assert not any("sp_rename" in sql for sql in _every_statement(d))
    like = d.create_stage_like(STAGE, TARGET)
    assert like[0] == (
        "SELECT TOP (0) * INTO [ddz].[SOR1_PAYMENTS__dm_stage_0123abcd] FROM [ddz].[SOR1_PAYMENTS]"
    )
    # The index copy reads the target's indexes and creates them on the stage, clustered first.
    assert "OBJECT_ID(N'ddz.SOR1_PAYMENTS')" in like[1] and "ORDER BY i.index_id" in like[1]
    assert "ON [ddz].[SOR1_PAYMENTS__dm_stage_0123abcd] (" in like[1]
    for sql in like:
        assert sqlglot.parse(sql, read="tsql"), sql
    url = d.jdbc_url("jdbc:sqlserver://x.database.windows.net:1433;databaseName=ddz")
    assert url.endswith(";useBulkCopyForBatchInsert=true;sendStringParametersAsUnicode=true")
    assert d.jdbc_url(url) == url  # settings already present are not repeated
    locked = d.jdbc_url("jdbc:sqlserver://x:1433;databaseName=ddz", table_lock=True)
    assert "bulkCopyForBatchInsertTableLock=true" in locked


def test_postgres_statements_parse_and_merge_is_on_conflict() -> None:
    d = PostgresDialect()
    for sql in _every_statement(d):
        assert sqlglot.parse(sql, read="postgres"), sql
    merge = d.merge_from(TARGET, STAGE, NAMES, ["UNQ_USER_ID"])
    assert 'ON CONFLICT ("UNQ_USER_ID") DO UPDATE SET "NAME" = EXCLUDED."NAME"' in merge
    assert d.jdbc_url("jdbc:postgresql://h:5432/db") == (
        "jdbc:postgresql://h:5432/db?reWriteBatchedInserts=true"
    )
    assert d.jdbc_url("jdbc:postgresql://h:5432/db?ssl=true") == (
        "jdbc:postgresql://h:5432/db?ssl=true&reWriteBatchedInserts=true"
    )


def test_h2_replace_renames_the_stage_instead_of_copying_rows() -> None:
    d = H2Dialect()
    assert d.replace_existing(TARGET, STAGE, ["A"]) == [
        'DROP TABLE IF EXISTS "ddz"."SOR1_PAYMENTS"',
        'ALTER TABLE "ddz"."SOR1_PAYMENTS__dm_stage_0123abcd" RENAME TO "SOR1_PAYMENTS"',
    ]


def test_postgres_stage_is_unlogged_and_replace_copies_once() -> None:
    d = PostgresDialect()
    assert d.create_stage(STAGE, COLUMNS[:1]) == [
        'CREATE UNLOGGED TABLE "ddz"."SOR1_PAYMENTS__dm_stage_0123abcd" ("UNQ_USER_ID" BIGINT)'
    ]
    # A stage that becomes the table (a first load) is logged as COPY writes it.
    assert d.create_stage(STAGE, COLUMNS[:1], becomes_table=True)[0].startswith("CREATE TABLE")
    assert d.replace_existing(TARGET, STAGE, ["A"]) == [
        'TRUNCATE TABLE "ddz"."SOR1_PAYMENTS"',
        'INSERT INTO "ddz"."SOR1_PAYMENTS" ("A") SELECT "A" FROM '
        '"ddz"."SOR1_PAYMENTS__dm_stage_0123abcd"',
        'DROP TABLE IF EXISTS "ddz"."SOR1_PAYMENTS__dm_stage_0123abcd"',
    ]
    # A first load makes the unlogged stage the table, logged from then on.
    assert d.install_stage(TARGET, STAGE, COLUMNS)[-1] == (
        'ALTER TABLE "ddz"."SOR1_PAYMENTS" SET LOGGED'
    )


@pytest.mark.parametrize("bad", ["a]b", 'q"t', "x; DROP TABLE y", "", "1abc", "a b"])
def test_unsafe_names_never_reach_sql(bad: str) -> None:
    for dialect in (H2Dialect(), PostgresDialect(), SqlServerDialect()):
        with pytest.raises(UnsafeIdentifierError):
            dialect.quote(bad)
    with pytest.raises(UnsafeIdentifierError):
        TableName("ddz", bad)


def test_dialect_for_url() -> None:
    assert isinstance(dialect_for_url("jdbc:h2:file:/x"), H2Dialect)
    assert isinstance(dialect_for_url("jdbc:postgresql://h/db"), PostgresDialect)
    assert isinstance(dialect_for_url("jdbc:sqlserver://h:1433"), SqlServerDialect)
    with pytest.raises(ValueError, match="no DDZ dialect for JDBC URL scheme 'jdbc:mysql'"):
        dialect_for_url("jdbc:mysql://h/db")


def test_jdbc_driver_class() -> None:
    """One table of driver classes serves the DDZ and ingestion sources alike."""
    assert jdbc_driver_class("jdbc:h2:mem:x") == "org.h2.Driver"
    assert jdbc_driver_class("jdbc:postgresql://h/db") == "org.postgresql.Driver"
    assert jdbc_driver_class("jdbc:sqlserver://h:1433") == SqlServerDialect.driver_class
    assert jdbc_driver_class("jdbc:mysql://h/db") is None
