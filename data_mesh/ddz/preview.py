"""`data-mesh ddz show`: a DDZ table's row count and first rows, without starting Spark.

A Spark session takes tens of seconds to start, to read 20 rows. A DDZ the writer reaches from
Python (PostgreSQL with psycopg, Azure SQL or PostgreSQL over ODBC) is read through the
writer's own control session; the embedded H2 (no Python driver) with H2's own shell from the
driver jar, which starts in about a second. Only a DDZ reached through the JVM alone (SQL
Server without DATA_MESH_DDZ_AZURE_AUTH, an H2 with a password) returns None: the caller reads
it with Spark.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data_mesh.catalog.errors import DataMeshError
from data_mesh.ddz.connection import DdzConnection
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.sessions import open_session, transaction

# The H2 shell's start and query; a table of a locked file waits for its lock timeout.
H2_SHELL_TIMEOUT_S = 120


class DdzPreviewError(DataMeshError):
    """The table could not be read; says why (no such table, no database file, ...)."""


@dataclass(frozen=True)
class Preview:
    columns: list[str]
    rows: list[tuple[str | None, ...]]
    count: int


def preview_table(
    connection: DdzConnection, table: TableName, limit: int, jars: Sequence[str]
) -> Preview | None:
    """The first `limit` rows of `table` and its row count, or None when this database is read
    with Spark only (see the module's note)."""
    name = connection.dialect.name
    if connection.resolved_control in ("psycopg", "odbc"):
        return _session_preview(connection, table, limit)
    # The shell would take a password on its command line, seen by every user of the machine:
    # a protected H2 is read with Spark instead.
    if name == "h2" and "password" not in connection.properties:
        jar = next((j for j in jars if Path(j).name.startswith("h2") and Path(j).is_file()), None)
        java = shutil.which("java")
        if jar is not None and java is not None:
            return _h2_preview(java, jar, connection, table, limit)
    return None


def _session_preview(connection: DdzConnection, table: TableName, limit: int) -> Preview:
    """Through the writer's control session (no Spark is needed for these controls)."""
    dialect = connection.dialect
    try:
        session = open_session(None, connection)
        try:
            with transaction(session):
                sql, params = dialect.columns_of(table)
                columns = [str(r[0]) for r in session.query(sql, params)]
                if not columns:
                    raise DdzPreviewError(f"{table}: no such table")
                count = int(str(session.query(dialect.count_rows(table))[0][0]))
                rows = session.query(dialect.first_rows(table, int(limit)))
        finally:
            session.close()
    except DdzPreviewError:
        raise
    except Exception as error:  # the driver's own error, first line only
        raise DdzPreviewError(f"{table}: {str(error).strip().splitlines()[0]}") from error
    return Preview(columns, [tuple(None if v is None else str(v) for v in r) for r in rows], count)


# 'Error: org.h2.jdbc.JdbcSQLSyntaxErrorException: Table "X" not found; SQL statement:' (a
# statement) or 'Exception in thread "main" org.h2...: Database "..." not found, ... [90146-214]'.
_H2_MESSAGE = re.compile(
    r'^(?:Error: |Exception in thread "\w+" )?(?:[\w.]+Exception: )?(.*?)'
    r"(?:; SQL statement:)?(?: \[\d+-\d+\])?$"
)


def _h2_message(line: str) -> str:
    """The H2 shell's error line without the Java exception's name and H2's error code."""
    match = _H2_MESSAGE.match(line.strip())
    return match.group(1) if match else line.strip()


def _h2_url(url: str) -> str:
    # A preview never creates a database: a mistyped home would otherwise get an empty one.
    if url.startswith("jdbc:h2:file:") and "IFEXISTS=" not in url.upper():
        return f"{url};IFEXISTS=TRUE"
    return url


def _h2_preview(
    java: str, jar: str, connection: DdzConnection, table: TableName, limit: int
) -> Preview:
    qualified = connection.dialect.qualified(table)  # no quote can be in it: validated
    with tempfile.TemporaryDirectory(prefix="data-mesh-ddz-show-") as folder:
        count_file, rows_file = Path(folder) / "count.csv", Path(folder) / "rows.csv"
        # CSVWRITE quotes every value, so a '|' or a newline in a value cannot break the
        # parsing, as the shell's own table output would.
        sql = (
            f"CALL CSVWRITE('{count_file}', 'SELECT COUNT(*) FROM {qualified}', 'charset=UTF-8');"
            f"CALL CSVWRITE('{rows_file}', 'SELECT * FROM {qualified} "
            f"FETCH FIRST {int(limit)} ROWS ONLY', 'charset=UTF-8')"
        )
        user = connection.properties.get("user", "")
        command = [java, "-cp", jar, "org.h2.tools.Shell", "-url", _h2_url(connection.jdbc_url)]
        command += ["-user", user, "-password", "", "-sql", sql]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=H2_SHELL_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise DdzPreviewError(
                f"{table}: H2 did not answer in {H2_SHELL_TIMEOUT_S} s"
            ) from error
        # The shell reports a failed statement on stdout and exits 0; a failed connection on
        # stderr with exit code 1.
        failed = [line for line in done.stdout.splitlines() if line.startswith("Error: ")]
        if done.returncode != 0 or failed or not rows_file.is_file():
            message = (failed or done.stderr.strip().splitlines() or ["the H2 shell failed"])[0]
            raise DdzPreviewError(f"{table}: {_h2_message(message)}")
        with count_file.open(encoding="utf-8", newline="") as file:
            count = int(list(csv.reader(file))[-1][0])
        with rows_file.open(encoding="utf-8", newline="") as file:
            header, *values = list(csv.reader(file))
    # H2 writes NULL as an empty field, as the table shows it anyway.
    rows = [tuple(v if v != "" else None for v in row) for row in values]
    return Preview(header, rows, count)
