"""Secrets stay out of metadata rows: rows hold references, resolved only when used.

A reference is `env:NAME` (an environment variable of the process) or
`keyvault://<vault>/<secret>` (Azure Key Vault, read with DefaultAzureCredential, so a managed
identity in the cloud). `lake://...` and plain URLs without credentials are not secrets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from data_mesh.catalog.errors import DataMeshError

# What a secret is replaced by wherever it would be shown (messages, `config show`, samples).
MASK = "***"
# Names of settings, properties and URL parameters whose values are secrets.
SECRET_NAME = re.compile(r"pass|pwd|secret|key|token|sas|credential", re.IGNORECASE)
_URL_SECRET = re.compile(
    r"([;&?][^=;&?]*(?:pass|pwd|secret|token|credential)[^=;&?]*=)([^;&]*)", re.IGNORECASE
)
_URL_USERINFO = re.compile(r"(//[^/:@;?]+:)([^/@;?]+)@")

_ENV = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_KEYVAULT = re.compile(r"^keyvault://([A-Za-z0-9-]{3,24})/([A-Za-z0-9-]{1,127})$")

# What a literal credential looks like inside a connection string, URL or JSON text.
_LITERAL_SECRETS = (
    ("a password", re.compile(r"(?i)\b(password|pwd|passwd)\s*[=:]\s*(?!\s*[;,}\]\"']|\s*$)")),
    ("a password", re.compile(r"(?i)\"(password|pwd|passwd)\"\s*:\s*\"[^\"]+\"")),
    ("an account key", re.compile(r"(?i)\baccountkey\s*=\s*[^;\s]+")),
    ("a SAS token", re.compile(r"(?i)(\bsharedaccesssignature\s*=|[?&]sig=)[^;&\s]+")),
    ("a client secret", re.compile(r"(?i)\b(client_?secret|secret)\s*[=:]\s*[^;,\s}]+")),
    ("a token", re.compile(r"(?i)\b(access_?token|api_?key)\s*[=:]\s*[^;,\s}]+")),
    ("a password in a URL", re.compile(r"[a-z][a-z0-9+.\-]*://[^/\s:@]+:[^/\s@]+@", re.I)),
    # A JSON key naming a credential (e.g. a Spark setting fs.azure.account.key.<account>...)
    # with a literal value; `..._env` keys and reference values are fine.
    (
        "a credential setting",
        re.compile(
            r"(?i)\"(?![^\"]*_env\")[^\"]*(password|passwd|secret|account\.key|accountkey|"
            r"sas\.?token|access\.?key|api\.?key)[^\"]*\"\s*:\s*\"(?!env:|keyvault://)[^\"]+\""
        ),
    ),
)


class SecretError(DataMeshError):
    """A secret that cannot be resolved, or a literal secret where a reference belongs."""


@dataclass(frozen=True)
class SecretReference:
    kind: str  # "env" or "keyvault"
    name: str
    vault: str | None = None

    def __str__(self) -> str:
        return f"env:{self.name}" if self.kind == "env" else f"keyvault://{self.vault}/{self.name}"


def parse_reference(text: str) -> SecretReference | None:
    """The reference `text` is, or None if it is not a secret reference."""
    if match := _ENV.fullmatch(text.strip()):
        return SecretReference("env", match.group(1))
    if match := _KEYVAULT.fullmatch(text.strip()):
        return SecretReference("keyvault", match.group(2), match.group(1))
    return None


# Every pattern above needs one of these words: most texts have none, and a substring test
# is much cheaper than the patterns (the catalog checks every text of every row).
_SECRET_WORDS = ("pass", "pwd", "key", "sig", "secret", "token", "@")


def literal_secret_in(text: str) -> str | None:
    """What kind of literal secret `text` holds ("a password", ...), or None. The value itself
    is never returned, so callers cannot put it in a message by mistake."""
    lowered = text.lower()
    if not any(word in lowered for word in _SECRET_WORDS):
        return None
    for kind, pattern in _LITERAL_SECRETS:
        if pattern.search(text):
            return kind
    return None


def redact_url(url: str) -> str:
    """`url` with the values of password-like settings (and user:password@) replaced by MASK."""
    return _URL_USERINFO.sub(rf"\1{MASK}@", _URL_SECRET.sub(rf"\1{MASK}", url))


def url_secrets(url: str) -> list[str]:
    """The passwords `url` holds: values of password-like settings and of user:password@."""
    return [m.group(2) for m in (*_URL_SECRET.finditer(url), *_URL_USERINFO.finditer(url))]


def without_password(url: str) -> str:
    """A SQLAlchemy URL as it may be shown: its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _key_vault_secret(vault: str, name: str) -> str:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    client = SecretClient(f"https://{vault}.vault.azure.net", DefaultAzureCredential())
    value = client.get_secret(name).value
    if value is None:
        raise SecretError(f"Key Vault secret keyvault://{vault}/{name} has no value")
    return value


def resolve_secret(
    reference: str,
    key_vault: Callable[[str, str], str] = _key_vault_secret,
) -> str:
    """The value `reference` points at; errors name the reference, never a value."""
    parsed = parse_reference(reference)
    if parsed is None:
        raise SecretError(
            f"{reference!r} is not a secret reference (use env:NAME or keyvault://vault/secret)"
        )
    if parsed.kind == "env":
        value = os.environ.get(parsed.name)
        if not value:
            raise SecretError(f"secret {parsed} is not set in the environment")
        return value
    assert parsed.vault is not None
    return key_vault(parsed.vault, parsed.name)
