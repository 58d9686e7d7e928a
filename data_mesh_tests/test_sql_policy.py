"""Metadata SQL is untrusted input: the allow-list of `sql_policy`, enforced by `data-mesh load`
before anything is stored and by `data-mesh validate` for rows already in the store."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner, Result

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.catalog.errors import QueryFileError
from data_mesh.catalog.sql_policy import (
    ALLOWED_FUNCTIONS,
    DENIED_FUNCTIONS,
    Slot,
    UnsafeSqlError,
    check_query,
    check_sql,
)
from data_mesh.cli.app import app
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh.store.rows import SNAPSHOT_TABLES, read_store
from data_mesh.transforms.properties import plan_sequence
from data_mesh_tests.conftest import SAMPLE_PRODUCTS

SECRET = "reflect('java.lang.System', 'getenv', 'DATA_MESH_DDZ_PASSWORD')"
CYRILLIC_E = "\u0415"  # looks like the Latin E

# A small product of its own: a lake input, one transformation, one rule on its output.
PRODUCT: dict[str, Any] = {
    "name": "guarded",
    "domain": "guard",
    "sources": [
        {
            "name": "guard_cdz",
            "type": "lake",
            "connection": "lake://cdz/guard_cdz",
            "format": "parquet",
        },
        {
            "name": "ddz",
            "type": "ddz",
            "connection": "env:DATA_MESH_DDZ_JDBC_URL",
            "format": "table",
        },
    ],
    "datasets": [
        {
            "name": "guard_orders",
            "source": "guard_cdz",
            "layer": "CDZ",
            "location": "cdz/guard_cdz/orders",
        },
        {"name": "guard_out", "source": "ddz", "layer": "DDZ", "target_table": "GUARD_OUT"},
    ],
    "transformations": [
        {
            "name": "guard_transform",
            "type": "select",
            "inputs": ["guard_orders"],
            "output": "guard_out",
            "configuration": {"input_dataset": "guard_orders", "columns": ["order_id", "amount"]},
        }
    ],
    "quality_rules": [
        {
            "name": "guard_rule",
            "dataset": "guard_out",
            "type": "expression",
            "configuration": {"expression": "amount >= 0"},
        }
    ],
}
QUERY_FOLDER = "queries/guarded"
GOOD_QUERIES = (
    "df_orders = select * from guard_cdz.guard_orders\n"
    "df_out = select order_id, amount from df_orders\n"
)
SEQUENCE = "df_orders\ndf_out\n"


def _as_sequence(product: dict[str, Any]) -> None:
    product["transformations"][0].update(
        type="properties_sequence",
        configuration={"folder": "guarded", "que_name": "q", "seq_name": "s"},
    )


def _write_product(
    folder: Path, product: dict[str, Any], queries: str | None = None
) -> tuple[Path, Result]:
    """Write the product (and its query files when given) under `folder`, then `data-mesh
    load` it."""
    path = folder / "guarded" / "product.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(product, allow_unicode=True), encoding="utf-8")
    if queries is not None:
        query_folder = path.parent / QUERY_FOLDER
        query_folder.mkdir(parents=True, exist_ok=True)
        (query_folder / "q.properties").write_text(queries, encoding="utf-8")
        (query_folder / "s.properties").write_text(SEQUENCE, encoding="utf-8")
    return path, CliRunner().invoke(app, ["load", str(path.parent)])


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.resolved_metadata_url)


def _guarded_rows(engine: Engine) -> list[str]:
    """Every row of the store that belongs to the `guarded` product, by name."""
    found = []
    with engine.connect() as connection:
        for table in (
            schema.data_products,
            schema.data_sources,
            schema.data_sets,
            schema.transformations,
            schema.data_quality_rules,
        ):
            names = connection.execute(select(table.c.Name)).scalars()
            found += [f"{table.name}.{n}" for n in names if n.startswith(("guard", "GUARD"))]
    return found


# --- Every Spark function is classified ---------------------------------------------------


def test_every_spark_function_is_allowed_or_denied(spark: Any) -> None:
    """Fails after a Spark upgrade until its new functions are classified in sql_policy."""
    names = {row[0] for row in spark.sql("SHOW FUNCTIONS").collect()}
    callable_names = {n for n in names if re.fullmatch(r"[a-z_][a-z0-9_]*", n)}
    assert len(callable_names) > 500
    unclassified = sorted(callable_names - ALLOWED_FUNCTIONS - set(DENIED_FUNCTIONS))
    assert unclassified == [], f"classify these Spark functions in sql_policy: {unclassified}"
    assert not ALLOWED_FUNCTIONS & set(DENIED_FUNCTIONS)
    # Nothing is allowed that Spark does not have (a UDF could take that name), but syntax.
    assert ALLOWED_FUNCTIONS - names == {"try_cast"}
    assert {"reflect", "java_method", "try_reflect"} <= set(DENIED_FUNCTIONS)


# --- The policy itself ----------------------------------------------------------------------

ACCEPTED = [
    (Slot.EXPRESSION, "status = 'COMPLETED' and amount > 0"),
    (Slot.EXPRESSION, "order_date >= DATE'2026-02-01'"),
    (Slot.EXPRESSION, "count(distinct customer_id)"),
    (Slot.EXPRESSION, "count_if(active_ind = 'Y')"),
    (Slot.EXPRESSION, "a.customer_id = b.customer_id"),
    (Slot.EXPRESSION, "exists(tags, t -> t = 'x') and nvl(amount, 0) > 0"),
    (Slot.NAMED_EXPRESSION, "upper(name) as name"),
    (Slot.NAMED_EXPRESSION, "*"),
    (Slot.QUERY, "select * from t lateral view explode(arr) e as v"),
    (Slot.QUERY, "select * from range(3)"),
    (Slot.QUERY, "select 'Zoë -- not a comment' as s, cast(a as decimal(18,2)), a::int from t"),
    (Slot.QUERY, "select row_number() over (partition by a order by b) as rn from t;"),
    (Slot.QUERY, "select identifier, reflect from t"),  # columns named like denied functions
    (Slot.QUERY, "select a from t where a in (select a from t) union all select 1"),
]


@pytest.mark.parametrize(("slot", "text"), ACCEPTED)
def test_ordinary_spark_sql_is_accepted(slot: Slot, text: str) -> None:
    check_sql(text, slot)


REFUSED = [
    (Slot.NAMED_EXPRESSION, SECRET, "function reflect() is not allowed"),
    (Slot.NAMED_EXPRESSION, "JAVA_METHOD('java.lang.System', 'getenv', 'X')", "java_method()"),
    (Slot.NAMED_EXPRESSION, "`try_reflect`('java.lang.System', 'getenv', 'X')", "try_reflect()"),
    (Slot.NAMED_EXPRESSION, "system.builtin.upper(name)", "qualified function name"),
    (Slot.NAMED_EXPRESSION, "my_udf(name)", "not an allowed Spark built-in"),
    (Slot.NAMED_EXPRESSION, "convert(int, a)", "not an allowed Spark built-in"),
    (Slot.EXPRESSION, "from_protobuf(b, 'P', '/etc/passwd')", "descriptor file"),
    (Slot.EXPRESSION, "country = 'DE'; drop table x", "more than one SQL statement"),
    (Slot.EXPRESSION, "amount > 0 --", "a SQL comment"),
    (Slot.EXPRESSION, "amount > 0 /* note */", "a SQL comment"),
    (Slot.EXPRESSION, "amount < (select max(amount) from t)", "a subquery"),
    (Slot.EXPRESSION, "exists (select 1 from t)", "a subquery"),
    (Slot.EXPRESSION, "1 from t", "not a single expression"),
    (Slot.EXPRESSION, "amount as a", "no alias"),
    (Slot.EXPRESSION, f"COUNTRY_COD{CYRILLIC_E} = 'DE'", "non-ASCII"),
    (Slot.EXPRESSION, "amount >", "not Spark SQL that data_mesh can check"),
    (Slot.QUERY, "select * from parquet.`/etc/passwd`", "a direct file query"),
    (Slot.QUERY, "select * from read_files('/etc')", "read_files()"),
    (Slot.QUERY, "select * from identifier('t')", "IDENTIFIER"),
    (Slot.QUERY, "select * from sql_keywords()", "table-valued function sql_keywords()"),
    (Slot.QUERY, "select transform(a) using 'cat' as (b) from t", "TRANSFORM ... USING"),
    (Slot.QUERY, "select /*+ REPARTITION(3) */ * from t", "optimizer hint"),
    (Slot.QUERY, "drop table t", "found a DROP statement"),
    (Slot.QUERY, "execute immediate 'drop table t'", "only queries"),
    # Spark reads r'\' as a raw string: the call between the two is code, and found.
    (Slot.QUERY, "select r'\\', reflect('a', 'b'), r'\\'", "reflect()"),
]


@pytest.mark.parametrize(("slot", "text", "fragment"), REFUSED)
def test_unsafe_sql_is_refused_naming_the_problem_and_the_sql(
    slot: Slot, text: str, fragment: str
) -> None:
    with pytest.raises(UnsafeSqlError) as error:
        check_sql(text, slot)
    assert fragment in str(error.value)
    assert " in '" in str(error.value) or ' in "' in str(error.value)  # the SQL is quoted


def test_tables_are_inputs_or_ctes_in_scope() -> None:
    check_query("with x as (select * from orders) select * from x join Orders o", ["orders"], "")
    check_query("select * from SRC.Orders", ["src.orders"], "")
    with pytest.raises(UnsafeSqlError, match="reads table 'secret', which is not an input"):
        check_query("select * from orders join secret", ["orders"], "an input")
    # Inside a CTE only the CTEs before it are visible: a later one would be a real table.
    with pytest.raises(UnsafeSqlError, match="reads table 'b'"):
        check_query("with a as (select * from b), b as (select 1) select * from a", [], "")
    with pytest.raises(UnsafeSqlError, match="reads table 'x'"):
        check_query("select * from (with x as (select 1) select * from x) join x", [], "")


def test_query_file_statements_read_inputs_and_earlier_statements_only() -> None:
    queries = "a = select * from src.t\nb = select * from a\nc = select * from b\n"
    plan = plan_sequence(queries, "q", "a\nb\nc\n", "s", ["src.t"])
    assert [s.name for s in plan.statements] == ["a", "b", "c"]
    # The sequence's order counts, not the file's.
    plan_sequence("a = select * from b\nb = select 1\n", "q", "b\na\n", "s", [])
    with pytest.raises(QueryFileError, match=r"q:1: statement 'a': reads table 'b'"):
        plan_sequence("a = select * from b\nb = select 1\n", "q", "a\nb\n", "s", [])
    with pytest.raises(QueryFileError, match=r"q:2: statement 'b': reads table 'secret'"):
        plan_sequence("a = select 1\nb = select * from secret\n", "q", "a\nb\n", "s", ["src.t"])
    # A statement the sequence does not run is checked too.
    with pytest.raises(QueryFileError, match=r"q:2: statement 'unused': function reflect\(\)"):
        plan_sequence(f"a = select 1\nunused = select {SECRET}\n", "q", "a\n", "s", [])


# --- data-mesh load refuses, before anything is stored --------------------------------------


@pytest.mark.parametrize("function", ["reflect", "java_method"])
def test_reflect_and_java_method_columns_are_refused_at_load_with_no_row_written(
    store: Engine, tmp_path: Path, function: str
) -> None:
    product = copy.deepcopy(PRODUCT)
    column = f"{function}('java.lang.System', 'getenv', 'DATA_MESH_DDZ_PASSWORD') as leaked"
    product["transformations"][0]["configuration"]["columns"].append(column)
    path, result = _write_product(tmp_path, product)
    assert result.exit_code == 1
    output = result.output.replace("\n", "")
    assert str(path) in output
    assert "transformation 'guard_transform'" in output
    assert f"function {function}() is not allowed" in output
    snapshot = read_store(store)
    assert {name: getattr(snapshot, name) for name in SNAPSHOT_TABLES} == {
        name: [] for name in SNAPSHOT_TABLES
    }


def _transformation(type_: str, configuration: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(product: dict[str, Any]) -> None:
        product["transformations"][0].update(type=type_, configuration=configuration)

    return change


def _rule(configuration: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def change(product: dict[str, Any]) -> None:
        product["quality_rules"][0]["configuration"] = configuration

    return change


def _target_table(value: str) -> Callable[[dict[str, Any]], None]:
    def change(product: dict[str, Any]) -> None:
        product["datasets"][1]["target_table"] = value

    return change


ROW_CASES = {
    "select_reflect": (
        _transformation(
            "select", {"input_dataset": "guard_orders", "columns": ["order_id", SECRET]}
        ),
        ["transformation 'guard_transform'", "function reflect() is not allowed"],
    ),
    "filter_with_drop_table": (
        _transformation(
            "filter", {"input_dataset": "guard_orders", "condition": "country = 'DE'; drop table x"}
        ),
        ["transformation 'guard_transform'", "more than one SQL statement", "drop table x"],
    ),
    "expression_ending_in_a_comment": (
        _rule({"expression": "amount >= 0 --"}),
        ["guard_rule", "a SQL comment", "'--'"],
    ),
    "subquery_in_a_rule_expression": (
        _rule({"expression": "amount <= (select max(amount) from sor1_payments)"}),
        ["guard_rule", "a subquery"],
    ),
    "sql_reading_a_table_that_is_no_input": (
        _transformation("sql", {"query": "select * from guard_cdz.guard_orders join ddz_secret"}),
        ["guard_transform", "reads table 'ddz_secret', which is not an input"],
    ),
    "custom_sql_reading_another_table": (
        _rule({"query": "select * from sor1_payments"}),
        ["guard_rule", "reads table 'sor1_payments', which is not the checked DataSet"],
    ),
    "cyrillic_look_alike_target_table": (
        _target_table(f"GUARD_OUT{CYRILLIC_E}"),
        ["(guard_out)", "TargetTable", "is not a safe identifier"],
    ),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_unsafe_rows_are_refused_at_load(loaded: Settings, tmp_path: Path, case: str) -> None:
    change, fragments = ROW_CASES[case]
    product = copy.deepcopy(PRODUCT)
    if case == "custom_sql_reading_another_table":
        product["quality_rules"][0]["type"] = "custom_sql"
    change(product)
    path, result = _write_product(tmp_path, product)
    assert result.exit_code == 1, result.output
    output = result.output.replace("\n", "")
    assert str(path) in output
    for fragment in fragments:
        assert fragment in output
    assert _guarded_rows(_engine(loaded)) == []


QUERY_FILE_CASES = {
    "statement_with_reflect": (
        f"df_orders = select {SECRET} as leaked from guard_cdz.guard_orders\n"
        "df_out = select * from df_orders\n",
        ["q.properties:1: statement 'df_orders'", "function reflect() is not allowed"],
    ),
    "statement_reading_a_table_that_is_no_input": (
        "df_orders = select * from guard_cdz.guard_orders\n"
        "df_out = select * from df_orders join sor1_payments\n",
        ["q.properties:2: statement 'df_out'", "reads table 'sor1_payments'"],
    ),
}


@pytest.mark.parametrize("case", list(QUERY_FILE_CASES))
def test_unsafe_query_files_are_refused_at_load(
    loaded: Settings, tmp_path: Path, case: str
) -> None:
    queries, fragments = QUERY_FILE_CASES[case]
    product = copy.deepcopy(PRODUCT)
    _as_sequence(product)
    path, result = _write_product(tmp_path, product, queries)
    assert result.exit_code == 1, result.output
    output = result.output.replace("\n", "")
    assert str(path) in output and "transformation 'guard_transform'" in output
    for fragment in fragments:
        assert fragment in output
    assert _guarded_rows(_engine(loaded)) == []
    assert not lake_storage(loaded).exists(f"{QUERY_FOLDER}/q.properties")  # not published


# --- data-mesh validate refuses the same rows already in the store --------------------------


def _assert_guarded_broken(settings: Settings, fragments: list[str]) -> None:
    catalog = load_catalog(settings)
    assert [p.product for p in catalog.problems] == ["guarded"]
    for fragment in fragments:
        assert fragment in catalog.problems[0].message
    assert {p.name for p in catalog.products} == {
        "sor1_payments",
        "customer_orders",
        "mdm_accounts",
    }
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "broken" in result.output and "guarded" in result.output


def _store_rows_as(engine: Engine, product: dict[str, Any]) -> None:
    """Write the rows of `product` that the cases change straight into the store, as a hand
    edit (or an older data-mesh) would have."""
    transformation = product["transformations"][0]
    rule = product["quality_rules"][0]
    with engine.begin() as connection:
        table = schema.transformations
        connection.execute(
            update(table)
            .where(table.c.Name == "guard_transform")
            .values(
                Type=transformation["type"],
                Configuration=json.dumps(transformation["configuration"]),
            )
        )
        table = schema.data_quality_rules
        connection.execute(
            update(table)
            .where(table.c.Name == "guard_rule")
            .values(Type=rule["type"], Configuration=json.dumps(rule["configuration"]))
        )
        table = schema.data_sets
        connection.execute(
            update(table)
            .where(table.c.Name == "guard_out")
            .values(TargetTable=product["datasets"][1]["target_table"])
        )


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_unsafe_rows_in_the_store_are_refused_by_validate(
    loaded: Settings, tmp_path: Path, case: str
) -> None:
    assert _write_product(tmp_path, PRODUCT)[1].exit_code == 0
    assert load_catalog(loaded).problems == []
    change, fragments = ROW_CASES[case]
    product = copy.deepcopy(PRODUCT)
    if case == "custom_sql_reading_another_table":
        product["quality_rules"][0]["type"] = "custom_sql"
    change(product)
    _store_rows_as(_engine(loaded), product)
    # The store names rows by id: the file's names become "row N (name)".
    _assert_guarded_broken(loaded, [f for f in fragments if "'guard_" not in f])


@pytest.mark.parametrize("case", list(QUERY_FILE_CASES))
def test_unsafe_query_files_in_the_lake_are_refused_by_validate(
    loaded: Settings, tmp_path: Path, case: str
) -> None:
    product = copy.deepcopy(PRODUCT)
    _as_sequence(product)
    assert _write_product(tmp_path, product, GOOD_QUERIES)[1].exit_code == 0
    assert load_catalog(loaded).problems == []
    queries, fragments = QUERY_FILE_CASES[case]
    lake_storage(loaded).write_bytes(f"{QUERY_FOLDER}/q.properties", queries.encode())
    _assert_guarded_broken(loaded, ["transformation 'guard_transform'", *fragments])


def test_sample_products_pass_the_policy(store: Engine) -> None:
    from data_mesh.catalog.product_files import load_product_files

    assert [p.name for p in load_product_files(store, SAMPLE_PRODUCTS)] == [
        "customer_orders",
        "mdm_accounts",
        "sor1_payments",
    ]
