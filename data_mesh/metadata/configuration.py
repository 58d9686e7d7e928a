"""Configuration rows (ConfigurationCategory / Item / Version) resolved by effective date.

Categories name a scope: `global` or `dataset.<DataSet name>`, each optionally for one
environment: `global@PROD`, `dataset.sor1_payments@DEV`. For a DataSet in an environment the
scopes apply in this order, later ones winning: `global`, `global@ENV`, `dataset.<name>`,
`dataset.<name>@ENV`.

An item's value is its ConfigurationItem.ItemValue, unless a ConfigurationVersion is valid at
the time asked for (EffectiveDate <= t < ExpirationDate, or no expiry): then the valid version
with the highest VersionNumber wins. Future-dated and expired versions are ignored.
Definitions are built when a run worker starts, so what it resolves is what is valid at run
time.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass

from data_mesh.errors import MetadataError
from data_mesh.metadata.rows import StoreSnapshot
from data_mesh.secrets import literal_secret_in, parse_reference

_CATEGORY = re.compile(
    r"^(global|dataset\.[A-Za-z_][A-Za-z0-9_]*)(@(LOCAL|DEV|INT|QA|PROD))?$", re.IGNORECASE
)
# Per-dataset settings the DDZ write reads: key -> (type, lowest allowed value).
DDZ_KEYS: dict[str, tuple[type, int]] = {
    "ddz.max_connections": (int, 1),
    "ddz.max_chunk_rows": (int, 1),
    "ddz.max_chunk_bytes": (int, 1024),
    "ddz.batch_bytes": (int, 1024),
}
SPARK_PREFIX = "spark."
_SECRET_KEY = re.compile(r"(?i)(password|secret|key|token|sas|credential)")


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
        if _SECRET_KEY.search(self.key) or literal_secret_in(self.value):
            return "***"
        return self.value


@dataclass(frozen=True)
class DatasetOverrides:
    """What the configuration says for one DataSet's asset and its DDZ write."""

    spark_config: dict[str, str]
    ddz: dict[str, int]

    def to_json(self) -> str:
        return json.dumps({"spark_config": self.spark_config, "ddz": self.ddz}, sort_keys=True)


def _scope(category: str) -> tuple[str, str | None]:
    match = _CATEGORY.fullmatch(category)
    if not match:
        raise MetadataError(
            f"ConfigurationCategory {category!r}: use 'global' or 'dataset.<DataSet name>', "
            "optionally followed by '@<ENV>' (LOCAL, DEV, INT, QA, PROD)"
        )
    scope = match.group(1)
    scope = "global" if scope.lower() == "global" else "dataset." + scope.split(".", 1)[1]
    env = match.group(3).upper() if match.group(3) else None
    return scope, env


def resolve_configuration(
    snapshot: StoreSnapshot, at: dt.datetime
) -> dict[str, dict[str, ConfigValue]]:
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
    return dict(resolved)


def scoped_values(
    resolved: dict[str, dict[str, ConfigValue]], env: str, dataset: str | None = None
) -> dict[str, ConfigValue]:
    """The values that apply in `env` (and to `dataset`), the most specific scope winning."""
    order = [("global", None), ("global", env)]
    if dataset is not None:
        order += [(f"dataset.{dataset}", None), (f"dataset.{dataset}", env)]
    rank = {scope: index for index, scope in enumerate(order)}
    ranked: list[tuple[int, dict[str, ConfigValue]]] = []
    for category, values in resolved.items():
        try:
            scope = _scope(category)
        except MetadataError:
            continue  # reported by check_configuration
        if scope in rank:
            ranked.append((rank[scope], values))
    merged: dict[str, ConfigValue] = {}
    for _, values in sorted(ranked, key=lambda pair: pair[0]):
        merged.update(values)
    return merged


def dataset_overrides(values: dict[str, ConfigValue]) -> DatasetOverrides:
    """Typed overrides for a DataSet; bad values name the category and key."""
    spark: dict[str, str] = {}
    ddz: dict[str, int] = {}
    for key, value in values.items():
        where = f"ConfigurationItem {value.category}/{key} ({value.source})"
        if key.startswith(SPARK_PREFIX):
            spark[key] = value.value
        elif key in DDZ_KEYS:
            kind, lowest = DDZ_KEYS[key]
            try:
                number = kind(value.value)
            except ValueError as error:
                raise MetadataError(f"{where}: {value.value!r} is not an integer") from error
            if number < lowest:
                raise MetadataError(f"{where}: must be at least {lowest}, got {number}")
            ddz[key.removeprefix("ddz.")] = number
    return DatasetOverrides(spark, ddz)


def check_configuration(snapshot: StoreSnapshot, at: dt.datetime) -> list[str]:
    """Problems with the configuration rows: bad category names, bad values, literal secrets."""
    problems = []
    resolved = resolve_configuration(snapshot, at)
    for category in resolved:
        try:
            _scope(category)
        except MetadataError as error:
            problems.append(str(error))
    for values in resolved.values():
        for value in values.values():
            secret_key = _SECRET_KEY.search(value.key) and not parse_reference(value.value)
            if literal_secret_in(value.value) or secret_key:
                problems.append(
                    f"ConfigurationItem {value.category}/{value.key} ({value.source}) holds a "
                    "literal secret; store a reference instead (env:NAME or "
                    "keyvault://<vault>/<secret>)"
                )
    datasets = {c.split("@")[0].split(".", 1)[1] for c in resolved if c.startswith("dataset.")}
    for dataset in sorted(datasets):
        for env in ("LOCAL", "DEV", "INT", "QA", "PROD"):
            try:
                dataset_overrides(scoped_values(resolved, env, dataset))
            except MetadataError as error:
                problems.append(str(error))
    return sorted(set(problems))
