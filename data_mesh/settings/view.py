"""Settings as `data-mesh config show` prints them: every value, secrets masked."""

from __future__ import annotations

from data_mesh.settings.model import Settings
from data_mesh.settings.secrets import MASK, literal_secret_in, without_password


def _masked(value: str) -> str:
    if "://" in value and "@" in value and not value.startswith("jdbc:"):
        try:
            return without_password(value)
        except Exception:  # not a SQLAlchemy URL: mask it whole
            return MASK
    return MASK if literal_secret_in(value) else value


def settings_rows(settings: Settings) -> list[tuple[str, str]]:
    """(DATA_MESH_<NAME>, value) for every setting, resolved defaults included; a setting the
    environment requires and lacks says MISSING."""
    resolved = {
        "metadata_url": settings.resolved_metadata_url,
        "lake": settings.resolved_lake_kind,
        "lake_root": str(settings.resolved_lake_root),
        "ddz_jdbc_url": settings.resolved_ddz_jdbc_url,
    }
    missing = settings.missing_settings()
    if "DATA_MESH_METADATA_AZURE_SERVER" in missing:  # either names the store
        missing["DATA_MESH_METADATA_URL"] = ""
    rows = []
    for name in type(settings).model_fields:
        setting = f"DATA_MESH_{name.upper()}"
        if setting in missing:  # not LOCAL's default: that is not what this environment uses
            rows.append((setting, f"MISSING (required in {settings.env})"))
            continue
        value = resolved.get(name, getattr(settings, name))
        text = ",".join(value) if isinstance(value, tuple) else str(value)
        rows.append((setting, _masked(text)))
    return rows
