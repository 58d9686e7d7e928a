"""The `data-mesh` command."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from data_mesh.catalog.errors import DataMeshError
from data_mesh.settings.model import Environment, Settings, load_settings
from data_mesh.store.connection import ready_store_engine, store_engine_in_use

if TYPE_CHECKING:  # pyspark and dagster load only in the commands that need them
    from dagster import DagsterInstance
    from pyspark.sql import DataFrame

    from data_mesh.catalog.models import Catalog
    from data_mesh.runs.liveness import MarkedRun


class _DataMeshGroup(TyperGroup):
    """Every command's own errors (a store not initialized, a broken input) end in one line
    and exit 1, not a traceback: caught here once rather than in each command."""

    # `Any`: the base class types it with typer's private click Context.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except DataMeshError as error:
            _fail(str(error))


app = typer.Typer(
    cls=_DataMeshGroup,
    help="Metadata-driven data mesh on Dagster and Spark.",
    no_args_is_help=True,
)
ddz_app = typer.Typer(help="Look at the DDZ tables.", no_args_is_help=True)
app.add_typer(ddz_app, name="ddz")
config_app = typer.Typer(help="The resolved configuration of an environment.", no_args_is_help=True)
app.add_typer(config_app, name="config")
quality_app = typer.Typer(help="Quality rule results and quarantined rows.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")
state_app = typer.Typer(
    help="The state Dagster definitions are built from (refresh: `dg utils refresh-defs-state`).",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")
console = Console()
err = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="SQLAlchemy URL of the metadata store (default: LOCAL SQLite)."),
]
DDL_FILE = Path("metadata/ddl/metadata_store.sql")


def _settings(url: str | None = None) -> Settings:
    settings = load_settings()
    return settings.model_copy(update={"metadata_url": url}) if url else settings


def _fail(message: str) -> NoReturn:
    # Unwrapped: one line whatever the terminal's width, so it can be read and grepped.
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def init(url: UrlOption = None) -> None:
    """Create or upgrade the metadata store (Alembic migrations)."""
    from data_mesh.store.connection import describe_store
    from data_mesh.store.database import upgrade_store

    settings = _settings(url)
    with store_engine_in_use(settings) as engine:
        revision = upgrade_store(engine)
    console.print(f"metadata store at revision [bold]{revision}[/] ({describe_store(settings)})")


@app.command()
def load(
    path: Annotated[Path, typer.Argument(help="A product folder or a folder of products.")] = Path(
        "metadata/products"
    ),
    url: UrlOption = None,
) -> None:
    """Upsert data products from product.yaml files and publish their query files to the lake."""
    from data_mesh.catalog.current import lake_storage
    from data_mesh.catalog.product_files import load_product_files
    from data_mesh.transforms.query_files import publish_query_files

    settings = _settings(url)
    home = _local_dagster_home(settings)  # before anything is written: the refresh needs it
    storage = lake_storage(settings)
    with ready_store_engine(settings) as engine:
        loaded = load_product_files(engine, path)
    for product in loaded:
        publish_query_files(storage, product)
        console.print(
            f"loaded [bold]{product.name}[/] ({len(product.query_files)} query files published)"
        )
    _refresh_state(settings, home)


def _refresh_state(settings: Settings, home: Path | None) -> None:
    """Definitions are built from the mesh's state: refresh it when the store was just changed."""
    from data_mesh.component.project import refresh_state

    refreshed = refresh_state(settings, home)
    for key in refreshed:
        console.print(f"state {key} refreshed; reload the code location to see it")
    if not refreshed:
        console.print("[yellow]no mesh of data_mesh/defs/ reads this store[/]: no state refreshed")


