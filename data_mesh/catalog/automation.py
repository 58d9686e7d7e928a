"""When data products run: schedules and sensor settings from the configuration rows.

Keys (scope `product.<name>` for a product, `global` for all; `@ENV` scopes apply as usual):

- `schedule.cron`: Quartz (`0 0 2 * * ?`, as Databricks jobs and seed 001 write it) or
  standard 5-field cron; `schedule.timezone`: an IANA zone (default UTC), also the time zone
  of the product's daily partitions; `schedule.enabled`: whether the product is run on its
  cron in this environment (default: off in LOCAL, on elsewhere). The product's DDZ assets get
  an `AutomationCondition` on that cron only when it is enabled (`data_mesh.component.specs`).
- `sensor.enabled`: whether the storage sensors and the store-wide sensors start running
  (same default); `sensor.interval_s`: seconds between sensor evaluations (default 60; also
  the interval of the per-domain automation sensors).
- `sensor.metadata.request_runs`: the metadata sensor also requests runs of changed products.
- `sensor.storage.per` (global): `domain` (default, one storage sensor per domain) or
  `product` (one per product, each with the product's own `sensor.*` rows).
- `alerts.webhook_url` (global): where the run-failure sensor posts failures; a reference
  (`env:NAME`, `keyvault://vault/secret`) since webhook URLs carry tokens. Unset: no alerts.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass

from data_mesh.catalog.configuration import ConfigValue
from data_mesh.catalog.errors import MetadataError

_CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,\-]+$")
_QUARTZ_ONLY = re.compile(r"[LW#]")
DEFAULT_SENSOR_INTERVAL_S = 60


@dataclass(frozen=True)
class ProductSchedule:
    cron: str  # 5-field cron, as Dagster takes it
    timezone: str
    enabled: bool
    # The expression as written in the configuration row.
    written: str


@dataclass(frozen=True)
class SensorSettings:
    enabled: bool
    interval_s: int = DEFAULT_SENSOR_INTERVAL_S
    request_runs: bool = False
    storage_per: str = "domain"


def _shift_quartz_day_of_week(field: str, where: str) -> str:
    """Quartz numbers days 1-7 from Sunday, cron 0-6: shift every number down by one."""

    def shift(match: re.Match[str]) -> str:
        day = int(match.group())
        if not 1 <= day <= 7:
            raise MetadataError(f"{where}: Quartz day of week {day} is not between 1 and 7")
        return str(day - 1)

    return re.sub(r"\d+", shift, field)


def quartz_to_cron(expression: str, where: str) -> str:
    """A 5-field cron from a Quartz expression (`sec min hour day month weekday [year]`), or the
    5-field cron itself. Dagster schedules have minute resolution: seconds must be 0."""
    fields = expression.split()
    if len(fields) == 5:
        cron = fields
    elif len(fields) in (6, 7):
        seconds, cron = fields[0], fields[1:6]
        if seconds != "0":
            raise MetadataError(f"{where}: {expression!r} fires at second {seconds}; use 0")
        if len(fields) == 7 and fields[6] not in ("*", "?"):
            raise MetadataError(f"{where}: {expression!r}: a Quartz year field is not supported")
        if _QUARTZ_ONLY.search(" ".join(cron)):
            raise MetadataError(
                f"{where}: {expression!r}: Quartz's L, W and # have no cron equivalent"
            )
        cron = [part.replace("?", "*") for part in cron]
        if re.search(r"\d", cron[4]):
            cron[4] = _shift_quartz_day_of_week(cron[4], where)
    else:
        raise MetadataError(
            f"{where}: {expression!r} is neither a 5-field cron nor a 6/7-field Quartz expression"
        )
    if not all(_CRON_FIELD.fullmatch(part) for part in cron):
        raise MetadataError(f"{where}: {expression!r} is not a valid schedule expression")
    return " ".join(cron)


def validate_timezone(zone: str, where: str) -> str:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise MetadataError(
            f"{where}: {zone!r} is not an IANA time zone (e.g. Asia/Kolkata)"
        ) from error
    return zone


def _flag(value: ConfigValue | None, default: bool) -> bool:
    if value is None:
        return default
    text = value.value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise MetadataError(
        f"ConfigurationItem {value.category}/{value.key} ({value.source}): {value.value!r} is "
        "not true or false"
    )


def _interval(value: ConfigValue | None) -> int:
    if value is None:
        return DEFAULT_SENSOR_INTERVAL_S
    where = f"ConfigurationItem {value.category}/{value.key} ({value.source})"
    try:
        seconds = int(value.value)
    except ValueError as error:
        raise MetadataError(f"{where}: {value.value!r} is not a number of seconds") from error
    if seconds < 10:
        raise MetadataError(f"{where}: must be at least 10 seconds, got {seconds}")
    return seconds


def on_by_default(env: str) -> bool:
    """Schedules and sensors start stopped on a laptop and running in the cloud environments."""
    return env.upper() != "LOCAL"


def product_schedule(values: dict[str, ConfigValue], env: str) -> ProductSchedule | None:
    """The schedule the configuration rows give a product in `env`, or None."""
    cron = values.get("schedule.cron")
    if cron is None or not cron.value.strip():
        return None
    where = f"ConfigurationItem {cron.category}/schedule.cron ({cron.source})"
    timezone = values.get("schedule.timezone")
    zone = "UTC"
    if timezone is not None:
        zone = validate_timezone(
            timezone.value.strip(),
            f"ConfigurationItem {timezone.category}/schedule.timezone ({timezone.source})",
        )
    return ProductSchedule(
        cron=quartz_to_cron(cron.value.strip(), where),
        timezone=zone,
        enabled=_flag(values.get("schedule.enabled"), on_by_default(env)),
        written=cron.value.strip(),
    )


def sensor_settings(values: dict[str, ConfigValue], env: str) -> SensorSettings:
    per = values.get("sensor.storage.per")
    if per is not None and per.value.strip().lower() not in ("product", "domain"):
        raise MetadataError(
            f"ConfigurationItem {per.category}/sensor.storage.per ({per.source}): "
            f"{per.value!r} is not 'product' or 'domain'"
        )
    return SensorSettings(
        enabled=_flag(values.get("sensor.enabled"), on_by_default(env)),
        interval_s=_interval(values.get("sensor.interval_s")),
        request_runs=_flag(values.get("sensor.metadata.request_runs"), False),
        storage_per=per.value.strip().lower() if per is not None else "domain",
    )
