"""The CLI as people expect it: progress while `materialize` works, no output that looks like a
problem when there is none, `ddz show` without Spark, `config show` naming what an environment
lacks, and a test command that says what it skipped and what was slow."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from data_mesh.cli.app import app
from data_mesh.resources.spark import LOG4J2_CONFIG, spark_config
from data_mesh.settings.model import DEFAULT_JDBC_JARS, Environment, Settings
from data_mesh_tests.conftest import REPO, SAMPLE_PRODUCTS, cli_env, reachable_pg, run_cli

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# What a clean run must not print: none of it is a problem of the run.
NOISE = (
    "SLF4J",
    "Using incubator modules",
    "PreviewWarning",
    "dagster.yaml",
    "Telemetry",
    "Using Spark's default log4j profile",
)


def _text(output: str) -> str:
    """What a terminal would show, as lines: escapes dropped, redraws on lines of their own."""
    return ANSI.sub("", output).replace("\r", "\n")


@pytest.mark.slow
def test_materialize_is_quiet_shows_progress_and_ddz_show_needs_no_spark(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = cli_env(home, COLUMNS="200")
    run_cli(env, "init")
    run_cli(env, "load", str(SAMPLE_PRODUCTS))
    run_cli(env, "generate-sample-data", "--rows", "2000")

    # Into a pipe: the plain summary, and nothing that reads like a problem (a fresh home: the
    # Dagster instance is created by this run).
    plain = run_cli(env, "materialize", "-p", "sor1_payments")
    for noise in NOISE:
        assert noise not in plain.stdout + plain.stderr, plain.stderr
    assert not re.search(r"^(products|assets|chunks) ", plain.stdout, re.MULTILINE)
    assert "ddz.SOR1_PAYMENTS" in plain.stdout and "\x1b[" not in plain.stdout

    # Two days of a daily product: two Dagster runs in one process, on one Spark session.
    days = run_cli(
        env, "materialize", "-p", "mdm_accounts", "--from", "2026-11-14", "--to", "2026-11-15"
    )
    assert days.stderr == "", days.stderr

    shown = run_cli(env, "materialize", "-p", "sor1_payments", "--progress")
    assert shown.stderr == ""
    lines = _text(shown.stdout).splitlines()
    assert any(re.search(r"products .* 1/1", line) for line in lines), lines[-30:]
    assert any(re.search(r"assets .* 1/1 .*sor1_payments", line) for line in lines)
    assert any(
        re.search(r"chunks .* 1/1 .*ddz\.SOR1_PAYMENTS, 2,000 rows, [\d,]+ rows/s", line)
        for line in lines
    )
    assert any("writing ddz.SOR1_PAYMENTS" in line for line in lines)
    assert "quality checks" in shown.stdout and "payment_below_review_limit" in shown.stdout

    # No Spark: with a master that cannot exist, only a read without Spark can answer.
    started = time.monotonic()
    table = run_cli(
        {**env, "DATA_MESH_SPARK_MASTER": "no-such-master"},
        "ddz",
        "show",
        "ddz.SOR1_PAYMENTS",
        "--limit",
        "20",
    )
    seconds = time.monotonic() - started
    assert "ddz.SOR1_PAYMENTS: 2,000 rows" in table.stdout
    assert table.stdout.count("user_") == 20
    assert seconds < 20, f"ddz show took {seconds:.1f} s"


def test_ddz_show_of_no_ddz_says_so_and_creates_none(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["ddz", "show", "ddz.NOPE"], env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "error: ddz.NOPE: Database" in result.output and "not found" in result.output
    assert "Exception in thread" not in result.output
    assert not (settings.home_dir / "ddz").exists()


def test_config_show_names_what_an_environment_lacks(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["config", "show", "--env", "PROD"], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    for name in (
        "DATA_MESH_DDZ_JDBC_URL",
        "DATA_MESH_ADLS_ACCOUNT",
        "DATA_MESH_METADATA_AZURE_SERVER",
    ):
        assert f"missing {name}" in result.output
    assert "MISSING (required in PROD)" in result.output
    assert "jdbc:h2:file:" not in result.output  # LOCAL's default is not PROD's DDZ
    complete = Settings(
        env=Environment.PROD,
        metadata_azure_server="sql-dm.database.windows.net",
        ddz_jdbc_url="jdbc:sqlserver://sql-ddz.database.windows.net:1433;database=ddz",
        adls_account="dmlake",
    )
    assert complete.missing_settings() == {}
    assert settings.missing_settings() == {}  # LOCAL needs none


def test_the_spark_jvm_logs_through_log4j2_with_a_quiet_config(settings: Settings) -> None:
    config = spark_config(settings)
    assert f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}" in config["spark.driver.extraJavaOptions"]
    assert LOG4J2_CONFIG.is_file()
    if Path(DEFAULT_JDBC_JARS[0]).is_file():  # Debian's h2.jar drags SLF4J 1.7 in
        first = config["spark.driver.extraClassPath"].split(":")[0]
        assert re.search(r"slf4j-api-2\.[\d.]+\.jar$", first), first


def test_a_postgresql_url_given_but_unreachable_fails_the_test() -> None:
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL does not answer"):
        reachable_pg("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


def test_the_test_command_reports_skips_and_slow_tests() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    pytest_line = next(line for line in script.splitlines() if "-m pytest" in line)
    assert "-rs" in pytest_line.split() and "--durations=15" in pytest_line.split()
    assert (REPO / ".ci" / "run").read_text().count("scripts/test.sh") == 1


@pytest.mark.slow
@pytest.mark.parametrize("control", ["psycopg", "odbc"])
def test_ddz_show_reads_through_the_control_session(pg_url: str, control: str) -> None:
    """PostgreSQL with psycopg, and over ODBC (psqlODBC here; Azure SQL's path with
    DATA_MESH_DDZ_AZURE_AUTH): no Spark."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from data_mesh.ddz.connection import DdzConnection
    from data_mesh.ddz.dialects import TableName
    from data_mesh.ddz.preview import DdzPreviewError, preview_table
    from data_mesh.store.database import make_engine

    engine = make_engine(pg_url)
    with engine.begin() as db:
        db.execute(text('CREATE SCHEMA ddz; CREATE TABLE ddz."T" ("ID" int, "NAME" text)'))
        db.execute(
            text("""INSERT INTO ddz."T" SELECT i, CASE WHEN i > 1 THEN 'n' || i END
                           FROM generate_series(1, 30) i""")
        )
    engine.dispose()
    url = make_url(pg_url)
    connection = DdzConnection(
        f"jdbc:postgresql://{url.host}:{url.port}/{url.database}",
        {"user": url.username or "", "password": url.password or ""},
        control=control,
    )
    preview = preview_table(connection, TableName("ddz", "T"), 5, ())
    assert preview is not None and preview.count == 30 and preview.columns == ["ID", "NAME"]
    assert len(preview.rows) == 5
    assert all(v is None or isinstance(v, str) for row in preview.rows for v in row)
    with pytest.raises(DdzPreviewError, match=r"ddz\.NOPE: no such table"):
        preview_table(connection, TableName("ddz", "NOPE"), 5, ())
