"""Configuration rows (ConfigurationCategory / Item / Version) resolved by effective date.

Categories name a scope: `global`, `product.<data product>` or `dataset.<DataSet name>`, each
optionally for one environment: `global@PROD`, `product.payments@DEV`,
`dataset.sor1_payments@DEV`. For a DataSet of a product in an environment the scopes apply in
this order, later ones winning: `global`, `global@ENV`, `product.<name>`, `product.<name>@ENV`,
`dataset.<name>`, `dataset.<name>@ENV`.

An item's value is its ConfigurationItem.ItemValue, unless a ConfigurationVersion is valid at
the time asked for (EffectiveDate <= t < ExpirationDate, or no expiry): then the valid version
with the highest VersionNumber wins. Future-dated and expired versions are ignored.
Definitions are built when a run worker starts, so what it resolves is what is valid at run
time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from data_mesh.catalog.errors import MetadataError
from data_mesh.settings.secrets import MASK, SECRET_NAME, literal_secret_in, parse_reference
from data_mesh.store.rows import StoreSnapshot

_CATEGORY = re.compile(
    r"^(global|(?:product|dataset)\.[A-Za-z_][A-Za-z0-9_]*)(@(LOCAL|DEV|INT|QA|PROD))?$",
    re.IGNORECASE,
)
# Retries of a product's assets (Dagster RetryPolicy, exponential backoff).
RETRY_KEYS: dict[str, tuple[type, float]] = {
    "dagster.max_retries": (int, 0),
    "dagster.retry_delay_s": (float, 0),
}
# Per-dataset settings the DDZ write reads: key -> (type, lowest allowed value).
DDZ_KEYS: dict[str, tuple[type, int]] = {
    "ddz.max_connections": (int, 1),
    "ddz.max_chunk_rows": (int, 1),
    "ddz.max_chunk_bytes": (int, 1024),
    "ddz.batch_bytes": (int, 1024),
    # Days of a partitioned DDZ table kept (overrides DataSets.RetentionDays).
    "ddz.retention_days": (int, 1),
}
SPARK_PREFIX = "spark."


@dataclass(frozen=True)
class ConfigValue:
    category: str
    key: str
    value: str
    # Where the value comes from: "item", or "version N (from <date>)".
    source: str

    @property
    def shown(self) -> str:
        """The value as `data-mesh config show` prints it: secrets masked."""
        if parse_reference(self.value):
            return self.value
        if SECRET_NAME.search(self.key) or literal_secret_in(self.value):
            return MASK
        return self.value


@dataclass(frozen=True)
class DatasetOverrides:
    """What the configuration says for one DataSet's asset and its DDZ write."""

    spark_config: dict[str, str]
    ddz: dict[str, int]
    # `max_retries` and `retry_delay_s`, when configured.
    retry: dict[str, float] = field(default_factory=dict)


def category_scope(category: str) -> tuple[str, str | None]:
    match = _CATEGORY.fullmatch(category)
    if not match:
        raise MetadataError(
            f"ConfigurationCategory {category!r}: use 'global', 'product.<data product>' or "
            "'dataset.<DataSet name>', optionally followed by '@<ENV>' (LOCAL, DEV, INT, QA, PROD)"
        )
    kind, _, name = match.group(1).partition(".")
    scope = "global" if kind.lower() == "global" else f"{kind.lower()}.{name}"
    env = match.group(3).upper() if match.group(3) else None
    return scope, env


class ResolvedConfiguration(dict[str, dict[str, ConfigValue]]):
    """Category name -> its items' values, indexed by scope once for `scoped_values` (a mesh
    has a category per product and per DataSet; scanning them all per lookup is quadratic)."""

    @cached_property
    def by_scope(self) -> dict[tuple[str, str | None], dict[str, ConfigValue]]:
        return index_by_scope(self)


def index_by_scope(
    resolved: dict[str, dict[str, ConfigValue]],
) -> dict[tuple[str, str | None], dict[str, ConfigValue]]:
    """(scope, env) -> the values of its categories; malformed categories are left out (they
    are reported by check_configuration)."""
    index: dict[tuple[str, str | None], dict[str, ConfigValue]] = defaultdict(dict)
    for category, values in resolved.items():
        try:
            scope = category_scope(category)
        except MetadataError:
            continue
        index[scope].update(values)
    return dict(index)


def _scopes_of(
    resolved: dict[str, dict[str, ConfigValue]],
) -> dict[tuple[str, str | None], dict[str, ConfigValue]]:
    if isinstance(resolved, ResolvedConfiguration):
        return resolved.by_scope
    return index_by_scope(resolved)


