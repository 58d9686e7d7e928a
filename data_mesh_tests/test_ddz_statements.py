"""Which statements move rows, for each write mode, on SQL Server's path.

No SQL Server runs here, so the writer's control session is a recorder that answers as a
database would (tables, row counts, the ledger), and the chunk loads Spark's JDBC writer would
run are recorded with their rows. Everything else is the real writer with the real dialect,
with Spark planning the chunks. The claim checked: for `replace`, every row is written once
(the chunk loads into the stage) and the publish moves none (TRUNCATE + SWITCH); `append` and
`merge` move them once more, from the stage, and no more. Every statement parses as T-SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from pyspark.sql import SparkSession
from sqlglot import exp

from data_mesh.ddz import claims, loaders, writer
from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.loaders import ChunkJob, JdbcChunkLoader
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter
from data_mesh.lake.storage import LocalStorage

pytestmark = pytest.mark.slow
URL = "jdbc:sqlserver://sql-dm-dev.database.windows.net:1433;database=data_mesh_ddz"
TARGET = TableName("ddz", "ORDERS")
ROWS = 3000
_NAME = r"\[(\w+)\]\.\[(\w+)\]"


@dataclass
class FakeServer:
    """Tables with row counts and columns, and the ledger, as the statements change them."""

    tables: dict[str, int] = field(default_factory=dict)
    columns: dict[str, list[str]] = field(default_factory=dict)
    ledger: dict[tuple[str, int], tuple[str, int, int]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    # What the server's catalog says would stop a SWITCH into the target (`switch_blockers`).
    blockers: list[str] = field(default_factory=list)
    # Application locks held (sp_getapplock), and who the claims table says holds them.
    applocks: set[str] = field(default_factory=set)
    claims: dict[str, str] = field(default_factory=dict)

    def names(self, sql: str) -> list[str]:
        return [f"{a}.{b}" for a, b in re.findall(_NAME, sql)]

    def execute(self, sql: str, params: list[Any]) -> None:
        self.log.append(sql)
        names = self.names(sql)
        if sql.startswith("DROP TABLE"):
            self.tables.pop(names[0], None)
        elif sql.startswith("CREATE TABLE"):
            self.tables[names[0]] = 0
            self.columns[names[0]] = re.findall(r"\[(\w+)\] \w", sql)
        elif sql.startswith("SELECT TOP (0) * INTO"):
            self.tables[names[0]] = 0
            self.columns[names[0]] = list(self.columns[names[1]])
        elif sql.startswith("TRUNCATE TABLE"):
            self.tables[names[0]] = 0
        elif " SWITCH TO " in sql:
            assert self.tables[names[1]] == 0, "SWITCH needs an empty target"
            self.tables[names[1]], self.tables[names[0]] = self.tables[names[0]], 0
        elif "ddz_load_claims" in sql:
            if sql.startswith("INSERT INTO"):
                self.claims[params[0]] = params[1]
        elif sql.startswith("INSERT INTO") and "ddz_load_ledger" in sql:
            slot, load_id, chunk, count, rows = params[:5]
            self.ledger[(slot, chunk)] = (load_id, count, rows)
        elif sql.startswith("INSERT INTO"):
            self.tables[names[0]] += self.tables[names[1]]
        elif sql.startswith("MERGE INTO"):
            self.tables[names[0]] += self.tables[names[1]]  # new keys only, in these tests
        elif sql.startswith("DELETE FROM") and "ddz_load_ledger" in sql:
            self.ledger = {k: v for k, v in self.ledger.items() if k[0] != params[0]}
        elif sql.startswith("DELETE FROM"):
            self.tables[names[0]] = 0

    def query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        self.log.append(sql)
        names = self.names(sql)
        if "sp_getapplock" in sql:
            self.applocks.add(params[0])
            return [(1,)]
        if "ddz_load_ledger" in sql and "SUM(" in sql:
            return [(sum(v[2] for k, v in self.ledger.items() if k[0] == params[0]),)]
        if "ddz_load_ledger" in sql and "COUNT(*)" in sql:
            return [(int((params[0], params[1]) in self.ledger),)]
        if "ddz_load_ledger" in sql:
            return [(v[0], k[1], v[1], v[2]) for k, v in self.ledger.items() if k[0] == params[0]]
        if "INFORMATION_SCHEMA.COLUMNS" in sql:
            return [(c,) for c in self.columns.get(f"{params[0]}.{params[1]}", [])]
        if "INFORMATION_SCHEMA.TABLES" in sql:
            return [(int(f"{params[0]}.{params[1]}" in self.tables),)]
        if sql.startswith("SELECT COUNT_BIG(*)"):
            return [(self.tables[names[0]],)]
        if " UNION ALL " in sql and "sys.foreign_keys" in sql:
            return [(reason,) for reason in self.blockers]
        raise AssertionError(f"the fake server does not know {sql}")


class RecordingSession:
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def execute(self, sql: str, params: Any = ()) -> int:
        self.server.execute(sql, list(params))
        return 0

    def query(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        return self.server.query(sql, list(params))

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    fake = FakeServer()
    monkeypatch.setattr(writer, "open_session", lambda spark, connection: RecordingSession(fake))
    monkeypatch.setattr(loaders, "open_session", lambda spark, connection: RecordingSession(fake))
    monkeypatch.setattr(claims, "open_session", lambda spark, connection: RecordingSession(fake))

    def bulk_insert(self: JdbcChunkLoader, job: ChunkJob) -> None:
        # What Spark's JDBC writer would do: the chunk's rows into the stage, in one go.
        stage = f"{job.stage.schema}.{job.stage.table}"
        fake.log.append(f"JDBC BULK INSERT {stage} {job.chunk.rows}")
        fake.tables[stage] += job.chunk.rows

    monkeypatch.setattr(JdbcChunkLoader, "write_rows", bulk_insert)
    return fake


def _write(spark: SparkSession, tmp_path: Path, mode: str, keys: tuple[str, ...] = ()) -> None:
    data = spark.range(ROWS).selectExpr("id AS ID", "concat('n', id) AS NAME")
    connection = DdzConnection(URL, {"user": "u", "password": "p"}, odbc_auth="sql")
    w = DdzWriter(
        connection,
        ChunkSettings(max_chunk_rows=1000, min_parallel_chunk_rows=500),
        Spool(LocalStorage(tmp_path), "spool/ddz"),
    )
    w.write(data, DdzTarget(TARGET, mode, keys))


def _moves_rows(sql: str) -> bool:
    """Whether a statement copies rows: INSERT ... SELECT, MERGE, SELECT ... INTO with rows."""
    if sql.startswith("JDBC BULK INSERT"):
        return True
    if "ddz_load_ledger" in sql or "ddz_load_claims" in sql:
        return False
    parsed = sqlglot.parse_one(sql, read="tsql")
    if isinstance(parsed, exp.Merge):
        return True
    if isinstance(parsed, exp.Insert):
        return isinstance(parsed.expression, exp.Select)
    if isinstance(parsed, exp.Select) and parsed.args.get("into"):
        return "TOP (0)" not in sql
    return False


def _publish_log(server: FakeServer, start: int) -> list[str]:
    return [s for s in server.log[start:] if not s.startswith("SELECT")]


def test_replace_writes_each_row_once_and_switches(
    spark: SparkSession, server: FakeServer, tmp_path: Path
) -> None:
    _write(spark, tmp_path, "replace")  # first load: the table is created and switched in
    first = [s for s in server.log if _moves_rows(s)]
    assert all(
        s.startswith("JDBC BULK INSERT [ddz].[ORDERS__dm_stage")
        or s.startswith("JDBC BULK INSERT ddz.ORDERS__dm_stage")
        for s in first
    )
    assert sum(int(s.rsplit(" ", 1)[1]) for s in first) == ROWS
    assert any(s.startswith("CREATE TABLE [ddz].[ORDERS] ") for s in server.log)
    assert "ALTER TABLE [ddz].[ORDERS__dm_stage_" in next(s for s in server.log if "SWITCH" in s)
    assert server.tables["ddz.ORDERS"] == ROWS

    start = len(server.log)
    _write(spark, tmp_path, "replace")  # the common case: the table exists
    statements = server.log[start:]
    moved = [s for s in statements if _moves_rows(s)]
    assert moved and all(s.startswith("JDBC BULK INSERT ddz.ORDERS__dm_stage") for s in moved)
    assert sum(int(s.rsplit(" ", 1)[1]) for s in moved) == ROWS  # each row once
    # The stage is made like the target (columns and indexes), then switched in.
    assert any(s.startswith("SELECT TOP (0) * INTO [ddz].[ORDERS__dm_stage_") for s in statements)
    assert any("sp_executesql @dm_indexes" in s for s in statements)
    publish = [s for s in statements if "[ddz].[ORDERS]" in s and not s.startswith("SELECT")]
    assert publish[-2:] == [
        "TRUNCATE TABLE [ddz].[ORDERS]",
        next(s for s in statements if " SWITCH TO [ddz].[ORDERS]" in s),
    ]
    assert not any(
        "sp_rename" in s or s.startswith("DROP TABLE IF EXISTS [ddz].[ORDERS]") for s in statements
    )
    assert server.tables["ddz.ORDERS"] == ROWS
    for sql in statements:
        if not sql.startswith("JDBC"):
            assert sqlglot.parse(sql, read="tsql"), sql
    # The load held the table's application lock, and said who held it.
    assert len(server.applocks) == 1 and next(iter(server.applocks)).startswith(
        "data_mesh_ddz_load/"
    )
    assert next(iter(server.claims.values())).startswith("a load (host ")


@pytest.mark.parametrize(
    ("mode", "keys", "verb"), [("append", (), "INSERT"), ("merge", ("ID",), "MERGE")]
)
def test_append_and_merge_move_rows_once_more_from_the_stage(
    spark: SparkSession,
    server: FakeServer,
    tmp_path: Path,
    mode: str,
    keys: tuple[str, ...],
    verb: str,
) -> None:
    _write(spark, tmp_path, "replace", keys)
    start = len(server.log)
    _write(spark, tmp_path, mode, keys)
    moved = [s for s in server.log[start:] if _moves_rows(s)]
    chunk_loads = [s for s in moved if s.startswith("JDBC")]
    assert sum(int(s.rsplit(" ", 1)[1]) for s in chunk_loads) == ROWS
    others = [s for s in moved if not s.startswith("JDBC")]
    assert len(others) == 1 and others[0].startswith(f"{verb} INTO [ddz].[ORDERS]")
    assert (
        "FROM [ddz].[ORDERS__dm_stage_" in others[0]
        or "USING [ddz].[ORDERS__dm_stage_" in others[0]
    )
    assert server.tables["ddz.ORDERS"] == 2 * ROWS


def test_a_target_a_switch_cannot_take_is_replaced_by_a_copy(
    spark: SparkSession, server: FakeServer, tmp_path: Path
) -> None:
    _write(spark, tmp_path, "replace")
    server.blockers = ["a foreign key references it"]
    start = len(server.log)
    _write(spark, tmp_path, "replace")
    statements = server.log[start:]
    assert not any(" SWITCH TO " in s or s.startswith("SELECT TOP (0)") for s in statements)
    moved = [s for s in statements if _moves_rows(s) and not s.startswith("JDBC")]
    assert moved == [next(s for s in statements if s.startswith("INSERT INTO [ddz].[ORDERS] "))]
    assert any(s == "DELETE FROM [ddz].[ORDERS]" for s in statements)  # TRUNCATE is refused too
    assert server.tables["ddz.ORDERS"] == ROWS


def test_the_key_index_is_on_the_target_before_the_stage_is_made_like_it(
    spark: SparkSession, server: FakeServer, tmp_path: Path
) -> None:
    _write(spark, tmp_path, "replace")  # a table without keys
    start = len(server.log)
    _write(spark, tmp_path, "replace", ("ID",))
    statements = server.log[start:]
    index = next(i for i, s in enumerate(statements) if "CREATE UNIQUE INDEX" in s)
    like = next(i for i, s in enumerate(statements) if s.startswith("SELECT TOP (0) * INTO"))
    assert index < like and "ON [ddz].[ORDERS] ([ID])" in statements[index]
