r"""Parsing of seed 000's `.properties` query files and sequence files.

Both files are read exactly as `java.util.Properties.load(Reader)` reads them (`read_properties`;
`data_mesh_tests/test_properties_java.py` compares it with the Java class itself): lines end at
`\n`, `\r` or `\r\n`; leading spaces, tabs and form feeds are skipped; a line whose first other
character is `#` or `!` is a comment; a line ending in an odd number of backslashes continues on
the next line, whose leading whitespace is dropped; the key ends at the first unescaped `=`, `:`
or whitespace, then whitespace and at most one `=` or `:` and more whitespace separate it from
the value; `\t`, `\n`, `\r`, `\f`, `\uXXXX` and `\<char>` are escapes; trailing whitespace of a
value is kept.

data_mesh is stricter than Java where the Java reading hides a mistake; each rule is listed in
metadata/README.md ("Query files") and its error names the file, the line and the rule.

Query file: `name = select ...` entries. Sequence file: one statement name per line, in
execution order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from data_mesh.catalog.errors import QueryFileError
from data_mesh.catalog.identifiers import is_safe_identifier
from data_mesh.catalog.sql_policy import CheckedSql, Slot, UnsafeSqlError, check_sql, check_tables

_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
# Java's whitespace in .properties files; not str.isspace() (which includes e.g. \v and \u2028).
_WHITESPACE = " \t\f"
# Java's line terminators only: str.splitlines() would also split at \v, \f, \x1c-\x1e, \x85,
# \u2028 and \u2029, which Java keeps inside a line.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class Statement:
    name: str
    sql: str
    line: int


@dataclass(frozen=True)
class Entry:
    """One key/value pair as Java reads it; `line` is its first line in the file (1-based)."""

    line: int
    key: str
    value: str


def _ends_with_continuation(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _logical_lines(text: str, source: str) -> list[tuple[int, str]]:
    """Join continued natural lines; returns (first line number, logical line) pairs."""
    result: list[tuple[int, str]] = []
    lines = _LINE_BREAK.split(text)
    index = 0
    while index < len(lines):
        start = index
        line = lines[index].lstrip(_WHITESPACE)
        index += 1
        if not line or line[0] in "#!":
            continue
        parts = []
        while _ends_with_continuation(line):
            parts.append(line[:-1])
            # Java drops a backslash at the very end of the file; here the entry was cut short.
            if index >= len(lines) or (index == len(lines) - 1 and not lines[index]):
                raise QueryFileError(
                    f"{source}:{start + 1}: unterminated line continuation: the last line ends "
                    "with '\\' but nothing follows (data_mesh rule: no continuation at the end "
                    "of the file)"
                )
            line = lines[index].lstrip(_WHITESPACE)
            index += 1
        parts.append(line)
        logical = "".join(parts)
        if logical:  # a lone `\` followed by an empty line is no entry in Java either
            result.append((start + 1, logical))
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
            if len(digits) != 4 or not _HEX.issuperset(digits):
                raise QueryFileError(
                    f"{source}:{line}: malformed \\uXXXX escape (Java refuses it too)"
                )
            out.append(chr(int(digits, 16)))
            index += 6
            continue
        out.append(_ESCAPES.get(code, code))
        index += 2
    text = "".join(out)
    # `\uXXXX` escapes are UTF-16 code units, as in Java: join surrogate pairs into one
    # character. A lone surrogate is no character at all (UTF-8 cannot encode it).
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        raise QueryFileError(
            f"{source}:{line}: a \\uD800-\\uDFFF escape that is not half of a surrogate pair "
            "(data_mesh rule: text must be valid Unicode)"
        ) from None


def _split_key_value(logical: str, source: str, line: int) -> tuple[str, str]:
    """Java's `Properties.load0`: the key ends at the first unescaped `=`, `:` or whitespace;
    whitespace, at most one `=` or `:` and whitespace follow; the rest is the value."""
    index = 0
    while index < len(logical):
        char = logical[index]
        if char == "\\":
            index += 2
            continue
        if char in "=:" + _WHITESPACE:
            break
        index += 1
    key = logical[:index]
    rest = logical[index:]
    has_separator = bool(rest) and rest[0] in "=:"
    value_start = 1 if rest else 0
    while value_start < len(rest):
        char = rest[value_start]
        if char not in _WHITESPACE:
            if has_separator or char not in "=:":
                break
            has_separator = True
        value_start += 1
    return _unescape(key, source, line), _unescape(rest[value_start:], source, line)


def read_properties(text: str, source: str) -> list[Entry]:
    """The entries `java.util.Properties.load(Reader)` reads from `text`, in file order with
    repeated keys kept (Java keeps the last). Errors name `source` and the line."""
    return [
        Entry(line, *_split_key_value(logical, source, line))
        for line, logical in _logical_lines(text, source)
    ]


def parse_query_file(text: str, source: str) -> dict[str, Statement]:
    """Statements of a query file by name, in file order; `source` names the file in errors."""
    statements: dict[str, Statement] = {}
    for entry in read_properties(text, source):
        name, sql, line = entry.key, entry.value, entry.line
        if not is_safe_identifier(name):
            raise QueryFileError(
                f"{source}:{line}: statement name {name!r} must be a plain identifier: letters, "
                "digits and '_' (data_mesh rule: it becomes a view name)"
            )
        if name in statements:
            raise QueryFileError(
                f"{source}:{line}: duplicate statement {name!r} (first defined on line "
                f"{statements[name].line}; data_mesh rule: Java would silently keep the last)"
            )
        if not sql.strip():
            raise QueryFileError(
                f"{source}:{line}: statement {name!r} has an empty query (data_mesh rule: every "
                "entry needs a query)"
            )
        # The value as Java reads it, trailing whitespace included (SQL ignores it).
        statements[name] = Statement(name=name, sql=sql, line=line)
    if not statements:
        raise QueryFileError(f"{source}: no statements found")
    return statements


def parse_sequence_file(text: str, source: str) -> list[str]:
    """Statement names of a sequence file, in execution order: the keys, as Java reads them."""
    names: dict[str, int] = {}
    for entry in read_properties(text, source):
        name, line = entry.key, entry.line
        if entry.value:
            raise QueryFileError(
                f"{source}:{line}: {name!r} is followed by {entry.value!r} (data_mesh rule: a "
                "sequence line holds one statement name and nothing else)"
            )
        if not is_safe_identifier(name):
            raise QueryFileError(
                f"{source}:{line}: {name!r} is not a statement name (data_mesh rule: letters, "
                "digits and '_')"
            )
        if name in names:
            raise QueryFileError(
                f"{source}:{line}: {name!r} appears twice in the sequence (first on line "
                f"{names[name]}; data_mesh rule: each statement runs once)"
            )
        names[name] = line
    if not names:
        raise QueryFileError(f"{source}: the sequence is empty")
    return list(names)


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