def resolve_configuration(snapshot: StoreSnapshot, at: dt.datetime) -> ResolvedConfiguration:
    """Every category's items with the value valid at `at` (naive UTC, as the store keeps it)."""
    categories = {c.CategoryID: c.CategoryName for c in snapshot.configuration_categories}
    versions = defaultdict(list)
    for version in snapshot.configuration_versions:
        versions[version.ItemID].append(version)
    resolved: dict[str, dict[str, ConfigValue]] = defaultdict(dict)
    for item in snapshot.configuration_items:
        category = categories.get(item.CategoryID, f"#{item.CategoryID}")
        valid = [
            v
            for v in versions[item.ItemID]
            if v.EffectiveDate <= at and (v.ExpirationDate is None or at < v.ExpirationDate)
        ]
        if valid:
            best = max(valid, key=lambda v: v.VersionNumber)
            source = f"version {best.VersionNumber} (from {best.EffectiveDate:%Y-%m-%d %H:%M})"
            resolved[category][item.ItemKey] = ConfigValue(
                category, item.ItemKey, best.ItemValue, source
            )
        else:
            resolved[category][item.ItemKey] = ConfigValue(
                category, item.ItemKey, item.ItemValue, "item"
            )
    return ResolvedConfiguration(resolved)


def scoped_values(
    resolved: dict[str, dict[str, ConfigValue]],
    env: str,
    dataset: str | None = None,
    product: str | None = None,
) -> dict[str, ConfigValue]:
    """The values that apply in `env` (and to `product`, `dataset`), the most specific scope
    winning: global, then the product's, then the DataSet's; each with `@ENV` after it."""
    order = [("global", None), ("global", env)]
    if product is not None:
        order += [(f"product.{product}", None), (f"product.{product}", env)]
    if dataset is not None:
        order += [(f"dataset.{dataset}", None), (f"dataset.{dataset}", env)]
    by_scope = _scopes_of(resolved)
    merged: dict[str, ConfigValue] = {}
    for scope in order:
        merged.update(by_scope.get(scope, {}))
    return merged


def dataset_overrides(values: dict[str, ConfigValue]) -> DatasetOverrides:
    """Typed overrides for a DataSet; bad values name the category and key."""
    spark: dict[str, str] = {}
    ddz: dict[str, int] = {}
    retry: dict[str, float] = {}
    for key, value in values.items():
        where = f"ConfigurationItem {value.category}/{key} ({value.source})"
        if key.startswith(SPARK_PREFIX):
            spark[key] = value.value
        elif key in DDZ_KEYS or key in RETRY_KEYS:
            kind, lowest = DDZ_KEYS.get(key) or RETRY_KEYS[key]
            try:
                number = kind(value.value)
            except ValueError as error:
                raise MetadataError(
                    f"{where}: {value.value!r} is not {'an integer' if kind is int else 'a number'}"
                ) from error
            if number < lowest:
                raise MetadataError(f"{where}: must be at least {lowest:g}, got {number}")
            if key in DDZ_KEYS:
                ddz[key.removeprefix("ddz.")] = int(number)
            else:
                retry[key.removeprefix("dagster.")] = number
    return DatasetOverrides(spark, ddz, retry)


def check_configuration(snapshot: StoreSnapshot, at: dt.datetime) -> list[str]:
    """Problems with the configuration rows: bad category names, bad values, literal secrets."""
    problems = []
    resolved = resolve_configuration(snapshot, at)
    for category in resolved:
        try:
            category_scope(category)
        except MetadataError as error:
            problems.append(str(error))
    for values in resolved.values():
        for value in values.values():
            secret_key = SECRET_NAME.search(value.key) and not parse_reference(value.value)
            if literal_secret_in(value.value) or secret_key:
                problems.append(
                    f"ConfigurationItem {value.category}/{value.key} ({value.source}) holds a "
                    "literal secret; store a reference instead (env:NAME or "
                    "keyvault://<vault>/<secret>)"
                )
    # Scopes as resolution reads them (`Product.x` is `product.x`), each checked in every env.
    named = {scope for scope, _env in _scopes_of(resolved) if scope != "global"}
    for scope in sorted(named):
        kind, _, name = scope.partition(".")
        for env in ("LOCAL", "DEV", "INT", "QA", "PROD"):
            try:
                dataset_overrides(scoped_values(resolved, env, **{kind: name}))
            except MetadataError as error:
                problems.append(str(error))
    return sorted(set(problems))
