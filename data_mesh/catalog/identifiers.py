"""Validation of identifiers (schema, table, column names) that come from metadata.

Every name that ends up in SQL passes `validate_identifier` first and is then quoted by the
dialect that builds the statement: a metadata row can never inject SQL. Names are ASCII only,
so a Unicode look-alike (a Cyrillic letter that looks Latin) cannot pose as another name;
`data-mesh load` applies the rule before storing a row (it validates the product as the
catalog does) and `data-mesh validate` to rows already stored.
"""

from __future__ import annotations

import re

from data_mesh.catalog.errors import MetadataError

# ASCII letters only: no re.UNICODE class such as \w, which would accept look-alikes.
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class UnsafeIdentifierError(ValueError):
    """A schema, table or column name from metadata that is not a safe identifier."""


def is_safe_identifier(name: str) -> bool:
    return bool(IDENTIFIER_PATTERN.fullmatch(name))


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return `name` if it is a letter or _ then up to 127 letters, digits or _; else raise."""
    if not isinstance(name, str) or not is_safe_identifier(name):
        raise UnsafeIdentifierError(
            f"{what} {name!r} is not a safe identifier: use letters, digits and '_' only, "
            "starting with a letter or '_', at most 128 characters"
        )
    return name


def required_identifier(value: str | None, where: str, column: str) -> str:
    """`value` of metadata row `where`'s `column`, present and a safe identifier."""
    if value is None or value == "":
        raise MetadataError(f"{where}: {column} is required")
    try:
        return validate_identifier(value, column)
    except UnsafeIdentifierError as error:
        raise MetadataError(f"{where}: {error}") from error
