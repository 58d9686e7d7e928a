"""Pieces of Spark SQL text built from metadata: quoted identifiers and literals."""

from __future__ import annotations

from data_mesh.catalog.identifiers import validate_identifier


def quote_identifier(name: str) -> str:
    """A validated name in backticks (the name cannot contain a backtick: it was validated)."""
    return f"`{validate_identifier(name, 'column name')}`"


def string_literal(value: str) -> str:
    """A Spark SQL string literal; backslash and quote are escaped (Spark's default parser)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return string_literal(value)
