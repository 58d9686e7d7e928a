"""SQL dialects of the DDZ databases, behind one interface.

Every statement the writer sends is built here from validated identifiers, quoted per dialect;
values travel as bound parameters (`?`). Three dialects:
- `SqlServerDialect` (Azure SQL): the stage is made like the target (columns and indexes) and a
  `replace` publishes by `TRUNCATE` + `ALTER TABLE ... SWITCH` in one transaction: metadata
  only, so each row is written once into the log (Azure SQL's ceiling is its log rate), and the
  target keeps its grants, indexes and dependent views. `MERGE` for merges.
- `PostgresDialect`: the stage is `UNLOGGED` (no WAL), so `TRUNCATE` + `INSERT ... SELECT`
  writes each row once into the WAL; `INSERT ... ON CONFLICT` merges; transactional DDL.
- `H2Dialect`: the embedded default. DDL commits on its own there, and H2 shares the Spark
  driver's heap, so a `replace` renames the stage into place instead of copying its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pyspark.sql import types as T

from data_mesh.catalog.identifiers import validate_identifier
from data_mesh.ddz.timeouts import DdzTimeouts

LEDGER_SCHEMA = "data_mesh"
LEDGER_TABLE = "ddz_load_ledger"
CLAIMS_TABLE = "ddz_load_claims"
LOCKS_TABLE = "ddz_load_locks"


@dataclass(frozen=True)
class TableName:
    schema: str
    table: str

    def __post_init__(self) -> None:
        validate_identifier(self.schema, "schema name")
        validate_identifier(self.table, "table name")

    def with_suffix(self, suffix: str) -> TableName:
        """A name for a table of the writer's own: the suffix is kept whole, and the whole name
        fits every dialect (PostgreSQL cuts names at 63 bytes), so it never equals the table's."""
        return TableName(self.schema, f"{self.table[: 63 - len(suffix)]}{suffix}")

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: T.DataType

    def __post_init__(self) -> None:
        validate_identifier(self.name, "column name")


