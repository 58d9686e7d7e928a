"""The DDZ writer against a real SQL Server (Azure SQL in the pipeline job
deploy/azure-pipelines/sqlserver-tests.yml): write modes, partition slices, wide rows, types,
resuming after a crash, a writer process killed mid-load, and a replace that keeps the table's
grants, indexes and dependent views.

Runs when DATA_MESH_TEST_MSSQL_URL is set (`jdbc:sqlserver://host:1433;database=...;encrypt=...`),
with DATA_MESH_TEST_MSSQL_USER / DATA_MESH_TEST_MSSQL_PASSWORD (SQL authentication), or with
DATA_MESH_TEST_MSSQL_ACCESS_TOKEN (an Entra ID token, mssql-jdbc's accessToken: Azure SQL with
Entra-only authentication). The login needs to create and drop schemas, tables, views and roles
and to grant (db_owner of a test database). Each test works in a schema of its own,
`dm_test_<random>`, dropped afterwards with everything in it, and with a role it creates; the
writer's ledger table (data_mesh.ddz_load_ledger) is shared and only the test's rows are removed.

The module is also the writer process the kill test starts and kills (`python -m
data_mesh_tests.test_ddz_sqlserver SCHEMA.TABLE SPOOL ROWS CHUNK_ROWS`): it takes the server and
the credentials from the same environment variables, so no secret is on a command line.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.reader import read_ddz_table
from data_mesh.ddz.sessions import DdzSession, open_session, transaction
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriteError, DdzWriter
from data_mesh.lake.storage import LocalStorage
from data_mesh.settings.model import MSSQL_JDBC_JAR
from data_mesh_tests.conftest import AWKWARD_SCHEMA, awkward_rows

URL = os.environ.get("DATA_MESH_TEST_MSSQL_URL", "")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not URL,
        reason="DATA_MESH_TEST_MSSQL_URL is not set: no SQL Server to write to (the DEV job "
        "deploy/azure-pipelines/sqlserver-tests.yml sets it)",
    ),
]

REPO = Path(__file__).resolve().parents[1]
SCHEMA = "ID long, NAME string, AMOUNT double"
LEDGER = "[data_mesh].[ddz_load_ledger]"


# -- the connection and the writer: the one place either is made ------------------------------
def mssql_properties() -> dict[str, str]:
    """JDBC properties from the environment: an access token, else user and password."""
    token = os.environ.get("DATA_MESH_TEST_MSSQL_ACCESS_TOKEN", "")
    if token:
        return {"accessToken": token}
    return {
        "user": os.environ.get("DATA_MESH_TEST_MSSQL_USER", ""),
        "password": os.environ.get("DATA_MESH_TEST_MSSQL_PASSWORD", ""),
    }


def mssql_connection(table_lock: bool = False) -> DdzConnection:
    return DdzConnection(URL, mssql_properties(), table_lock=table_lock)


def make_writer(spool_dir: Path, table_lock: bool = False, **chunking: int) -> DdzWriter:
    return DdzWriter(
        mssql_connection(table_lock),
        ChunkSettings(**chunking),
        Spool(LocalStorage(spool_dir), "spool/ddz"),
    )


@contextmanager
def mssql_session(spark: SparkSession) -> Iterator[DdzSession]:
    """A JDBC session in Spark's JVM for the test's own statements."""
    session = open_session(spark, mssql_connection())
    try:
        yield session
    finally:
        session.close()


def source_rows(spark: SparkSession, rows: int) -> DataFrame:
    """Deterministic rows: the same `rows` give the same data in every process."""
    return spark.range(rows).selectExpr(
        "id AS ID", "concat('name-', id) AS NAME", "cast(id % 997 AS double) * 1.5 AS AMOUNT"
    )


# -- fixtures ---------------------------------------------------------------------------------
@dataclass
class Database:
    """The test's schema on the server, and SQL through the test's own session."""

    spark: SparkSession
    schema: str
    # Roles the test made: dropped after the schema, once no object is granted to them.
    roles: list[str] = field(default_factory=list)

    def table(self, name: str) -> TableName:
        return TableName(self.schema, name)

    def quoted(self, name: str) -> str:
        return f"[{self.schema}].[{name}]"

    def execute(self, *statements: str) -> None:
        with mssql_session(self.spark) as session, transaction(session):
            for sql in statements:
                session.execute(sql)

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        with mssql_session(self.spark) as session, transaction(session):
            return session.query(sql, params or [])

    def scalar(self, sql: str, params: list[object] | None = None) -> int:
        return int(self.query(sql, params)[0][0])

    def rows(self, name: str) -> list[tuple[Any, ...]]:
        frame = read_ddz_table(self.spark, mssql_connection(), self.table(name))
        return sorted(tuple(r) for r in frame.collect())

    def leftovers(self) -> tuple[int, int]:
        """(stage or chunk tables in the schema, ledger rows of the schema's loads)."""
        stages = self.scalar(
            "SELECT COUNT(*) FROM sys.tables WHERE schema_id = SCHEMA_ID(?) "
            "AND name LIKE '%[_][_]dm[_]stage[_]%'",
            [self.schema],
        )
        ledger = self.scalar(
            f"SELECT COUNT(*) FROM {LEDGER} WHERE CHARINDEX(?, [slot]) = 1", [f"{self.schema}."]
        )
        return stages, ledger


@pytest.fixture
def db(spark: SparkSession) -> Iterator[Database]:
    if not Path(MSSQL_JDBC_JAR).is_file():
        pytest.fail(
            f"DATA_MESH_TEST_MSSQL_URL is set but {MSSQL_JDBC_JAR} is missing: run scripts/setup.sh"
        )
    database = Database(spark, f"dm_test_{uuid.uuid4().hex[:10]}")
    database.execute(f"EXEC(N'CREATE SCHEMA [{database.schema}]')")
    yield database
    _drop_schema(database)


def _drop_schema(database: Database) -> None:
    objects = database.query(
        "SELECT name, type FROM sys.objects WHERE schema_id = SCHEMA_ID(?) AND type IN ('V', 'U') "
        "ORDER BY CASE type WHEN 'V' THEN 0 ELSE 1 END",
        [database.schema],
    )
    drops = [
        f"DROP {'VIEW' if str(kind).strip() == 'V' else 'TABLE'} {database.quoted(str(name))}"
        for name, kind in objects
    ]
    database.execute(
        *drops,
        f"DROP SCHEMA [{database.schema}]",
        *(f"DROP ROLE [{role}]" for role in database.roles),
        f"IF OBJECT_ID(N'data_mesh.ddz_load_ledger', N'U') IS NOT NULL "
        f"DELETE FROM {LEDGER} WHERE CHARINDEX(N'{database.schema}.', [slot]) = 1",
    )


@pytest.fixture
def role(db: Database) -> str:
    """A database role of the test's own (the `db` fixture drops it)."""
    name = f"{db.schema}_reader"
    db.execute(f"CREATE ROLE [{name}]")
    db.roles.append(name)
    return name


def frame(spark: SparkSession, rows: list[tuple[Any, ...]], schema: str = SCHEMA) -> DataFrame:
    return spark.createDataFrame(rows, schema)


# -- write modes ------------------------------------------------------------------------------
def test_replace_append_merge(spark: SparkSession, db: Database, tmp_path: Path) -> None:
    w = make_writer(tmp_path, max_chunk_rows=100)
    orders = db.table("ORDERS")
    first = [(i, f"n{i}", i * 1.5) for i in range(1, 501)]
    report = w.write(frame(spark, first), DdzTarget(orders))
    assert (report.rows, report.chunks, report.loaded_chunks, report.resumed_chunks) == (
        500,
        5,
        5,
        0,
    )
    assert db.rows("ORDERS") == first

    # A replace of the existing table, then an append to it.
    w.write(frame(spark, [(1, "only", 0.0)]), DdzTarget(orders, "replace"))
    assert db.rows("ORDERS") == [(1, "only", 0.0)]
    w.write(frame(spark, [(2, "two", 2.0)]), DdzTarget(orders, "append"))
    assert db.rows("ORDERS") == [(1, "only", 0.0), (2, "two", 2.0)]

    keyed = db.table("KEYED")
    w.write(frame(spark, first[:3]), DdzTarget(keyed, "merge", ("ID",)))
    changes = [(2, "changed", 9.0), (600, "new", 6.0)]
    w.write(frame(spark, changes), DdzTarget(keyed, "merge", ("ID",)))
    assert db.rows("KEYED") == [first[0], changes[0], first[2], changes[1]]
    unique = db.scalar(
        "SELECT COUNT(*) FROM sys.indexes WHERE object_id = OBJECT_ID(?) AND is_unique = 1",
        [f"{db.schema}.KEYED"],
    )
    assert unique == 1, "merge keeps a unique index on the key columns"
    # A duplicate key fails the publish, which leaves the table as it was.
    with pytest.raises(DdzWriteError, match=rf"{db.schema}\.KEYED: append write failed"):
        w.write(frame(spark, [(3, "c", 3.0), (1, "dup", 0.0)]), DdzTarget(keyed, "append"))
    assert db.rows("KEYED") == [first[0], changes[0], first[2], changes[1]]
    w.write(frame(spark, [(7, "seven", 7.0)]), DdzTarget(keyed, "replace", ("ID",)))
    assert db.rows("KEYED") == [(7, "seven", 7.0)]
    # Nothing of the loads is left behind: no stage or chunk tables, no ledger rows.
    assert db.leftovers() == (0, 0)


def test_replace_with_other_columns_makes_a_new_table(
    spark: SparkSession, db: Database, tmp_path: Path
) -> None:
    w = make_writer(tmp_path)
    w.write(frame(spark, [(1, "a", 1.0)]), DdzTarget(db.table("ORDERS")))
    w.write(frame(spark, [(2, "b")], "ID long, LABEL string"), DdzTarget(db.table("ORDERS")))
    assert db.rows("ORDERS") == [(2, "b")]
    assert db.leftovers() == (0, 0)


def test_partitioned_replace_touches_only_its_slice(
    spark: SparkSession, db: Database, tmp_path: Path
) -> None:
    schema = "ID long, LOAD_DATE date, V double"
    w = make_writer(tmp_path)
    table = db.table("DAILY")
    days = (dt.date(2026, 11, 20), dt.date(2026, 11, 21))
    for day in days:
        rows = [(i, day, 1.0) for i in range(10)]
        w.write(frame(spark, rows, schema), DdzTarget(table, partition=("LOAD_DATE", str(day))))
    w.write(
        frame(spark, [(99, days[1], 2.0)], schema),
        DdzTarget(table, partition=("LOAD_DATE", str(days[1]))),
    )
    result = db.rows("DAILY")
    assert [r for r in result if r[1] == days[0]] == [(i, days[0], 1.0) for i in range(10)]
    assert [r for r in result if r[1] == days[1]] == [(99, days[1], 2.0)]
    assert db.leftovers() == (0, 0)
    # Rows of another day cannot replace this day's slice (the refused load stays staged, to
    # be resumed or restarted).
    with pytest.raises(DdzWriteError, match="other than the partition"):
        w.write(
            frame(spark, [(5, days[0], 3.0)], schema),
            DdzTarget(table, partition=("LOAD_DATE", str(days[1]))),
        )
    assert db.rows("DAILY") == result


def test_wide_rows_with_table_locks(spark: SparkSession, db: Database, tmp_path: Path) -> None:
    rows = [(i, chr(65 + i % 26) * 5000, float(i)) for i in range(300)]
    w = make_writer(tmp_path, table_lock=True, max_chunk_bytes=400_000, batch_bytes=100_000)
    assert "bulkCopyForBatchInsertTableLock=true" in w.connection.jdbc_url
    report = w.write(frame(spark, rows), DdzTarget(db.table("WIDE")))
    assert report.row_bytes >= 5000
    assert report.chunks >= 4  # 1.5 MB in chunks of at most 400 kB
    assert db.rows("WIDE") == rows


def test_types_unicode_nulls_and_awkward_strings(
    spark: SparkSession, db: Database, tmp_path: Path
) -> None:
    schema, rows = AWKWARD_SCHEMA, awkward_rows()
    make_writer(tmp_path).write(frame(spark, rows, schema), DdzTarget(db.table("TYPED")))
    back = read_ddz_table(spark, mssql_connection(), db.table("TYPED"))
    assert sorted(tuple(r) for r in back.collect()) == rows
    types = dict(back.dtypes)
    assert types["D"] == "decimal(18,2)" and types["DT"] == "date" and types["B"] == "boolean"
    assert types["TS"] == "timestamp" and types["BIN"] == "binary"
    # Unicode is stored as such (NVARCHAR), not as '?' replacements.
    assert (
        db.scalar(f"SELECT COUNT(*) FROM {db.quoted('TYPED')} WHERE S = N'Zoë \u2013 東京 🚀'") == 1
    )


# -- grants, indexes and views survive a replace ----------------------------------------------
def test_replace_keeps_grants_indexes_and_dependent_views(
    spark: SparkSession, db: Database, role: str, tmp_path: Path
) -> None:
    w = make_writer(tmp_path, max_chunk_rows=100)
    table = db.table("SHARED")
    w.write(frame(spark, [(i, f"old{i}", 1.0) for i in range(300)]), DdzTarget(table))
    db.execute(
        f"CREATE INDEX [IX_SHARED_NAME] ON {db.quoted('SHARED')} ([NAME])",
        f"CREATE VIEW {db.quoted('SHARED_V')} AS SELECT [ID], [NAME] FROM {db.quoted('SHARED')}",
        f"GRANT SELECT ON {db.quoted('SHARED')} TO [{role}]",
    )
    grants = (
        "SELECT COUNT(*) FROM sys.database_permissions AS p "
        "JOIN sys.database_principals AS r ON r.principal_id = p.grantee_principal_id "
        "WHERE p.class = 1 AND p.major_id = OBJECT_ID(?) AND r.name = ? "
        "AND p.permission_name = 'SELECT' AND p.state IN ('G', 'W')"
    )
    indexes = "SELECT COUNT(*) FROM sys.indexes WHERE object_id = OBJECT_ID(?) AND name = ?"
    name = f"{db.schema}.SHARED"
    assert db.scalar(grants, [name, role]) == 1  # the checks below can fail
    assert db.scalar(indexes, [name, "IX_SHARED_NAME"]) == 1

    new = [(i, f"new{i}", 2.0) for i in range(1000, 1450)]
    report = w.write(frame(spark, new), DdzTarget(table))
    assert report.rows == 450 and report.chunks >= 2
    assert db.rows("SHARED") == new
    assert db.scalar(grants, [name, role]) == 1, "the grant did not survive the replace"
    assert db.scalar(indexes, [name, "IX_SHARED_NAME"]) == 1, "the index did not survive"
    view = sorted(db.query(f"SELECT [ID], [NAME] FROM {db.quoted('SHARED_V')}"))
    assert view == [(i, n) for i, n, _ in new], "the view does not show the new rows"
    assert db.leftovers() == (0, 0)


# -- resume -----------------------------------------------------------------------------------
def test_resume_after_a_crash_before_publish(
    spark: SparkSession, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = make_writer(tmp_path, max_chunk_rows=100, min_parallel_chunk_rows=100)
    table = db.table("ORDERS")
    w.write(frame(spark, [(0, "old", 0.0)]), DdzTarget(table))
    data = frame(spark, [(i, f"n{i}", float(i)) for i in range(1, 601)])

    publish = w._publish
    crashes: list[int] = []

    def crash_once(*args: Any, **kwargs: Any) -> None:
        if not crashes:
            crashes.append(1)
            raise RuntimeError("simulated crash before publish")
        publish(*args, **kwargs)

    monkeypatch.setattr(w, "_publish", crash_once)
    with pytest.raises(DdzWriteError, match="simulated crash before publish"):
        w.write(data, DdzTarget(table))
    assert db.rows("ORDERS") == [(0, "old", 0.0)]  # nothing published
    report = w.write(data, DdzTarget(table))
    assert report.loaded_chunks == 0 and report.resumed_chunks >= 1
    assert db.rows("ORDERS") == sorted(tuple(r) for r in data.collect())
    assert db.leftovers() == (0, 0)


KILL_ROWS = 600_000
KILL_CHUNK_ROWS = 25_000


def _exact(db: Database, name: str, rows: int) -> None:
    """The table holds exactly `source_rows(rows)`: ids 0..rows-1 once each, every value right."""
    found = db.query(
        "SELECT COUNT_BIG(*), COUNT(DISTINCT [ID]), MIN([ID]), MAX([ID]), "
        "SUM(CASE WHEN [NAME] = CONCAT(N'name-', [ID]) "
        "AND [AMOUNT] = CAST([ID] % 997 AS FLOAT) * 1.5 THEN 0 ELSE 1 END) "
        f"FROM {db.quoted(name)}"
    )[0]
    assert tuple(int(v) for v in found) == (rows, rows, 0, rows - 1, 0), found


def test_killed_process_resumes_with_exact_rows(
    spark: SparkSession, db: Database, tmp_path: Path
) -> None:
    table = db.table("FAULTS")
    chunks = KILL_ROWS // KILL_CHUNK_ROWS
    writer = make_writer(tmp_path, max_chunk_rows=KILL_CHUNK_ROWS)
    writer.write(source_rows(spark, 1000), DdzTarget(table))  # the old table: 1000 rows
    log = tmp_path / "writer.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "data_mesh_tests.test_ddz_sqlserver",
                str(table),
                str(tmp_path),
                str(KILL_ROWS),
                str(KILL_CHUNK_ROWS),
            ],
            cwd=REPO,
            start_new_session=True,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    committed = 0
    deadline = time.monotonic() + 600
    try:
        with mssql_session(spark) as session:
            while committed < 3 and time.monotonic() < deadline and process.poll() is None:
                with transaction(session):
                    found = session.query(
                        f"SELECT COUNT(*) FROM {LEDGER} WHERE [slot] = ?", [str(table)]
                    )
                committed = int(found[0][0])
                time.sleep(0.2)
    finally:  # the process never outlives the test
        alive = process.poll() is None
        if alive:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert alive, f"the writer ended before it was killed:\n{log.read_text()[-3000:]}"
    assert 3 <= committed < chunks, (committed, log.read_text()[-3000:])
    _exact(db, "FAULTS", 1000)  # the kill left the old table as it was

    report = writer.write(source_rows(spark, KILL_ROWS), DdzTarget(table))
    assert report.resumed_chunks >= 3
    assert report.resumed_chunks + report.loaded_chunks == chunks
    _exact(db, "FAULTS", KILL_ROWS)
    assert db.leftovers() == (0, 0)


def main(argv: list[str]) -> None:
    """The writer process of the kill test: one replace of SCHEMA.TABLE with `source_rows`."""
    from data_mesh.resources.spark import spark_session
    from data_mesh.settings.model import Settings

    name, spool_dir, rows, chunk_rows = argv
    schema, table = name.split(".", 1)
    # The settings' Spark session: its driver class path has mssql-jdbc.
    settings = Settings(home=Path(spool_dir) / "home", spark_master="local[2]", spark_remote=None)
    spark = spark_session(settings)
    spark.conf.set("spark.sql.shuffle.partitions", "4")
    writer = make_writer(Path(spool_dir), max_chunk_rows=int(chunk_rows))
    target = DdzTarget(TableName(schema, table), max_connections=1)
    report = writer.write(source_rows(spark, int(rows)), target)
    print(f"written {report.rows} rows in {report.chunks} chunks")


if __name__ == "__main__":
    main(sys.argv[1:])
