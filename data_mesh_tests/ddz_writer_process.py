"""A separate writing process for the fault-injection tests (killed mid-load on purpose).

Usage: python -m data_mesh_tests.ddz_writer_process JDBC_URL USER PASSWORD SPOOL ROWS CHUNK_ROWS
       [--mode replace|append] [--first-id N] [--claim-timeout S] [--run NAME]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from subprocess import PIPE, STDOUT, Popen

from pyspark.sql import DataFrame, SparkSession

from data_mesh.ddz.chunks import ChunkSettings
from data_mesh.ddz.dialects import TableName
from data_mesh.ddz.spool import Spool
from data_mesh.ddz.timeouts import DdzTimeouts
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter
from data_mesh.lake.storage import LocalStorage
from data_mesh.settings.model import DEFAULT_JDBC_JARS

TABLE = TableName("ddz", "FAULTS")


def source_rows(spark: SparkSession, rows: int, first_id: int = 0) -> DataFrame:
    """Deterministic rows: the same `rows` give the same data in every process."""
    return spark.range(first_id, first_id + rows).selectExpr(
        "id AS ID", "concat('name-', id) AS NAME", "cast(id % 997 AS double) * 1.5 AS AMOUNT"
    )


def make_writer(
    url: str,
    user: str,
    password: str,
    spool: str,
    chunk_rows: int,
    timeouts: DdzTimeouts | None = None,
    load_path: str = "",
) -> DdzWriter:
    return DdzWriter(
        DdzConnection(
            url,
            {"user": user, "password": password} if user else {},
            load_path=load_path,
            timeouts=timeouts or DdzTimeouts(),
        ),
        ChunkSettings(max_chunk_rows=chunk_rows),
        Spool(LocalStorage(Path(spool)), "spool/ddz"),
    )


def start(
    url: str,
    user: str,
    password: str,
    spool: Path,
    rows: int,
    chunk_rows: int,
    *options: str,
) -> Popen[bytes]:
    """This module as a process of its own, in a session of its own (to be killed whole);
    `options` as in the usage above."""
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
            *options,
        ],
        cwd=Path(__file__).resolve().parents[1],
        start_new_session=True,
        stdout=PIPE,
        stderr=STDOUT,
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    for name in ("url", "user", "password", "spool"):
        parser.add_argument(name)
    parser.add_argument("rows", type=int)
    parser.add_argument("chunk_rows", type=int)
    parser.add_argument("--mode", default="replace")
    parser.add_argument("--first-id", type=int, default=0)
    parser.add_argument("--claim-timeout", type=int, default=600)
    parser.add_argument("--run", default="")
    args = parser.parse_args(argv)
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
    writer = make_writer(
        args.url,
        args.user,
        args.password,
        args.spool,
        args.chunk_rows,
        DdzTimeouts(claim=args.claim_timeout),
    )
    report = writer.write(
        source_rows(spark, args.rows, args.first_id),
        DdzTarget(TABLE, args.mode, max_connections=1),
        run=args.run,
    )
    print(f"written {report.rows} rows in {report.chunks} chunks", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