class Dialect:
    """The statements one DDZ database needs; subclasses override what differs."""

    name = "generic"
    # The start of this database's JDBC URLs, and the JDBC driver class that serves them.
    url_prefix = ""
    driver_class = ""
    # JDBC URL settings that make batched inserts fast on this database.
    url_settings: ClassVar[dict[str, str]] = {}
    url_separator = ";"
    # Whether DDL joins the surrounding transaction (PostgreSQL, SQL Server) or commits (H2).
    transactional_ddl = True
    # Whether a `replace` needs the stage made like the existing target (SQL Server's SWITCH).
    stage_like_target = False

    def embedded(self, url: str) -> bool:
        """Whether the database runs inside the Spark driver's JVM and shares its heap."""
        return False

    # -- names ------------------------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        validate_identifier(identifier)
        return f'"{identifier}"'

    def qualified(self, name: TableName) -> str:
        return f"{self.quote(name.schema)}.{self.quote(name.table)}"

    def column_list(self, columns: list[str]) -> str:
        return ", ".join(self.quote(c) for c in columns)

    @property
    def ledger(self) -> TableName:
        return TableName(LEDGER_SCHEMA, LEDGER_TABLE)

    # -- types ------------------------------------------------------------------------------
    def column_type(self, data_type: T.DataType) -> str:
        match data_type:
            case T.BooleanType():
                return "BOOLEAN"
            case T.ByteType() | T.ShortType():
                return "SMALLINT"
            case T.IntegerType():
                return "INTEGER"
            case T.LongType():
                return "BIGINT"
            case T.FloatType():
                return "REAL"
            case T.DoubleType():
                return "DOUBLE PRECISION"
            case T.DecimalType():
                return f"DECIMAL({data_type.precision},{data_type.scale})"
            case T.VarcharType():
                return f"VARCHAR({data_type.length})"
            case T.CharType():
                return f"CHAR({data_type.length})"
            case T.StringType():
                return self.text_type
            case T.DateType():
                return "DATE"
            case T.TimestampType() | T.TimestampNTZType():
                return "TIMESTAMP"
            case T.BinaryType():
                return self.binary_type
        raise ValueError(f"no DDZ column type for Spark type {data_type.simpleString()}")

    text_type = "VARCHAR"
    binary_type = "VARBINARY"

    # -- DDL --------------------------------------------------------------------------------
    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}"

    def create_table(self, name: TableName, columns: list[Column]) -> str:
        body = ", ".join(f"{self.quote(c.name)} {self.column_type(c.data_type)}" for c in columns)
        return f"CREATE TABLE {self.qualified(name)} ({body})"

    def drop_table(self, name: TableName) -> str:
        return f"DROP TABLE IF EXISTS {self.qualified(name)}"

    def rename_table(self, source: TableName, target: TableName) -> str:
        return f"ALTER TABLE {self.qualified(source)} RENAME TO {self.quote(target.table)}"

    def first_rows(self, name: TableName, limit: int) -> str:
        return f"SELECT * FROM {self.qualified(name)} FETCH FIRST {int(limit)} ROWS ONLY"

    def count_rows(self, name: TableName) -> str:
        return f"SELECT COUNT(*) FROM {self.qualified(name)}"

    def truncate(self, name: TableName) -> str:
        return f"TRUNCATE TABLE {self.qualified(name)}"

    def lock_and_count(self, name: TableName) -> list[str]:
        """Statements, the last a count, that lock `name` against writers until the end of
        the transaction and count its rows: what the publish moves is what it counted."""
        return [self.count_rows(name)]

    # -- the stage and publishing it ---------------------------------------------------------
    def create_stage(
        self, stage: TableName, columns: list[Column], becomes_table: bool = False
    ) -> list[str]:
        """The stage; `becomes_table`: it will be renamed into the target, not copied from."""
        return [self.create_table(stage, columns)]

    def create_stage_like(self, stage: TableName, target: TableName) -> list[str]:
        """A stage with the structure of `target` (only where `stage_like_target`)."""
        raise NotImplementedError

    def replace_existing(
        self, target: TableName, stage: TableName, columns: list[str]
    ) -> list[str]:
        """Statements, in one transaction where DDL allows, that give the existing `target`
        exactly the rows of `stage` and drop the stage; the target object stays (grants,
        indexes, dependent views)."""
        raise NotImplementedError

    def switch_blockers(self, target: TableName) -> tuple[str, list[object]]:
        """A query giving why `target` cannot take a SWITCH (only where `stage_like_target`)."""
        raise NotImplementedError

    def replace_by_copy(self, target: TableName, stage: TableName, columns: list[str]) -> list[str]:
        """A replace that copies the stage's rows into the kept target; DELETE, since where a
        SWITCH is refused (see `switch_blockers`) TRUNCATE is too."""
        return [
            f"DELETE FROM {self.qualified(target)}",
            self.insert_from(target, stage, columns),
            self.drop_table(stage),
        ]

    def install_stage(
        self, target: TableName, stage: TableName, columns: list[Column]
    ) -> list[str]:
        """The stage becomes `target`, which is missing or has other columns (then it is a new
        table: a change of columns replaces the table object)."""
        return [self.drop_table(target), self.rename_table(stage, target)]

    def create_key_index(self, name: TableName, keys: list[str]) -> str:
        """A unique index on the key columns: merges look rows up by key (and need uniqueness)."""
        index = self.quote(f"UX_{name.table}_keys"[:128])
        return (
            f"CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {self.qualified(name)} "
            f"({self.column_list(keys)})"
        )

    def table_exists(self, name: TableName) -> tuple[str, list[object]]:
        return (
            "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            [name.schema, name.table],
        )

    def key_bounds(self, name: TableName, column: str) -> str:
        return (
            f"SELECT MIN({self.quote(column)}), MAX({self.quote(column)}) "
            f"FROM {self.qualified(name)}"
        )

    def columns_of(self, name: TableName) -> tuple[str, list[object]]:
        return (
            "SELECT COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS "
            "WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            [name.schema, name.table],
        )

    # -- moving rows ------------------------------------------------------------------------
    def insert_from(self, target: TableName, source: TableName, columns: list[str]) -> str:
        cols = self.column_list(columns)
        return (
            f"INSERT INTO {self.qualified(target)} ({cols}) "
            f"SELECT {cols} FROM {self.qualified(source)}"
        )

    def delete_slice(self, name: TableName, column: Column) -> str:
        """Delete one partition's rows; the value is bound as text and cast to the column type."""
        condition = f"{self.quote(column.name)} = {self._typed(column)}"
        return f"DELETE FROM {self.qualified(name)} WHERE {condition}"

    def rows_outside_slice(self, name: TableName, column: Column) -> str:
        """Count the staged rows that do not belong to the partition being loaded."""
        quoted = self.quote(column.name)
        return (
            f"SELECT COUNT(*) FROM {self.qualified(name)} "
            f"WHERE {quoted} IS NULL OR {quoted} <> {self._typed(column)}"
        )

    def _typed(self, column: Column) -> str:
        return f"CAST(? AS {self.column_type(column.data_type)})"

    def days_before(self, days: int, value: str) -> str:
        return f"DATEADD(DAY, {-int(days)}, {value})"

    def delete_outside_retention(self, name: TableName, column: str, days: int) -> str:
        """Keep the `days` latest days of a daily-partitioned table, counted from its newest
        partition: backfills in any order end with the same days kept."""
        quoted, table = self.quote(column), self.qualified(name)
        newest = f"(SELECT MAX({quoted}) FROM {table})"
        return f"DELETE FROM {table} WHERE {quoted} <= {self.days_before(days, newest)}"

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        raise NotImplementedError

    # -- the writer's own tables --------------------------------------------------------------
    def create_if_missing(self, name: TableName, columns: list[tuple[str, str]], key: str) -> str:
        """A table of the writer's own, created once: (column, type) pairs, the primary key."""
        body = ", ".join(f"{self.quote(c)} {t}" for c, t in columns)
        keys = self.column_list([k.strip() for k in key.split(",")])
        return f"CREATE TABLE IF NOT EXISTS {self.qualified(name)} ({body}, PRIMARY KEY ({keys}))"

    # -- the chunk ledger -------------------------------------------------------------------
    def create_ledger(self) -> str:
        columns = [
            ("slot", "VARCHAR(400) NOT NULL"),
            ("load_id", "VARCHAR(64) NOT NULL"),
            ("chunk_id", "INTEGER NOT NULL"),
            ("chunk_count", "INTEGER NOT NULL"),
            ("row_count", "BIGINT NOT NULL"),
            ("checksum", "BIGINT NOT NULL"),
            ("committed_at", f"{self.timestamp_type} NOT NULL"),
        ]
        return self.create_if_missing(self.ledger, columns, "slot, chunk_id")

    timestamp_type = "TIMESTAMP"

    def ledger_rows(self) -> str:
        return (
            f"SELECT {self.column_list(['load_id', 'chunk_id', 'chunk_count', 'row_count'])} "
            f"FROM {self.qualified(self.ledger)} WHERE {self.quote('slot')} = ?"
        )

    def ledger_insert(self) -> str:
        columns = ["slot", "load_id", "chunk_id", "chunk_count", "row_count", "checksum"]
        return (
            f"INSERT INTO {self.qualified(self.ledger)} "
            f"({self.column_list([*columns, 'committed_at'])}) "
            f"VALUES ({', '.join('?' for _ in columns)}, CURRENT_TIMESTAMP)"
        )

    def ledger_has_chunk(self) -> str:
        return (
            f"SELECT COUNT(*) FROM {self.qualified(self.ledger)} "
            f"WHERE {self.quote('slot')} = ? AND {self.quote('chunk_id')} = ?"
        )

    def ledger_checksum(self) -> str:
        return (
            f"SELECT {self.quote('checksum')} FROM {self.qualified(self.ledger)} "
            f"WHERE {self.quote('slot')} = ? AND {self.quote('chunk_id')} = ?"
        )

    def ledger_total_rows(self) -> str:
        total = f"COALESCE(SUM({self.quote('row_count')}), 0)"
        return f"SELECT {total} FROM {self.qualified(self.ledger)} WHERE {self.quote('slot')} = ?"

    def ledger_clear(self) -> str:
        return f"DELETE FROM {self.qualified(self.ledger)} WHERE {self.quote('slot')} = ?"

    # -- load claims: one load per slot at a time ---------------------------------------------
    # A claim is a lock the database holds for a session: when the holder dies, its session
    # ends and the claim is released. Who holds it is written beside it, for the message of
    # a load that finds it taken.
    @property
    def claims(self) -> TableName:
        return TableName(LEDGER_SCHEMA, CLAIMS_TABLE)

    def create_claims(self) -> list[str]:
        columns = [("slot_hash", "VARCHAR(64) NOT NULL"), ("holder", "VARCHAR(1000) NOT NULL")]
        return [self.create_if_missing(self.claims, columns, "slot_hash")]

    def claim_session_setup(self, slot_hash: str) -> list[tuple[str, list[object]]]:
        """Committed by the claim's own session before it tries the lock."""
        return []

    def try_claim(self, slot_hash: str) -> tuple[str, list[object]]:
        """A query whose one value is 1 if this session now holds the slot's claim, else 0."""
        raise NotImplementedError

    def claim_busy(self, error_text: str) -> bool:
        """Whether an error of `try_claim` means the claim is held by another session."""
        return False

    def record_holder(self) -> list[str]:
        """Statements (slot_hash, then slot_hash and holder) naming the claim's holder."""
        claims = self.qualified(self.claims)
        return [
            f"DELETE FROM {claims} WHERE {self.quote('slot_hash')} = ?",
            f"INSERT INTO {claims} ({self.column_list(['slot_hash', 'holder'])}) VALUES (?, ?)",
        ]

    def holder_of(self) -> str:
        return (
            f"SELECT {self.quote('holder')} FROM {self.qualified(self.claims)} "
            f"WHERE {self.quote('slot_hash')} = ?"
        )

    # -- timeouts ---------------------------------------------------------------------------
    def timeout_properties(self, timeouts: DdzTimeouts) -> dict[str, str]:
        """JDBC connection properties bounding logins, lock waits and statements."""
        return {}

    def session_timeouts(self, timeouts: DdzTimeouts) -> list[str]:
        """What a control session runs first where the driver takes no such properties (ODBC)."""
        return []

    # -- connection -------------------------------------------------------------------------
    table_lock_setting: ClassVar[str | None] = None

    def jdbc_url(self, base_url: str, table_lock: bool = False) -> str:
        settings = dict(self.url_settings)
        if table_lock and self.table_lock_setting:
            settings[self.table_lock_setting] = "true"
        extra = [f"{k}={v}" for k, v in settings.items() if f"{k}=" not in base_url]
        if not extra:
            return base_url
        return base_url + self.url_separator + self.url_separator.join(extra)


