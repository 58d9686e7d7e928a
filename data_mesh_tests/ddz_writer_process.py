"""A separate writing process for the fault-injection tests (killed mid-load on purpose).

Usage: python -m data_mesh_tests.ddz_writer_process JDBC_URL USER PASSWORD SPOOL ROWS CHUNK_ROWS
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from subprocess import PIPE, STDOUT, Popen

from pyspark.sql import DataFrame, SparkSession

from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter
from data_mesh.settings import DEFAULT_JDBC_JARS
from data_mesh.storage import LocalStorage

TABLE = TableName("ddz", "FAULTS")


def source_rows(spark: SparkSession, rows: int) -> DataFrame:
    """Deterministic rows: the same `rows` give the same data in every process."""
    return spark.range(rows).selectExpr(
        "id AS ID", "concat('name-', id) AS NAME", "cast(id % 997 AS double) * 1.5 AS AMOUNT"
    )


def make_writer(url: str, user: str, password: str, spool: str, chunk_rows: int) -> DdzWriter:
    return DdzWriter(
        DdzConnection(url, {"user": user, "password": password} if user else {}),
        ChunkSettings(max_chunk_rows=chunk_rows),
        Spool(LocalStorage(Path(spool)), "spool/ddz"),
    )


def start(
    url: str, user: str, password: str, spool: Path, rows: int, chunk_rows: int
) -> Popen[bytes]:
    """This module as a process of its own, in a session of its own (to be killed whole)."""
    return Popen(
        [
            sys.executable,
            "-m",
            __name__,
            url,
            user,
            password,
            str(spool),
            str(rows),
            str(chunk_rows),
        ],
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
        stdout=PIPE,
        stderr=STDOUT,
    )


def main(argv: list[str]) -> None:
    url, user, password, spool, rows, chunk_rows = argv
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jars = ",".join(jar for jar in DEFAULT_JDBC_JARS if Path(jar).is_file())
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.jars", jars)
        .config("spark.driver.extraClassPath", jars.replace(",", ":"))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    writer = make_writer(url, user, password, spool, int(chunk_rows))
    report = writer.write(source_rows(spark, int(rows)), DdzTarget(TABLE, max_connections=1))
    print(f"written {report.rows} rows in {report.chunks} chunks")


if __name__ == "__main__":
    main(sys.argv[1:])