def _local_dagster_home(settings: Settings) -> Path | None:
    """LOCAL: the project's own Dagster home, prepared; elsewhere None: DAGSTER_HOME's instance,
    whose state storage the pods load from (an error naming it when it is not set)."""
    from data_mesh.runs.dagster_home import prepare_dagster_home

    if settings.env != Environment.LOCAL:
        if not os.environ.get("DAGSTER_HOME"):
            raise DataMeshError(
                f"DAGSTER_HOME is not set: {settings.env.value} keeps the state Dagster builds "
                "definitions from in its instance's state storage (deploy/dagster/dagster.yaml)"
            )
        return None
    return prepare_dagster_home(settings.dagster_home, settings)


@state_app.command("status")
def state_status(
    check: Annotated[bool, typer.Option(help="Exit 1 when a state is stale or missing.")] = False,
) -> None:
    """Each mesh's state: where it is, its age and marker against its store's current marker."""
    from dagster import DagsterInstance

    from data_mesh.catalog.current import read_store_rows
    from data_mesh.component.project import mesh_components, saved_state
    from data_mesh.component.state import store_marker
    from data_mesh.runs.dagster_home import open_instance

    outdated = False
    for component in mesh_components():
        settings = component.settings
        home = _local_dagster_home(settings)
        with open_instance(home) if home else DagsterInstance.get() as instance:
            saved = saved_state(component, instance)
        console.print(f"[bold]{saved.key}[/]  {saved.where}", highlight=False)
        if saved.state is None:
            console.print("[yellow]missing[/]: run `dg utils refresh-defs-state`")
            outdated = True
            continue
        current = store_marker(read_store_rows(settings))
        age = saved.state.age().total_seconds()
        console.print(f"taken at  {saved.state.taken_at:%Y-%m-%d %H:%M:%S} UTC ({age:.0f} s ago)")
        console.print(f"marker    {saved.state.marker}")
        console.print(f"store     {current}")
        stale = current != saved.state.marker
        outdated = outdated or stale
        console.print(
            "[yellow]stale[/]: the store changed; run `dg utils refresh-defs-state`"
            if stale
            else "[green]current[/]"
        )
    if outdated and check:
        raise typer.Exit(1)


@app.command()
def validate(url: UrlOption = None) -> None:
    """Check every data product (rows and query files); exit 1 if any is broken."""
    from data_mesh.catalog.current import load_catalog

    catalog = load_catalog(_settings(url))
    for product in catalog.products:
        console.print(f"[green]ok[/]      {product.name}")
    for problem in catalog.problems:
        console.print(f"[red]broken[/]  {problem.product}: {problem.message}", highlight=False)
    for message in catalog.configuration_problems:
        console.print(f"[red]config[/]  {message}", highlight=False)
    if catalog.problems or catalog.configuration_problems:
        raise typer.Exit(1)


@app.command("generate-metadata")
def generate_metadata_command(
    products: Annotated[int, typer.Option(help="Synthetic data products to add.")] = 1000,
    url: UrlOption = None,
    schedules: Annotated[
        bool, typer.Option(help="Give every product a schedule (configuration rows).")
    ] = False,
) -> None:
    """Add N synthetic, valid data products to the store (for scale tests)."""
    from data_mesh.devtools.synthetic import generate_metadata

    try:
        with ready_store_engine(_settings(url)) as engine:
            counts = generate_metadata(engine, products, schedules=schedules)
    except ValueError as error:
        _fail(str(error))
    for table, rows in counts.items():
        console.print(f"{table}: {rows:,} rows")


@app.command("generate-sample-data")
def generate_sample_data(
    rows: Annotated[
        int, typer.Option(help="Rows of the fact tables (payments, orders).")
    ] = 100_000,
) -> None:
    """Write deterministic CDZ sample data (Parquet) into the lake."""
    from data_mesh.catalog.current import lake_storage
    from data_mesh.devtools.sample_data import write_sample_data
    from data_mesh.resources.spark import spark_session

    settings = _settings()
    written = write_sample_data(spark_session(settings), lake_storage(settings), rows)
    for path, count in written.items():
        console.print(f"{path}: {count:,} rows")


