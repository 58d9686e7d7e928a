"""`data-mesh load`: idempotent upserts, removal of rows a file drops, SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, select

from data_mesh.catalog.build import build_catalog
from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.product_files import load_product_files
from data_mesh.store.database import make_engine, upgrade_store
from data_mesh.store.rows import SNAPSHOT_TABLES, StoreSnapshot, read_store
from data_mesh.store.schema import transformations
from data_mesh_tests.conftest import SAMPLE_PRODUCTS


def _counts(snapshot: StoreSnapshot) -> dict[str, int]:
    return {name: len(getattr(snapshot, name)) for name in SNAPSHOT_TABLES}


def test_loading_twice_changes_nothing(store: Engine) -> None:
    load_product_files(store, SAMPLE_PRODUCTS)
    first = read_store(store)
    load_product_files(store, SAMPLE_PRODUCTS)
    assert read_store(store) == first  # same rows, same ids
    counts = _counts(first)
    assert counts["data_products"] == 3
    assert counts["transformations"] == 8
    assert counts["data_sets"] == 13
    assert counts["transformation_dependencies"] == 2
    # mdm_accounts' schedule: schedule.cron and schedule.timezone of product.mdm_accounts.
    assert counts["configuration_items"] == 2


def test_rows_dropped_from_a_file_are_removed(store: Engine, tmp_path: Path) -> None:
    source = yaml.safe_load((SAMPLE_PRODUCTS / "customer_orders" / "product.yaml").read_text())
    folder = tmp_path / "customer_orders"
    folder.mkdir()
    (folder / "product.yaml").write_text(yaml.safe_dump(source))
    load_product_files(store, folder)
    source["transformations"] = [
        t for t in source["transformations"] if t["name"] != "rank_top_customers"
    ]
    source["datasets"] = [d for d in source["datasets"] if d["name"] != "top_customers"]
    (folder / "product.yaml").write_text(yaml.safe_dump(source))
    with pytest.raises(MetadataError, match="rule 'no_empty_top_customers' names dataset"):
        load_product_files(store, folder)
    source["quality_rules"] = [
        r for r in source["quality_rules"] if r["dataset"] != "top_customers"
    ]
    (folder / "product.yaml").write_text(yaml.safe_dump(source))
    load_product_files(store, folder)
    snapshot = read_store(store)
    assert {t.Name for t in snapshot.transformations} == {
        "filter_completed_orders",
        "join_customer_orders",
        "aggregate_country_revenue",
        "select_customer_directory",
    }
    assert "top_customers" not in {d.Name for d in snapshot.data_sets}
    catalog = build_catalog(snapshot)
    assert catalog.problems == []


def test_load_and_read_on_postgresql(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade_store(engine)
    load_product_files(engine, SAMPLE_PRODUCTS)
    load_product_files(engine, SAMPLE_PRODUCTS)
    catalog = build_catalog(read_store(engine))
    assert catalog.problems == []
    assert sorted(p.name for p in catalog.products) == [
        "customer_orders",
        "mdm_accounts",
        "sor1_payments",
    ]
    with engine.connect() as connection:
        names = connection.execute(select(transformations.c.Name)).scalars().all()
    assert len(names) == len(set(names)) == 8


def test_store_is_read_with_one_query_per_table(store: Engine) -> None:
    from sqlalchemy import event

    load_product_files(store, SAMPLE_PRODUCTS)
    statements: list[str] = []
    event.listen(store, "before_cursor_execute", lambda *a: statements.append(a[2]))
    read_store(store)
    assert len(statements) == len(SNAPSHOT_TABLES)
