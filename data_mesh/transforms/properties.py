"""Parsing of seed 000's `.properties` query files and sequence files (Java `.properties` rules).

Query file: `name = select ...` entries; a line ending in an odd number of backslashes continues
on the next line (its leading whitespace dropped); `#` and `!` start comment lines; `\\t`, `\\n`,
`\\uXXXX` and `\\<char>` escapes. Unlike `java.util.Properties`, which silently keeps the last
of two equal keys and accepts a key without a value, data_mesh rejects both: in a query file
they are always mistakes.

Sequence file: one statement name per line, in execution order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from data_mesh.errors import QueryFileError
from data_mesh.identifiers import is_safe_identifier
from data_mesh.metadata.sql_policy import CheckedSql, Slot, UnsafeSqlError, check_sql, check_tables

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


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


def _where(statement: Statement, source: str) -> str:
    return f"{source}:{statement.line}: statement {statement.name!r}"


def check_query_only(statement: Statement, source: str) -> CheckedSql:
    """One read-only query that passes the SQL policy (`metadata.sql_policy`: no DDL or DML,
    no second statement, no comment, no function reaching the JVM, files or network); what
    sqlglot cannot parse is refused, not guessed at. Returns the tables it reads."""
    try:
        return check_sql(statement.sql, Slot.QUERY)
    except UnsafeSqlError as error:
        raise QueryFileError(f"{_where(statement, source)}: {error}") from None


@dataclass(frozen=True)
class QueryPlan:
    """The statements of a query file in sequence order; the last one is the output."""

    statements: tuple[Statement, ...]

    @property
    def output(self) -> Statement:
        return self.statements[-1]


def plan_sequence(
    query_text: str,
    query_source: str,
    sequence_text: str,
    sequence_source: str,
    tables: Iterable[str] | None = None,
) -> QueryPlan:
    """Parse and validate a query file and its sequence file into an execution plan.

    Every statement of the file is checked, in the sequence or not (another sequence may run
    it). With `tables` (the names the transformation's inputs are queried by), each statement
    may also read only those and the statements before it: earlier ones in the sequence, or,
    for a statement the sequence does not run, those above it in the file.
    """
    statements = parse_query_file(query_text, query_source)
    order = parse_sequence_file(sequence_text, sequence_source)
    missing = [name for name in order if name not in statements]
    if missing:
        raise QueryFileError(
            f"{sequence_source}: names {', '.join(repr(m) for m in missing)}, not defined in "
            f"{query_source} (defined: {', '.join(statements)})"
        )
    checked = {name: check_query_only(s, query_source) for name, s in statements.items()}
    if tables is not None:
        inputs = list(tables)
        earlier = {name: order[:index] for index, name in enumerate(order)}
        above = list(statements)
        for name, statement in statements.items():
            before = earlier.get(name, above[: above.index(name)])
            what = "an input of the transformation or a statement before it"
            try:
                check_tables(checked[name], [*inputs, *before], what, statement.sql)
            except UnsafeSqlError as error:
                raise QueryFileError(f"{_where(statement, query_source)}: {error}") from None
    return QueryPlan(statements=tuple(statements[name] for name in order))