@app.command()
def materialize(
    product: Annotated[
        list[str] | None, typer.Option("--product", "-p", help="Only these products.")
    ] = None,
    day: Annotated[
        list[str] | None,
        typer.Option("--day", help="A day (YYYY-MM-DD) of the daily-partitioned assets."),
    ] = None,
    first_day: Annotated[
        str | None, typer.Option("--from", help="First day of a backfill (YYYY-MM-DD).")
    ] = None,
    last_day: Annotated[
        str | None, typer.Option("--to", help="Last day of a backfill (YYYY-MM-DD).")
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="Show progress while it works (default: when the output is a terminal).",
        ),
    ] = None,
) -> None:
    """Materialize the data products into the DDZ and print a summary; daily-partitioned
    assets run once per day given (--day, or --from/--to: a backfill)."""
    from contextlib import nullcontext

    from data_mesh.runs.dagster_home import (
        dagster_home_in_use,
        open_instance,
        prepare_dagster_home,
    )
    from data_mesh.runs.materialize import materialize_products
    from data_mesh.runs.progress_view import MaterializeProgress

    settings = _settings()
    home = prepare_dagster_home(dagster_home_in_use(settings), settings)
    show = console.is_terminal if progress is None else progress
    # --progress into a pipe or a file: drawn as on a terminal (what was asked for).
    view = MaterializeProgress(console if console.is_terminal else Console(force_terminal=True))
    try:
        days = _days(day or [], first_day, last_day)
        with open_instance(home) as instance, view if show else nullcontext():
            # A run of a killed process is marked failed before its load is run again.
            _mark_dead_runs(instance, settings)
            outcome = materialize_products(
                settings,
                product or None,
                instance=instance,
                days=days or None,
                progress=view if show else None,
            )
    except (DataMeshError, ValueError) as error:
        _fail(str(error))
    table = Table(title=f"run {', '.join(outcome.run_ids)}")
    for column in ("asset", "DDZ table", "rows", "chunks", "seconds"):
        table.add_column(
            column, justify="right" if column in ("rows", "chunks", "seconds") else "left"
        )
    for row in outcome.materializations:
        table.add_row(row.asset, row.table, f"{row.rows:,}", str(row.chunks), f"{row.seconds:.1f}")
    console.print(table)
    if outcome.checks:
        checks = Table(title="quality checks")
        for column in ("asset", "check", "result", "observed"):
            checks.add_column(column)
        for check in outcome.checks:
            result = (
                "[green]passed[/]"
                if check.passed
                else ("[yellow]WARN[/]" if check.severity == "WARN" else "[red]FAILED[/]")
            )
            checks.add_row(check.asset, check.check, result, check.observed)
        console.print(checks)
    for problem in outcome.skipped:
        console.print(f"[yellow]skipped[/] {problem}", highlight=False)
    for note in outcome.notes:
        console.print(f"[yellow]note[/] {note}", highlight=False)
    if not outcome.success:
        _fail(f"run {outcome.run_id} failed: {outcome.failure}")


def _days(days: list[str], first: str | None, last: str | None) -> list[str]:
    """The days given one by one and the days from `first` to `last`, in order, each once."""
    import datetime as dt

    def parse(text: str, option: str) -> dt.date:
        try:
            return dt.date.fromisoformat(text)
        except ValueError as error:
            raise ValueError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from error

    wanted = {parse(d, "--day") for d in days}
    if (first is None) != (last is None):
        raise ValueError("give both --from and --to")
    if first is not None and last is not None:
        start, end = parse(first, "--from"), parse(last, "--to")
        if end < start:
            raise ValueError(f"--to {last} is before --from {first}")
        wanted |= {start + dt.timedelta(days=n) for n in range((end - start).days + 1)}
    return [d.isoformat() for d in sorted(wanted)]


