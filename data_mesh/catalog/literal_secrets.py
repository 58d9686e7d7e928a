"""Literal secrets in metadata rows: a row holds a reference (env:NAME,
keyvault://vault/secret), never a password, key or token."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping

from data_mesh.settings.secrets import literal_secret_in, parse_reference
from data_mesh.store.rows import StoreSnapshot


def reject_literal_secrets(
    snapshot: StoreSnapshot,
    product_name: Mapping[int, str],
    fail: Callable[[str, str], None],
) -> None:
    """A password, key or token written into a row breaks the product that uses the row: rows
    hold references (env:NAME, keyvault://vault/secret). Messages never quote the value.
    `product_name` maps DataProductIDs to product names."""
    advice = "store a reference instead (env:NAME or keyvault://<vault>/<secret>)"
    source_users: dict[int, set[str]] = defaultdict(set)
    dataset_product: dict[int, str] = {}
    for dataset in snapshot.data_sets:
        name = product_name.get(dataset.DataProductID, f"#{dataset.DataProductID}")
        source_users[dataset.DataSourceID].add(name)
        dataset_product[dataset.DataSetID] = name
    for source in snapshot.data_sources:
        if parse_reference(source.ConnectionString):
            continue
        kind = literal_secret_in(source.ConnectionString)
        if kind:
            message = (
                f"DataSources row {source.DataSourceID} ({source.Name}): ConnectionString "
                f"holds {kind}; {advice}"
            )
            for user in sorted(source_users[source.DataSourceID]):
                fail(user, message)
    texts: list[tuple[str, str, str | None]] = []
    for dataset in snapshot.data_sets:
        where = f"DataSets row {dataset.DataSetID} ({dataset.Name})"
        for column in ("Location", "Schema", "Description"):
            texts.append(
                (dataset_product[dataset.DataSetID], f"{where}: {column}", getattr(dataset, column))
            )
    for transformation in snapshot.transformations:
        name = product_name.get(transformation.DataProductID, "")
        where = f"Transformations row {transformation.TransformationID} ({transformation.Name})"
        texts.append((name, f"{where}: Configuration", transformation.Configuration))
    for rule in snapshot.data_quality_rules:
        where = f"DataQualityRules row {rule.RuleID} ({rule.Name})"
        texts.append(
            (dataset_product.get(rule.DataSetID, ""), f"{where}: Configuration", rule.Configuration)
        )
    for product, where, text in texts:
        kind = literal_secret_in(text or "")
        if kind and product:
            key = _secret_key(text or "")
            fail(product, f"{where}{f' (key {key!r})' if key else ''} holds {kind}; {advice}")


def _secret_key(text: str) -> str | None:
    """The dotted path of the first key of JSON `text` whose value holds a literal secret (the
    key names the setting, never its value); None when `text` is not JSON or none is found."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    todo: list[tuple[str, object]] = [("", found)]
    while todo:
        path, value = todo.pop(0)
        if isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else str(key)
                if isinstance(item, str) and literal_secret_in(json.dumps({key: item})):
                    return name
                todo.append((name, item))
        elif isinstance(value, list):
            todo += [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    return None