class H2Dialect(Dialect):
    """The embedded default DDZ (H2 in MSSQLServer mode), used in LOCAL and tests."""

    name = "h2"
    url_prefix = "jdbc:h2:"
    driver_class = "org.h2.Driver"
    transactional_ddl = False
    text_type = "VARCHAR"

    def embedded(self, url: str) -> bool:
        # jdbc:h2:file:/mem: (or a bare path) run in this JVM; tcp:/ssl: reach an H2 server.
        # AUTO_SERVER lets other processes in, but the first opener still holds the data.
        return not url.startswith(("jdbc:h2:tcp:", "jdbc:h2:ssl:"))

    # H2 has no advisory lock: the claim is a row of a table of the writer's own, locked by
    # the claim session's open transaction (H2 ends it with the session, or the process).
    def claim_session_setup(self, slot_hash: str) -> list[tuple[str, list[object]]]:
        locks = TableName(LEDGER_SCHEMA, LOCKS_TABLE)
        slot = self.quote("slot_hash")
        return [
            ("SET LOCK_TIMEOUT 200", []),  # a taken claim answers within 0.2 s
            (
                self.create_if_missing(locks, [("slot_hash", "VARCHAR(64) NOT NULL")], "slot_hash"),
                [],
            ),
            (f"MERGE INTO {self.qualified(locks)} ({slot}) KEY ({slot}) VALUES (?)", [slot_hash]),
        ]

    def try_claim(self, slot_hash: str) -> tuple[str, list[object]]:
        locks = self.qualified(TableName(LEDGER_SCHEMA, LOCKS_TABLE))
        return (
            f"SELECT 1 FROM {locks} WHERE {self.quote('slot_hash')} = ? FOR UPDATE",
            [slot_hash],
        )

    def claim_busy(self, error_text: str) -> bool:
        # "Timeout trying to lock table" (error 50200): the row is locked by the holder. A
        # unique violation (23505) can only come from the MERGE of the claim's row by two
        # sessions at once, on the slot's first load: the other session has it.
        return any(code in error_text for code in ("50200", "Timeout trying to lock", "23505"))

    def timeout_properties(self, timeouts: DdzTimeouts) -> dict[str, str]:
        return {"LOCK_TIMEOUT": str(timeouts.lock * 1000)}

    def session_timeouts(self, timeouts: DdzTimeouts) -> list[str]:
        return [f"SET LOCK_TIMEOUT {timeouts.lock * 1000}"]

    def replace_existing(
        self, target: TableName, stage: TableName, columns: list[str]
    ) -> list[str]:
        # Copying the rows (DELETE + INSERT ... SELECT) would buffer them in the heap H2 shares
        # with the Spark driver; the rename moves none. DDL commits on its own in H2, so a
        # reader can find no table for a moment, and a view on the table blocks the DROP.
        return self.install_stage(target, stage, [])

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        cols = self.column_list(columns)
        return (
            f"MERGE INTO {self.qualified(target)} ({cols}) KEY ({self.column_list(keys)}) "
            f"SELECT {cols} FROM {self.qualified(source)}"
        )


