"""Every kind of bad input: a clear error naming the row or file, the product skipped, the
others still loading, and `data-mesh validate` exiting non-zero."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from data_mesh.catalog.current import lake_storage, load_catalog
from data_mesh.cli.app import app
from data_mesh.settings.model import Settings
from data_mesh.store import schema
from data_mesh.store.database import make_engine
from data_mesh_tests.conftest import SAMPLE_PRODUCTS, load_product_file

QUERY_FILE = "queries/sor1_payments/sor1_payments_query.properties"
SEQUENCE_FILE = "queries/sor1_payments/sor1_payments_sequence.properties"


def _engine(settings: Settings) -> Engine:
    return make_engine(settings.resolved_metadata_url)


def _transformation_id(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        table = schema.transformations
        return int(
            connection.execute(
                select(table.c.TransformationID).where(table.c.Name == name)
            ).scalar_one()
        )


def _set_transformation(engine: Engine, name: str, **values: str) -> int:
    transformation_id = _transformation_id(engine, name)
    with engine.begin() as connection:
        table = schema.transformations
        connection.execute(
            update(table).where(table.c.TransformationID == transformation_id).values(**values)
        )
    return transformation_id


def _assert_only_broken(settings: Settings, product: str, *fragments: str) -> str:
    catalog = load_catalog(settings)
    assert [p.product for p in catalog.problems] == [product]
    message = catalog.problems[0].message
    for fragment in fragments:
        assert fragment in message, message
    others = {p.name for p in catalog.products}
    assert others == {"sor1_payments", "customer_orders", "mdm_accounts"} - {product}
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "broken" in result.output and product in result.output
    return message


def test_sample_products_are_valid(loaded: Settings) -> None:
    catalog = load_catalog(loaded)
    assert catalog.problems == []
    assert CliRunner().invoke(app, ["validate"]).exit_code == 0


def test_unknown_transformation_type(loaded: Settings) -> None:
    row = _set_transformation(_engine(loaded), "filter_completed_orders", Type="pivot")
    _assert_only_broken(
        loaded,
        "customer_orders",
        f"Transformations row {row}",
        "unknown transformation Type 'pivot'",
    )


def test_configuration_that_is_not_json(loaded: Settings) -> None:
    row = _set_transformation(_engine(loaded), "build_sor1_payments", Configuration="{folder: x")
    _assert_only_broken(
        loaded,
        "sor1_payments",
        f"Transformations row {row} (build_sor1_payments): Configuration is not valid JSON",
    )


def test_configuration_missing_a_required_field(loaded: Settings) -> None:
    row = _set_transformation(
        _engine(loaded), "build_sor1_payments", Configuration=json.dumps({"folder": "x"})
    )
    _assert_only_broken(
        loaded, "sor1_payments", f"Transformations row {row}", "que_name: Field required"
    )


@pytest.mark.parametrize("column", ["TargetTable", "TargetSchema", "KeyColumns"])
@pytest.mark.parametrize("bad_name", ["x; DROP TABLE y", "a]b", "o'neil", 'q"t'])
def test_unsafe_identifiers_in_datasets(loaded: Settings, column: str, bad_name: str) -> None:
    engine = _engine(loaded)
    with engine.begin() as connection:
        table = schema.data_sets
        connection.execute(
            update(table).where(table.c.Name == "sor1_payments").values({column: bad_name})
        )
    message = _assert_only_broken(
        loaded, "sor1_payments", "DataSets row", "is not a safe identifier"
    )
    assert column in message


@pytest.mark.parametrize("bad_name", ["x; DROP TABLE y", "a]b"])
def test_unsafe_column_names_in_configuration(loaded: Settings, bad_name: str) -> None:
    configuration = {
        "folder": "sor1_payments",
        "que_name": "sor1_payments_query.properties",
        "seq_name": "sor1_payments_sequence.properties",
        "mapping": {"PAYMENT_AMT": bad_name},
    }
    row = _set_transformation(
        _engine(loaded), "build_sor1_payments", Configuration=json.dumps(configuration)
    )
    _assert_only_broken(
        loaded, "sor1_payments", f"Transformations row {row}", "is not a safe identifier"
    )


def test_mapping_two_columns_to_one_target_breaks_the_product(loaded: Settings) -> None:
    # Spark would load it and fail at write with AMBIGUOUS_REFERENCE.
    configuration = {
        "folder": "sor1_payments",
        "que_name": "sor1_payments_query.properties",
        "seq_name": "sor1_payments_sequence.properties",
        "mapping": {"UNQ_USER_ID": "ID", "PAYMENT_AMOUNT": "ID"},
    }
    row = _set_transformation(
        _engine(loaded), "build_sor1_payments", Configuration=json.dumps(configuration)
    )
    _assert_only_broken(
        loaded,
        "sor1_payments",
        f"Transformations row {row} (build_sor1_payments)",
        "columns 'UNQ_USER_ID' and 'PAYMENT_AMOUNT' are both mapped to 'ID'",
    )


def test_load_refuses_a_mapping_with_two_columns_to_one_target(
    loaded: Settings, tmp_path: Path
) -> None:
    result = load_product_file(
        tmp_path,
        "bad_mapping",
        "name: bad_mapping\ndomain: x\n"
        "datasets:\n  - {name: out, source: ddz, layer: DDZ, target_table: OUT}\n"
        "transformations:\n  - name: shape\n    type: sql\n    output: out\n"
        "    configuration:\n      query: select 1 as a, 2 as b\n"
        "      mapping: {a: X, b: X}\n",
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 1, output
    assert "transformation 'shape'" in output
    assert "columns 'a' and 'b' are both mapped to 'X'" in output
    with _engine(loaded).connect() as connection:
        names = connection.execute(select(schema.data_products.c.Name)).scalars().all()
    assert "bad_mapping" not in names


def test_dependency_cycle(loaded: Settings) -> None:
    engine = _engine(loaded)
    first = _transformation_id(engine, "filter_completed_orders")
    last = _transformation_id(engine, "aggregate_country_revenue")
    with engine.begin() as connection:
        connection.execute(
            schema.transformation_dependencies.insert().values(
                TransformationID=first, DependsOnTransformationID=last
            )
        )
    _assert_only_broken(loaded, "customer_orders", "dependency cycle", "filter_completed_orders")


def test_query_file_missing_from_storage(loaded: Settings) -> None:
    (loaded.resolved_lake_root / QUERY_FILE).unlink()
    _assert_only_broken(loaded, "sor1_payments", "query file missing", QUERY_FILE)


def test_ddl_statement_inside_a_query_file(loaded: Settings) -> None:
    storage = lake_storage(loaded)
    text = storage.read_text(QUERY_FILE) + "\ndf_evil = DROP TABLE ddz.SOR1_PAYMENTS\n"
    storage.write_bytes(QUERY_FILE, text.encode())
    storage.write_bytes(SEQUENCE_FILE, b"df_driver\ndf_payments\ndf_evil\n")
    _assert_only_broken(
        loaded, "sor1_payments", QUERY_FILE, "'df_evil'", "only queries", "found a DROP statement"
    )


def test_malformed_properties_forgotten_name(loaded: Settings) -> None:
    # Java reads `select 2` as the key `select` with the value `2` (whitespace separates them).
    lake_storage(loaded).write_bytes(QUERY_FILE, b"df_target = select 1\nselect 2\n")
    lake_storage(loaded).write_bytes(SEQUENCE_FILE, b"df_target\n")
    _assert_only_broken(loaded, "sor1_payments", f"{QUERY_FILE}:2: statement 'select'")


def test_sequence_line_with_more_than_a_name(loaded: Settings) -> None:
    lake_storage(loaded).write_bytes(SEQUENCE_FILE, b"df_driver\ndf_payments df_target\n")
    _assert_only_broken(
        loaded, "sor1_payments", f"{SEQUENCE_FILE}:2: 'df_payments' is followed by 'df_target'"
    )


def test_malformed_properties_unterminated_continuation(loaded: Settings) -> None:
    lake_storage(loaded).write_bytes(QUERY_FILE, b"df_driver = select \\\n  1 \\\n")
    _assert_only_broken(loaded, "sor1_payments", "unterminated line continuation")


def test_sequence_naming_a_query_that_does_not_exist(loaded: Settings) -> None:
    lake_storage(loaded).write_bytes(SEQUENCE_FILE, b"df_driver\ndf_missing\n")
    _assert_only_broken(loaded, "sor1_payments", SEQUENCE_FILE, "'df_missing'", "not defined")


def test_downstream_of_a_broken_product_is_skipped_too(loaded: Settings, tmp_path) -> None:
    # A third product reading sor1_payments' DDZ output breaks when sor1_payments breaks.
    reader = (
        "name: payments_reader\ndomain: finance\n"
        "datasets:\n"
        "  - {name: payments_copy, source: ddz, layer: DDZ, target_table: PAYMENTS_COPY}\n"
        "transformations:\n"
        "  - name: copy_payments\n    type: sql\n    inputs: [sor1_payments]\n"
        "    output: payments_copy\n"
        "    configuration: {query: 'select * from sor1_payments'}\n"
    )
    assert load_product_file(tmp_path, "reader", reader).exit_code == 0
    assert {p.name for p in load_catalog(loaded).products} >= {"payments_reader"}
    (loaded.resolved_lake_root / QUERY_FILE).unlink()
    catalog = load_catalog(loaded)
    problems = {p.product: p.message for p in catalog.problems}
    assert set(problems) == {"sor1_payments", "payments_reader"}
    assert "broken data product 'sor1_payments'" in problems["payments_reader"]
    assert [p.name for p in catalog.products] == ["customer_orders", "mdm_accounts"]


def test_invalid_product_file_is_rejected_naming_file_and_field(loaded: Settings, tmp_path) -> None:
    result = load_product_file(
        tmp_path,
        "bad",
        "name: bad\ndomain: x\n"
        "datasets:\n  - {name: out, source: ddz, layer: DDZ, target_table: OUT}\n"
        "transformations:\n  - name: t\n    type: join\n    output: out\n"
        "    configuration: {input_dataset: a}\n",
    )
    product = tmp_path / "bad" / "product.yaml"
    assert result.exit_code == 1
    assert str(product) in result.output.replace("\n", "")
    assert "transformation 't'" in result.output
    assert "second_dataset" in result.output
    # Nothing of the bad product was written.
    with _engine(loaded).connect() as connection:
        names = connection.execute(select(schema.data_products.c.Name)).scalars().all()
    assert "bad" not in names


def test_store_not_initialized_is_a_clear_error(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "is not initialized: run `data-mesh init`" in result.output


def test_unknown_product_for_materialize(loaded: Settings) -> None:
    result = CliRunner().invoke(app, ["materialize", "--product", "nope"])
    assert result.exit_code == 1
    assert "unknown data product(s): nope" in result.output


def _set_rule(engine: Engine, name: str, **values: str) -> int:
    table = schema.data_quality_rules
    with engine.begin() as connection:
        rule_id = connection.execute(
            select(table.c.RuleID).where(table.c.Name == name)
        ).scalar_one()
        connection.execute(update(table).where(table.c.RuleID == rule_id).values(**values))
    return int(rule_id)


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"Type": "completeness"}, "unknown rule Type 'completeness'"),
        ({"Configuration": json.dumps({"column": "AMOUNT"})}, "column 'AMOUNT' is not in DataSet"),
        (
            {"Type": "regex", "Configuration": json.dumps({"column": "NAME", "pattern": "(x"})},
            "invalid regular expression",
        ),
        (
            {"Configuration": json.dumps({"column": "NAME", "max_failing_percent": 101})},
            "max_failing_percent",
        ),
        ({"Name": "bad name; DROP"}, "not a safe identifier"),
    ],
)
def test_bad_quality_rule_skips_its_product_and_names_the_rule(
    loaded: Settings, values: dict[str, str], fragment: str
) -> None:
    rule_id = _set_rule(_engine(loaded), "user_id_present", **values)
    message = _assert_only_broken(loaded, "sor1_payments", fragment)
    assert f"DataQualityRules row {rule_id} (" in message


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"PartitionStart": None}, "needs a PartitionStart date"),
        ({"WriteMode": "merge", "KeyColumns": "ACCOUNT_ID"}, "WriteMode 'merge' is not supported"),
        ({"PartitionColumn": "LOAD_DAY"}, "PartitionColumn 'LOAD_DAY' is not in its Schema"),
        ({"RetentionDays": 0}, "RetentionDays must be at least 1"),
        ({"PartitionColumn": None}, "PartitionStart and RetentionDays need a PartitionColumn"),
    ],
)
def test_bad_partitioning_names_the_dataset(
    loaded: Settings, values: dict[str, object], fragment: str
) -> None:
    with _engine(loaded).begin() as connection:
        table = schema.data_sets
        connection.execute(update(table).where(table.c.Name == "active_accounts").values(values))
    _assert_only_broken(loaded, "mdm_accounts", "DataSets row", "(active_accounts)", fragment)


def test_bad_schedule_row_breaks_only_its_product(loaded: Settings) -> None:
    with _engine(loaded).begin() as connection:
        item = schema.configuration_item
        connection.execute(
            update(item).where(item.c.ItemKey == "schedule.cron").values(ItemValue="0 0 2 L * ?")
        )
    _assert_only_broken(
        loaded, "mdm_accounts", "product.mdm_accounts/schedule.cron", "no cron equivalent"
    )


def test_bad_schedule_in_a_product_file_is_refused_before_loading(
    loaded: Settings, tmp_path: Path
) -> None:
    text = (SAMPLE_PRODUCTS / "mdm_accounts" / "product.yaml").read_text()
    bad = text.replace("timezone: Asia/Kolkata", "timezone: Mars/Olympus_Mons")
    result = load_product_file(tmp_path, "mdm_accounts", bad)
    assert result.exit_code == 1
    assert "schedule.timezone" in result.output and "Mars/Olympus_Mons" in result.output


def test_incremental_ingest_into_a_replaced_table_is_refused(loaded: Settings) -> None:
    engine = _engine(loaded)
    with engine.begin() as connection:
        sources = schema.data_sources
        connection.execute(
            update(sources).where(sources.c.Name == "mdm_cdz").values(Type="database")
        )
        table = schema.data_sets
        connection.execute(
            update(table)
            .where(table.c.Name == "active_accounts")
            .values(PartitionColumn=None, PartitionStart=None, RetentionDays=None)
        )
    row = _set_transformation(
        engine,
        "count_active_accounts",
        Type="ingest",
        Configuration=json.dumps({"input_dataset": "accounts", "watermark_column": "account_id"}),
    )
    _assert_only_broken(
        loaded, "mdm_accounts", f"Transformations row {row}", "WriteMode append or merge"
    )