@app.command()
def ddl(
    check: Annotated[
        bool, typer.Option(help="Fail if the file differs instead of writing.")
    ] = False,
    output: Annotated[Path, typer.Option(help="Where the T-SQL goes.")] = DDL_FILE,
) -> None:
    """Write the T-SQL DDL of the metadata store, generated from the schema in code."""
    from data_mesh.store.ddl import render_tsql_ddl

    text = render_tsql_ddl()
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            _fail(f"{output} is out of date: run `data-mesh ddl`")
        console.print(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    console.print(f"wrote {output}")


def _print_preview(frame: DataFrame, title: str, limit: int) -> None:
    """The first `limit` rows as a table; `title` may use {count} (all rows)."""
    rows = frame.limit(limit).collect()  # bounded by --limit: a preview, not the data
    view = Table(title=title.format(count=frame.count()))
    for column in frame.columns:
        view.add_column(column)
    for row in rows:
        view.add_row(*("" if v is None else str(v) for v in row))
    console.print(view)


@ddz_app.command("show")
def ddz_show(
    table: Annotated[str, typer.Argument(help="schema.table, e.g. ddz.SOR1_PAYMENTS")],
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 20,
) -> None:
    """Print the row count and the first rows of a DDZ table, without starting Spark (except
    for a DDZ reached only through the JVM: SQL Server without DATA_MESH_DDZ_AZURE_AUTH)."""
    from data_mesh.ddz.dialects import TableName
    from data_mesh.ddz.preview import preview_table
    from data_mesh.ddz.reader import read_ddz_table
    from data_mesh.resources.ddz_io_manager import connection_from_settings
    from data_mesh.resources.spark import spark_session

    if table.count(".") != 1:
        _fail(f"{table!r}: give the table as schema.table")
    schema_name, table_name = table.split(".")
    try:
        name = TableName(schema_name, table_name)
    except ValueError as error:
        _fail(str(error))
    settings = _settings()
    connection = connection_from_settings(settings)
    preview = preview_table(connection, name, limit, settings.jdbc_jars)
    if preview is None:  # a database only the JVM reaches (see data_mesh.ddz.preview)
        frame = read_ddz_table(spark_session(settings), connection, name)
        _print_preview(frame, f"{name}: {{count:,}} rows", limit)
        return
    view = Table(title=f"{name}: {preview.count:,} rows")
    for column in preview.columns:
        view.add_column(column)
    for row in preview.rows:
        view.add_row(*("" if v is None else v for v in row))
    console.print(view)


@config_app.command("show")
def config_show(
    env: Annotated[
        str | None, typer.Option(help="LOCAL, DEV, INT, QA or PROD (default: DATA_MESH_ENV).")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Resolve versions valid at this UTC time (ISO 8601).")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Print the settings and the configuration rows that apply in an environment; secrets
    are masked. Exit 1 when a setting the environment requires is missing."""
    from data_mesh.catalog.configuration import scoped_values
    from data_mesh.settings.view import settings_rows

    settings = _settings(url)
    if env is not None:
        try:
            settings = settings.model_copy(update={"env": Environment(env.upper())})
        except ValueError:
            _fail(f"unknown environment {env!r} (LOCAL, DEV, INT, QA, PROD)")
    moment = dt.datetime.fromisoformat(at) if at else None
    view = Table(title=f"settings ({settings.env})")
    for column in ("setting", "value"):
        view.add_column(column)
    for name, setting in settings_rows(settings):
        view.add_row(name, setting)
    missing = settings.missing_settings()
    if missing:
        # Without them the store, DDZ and lake read would be LOCAL's: nothing more to show.
        console.print(view)
        for name, what in missing.items():
            console.print(f"[red]missing[/] {name}: {what}", highlight=False)
        _fail(
            f"{len(missing)} required setting(s) missing for {settings.env}: {', '.join(missing)}"
        )
    catalog = _catalog_at(settings, moment)
    console.print(view)
    rows = Table(title=f"configuration ({settings.env}, valid {moment or 'now'})")
    for column in ("scope", "key", "value", "from"):
        rows.add_column(column)
    shown: set[tuple[str, str]] = set()
    scopes = [(None, None), *sorted((p.name, d.name) for p in catalog.products for d in p.datasets)]
    for product, dataset in scopes:
        values = scoped_values(catalog.configuration, settings.env, dataset, product)
        for key, value in sorted(values.items()):
            if (value.category, key) not in shown:  # each row once, under its own scope
                shown.add((value.category, key))
                rows.add_row(value.category, key, value.shown, value.source)
    console.print(rows)
    for message in catalog.configuration_problems:
        console.print(f"[red]config[/]  {message}", highlight=False)


def _catalog_at(settings: Settings, at: dt.datetime | None) -> Catalog:
    from data_mesh.catalog.current import read_catalog

    return read_catalog(settings, at)


def _mark_dead_runs(instance: DagsterInstance, settings: Settings) -> list[MarkedRun]:
    """Mark the runs whose process is gone as failed, saying so. Runs launched from the UI are
    recognised by their run worker's pid only on a LOCAL instance (its workers run here)."""
    from data_mesh.runs.liveness import fail_runs_of_dead_processes

    marked = fail_runs_of_dead_processes(
        instance, trust_run_worker_event=settings.env == Environment.LOCAL
    )
    for run in marked:
        err.print(
            f"[yellow]run {run.run_id[:8]} ({run.job_name}) marked {run.status.value}[/]: "
            f"{run.message}",
            highlight=False,
        )
    return marked


def _print_dagster_runs(settings: Settings, last: int) -> None:
    """The latest runs of the LOCAL Dagster instance, after marking those of dead processes."""

    from data_mesh.runs.dagster_home import dagster_home_in_use, open_instance

    home = dagster_home_in_use(settings)
    if not home.is_dir():
        return  # nothing ran yet
    with open_instance(home) as instance:
        _mark_dead_runs(instance, settings)
        records = instance.get_run_records(limit=last)
    view = Table(title=f"Dagster runs ({home})")
    for column in ("created (UTC)", "run", "job", "status", "seconds"):
        view.add_column(column, justify="right" if column == "seconds" else "left")
    colors = {"SUCCESS": "green", "FAILURE": "red", "CANCELED": "red", "STARTED": "yellow"}
    for record in records:
        run = record.dagster_run
        status = run.status.value
        seconds = (
            f"{record.end_time - record.start_time:.1f}"
            if record.start_time is not None and record.end_time is not None
            else ""
        )
        view.add_row(
            f"{record.create_timestamp:%Y-%m-%d %H:%M:%S}",
            run.run_id[:8],
            run.job_name,
            f"[{colors.get(status, 'white')}]{status}[/]",
            seconds,
        )
    console.print(view)


@app.command()
def runs(
    last: Annotated[int, typer.Option(help="How many runs and audit rows, newest first.")] = 20,
    url: UrlOption = None,
) -> None:
    """Print the latest Dagster runs (LOCAL: runs whose process is gone are marked failed
    first) and the latest rows of the audit log: every materialization and every failure."""
    from data_mesh.store.audit import latest_audit

    settings = _settings(url)
    if settings.env == Environment.LOCAL:
        _print_dagster_runs(settings, last)
    with ready_store_engine(settings) as engine:
        rows = latest_audit(engine, last)
    view = Table(title="audit log")
    for column in ("loaded (UTC)", "asset", "table", "status", "rows", "seconds", "run", "by"):
        view.add_column(column, justify="right" if column in ("rows", "seconds") else "left")
    for row in rows:
        status = {"SUCCESS": "[green]SUCCESS[/]"}.get(row.Status, f"[red]{row.Status}[/]")
        view.add_row(
            f"{row.LoadTimestamp:%Y-%m-%d %H:%M:%S}",
            row.AssetKey,
            row.SourceTable,
            status,
            "" if row.RowCount is None else f"{row.RowCount:,}",
            f"{row.ProcessingTime:.1f}",
            row.JobRunID[:8],
            row.ProcessedBy,
        )
    console.print(view)
    for row in rows:
        if row.ErrorDetails:
            console.print(f"[red]{row.AssetKey}[/] ({row.JobRunID[:8]}): {row.ErrorDetails}")


@quality_app.command("history")
def quality_history(
    rule: Annotated[str | None, typer.Option(help="Only this rule (by name).")] = None,
    last: Annotated[int, typer.Option(help="How many results, newest first.")] = 20,
    url: UrlOption = None,
) -> None:
    """Print the latest quality rule results from the metadata store (one row per rule per run)."""
    from data_mesh.store.quality_results import latest_quality_results

    with ready_store_engine(_settings(url)) as engine:
        rows = latest_quality_results(engine, last, rule)
    view = Table(title="quality results")
    for column in ("evaluated (UTC)", "dataset", "rule", "result", "failing", "observed", "run"):
        view.add_column(column, justify="right" if column == "failing" else "left")
    for row in rows:
        result = "[green]passed[/]" if row.Passed else f"[red]{row.Severity}[/]"
        failing = "" if row.FailingRows is None else f"{row.FailingRows:,}"
        view.add_row(
            f"{row.EvaluatedAt:%Y-%m-%d %H:%M:%S}",
            row.DataSetName,
            row.RuleName,
            result,
            failing,
            row.Observed,
            row.RunID[:8],
        )
    console.print(view)


@quality_app.command("quarantine")
def quality_quarantine(
    dataset: Annotated[str, typer.Argument(help="The DataSet name, e.g. customer_orders.")],
    load_id: Annotated[str | None, typer.Option(help="One load (run id); default: all.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 20,
) -> None:
    """Print quarantined rows of a DataSet, with the rule and the reason that rejected them."""
    from data_mesh.catalog.current import lake_storage, load_catalog
    from data_mesh.cli.profile_data import find_dataset
    from data_mesh.quality.quarantine import quarantine_folder, quarantine_path
    from data_mesh.resources.spark import spark_session

    settings = _settings()
    found, _ = find_dataset(load_catalog(settings), dataset)
    path = quarantine_path(found, load_id) if load_id else quarantine_folder(found)
    storage = lake_storage(settings)
    if not storage.exists(path):
        _fail(f"nothing quarantined for {dataset} at {path}")
    frame = spark_session(settings).read.parquet(storage.spark_uri(path))
    frame = frame.drop("load_id")  # the folder name, read back as a column; dq_load_id has it
    _print_preview(frame, f"{path}: {{count:,}} quarantined rows", limit)


@quality_app.command("profile")
def quality_profile(
    dataset: Annotated[str, typer.Argument(help="The DataSet name, e.g. sor1_payments.")],
    computed: Annotated[
        bool,
        typer.Option(
            "--computed/--table",
            help="A DDZ DataSet: profile its transformation's output (nothing written) "
            "instead of its table.",
        ),
    ] = False,
    day: Annotated[
        str | None, typer.Option(help="Only this day of a daily-partitioned input.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Where the suggested rules go [default: <dataset>.suggested.yaml]."),
    ] = None,
    record: Annotated[
        bool, typer.Option(help="Keep the profile as metric history in the store.")
    ] = False,
) -> None:
    """Profile a DataSet in one pass (nulls, distinct values, min/max, lengths, values of small
    domains, formats) and write suggested quality rules, with their evidence, to a file to
    review: nothing is applied."""
    import uuid

    from rich.markup import escape

    from data_mesh.catalog.current import lake_storage, load_catalog
    from data_mesh.cli.profile_data import profiled_rows
    from data_mesh.quality.history import metric_rows
    from data_mesh.quality.profile import (
        profile_frame,
        suggest_rules,
        suggestions_yaml,
        verified_suggestions,
    )
    from data_mesh.resources.spark import spark_session
    from data_mesh.store.metrics import record_metrics

    settings = _settings()
    catalog = load_catalog(settings)
    storage = lake_storage(settings)
    spark = spark_session(settings)
    rows = profiled_rows(spark, settings, storage, catalog, dataset, computed, day)
    found, frame, source = rows.dataset, rows.frame, rows.source
    if record and found.partition is not None and day is None:
        _fail(f"{found.name} is daily: give --day to keep a day's profile as its history")
    profile = profile_frame(frame, found.name, pii_columns=rows.pii_columns)
    view = Table(title=f"{found.name}: {profile.rows:,} rows of {source}")
    headings = ("column", "type", "nulls", "distinct (approx)", "min", "max", "length", "format")
    for heading in headings:
        view.add_column(heading, justify="right" if heading in headings[2:4] else "left")
    for column in profile.columns:
        length = "" if column.min_length is None else f"{column.min_length}-{column.max_length}"
        values = ", ".join(f"{v} ({c:,})" for v, c in column.values)
        shown = values or column.format or ""
        cells = [
            column.name,
            column.type,
            f"{column.null_share:.1%}" if column.null_share is not None else "",
            "" if column.distinct is None else f"{column.distinct:,}",
            "(personal data)" if column.pii else str(_blank(column.minimum)),
            "" if column.pii else str(_blank(column.maximum)),
            length,
            shown,
        ]
        view.add_row(*[escape(cell) for cell in cells])
    console.print(view)
    checked = verified_suggestions(spark, frame, found, suggest_rules(profile))
    for suggestion, observed in checked.rejected:
        console.print(f"[yellow]not suggested[/] {suggestion.name}: {observed}", highlight=False)
    target = output or Path(f"{found.name}.suggested.yaml")
    target.write_text(suggestions_yaml(found.name, profile, checked.kept, source))
    console.print(
        f"{len(checked.kept)} suggested rules written to {target}; review them and copy "
        "the ones you want into the product's product.yaml",
        highlight=False,
    )
    if record:
        history = metric_rows(found, profile.metrics(), f"profile-{uuid.uuid4()}", day)
        with ready_store_engine(settings) as engine:
            record_metrics(engine, history)
        console.print(f"{len(history)} metrics kept as history of {found.name}", highlight=False)


@app.command()
def plan(
    product: Annotated[str, typer.Argument(help="The data product, e.g. sor1_payments.")],
    day: Annotated[
        str | None, typer.Option(help="The day (YYYY-MM-DD) of daily-partitioned inputs.")
    ] = None,
    db_tier: Annotated[
        str, typer.Option(help="Azure SQL tier: general_purpose, business_critical, hyperscale.")
    ] = "general_purpose",
    db_vcores: Annotated[int, typer.Option(help="vCores of the DDZ database.")] = 2,
    check: Annotated[
        bool,
        typer.Option(
            help="Run each transformation over lake inputs with the planned partitions (nothing "
            "written) and print what Spark measured: spill and the most memory a task used."
        ),
    ] = False,
) -> None:
    """Estimate the Spark resources (executors, cores, memory, shuffle partitions) and the DDZ
    chunks and connections a run of the product needs, from its inputs' sizes in the lake, its
    transformations' joins and aggregations and its run history; print the reasoning and the
    settings to paste."""
    import json

    from data_mesh.catalog.current import lake_storage, load_catalog
    from data_mesh.component.specs import dataset_asset_key
    from data_mesh.planning.check import run_with_plan
    from data_mesh.planning.gather import plan_transformation
    from data_mesh.planning.plan import DatabaseTier
    from data_mesh.resources.spark import spark_session

    if db_tier not in ("general_purpose", "business_critical", "hyperscale"):
        _fail(f"--db-tier {db_tier!r}: general_purpose, business_critical or hyperscale")
    settings = _settings()
    catalog = load_catalog(settings)
    known = {p.name: p for p in catalog.products}
    if product not in known:
        _fail(f"unknown data product {product!r} (known: {', '.join(sorted(known))})")
    storage = lake_storage(settings)
    tier = DatabaseTier(db_tier, db_vcores)  # type: ignore[arg-type]
    with ready_store_engine(settings) as engine:
        for transformation in known[product].transformations:
            inputs, result = plan_transformation(
                transformation,
                storage,
                engine,
                day,
                tier,
                lambda d: dataset_asset_key(d).to_user_string(),
            )
            view = Table(title=f"{transformation.name} -> {transformation.output.name}")
            for heading in ("setting", "value", "why"):
                view.add_column(heading)
            for size in inputs:
                view.add_row(f"input {size.name}", f"{size.bytes:,} B", size.source)
            for decision in result.decisions:
                view.add_row(decision.setting, decision.value, decision.why)
            console.print(view)
            spark_config = json.dumps(result.spark_config())
            console.print(
                f"spark_config for {transformation.name}: {spark_config}", highlight=False
            )
            cluster = " ".join(f"--conf {k}={v}" for k, v in result.cluster_config().items())
            console.print(f"cluster (spark-submit or Databricks): {cluster}", highlight=False)
            if check and all(d.layer == "CDZ" for d in transformation.inputs):
                run = run_with_plan(spark_session(settings), storage, transformation, result, day)
                peak, memory, disk = (
                    n / 1024 / 1024
                    for n in (run.peak_task_memory, run.memory_spilled, run.disk_spilled)
                )
                console.print(
                    f"measured: the most execution memory a task used {peak:.1f} MiB (planned "
                    f"{result.task_memory_mb} MiB a task); spilled {memory:.1f} MiB in memory, "
                    f"{disk:.1f} MiB on disk; {run.tasks} tasks",
                    highlight=False,
                )


def _blank(value: object) -> object:
    return "" if value is None else value


# How often `data-mesh dev` looks for runs whose process is gone.
DEV_RUN_CHECK_SECONDS = 10.0


@app.command()
def dev(
    port: Annotated[int, typer.Option(help="Port of the Dagster UI.")] = 3000,
) -> None:
    """Run `dg dev` on this project with the LOCAL Dagster home (runs of the CLI show up);
    while it runs, runs whose process was killed are marked failed within seconds."""
    from data_mesh.runs.dagster_home import prepare_dagster_home

    settings = _settings()
    # Always the LOCAL home (absolute), whatever DAGSTER_HOME says: the one the README names.
    home = prepare_dagster_home(settings.dagster_home, settings)
    # `dg dev` refreshes the state first: the UI starts from the store as it is now, and run
    # workers read that same state.
    from data_mesh.component.project import project_root

    dg_command = Path(sys.executable).with_name("dg")
    code = _supervise(
        [str(dg_command), "dev", "-p", str(port)],
        project_root(),
        home,
        settings,
        DEV_RUN_CHECK_SECONDS,
    )
    raise typer.Exit(code)


def _supervise(command: list[str], cwd: Path, home: Path, settings: Settings, every: float) -> int:
    """Run `command` (dg dev) and, until it exits, mark the runs of dead processes failed
    every `every` seconds: the DefaultRunLauncher's run monitoring cannot (data_mesh.runs.liveness).

    Ctrl-C reaches dg dev from the terminal (same process group) and this process waits
    for it to shut down; SIGTERM and SIGHUP sent to this process are passed on to it."""
    import signal
    import subprocess
    import threading

    from data_mesh.runs.dagster_home import open_instance

    # dg dev runs in the project folder: the home this command resolved, whatever the folder.
    environment = {**os.environ, "DATA_MESH_HOME": str(settings.home_dir)}
    child = subprocess.Popen(command, cwd=cwd, env=environment)
    stop = threading.Event()

    def watch() -> None:
        reported: set[str] = set()
        while not stop.wait(every):
            try:
                with open_instance(home) as instance:
                    _mark_dead_runs(instance, settings)
            except Exception as error:  # never stop the UI over a failed look
                text = f"{type(error).__name__}: {error}"
                if text not in reported:
                    reported.add(text)
                    err.print(f"[yellow]could not check runs:[/] {text}", highlight=False)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGINT, lambda _signum, _frame: None)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGHUP, forward)
    watcher = threading.Thread(target=watch, name="run-liveness", daemon=True)
    watcher.start()
    try:
        code = child.wait()
    finally:
        stop.set()
        watcher.join(timeout=30)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    app()