class PostgresDialect(Dialect):
    name = "postgresql"
    url_prefix = "jdbc:postgresql:"
    driver_class = "org.postgresql.Driver"
    url_settings: ClassVar[dict[str, str]] = {"reWriteBatchedInserts": "true"}
    url_separator = "&"
    text_type = "TEXT"
    binary_type = "BYTEA"

    def try_claim(self, slot_hash: str) -> tuple[str, list[object]]:
        # A session-level advisory lock: kept across the session's commits, gone with it.
        return (
            "SELECT CASE WHEN pg_try_advisory_lock(CAST(? AS BIGINT)) THEN 1 ELSE 0 END",
            [advisory_key(slot_hash)],
        )

    def timeout_properties(self, timeouts: DdzTimeouts) -> dict[str, str]:
        return {
            "connectTimeout": str(timeouts.login),
            "loginTimeout": str(timeouts.login),
            "options": postgres_timeout_options(timeouts),
        }

    def session_timeouts(self, timeouts: DdzTimeouts) -> list[str]:
        return [
            f"SET lock_timeout = {timeouts.lock * 1000}",
            f"SET statement_timeout = {timeouts.statement * 1000}",
        ]

    def jdbc_url(self, base_url: str, table_lock: bool = False) -> str:
        url = super().jdbc_url(base_url, table_lock)
        # PostgreSQL URLs take settings as a query string: the first one starts with '?'.
        if "?" not in base_url and url != base_url:
            url = url.replace("&", "?", 1)
        return url

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        cols = self.column_list(columns)
        updates = [c for c in columns if c not in keys]
        action = (
            "DO UPDATE SET "
            + ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in updates)
            if updates
            else "DO NOTHING"
        )
        return (
            f"INSERT INTO {self.qualified(target)} ({cols}) "
            f"SELECT {cols} FROM {self.qualified(source)} "
            f"ON CONFLICT ({self.column_list(keys)}) {action}"
        )

    def create_ledger(self) -> str:
        return super().create_ledger().replace("TIMESTAMP NOT NULL", "TIMESTAMPTZ NOT NULL")

    def days_before(self, days: int, value: str) -> str:
        return f"({value} - {int(days)})"

    def create_stage(
        self, stage: TableName, columns: list[Column], becomes_table: bool = False
    ) -> list[str]:
        # A stage copied from is UNLOGGED: the chunks write no WAL, so the publish's copy is
        # the only one logged (a server crash empties it; the writer then finds it short and
        # reloads). A stage that becomes the table is logged as COPY writes it, which logs
        # less than a copy or SET LOGGED would (COPY logs a record per page, not per row).
        create = self.create_table(stage, columns)
        return [
            create if becomes_table else create.replace("CREATE TABLE", "CREATE UNLOGGED TABLE")
        ]

    def replace_existing(
        self, target: TableName, stage: TableName, columns: list[str]
    ) -> list[str]:
        # TRUNCATE is transactional here; readers wait for the commit and see the new rows.
        return [
            self.truncate(target),
            self.insert_from(target, stage, columns),
            self.drop_table(stage),
        ]

    def install_stage(
        self, target: TableName, stage: TableName, columns: list[Column]
    ) -> list[str]:
        # Logged already when it was made to become the table; SET LOGGED (the table into the
        # WAL once) when a replace changed the columns after an unlogged stage was made.
        return [*super().install_stage(target, stage, columns), self.set_logged(target)]

    def lock_and_count(self, name: TableName) -> list[str]:
        return [f"LOCK TABLE {self.qualified(name)} IN SHARE MODE", self.count_rows(name)]

    def set_logged(self, name: TableName) -> str:
        return f"ALTER TABLE {self.qualified(name)} SET LOGGED"


