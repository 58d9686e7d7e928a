"""Parsing of seed 000's `.properties` query files and sequence files (Java `.properties` rules).

Query file: `name = select ...` entries; a line ending in an odd number of backslashes continues
on the next line (its leading whitespace dropped); `#` and `!` start comment lines; `\\t`, `\\n`,
`\\uXXXX` and `\\<char>` escapes. Unlike `java.util.Properties`, which silently keeps the last
of two equal keys and accepts a key without a value, data_mesh rejects both: in a query file
they are always mistakes.

Sequence file: one statement name per line, in execution order.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from data_mesh.errors import QueryFileError
from data_mesh.identifiers import is_safe_identifier

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_QUERY_KEYWORDS = ("select", "with", "from", "values", "table", "(")


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    line: int


def _ends_with_continuation(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _logical_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Join continued natural lines; returns (first line number, logical line) pairs."""
    result: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].lstrip(" \t\f")
        index += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while _ends_with_continuation(line):
            parts.append(line[:-1])
            if index >= len(lines):
                raise QueryFileError(
                    f"{source}:{start + 1}: unterminated line continuation: the last line ends "
                    "with '\\' but nothing follows"
                )
            line = lines[index].lstrip(" \t\f")
            index += 1
        parts.append(line)
        result.append((start + 1, "".join(parts)))
    return result


def _unescape(raw: str, source: str, line: int) -> str:
    out: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        if index + 1 >= len(raw):
            index += 1
            continue
        code = raw[index + 1]
        if code == "u":
            digits = raw[index + 2 : index + 6]
            if len(digits) != 4 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                raise QueryFileError(f"{source}:{line}: malformed \\uXXXX escape")
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(code, code))
        index += 2
    return "".join(out)


def _split_key_value(logical: str, source: str, line: int) -> tuple[str, str]:
    index = 0
    while index < len(logical):
        char = logical[index]
        if char == "\\":
            index += 2
            continue
        if char in "=: \t\f":
            break
        index += 1
    key = logical[:index]
    rest = logical[index:].lstrip(" \t\f")
    if not rest or rest[0] not in "=:":
        raise QueryFileError(
            f"{source}:{line}: missing '=' after {_unescape(key, source, line)!r}: query entries "
            "look like `name = select ...`"
        )
    value = rest[1:].lstrip(" \t\f")
    return _unescape(key, source, line), _unescape(value, source, line)


def parse_query_file(text: str, source: str) -> dict[str, Statement]:
    """Statements of a query file by name, in file order; `source` names the file in errors."""
    statements: dict[str, Statement] = {}
    for line, logical in _logical_lines(text, source):
        name, sql = _split_key_value(logical, source, line)
        if not is_safe_identifier(name):
            raise QueryFileError(
                f"{source}:{line}: statement name {name!r} must be a plain identifier (it becomes "
                "a view name)"
            )
        if name in statements:
            raise QueryFileError(
                f"{source}:{line}: duplicate statement {name!r} (first defined on line "
                f"{statements[name].line})"
            )
        if not sql.strip():
            raise QueryFileError(f"{source}:{line}: statement {name!r} has an empty query")
        statements[name] = Statement(name=name, sql=sql.strip(), line=line)
    if not statements:
        raise QueryFileError(f"{source}: no statements found")
    return statements


def parse_sequence_file(text: str, source: str) -> list[str]:
    """Statement names of a sequence file, in execution order."""
    names: list[str] = []
    for line, logical in _logical_lines(text, source):
        name = _unescape(logical, source, line).strip()
        if not is_safe_identifier(name):
            raise QueryFileError(f"{source}:{line}: {name!r} is not a statement name")
        if name in names:
            raise QueryFileError(f"{source}:{line}: {name!r} appears twice in the sequence")
        names.append(name)
    if not names:
        raise QueryFileError(f"{source}: the sequence is empty")
    return names


def check_query_only(statement: Statement, source: str) -> None:
    """Reject anything but one read-only query (no DDL/DML such as `DROP TABLE`)."""
    where = f"{source}:{statement.line}: statement {statement.name!r}"
    sql = statement.sql.strip().rstrip(";").strip()
    try:
        parsed = [p for p in sqlglot.parse(sql, read="spark") if p is not None]
    except SqlglotError:
        parsed = []  # Spark syntax sqlglot does not know: fall back to the keyword check.
        if ";" in sql:
            raise QueryFileError(f"{where}: holds more than one SQL statement") from None
    if len(parsed) > 1:
        raise QueryFileError(f"{where}: holds more than one SQL statement")
    if parsed:
        root = parsed[0]
        if not isinstance(root, exp.Query):
            kind = root.key.upper()
            raise QueryFileError(
                f"{where}: only queries (SELECT ...) are allowed, found a {kind} statement"
            )
        return
    if not sql.lower().startswith(_QUERY_KEYWORDS):
        first = sql.split(None, 1)[0].upper() if sql else "empty"
        raise QueryFileError(
            f"{where}: only queries (SELECT ...) are allowed, found a {first} statement"
        )


@dataclass(frozen=True)
class QueryPlan:
    """The statements of a query file in sequence order; the last one is the output."""

    statements: tuple[Statement, ...]

    @property
    def output(self) -> Statement:
        return self.statements[-1]


def plan_sequence(
    query_text: str, query_source: str, sequence_text: str, sequence_source: str
) -> QueryPlan:
    """Parse and validate a query file and its sequence file into an execution plan."""
    statements = parse_query_file(query_text, query_source)
    order = parse_sequence_file(sequence_text, sequence_source)
    missing = [name for name in order if name not in statements]
    if missing:
        raise QueryFileError(
            f"{sequence_source}: names {', '.join(repr(m) for m in missing)}, not defined in "
            f"{query_source} (defined: {', '.join(statements)})"
        )
    for name in order:
        check_query_only(statements[name], query_source)
    return QueryPlan(statements=tuple(statements[name] for name in order))
