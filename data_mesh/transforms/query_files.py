"""Locating and loading a properties_sequence transformation's query and sequence files."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from data_mesh.catalog.transformation_configs import PropertiesSequenceConfig
from data_mesh.lake.storage import Storage, StorageError
from data_mesh.transforms.properties import QueryPlan, plan_sequence

if TYPE_CHECKING:
    # Only a type here: product_files checks query files with this module at load.
    from data_mesh.catalog.product_files import LoadedProduct

QUERY_CONTAINER = "queries"


def _with_extension(name: str) -> str:
    return name if name.endswith(".properties") else f"{name}.properties"


def query_file_path(config: PropertiesSequenceConfig) -> str:
    return f"{QUERY_CONTAINER}/{config.folder}/{_with_extension(config.que_name)}"


def sequence_file_path(config: PropertiesSequenceConfig) -> str:
    return f"{QUERY_CONTAINER}/{config.folder}/{_with_extension(config.seq_name)}"


def load_query_plan(
    storage: Storage, config: PropertiesSequenceConfig, tables: Iterable[str] | None = None
) -> QueryPlan:
    """Read both files from storage and validate them; errors name the file and line.

    `tables`: the names the transformation's inputs are queried by (`DataSetModel.sql_name`);
    statements may read only those and earlier statements. Without it that rule is skipped
    (every other rule of the SQL policy still applies)."""
    query_path, sequence_path = query_file_path(config), sequence_file_path(config)
    texts = {}
    for path in (query_path, sequence_path):
        try:
            texts[path] = storage.read_text(path)
        except StorageError as error:
            raise StorageError(f"query file missing: {error}") from error
    return plan_sequence(texts[query_path], query_path, texts[sequence_path], sequence_path, tables)


def publish_query_files(storage: Storage, product: LoadedProduct) -> None:
    """Copy a product's `queries/` folder into the lake's `queries` container."""
    queries = product.path.parent / "queries"
    for file in product.query_files:
        storage.write_bytes(
            f"{QUERY_CONTAINER}/{file.relative_to(queries).as_posix()}", file.read_bytes()
        )