class SqlServerDialect(Dialect):
    """SQL Server and Azure SQL (mssql-jdbc). Checked by parsing here: no server can run."""

    name = "sqlserver"
    url_prefix = "jdbc:sqlserver:"
    driver_class = "com.microsoft.sqlserver.jdbc.SQLServerDriver"
    url_settings: ClassVar[dict[str, str]] = {
        "useBulkCopyForBatchInsert": "true",
        "sendStringParametersAsUnicode": "true",
    }
    text_type = "NVARCHAR(MAX)"
    binary_type = "VARBINARY(MAX)"
    stage_like_target = True
    # A table lock on bulk-copy batches: faster loads into a chunk table nobody else reads.
    table_lock_setting = "bulkCopyForBatchInsertTableLock"

    def quote(self, identifier: str) -> str:
        validate_identifier(identifier)
        return f"[{identifier}]"

    def column_type(self, data_type: T.DataType) -> str:
        match data_type:
            case T.BooleanType():
                return "BIT"
            case T.DoubleType():
                return "FLOAT"
            case T.VarcharType():
                return f"NVARCHAR({data_type.length})"
            case T.CharType():
                return f"NCHAR({data_type.length})"
            case T.TimestampType() | T.TimestampNTZType():
                return "DATETIME2(6)"
        return super().column_type(data_type)

    def create_schema(self, schema: str) -> str:
        # CREATE SCHEMA must be alone in its batch: run it through EXEC.
        validate_identifier(schema)
        return f"IF SCHEMA_ID(N'{schema}') IS NULL EXEC(N'CREATE SCHEMA {self.quote(schema)}')"

    def drop_table(self, name: TableName) -> str:
        return f"DROP TABLE IF EXISTS {self.qualified(name)}"

    def create_key_index(self, name: TableName, keys: list[str]) -> str:
        index = f"UX_{name.table}_keys"[:128]
        return (
            f"IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'{index}' "
            f"AND object_id = OBJECT_ID(N'{name.schema}.{name.table}')) "
            f"CREATE UNIQUE INDEX {self.quote(index)} ON {self.qualified(name)} "
            f"({self.column_list(keys)})"
        )

    def merge_from(
        self, target: TableName, source: TableName, columns: list[str], keys: list[str]
    ) -> str:
        on = " AND ".join(f"t.{self.quote(k)} = s.{self.quote(k)}" for k in keys)
        updates = [c for c in columns if c not in keys]
        matched = (
            "WHEN MATCHED THEN UPDATE SET "
            + ", ".join(f"t.{self.quote(c)} = s.{self.quote(c)}" for c in updates)
            + " "
            if updates
            else ""
        )
        return (
            f"MERGE INTO {self.qualified(target)} WITH (HOLDLOCK) AS t "
            f"USING {self.qualified(source)} AS s ON {on} "
            f"{matched}"
            f"WHEN NOT MATCHED BY TARGET THEN INSERT ({self.column_list(columns)}) "
            f"VALUES ({', '.join(f's.{self.quote(c)}' for c in columns)});"
        )

    def first_rows(self, name: TableName, limit: int) -> str:
        return f"SELECT TOP ({int(limit)}) * FROM {self.qualified(name)}"

    def count_rows(self, name: TableName) -> str:
        return f"SELECT COUNT_BIG(*) FROM {self.qualified(name)}"

    def switch(self, stage: TableName, target: TableName) -> str:
        """Metadata only: the stage's pages become the (empty) target's; nothing is logged
        per row. Needs the same columns, indexes and filegroup (`create_stage_like`)."""
        return f"ALTER TABLE {self.qualified(stage)} SWITCH TO {self.qualified(target)}"

    def create_stage_like(self, stage: TableName, target: TableName) -> list[str]:
        # SELECT INTO copies the columns exactly (types, nullability, collation); SWITCH also
        # needs the target's indexes on the stage, made here from the catalog views.
        return [
            f"SELECT TOP (0) * INTO {self.qualified(stage)} FROM {self.qualified(target)}",
            self._copy_indexes(target, stage),
        ]

    def _copy_indexes(self, source: TableName, destination: TableName) -> str:
        """One batch that creates on `destination` every rowstore index and primary key or
        unique constraint `source` has (clustered first), as SWITCH requires. Each index's
        statement is built in CROSS APPLY: SQL Server refuses subqueries inside an aggregate."""
        columns = (
            "SELECT STRING_AGG(QUOTENAME(c.name) + CASE WHEN ic.is_descending_key = 1 "
            "THEN N' DESC' ELSE N'' END, N', ') WITHIN GROUP (ORDER BY ic.key_ordinal) "
            "FROM sys.index_columns AS ic JOIN sys.columns AS c ON c.object_id = ic.object_id "
            "AND c.column_id = ic.column_id WHERE ic.object_id = i.object_id "
            "AND ic.index_id = i.index_id AND ic.is_included_column = {included}"
        )
        table = self.qualified(destination)
        # Constraint names are unique per schema: the stage's get a suffix. Index names are
        # unique per table only, so indexes keep theirs.
        statement = (
            "SELECT CASE WHEN i.is_primary_key = 1 OR i.is_unique_constraint = 1 "
            f"THEN N'ALTER TABLE {table} ADD CONSTRAINT ' + QUOTENAME(LEFT(i.name, 110) + "
            "N'__dm_stage') + CASE WHEN i.is_primary_key = 1 THEN N' PRIMARY KEY ' "
            "ELSE N' UNIQUE ' END + i.type_desc COLLATE DATABASE_DEFAULT + N' (' + k.cols + N')' "
            "ELSE N'CREATE ' + CASE WHEN i.is_unique = 1 THEN N'UNIQUE ' ELSE N'' END + "
            "i.type_desc COLLATE DATABASE_DEFAULT + N' INDEX ' + QUOTENAME(i.name) + "
            f"N' ON {table} (' + k.cols + N')' + ISNULL(N' INCLUDE (' + n.cols + N')', N'') + "
            "ISNULL(N' WHERE ' + i.filter_definition, N'') END"
        )
        return (
            "DECLARE @dm_indexes NVARCHAR(MAX) = (SELECT STRING_AGG(CAST(x.ddl AS "
            "NVARCHAR(MAX)), N'; ') WITHIN GROUP (ORDER BY i.index_id) FROM sys.indexes AS i "
            f"CROSS APPLY ({columns.format(included=0)}) AS k(cols) "
            f"CROSS APPLY ({columns.format(included=1)}) AS n(cols) "
            f"CROSS APPLY ({statement}) AS x(ddl) "
            f"WHERE i.object_id = OBJECT_ID(N'{source.schema}.{source.table}') "
            "AND i.type IN (1, 2) AND i.is_hypothetical = 0); "
            "IF @dm_indexes IS NOT NULL EXEC sp_executesql @dm_indexes"
        )

    def switch_blockers(self, target: TableName) -> tuple[str, list[object]]:
        """Why SWITCH cannot publish into `target` (one row per reason; none: it can)."""
        checks = [
            ("a foreign key references it", "sys.foreign_keys WHERE referenced_object_id = {t}"),
            ("it is system-versioned", "sys.tables WHERE object_id = {t} AND temporal_type <> 0"),
            ("it has a columnstore index", "sys.indexes WHERE object_id = {t} AND type IN (5, 6)"),
            ("it has CHECK constraints", "sys.check_constraints WHERE parent_object_id = {t}"),
            ("it has computed columns", "sys.computed_columns WHERE object_id = {t}"),
            (
                "an indexed view uses it",
                "sys.sql_expression_dependencies AS d JOIN sys.indexes AS v "
                "ON v.object_id = d.referencing_id WHERE d.referenced_id = {t}",
            ),
            (
                "it is partitioned or compressed",
                "sys.partitions WHERE object_id = {t} AND (partition_number > 1 "
                "OR data_compression <> 0)",
            ),
        ]
        parts = [
            f"SELECT N'{reason}' WHERE EXISTS (SELECT 1 FROM {source.format(t='OBJECT_ID(?)')})"
            for reason, source in checks
        ]
        return " UNION ALL ".join(parts), [f"{target.schema}.{target.table}"] * len(checks)

    def lock_and_count(self, name: TableName) -> list[str]:
        return [f"SELECT COUNT_BIG(*) FROM {self.qualified(name)} WITH (TABLOCKX, HOLDLOCK)"]

    def replace_existing(
        self, target: TableName, stage: TableName, columns: list[str]
    ) -> list[str]:
        return [self.truncate(target), self.switch(stage, target), self.drop_table(stage)]

    def install_stage(
        self, target: TableName, stage: TableName, columns: list[Column]
    ) -> list[str]:
        # No sp_rename (a schema-modification lock on the name, and it keeps the stage's name
        # in the definitions of anything bound to it): a new target, then the same SWITCH.
        return [
            self.drop_table(target),
            self.create_table(target, columns),
            self.switch(stage, target),
            self.drop_table(stage),
        ]

    timestamp_type = "DATETIME2(3)"

    def create_if_missing(self, name: TableName, columns: list[tuple[str, str]], key: str) -> str:
        create = (
            super()
            .create_if_missing(name, columns, key)
            .replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
            .replace("VARCHAR(", "NVARCHAR(")
        )
        return f"IF OBJECT_ID(N'{name.schema}.{name.table}', N'U') IS NULL {create}"

    def try_claim(self, slot_hash: str) -> tuple[str, list[object]]:
        # An application lock owned by the session: kept across its transactions, released
        # when the session ends (a killed holder's connection is closed by the server).
        return (
            "SET NOCOUNT ON; DECLARE @granted INT; "
            "EXEC @granted = sp_getapplock @Resource = ?, @LockMode = 'Exclusive', "
            "@LockOwner = 'Session', @LockTimeout = 0; "
            "SELECT CASE WHEN @granted >= 0 THEN 1 ELSE 0 END",
            [f"data_mesh_ddz_load/{slot_hash}"],
        )

    def timeout_properties(self, timeouts: DdzTimeouts) -> dict[str, str]:
        return {
            "loginTimeout": str(timeouts.login),
            "lockTimeout": str(timeouts.lock * 1000),
            "queryTimeout": str(timeouts.statement),
        }

    def session_timeouts(self, timeouts: DdzTimeouts) -> list[str]:
        return [f"SET LOCK_TIMEOUT {timeouts.lock * 1000}"]

    def ledger_insert(self) -> str:
        return super().ledger_insert().replace("CURRENT_TIMESTAMP", "SYSUTCDATETIME()")


