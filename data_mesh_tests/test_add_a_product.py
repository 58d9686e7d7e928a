"""README.md's "Add a data product", followed literally by a new user: a product in seed 000's
style (a four-statement query sequence over three CDZ tables, mapping and casts) in a folder of
its own, its CDZ Parquet where the README says, `init`, `load`, `validate`, `materialize`, and the
DDZ rows checked against the same logic in plain Python. Also what `load` refuses before
anything is stored (literal secrets, a statement outside the sequence, a table that is not an
input), and the README's claims about table names and shared sources.

Tables that are neither an input nor an earlier statement (issue 17, item 7) are tested in
test_sql_policy.py (`statement_reading_a_table_that_is_no_input`, at load and at validate)."""

from __future__ import annotations

import copy
import re
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.cli.app import app
from data_mesh.ddz.connection import DdzConnection
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import REPO, cli_env, ddz_rows, run_cli
from data_mesh_tests.test_sql_policy import (
    GOOD_QUERIES,
    PRODUCT,
    QUERY_FOLDER,
    _as_sequence,
    _guarded_rows,
    _write_product,
)

# --- The product, written as README.md's "Add a data product" says ---------------------------


def _readme_blocks() -> list[str]:
    """The fenced code blocks of README.md's "Add a data product", dedented, in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Add a data product", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"(?ms)^( *)```\w+\n(.*?)^\1```$", section)
    return [textwrap.dedent(body) for _, body in blocks]


# The product file, query file and sequence file exactly as the README shows them.
PRODUCT_YAML, QUERIES, SEQUENCE = _readme_blocks()

CUSTOMERS = {"customer_id": [1, 2, 3], "country": ["de", "fr", "it"]}
# Two files in the orders folder; order 14 has no product, order 15 no customer, 16 no quantity.
ORDERS = [
    {"order_id": [10, 11, 12], "customer_id": [1, 2, 1], "product_id": [100, 101, 102]},
    {"order_id": [13, 14, 15, 16], "customer_id": [3, 2, 9, 1], "product_id": [100, 999, 101, 102]},
]
QUANTITIES = [[2, 1, 4], [3, 5, 1, 0]]
PRODUCTS = {
    "product_id": [100, 101, 102],
    "product_name": ["pen", "book", "lamp"],
    "unit_price": [2.5, 10.25, 19.75],
}


def _write_product_folder(folder: Path) -> Path:
    """`<folder>/shop_sales/product.yaml` and its query files under `queries/shop_sales/`."""
    product = folder / "shop_sales"
    queries = product / "queries" / "shop_sales"
    queries.mkdir(parents=True)
    (product / "product.yaml").write_text(PRODUCT_YAML, encoding="utf-8")
    (queries / "shop_sales_query.properties").write_text(QUERIES, encoding="utf-8")
    (queries / "shop_sales_sequence.properties").write_text(SEQUENCE, encoding="utf-8")
    return product


def _write_cdz(lake: Path) -> None:
    """The CDZ Parquet under the lake folder at each DataSet's `location`: a file, or a folder
    of files."""
    cdz = lake / "cdz" / "shop_cdz"
    (cdz / "sales_orders").mkdir(parents=True)
    (cdz / "articles").mkdir()
    pq.write_table(pa.table(CUSTOMERS), cdz / "clients.parquet")
    for index, (orders, quantities) in enumerate(zip(ORDERS, QUANTITIES, strict=True)):
        table = pa.table({**orders, "quantity": pa.array(quantities, pa.int32())})
        pq.write_table(table, cdz / "sales_orders" / f"part-{index}.parquet")
    pq.write_table(pa.table(PRODUCTS), cdz / "articles" / "part-0.parquet")


def _expected_rows() -> list[tuple[Any, ...]]:
    """The query sequence, mapping and casts in plain Python, on the same input."""
    countries = dict(zip(CUSTOMERS["customer_id"], CUSTOMERS["country"], strict=True))
    products = {
        pid: (name, price)
        for pid, name, price in zip(
            PRODUCTS["product_id"], PRODUCTS["product_name"], PRODUCTS["unit_price"], strict=True
        )
    }
    rows = []
    for orders, quantities in zip(ORDERS, QUANTITIES, strict=True):
        for order_id, customer_id, product_id, quantity in zip(
            orders["order_id"], orders["customer_id"], orders["product_id"], quantities, strict=True
        ):
            if quantity <= 0 or product_id not in products:
                continue
            name, price = products[product_id]
            country = countries.get(customer_id)
            amount = Decimal(str(quantity * price)).quantize(Decimal("0.01"))
            rows.append((order_id, country.upper() if country else None, name, amount))
    return sorted(rows)


@pytest.mark.slow
def test_a_product_added_as_the_readme_says_materializes_to_the_exact_rows(
    spark: Any, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = cli_env(home, COLUMNS="200")
    product = _write_product_folder(tmp_path / "products")
    run_cli(env, "init")
    _write_cdz(home / "lake")
    run_cli(env, "load", str(product))
    # `load` published the query files to the lake's `queries` container.
    published = home / "lake" / "queries" / "shop_sales" / "shop_sales_query.properties"
    assert published.read_text(encoding="utf-8") == QUERIES
    assert yaml.safe_load(PRODUCT_YAML)["transformations"][0]["configuration"]["casts"]
    assert re.search(r"(?m)^ok\s+shop_sales$", run_cli(env, "validate").stdout)
    run_cli(env, "materialize", "--product", "shop_sales")

    ddz = DdzConnection(f"jdbc:h2:file:{home / 'ddz' / 'ddz'};MODE=MSSQLServer;AUTO_SERVER=TRUE")
    columns = ddz_rows(
        spark,
        ddz,
        "SELECT COLUMN_NAME, DATA_TYPE FROM INFORMATION_SCHEMA.COLUMNS "
        "WHERE TABLE_SCHEMA = 'ddz' AND TABLE_NAME = 'SHOP_SALES' ORDER BY ORDINAL_POSITION",
    )
    assert [c[0] for c in columns] == ["ORDER_ID", "COUNTRY", "PRODUCT", "LINE_AMOUNT"]
    assert columns[0][1] == "BIGINT" and columns[3][1] in ("DECIMAL", "NUMERIC")
    rows = ddz_rows(
        spark,
        ddz,
        'SELECT "ORDER_ID", "COUNTRY", "PRODUCT", "LINE_AMOUNT" FROM "ddz"."SHOP_SALES" '
        'ORDER BY "ORDER_ID"',
    )
    expected = _expected_rows()
    assert [(int(r[0]), r[1], r[2], Decimal(str(r[3]))) for r in rows] == expected
    assert len(expected) == 5  # the joins and the filter each dropped a row

    shown = run_cli(env, "ddz", "show", "ddz.SHOP_SALES", "--limit", "20").stdout
    assert "SHOP_SALES" in shown and "lamp" in shown


# --- What the README says about table names and shared sources ------------------------------


def _load_shop_sales(folder: Path, queries: str = QUERIES, product_yaml: str = PRODUCT_YAML) -> Any:
    product = _write_product_folder(folder)
    (product / "product.yaml").write_text(product_yaml, encoding="utf-8")
    (product / "queries" / "shop_sales" / "shop_sales_query.properties").write_text(
        queries, encoding="utf-8"
    )
    return CliRunner().invoke(app, ["load", str(product)])


def test_a_cdz_input_by_its_bare_name_is_refused_at_load(loaded: Settings, tmp_path: Path) -> None:
    result = _load_shop_sales(tmp_path, QUERIES.replace("shop_cdz.clients", "clients"))
    assert result.exit_code == 1, result.output
    output = result.output.replace("\n", "")
    assert "shop_sales_query.properties:6: statement 'df_customers'" in output
    assert "reads table 'clients', which is not an input" in output
    assert "shop_cdz.clients" in output  # the allowed names are listed


def test_a_ddz_input_is_read_by_its_bare_name(loaded: Settings, tmp_path: Path) -> None:
    """sor1_payments (the sample product's DDZ DataSet) as a fourth input, read by name."""
    product_yaml = PRODUCT_YAML.replace(
        "inputs: [clients, sales_orders, articles]",
        "inputs: [clients, sales_orders, articles, sor1_payments]",
    )
    queries = QUERIES.replace(
        "from shop_cdz.clients",
        "from shop_cdz.clients where customer_id in (select UNQ_USER_ID from sor1_payments)",
    )
    result = _load_shop_sales(tmp_path, queries, product_yaml)
    assert result.exit_code == 0, result.output
    assert [p.product for p in load_catalog(loaded).problems] == []


def test_a_source_is_shared_by_name_and_the_last_load_wins(
    loaded: Settings, tmp_path: Path
) -> None:
    """shop_sales declares the sample products' `ddz` source too; declaring it with another
    connection changes it for sor1_payments as well."""
    assert _load_shop_sales(tmp_path / "a").exit_code == 0
    changed = PRODUCT_YAML.replace(
        'connection: "env:DATA_MESH_DDZ_JDBC_URL"', 'connection: "env:SHOP_DDZ_JDBC_URL"'
    )
    assert _load_shop_sales(tmp_path / "b", product_yaml=changed).exit_code == 0
    engine = make_engine(loaded.resolved_metadata_url)
    with engine.connect() as connection:
        sources = connection.execute(
            select(schema.data_sources.c.Name, schema.data_sources.c.ConnectionString)
        ).all()
    assert ("ddz", "env:SHOP_DDZ_JDBC_URL") in sources
    assert [s for s in sources if s[0] == "ddz"] == [("ddz", "env:SHOP_DDZ_JDBC_URL")]
    catalog = load_catalog(loaded)
    payments = next(p for p in catalog.products if p.name == "sor1_payments")
    output = next(d for d in payments.datasets if d.name == "sor1_payments")
    assert output.source_connection == "env:SHOP_DDZ_JDBC_URL"


# --- issue 17, item 2: a literal secret is refused by `load`, before anything is stored ------

CONNECTION_SECRET = "Hunter2-not-for-the-store"
ACCOUNT_KEY_SECRET = "c2VjcmV0LWFjY291bnQta2V5LWZvci10ZXN0cw=="


def _connection_with_password(product: dict[str, Any]) -> None:
    product["sources"][0]["connection"] = (
        f"Server=tcp:db.example.com;Database=d;User ID=u;Password={CONNECTION_SECRET}"
    )


def _spark_setting_with_account_key(product: dict[str, Any]) -> None:
    key = "spark.hadoop.fs.azure.account.key.lake.dfs.core.windows.net"
    product["transformations"][0]["configuration"]["spark_config"] = {key: ACCOUNT_KEY_SECRET}


SECRET_CASES = {
    "connection_password": (
        _connection_with_password,
        CONNECTION_SECRET,
        ["DataSources row", "(guard_cdz)", "ConnectionString holds a password"],
    ),
    "spark_config_account_key": (
        _spark_setting_with_account_key,
        ACCOUNT_KEY_SECRET,
        [
            "Transformations row",
            "(guard_transform): Configuration (key 'spark_config.spark.hadoop.fs.azure.account.key",
            "holds a credential setting",
        ],
    ),
}


@pytest.mark.parametrize("case", list(SECRET_CASES))
def test_load_refuses_a_literal_secret_naming_the_row_and_field_never_the_value(
    loaded: Settings, tmp_path: Path, case: str
) -> None:
    change, secret, fragments = SECRET_CASES[case]
    product = copy.deepcopy(PRODUCT)
    _as_sequence(product)
    change(product)
    path, result = _write_product(tmp_path, product, GOOD_QUERIES)
    assert result.exit_code == 1, result.output
    output = result.output.replace("\n", "")
    assert str(path) in output
    for fragment in fragments:
        assert fragment in output, output
    assert secret not in result.output
    # Nothing stored, nothing published, and the value is in no file of the home folder.
    assert _guarded_rows(make_engine(loaded.resolved_metadata_url)) == []
    assert not lake_storage(loaded).exists(f"{QUERY_FOLDER}/q.properties")
    for file in loaded.home_dir.rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file


# --- issue 17, item 4: a statement the sequence does not run is checked too -------------------

UNUSED_DROP = GOOD_QUERIES + "df_x = drop table t\n"


def test_load_refuses_an_unused_drop_statement(loaded: Settings, tmp_path: Path) -> None:
    product = copy.deepcopy(PRODUCT)
    _as_sequence(product)
    path, result = _write_product(tmp_path, product, UNUSED_DROP)
    assert result.exit_code == 1, result.output
    output = result.output.replace("\n", "")
    assert str(path) in output
    assert "q.properties:3: statement 'df_x'" in output and "DROP" in output
    assert _guarded_rows(make_engine(loaded.resolved_metadata_url)) == []
    assert not lake_storage(loaded).exists(f"{QUERY_FOLDER}/q.properties")


def test_validate_refuses_an_unused_drop_statement_in_the_lake(
    loaded: Settings, tmp_path: Path
) -> None:
    product = copy.deepcopy(PRODUCT)
    _as_sequence(product)
    assert _write_product(tmp_path, product, GOOD_QUERIES)[1].exit_code == 0
    assert load_catalog(loaded).problems == []
    lake_storage(loaded).write_bytes(f"{QUERY_FOLDER}/q.properties", UNUSED_DROP.encode())
    problems = load_catalog(loaded).problems
    assert [p.product for p in problems] == ["guarded"]
    assert "q.properties:3: statement 'df_x'" in problems[0].message
    assert "DROP" in problems[0].message
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1 and "guarded" in result.output


def test_a_dataset_of_the_same_source_and_name_is_taken_over_by_the_last_load(
    loaded: Settings, tmp_path: Path
) -> None:
    assert _load_shop_sales(tmp_path / "a").exit_code == 0
    other = {
        "name": "shop_other",
        "domain": "shop",
        "sources": yaml.safe_load(PRODUCT_YAML)["sources"][:1],
        "datasets": [
            {"name": "clients", "source": "shop_cdz", "layer": "CDZ", "location": "cdz/x"}
        ],
    }
    path = tmp_path / "b" / "shop_other" / "product.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(other), encoding="utf-8")
    assert CliRunner().invoke(app, ["load", str(path.parent)]).exit_code == 0
    catalog = load_catalog(loaded)
    clients = [d for p in catalog.products for d in p.datasets if d.name == "clients"]
    assert [(d.product, d.location) for d in clients] == [("shop_other", "cdz/x")]
