"""Wide rows with a 512m Spark driver, on every DDZ load path, whole process tree measured.

Each method runs in a fresh child process (Spark local[2], spark.driver.memory=512m) that
writes the same deterministic rows; the parent samples the resident memory of the child's
whole process tree (the Python driver, the JVM and its Python workers) every 50 ms.

Methods:
  plain-h2     plain `df.write.jdbc` into the embedded H2 (MSSQLServer mode), defaults
  h2           data_mesh's writer into the embedded H2 (the LOCAL default)
  sqlserver    data_mesh's writer, SQL Server's control flow (jdbc load path from the cluster,
               control statements over ODBC), against PostgreSQL through psqlODBC
  postgresql   data_mesh's writer, PostgreSQL's COPY path
  plain-pg     plain `df.write.jdbc` into PostgreSQL, defaults

Usage (PostgreSQL from scripts/start-postgres.sh):
  .venv/bin/python benchmarks/ddz_wide_rows.py --rows 300000 --width 10000
  .venv/bin/python benchmarks/ddz_wide_rows.py --rows 300000 3000000 --width 1000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.ddz_write import pg_url  # noqa: E402
from data_mesh.ddz.chunks import ChunkSettings  # noqa: E402
from data_mesh.ddz.dialects import H2Dialect, PostgresDialect, TableName  # noqa: E402
from data_mesh.ddz.spool import Spool  # noqa: E402
from data_mesh.ddz.writer import DdzConnection, DdzTarget, DdzWriter  # noqa: E402
from data_mesh.lake.storage import LocalStorage  # noqa: E402
from data_mesh.settings.model import DEFAULT_JDBC_JARS  # noqa: E402
from data_mesh_tests.conftest import jdbc_url_of  # noqa: E402

METHODS = ("plain-h2", "h2", "sqlserver", "postgresql", "plain-pg")
TABLE = TableName("bench", "WIDE")


def spark_session() -> SparkSession:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jars = ",".join(j for j in DEFAULT_JDBC_JARS if Path(j).is_file())
    return (
        SparkSession.builder.master("local[2]")
        .config("spark.driver.memory", "512m")
        .config("spark.jars", jars)
        .config("spark.driver.extraClassPath", jars.replace(",", ":"))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def wide_rows(spark: SparkSession, rows: int, width: int) -> DataFrame:
    """`rows` deterministic rows of about `width` bytes (an id, a code and one long text)."""
    return spark.range(rows).selectExpr(
        "id AS ID",
        "concat('c', cast(id % 97 AS string)) AS CODE",
        f"concat(repeat(char(65 + cast(id % 26 AS int)), {width - 24}), cast(id AS string)) "
        "AS PAYLOAD",
    )


def run_one(method: str, rows: int, width: int, work: Path) -> dict[str, object]:
    spark = spark_session()
    data = wide_rows(spark, rows, width)
    h2 = f"jdbc:h2:file:{work / 'ddz'};MODE=MSSQLServer"
    started = time.perf_counter()
    if method.startswith("plain"):
        if method == "plain-h2":
            url, properties = h2, {"driver": H2Dialect.driver_class}
        else:
            url, pg = jdbc_url_of(pg_url())
            properties = {**pg, "driver": PostgresDialect.driver_class}
        data.write.jdbc(url, "WIDE", mode="overwrite", properties=properties)
    else:
        if method == "h2":
            connection = DdzConnection(h2)
        else:
            url, properties = jdbc_url_of(pg_url())
            connection = DdzConnection(url, properties)
            if method == "sqlserver":
                connection = DdzConnection(url, properties, control="odbc", load_path="jdbc")
        writer = DdzWriter(connection, ChunkSettings(), Spool(LocalStorage(work), "spool/ddz"))
        writer.write(data, DdzTarget(TABLE))
    return {"seconds": time.perf_counter() - started}


def tree_rss_kib(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total


def measure(method: str, rows: int, width: int) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="dm_wide_"))
    child = subprocess.Popen(
        [sys.executable, __file__, "--one", method, "--rows", str(rows), "--width", str(width)],
        env={**os.environ, "DM_WIDE_WORK": str(work)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_kib(child.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = child.communicate()
    done.set()
    sampler.join()
    result: dict[str, object] = {"method": method, "rows": rows, "width": width}
    result["peak_tree_mib"] = round(peak / 1024)
    if child.returncode == 0:
        result.update(json.loads(out.strip().splitlines()[-1]))
        result["ok"] = True
    else:
        lines = [line for line in err.splitlines() if "Error" in line or "Exception" in line]
        result["ok"] = False
        result["error"] = (lines[-1] if lines else err.strip()[-300:])[:300]
    subprocess.run(["rm", "-rf", str(work)], check=False)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[300_000])
    parser.add_argument("--width", type=int, default=10_000)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        work = Path(os.environ["DM_WIDE_WORK"])
        print(json.dumps(run_one(args.one, args.rows[0], args.width, work)))
        return
    results = [measure(m, rows, args.width) for rows in args.rows for m in args.methods]
    print(f"{'method':<12} {'rows':>10} {'width':>6} {'result':<7} {'s':>7} {'peak MiB':>9}")
    for r in results:
        seconds = f"{r['seconds']:.1f}" if r["ok"] else "-"
        status = "ok" if r["ok"] else "FAILED"
        print(
            f"{r['method']:<12} {r['rows']:>10,} {r['width']:>6} {status:<7} {seconds:>7} "
            f"{r['peak_tree_mib']:>9}" + ("" if r["ok"] else f"  {r['error']}")
        )
    if len(args.rows) == 2:
        for method in args.methods:
            small, large = (r for r in results if r["method"] == method)
            if small["ok"] and large["ok"]:
                ratio = int(str(large["peak_tree_mib"])) / int(str(small["peak_tree_mib"]))
                grown = args.rows[1] / args.rows[0]
                print(f"{method}: peak tree RSS x{ratio:.2f} for {grown:g}x rows")


if __name__ == "__main__":
    main()