def advisory_key(slot_hash: str) -> int:
    """PostgreSQL's advisory lock key (a signed 64-bit integer) for a slot."""
    return int.from_bytes(bytes.fromhex(slot_hash[:16]), "big", signed=True)


def postgres_timeout_options(timeouts: DdzTimeouts) -> str:
    """libpq/pgjdbc `options` bounding each statement and each lock wait of a session."""
    return (
        f"-c lock_timeout={timeouts.lock * 1000} -c statement_timeout={timeouts.statement * 1000}"
    )


_DIALECTS: tuple[type[Dialect], ...] = (H2Dialect, PostgresDialect, SqlServerDialect)


def jdbc_scheme(url: str) -> str:
    """`jdbc:<database>` of a JDBC URL, for messages."""
    return ":".join(url.split(":", 2)[:2])


def jdbc_driver_class(url: str) -> str | None:
    """The JDBC driver class for `url` (the DDZ's or an ingestion source's), or None."""
    dialect = next((d for d in _DIALECTS if url.startswith(d.url_prefix)), None)
    return dialect.driver_class if dialect else None


def dialect_for_url(url: str) -> Dialect:
    """The dialect of a JDBC URL."""
    for dialect in _DIALECTS:
        if url.startswith(dialect.url_prefix):
            return dialect()
    scheme = jdbc_scheme(url)
    raise ValueError(
        f"no DDZ dialect for JDBC URL scheme {scheme!r} "
        "(supported: jdbc:h2, jdbc:postgresql, jdbc:sqlserver)"
    )
