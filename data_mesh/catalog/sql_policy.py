"""Metadata SQL is untrusted input: every SQL text of a metadata row or query file is parsed with
sqlglot (Spark dialect) and checked against an allow-list before it is stored (`data-mesh load`)
or used (`data-mesh validate`, the definitions build, a run).

Whoever may edit metadata must not reach what the run worker can: its JVM, environment
(`DATA_MESH_DDZ_PASSWORD`), file system or network. Spark SQL can do all of that
(`reflect('java.lang.System', 'getenv', ...)`, `parquet.`/path``), so only this is accepted:

- one statement of the kind the slot takes: a query (`sql`, `custom_sql`, query files) or a
  single expression (conditions, columns, aggregates, rule expressions), with no subquery
  inside an expression;
- no comment (`--` swallows the text data_mesh wraps around an expression; Spark nests
  `/* */` comments where other parsers do not, so where one ends is ambiguous) and no
  optimizer hint;
- text sqlglot cannot parse is refused: what is not understood cannot be checked;
- tables: only names the caller allows (the transformation's inputs, earlier statements of a
  query file, the checked DataSet) and CTEs in scope; no file paths, no `TRANSFORM ... USING`
  scripts, table-valued functions only from `TABLE_FUNCTIONS`;
- functions: only Spark built-ins in `ALLOWED_FUNCTIONS`, never a qualified name
  (`system.builtin.f`, `db.udf`); `DENIED_FUNCTIONS` says why each refused built-in is
  refused; any other name (a UDF, a typo) is refused;
- identifiers are ASCII: a look-alike letter (a Cyrillic `a`) is refused, as in every name of
  the metadata (`data_mesh.catalog.identifiers`).

A test runs Spark's `SHOW FUNCTIONS` and fails while a function is neither allowed nor denied,
so an upgrade of Spark is classified before its new functions can be used.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.spark import Spark
from sqlglot.errors import SqlglotError
from sqlglot.tokens import Token, TokenType

from data_mesh.catalog.errors import MetadataError


class UnsafeSqlError(ValueError):
    """Metadata SQL the policy refuses; the message says why and quotes the SQL."""


class Slot(enum.Enum):
    """What a piece of metadata SQL must be, as the code that runs it embeds it."""

    # spark.sql(text): `sql` query, `custom_sql` query, query file statements.
    QUERY = "query"
    # F.expr(text), or text wrapped in more SQL: filter/join conditions, aggregate
    # expressions, rule expressions (`NOT coalesce((<text>), TRUE)`).
    EXPRESSION = "expression"
    # selectExpr(text) / groupBy(F.expr(text)): an expression with an optional alias.
    NAMED_EXPRESSION = "named expression"


class _CheckedSpark(Spark):
    """Spark's dialect, keeping the name each function call was written with: sqlglot turns
    `nvl(a, b)` into COALESCE, but the name Spark resolves is the one written."""

    ORIGINAL_NAME_META_KEY = "data_mesh_name"


# Spark built-ins that cannot reach the JVM, the environment, files or the network (SHOW
# FUNCTIONS of Spark 4.3, operators left out), plus `try_cast`, which Spark parses as syntax.
def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


ALLOWED_FUNCTIONS = _names(
    """
    abs acos acosh add_months aes_decrypt aes_encrypt aggregate and any any_value
    approx_count_distinct approx_percentile approx_top_k approx_top_k_accumulate
    approx_top_k_combine approx_top_k_estimate array array_agg array_append array_compact
    array_contains array_distinct array_except array_insert array_intersect array_join
    array_max array_min array_position array_prepend array_remove array_repeat array_size
    array_sort array_union arrays_overlap arrays_zip ascii asin asinh assert_true atan atan2
    atanh avg base64 between bigint bin binary bit_and bit_count bit_get bit_length bit_or
    bit_xor bitmap_and_agg bitmap_bit_position bitmap_bucket_number bitmap_construct_agg
    bitmap_count bitmap_or_agg bool_and bool_or boolean bround btrim cardinality case cast cbrt
    ceil ceiling char char_length character_length chr coalesce collate collation collations
    collect_list collect_set collect_union concat concat_ws contains conv convert_timezone corr
    cos cosh cot count count_if count_min_sketch counter_diff covar_pop covar_samp crc32 csc
    cume_dist curdate current_catalog current_database current_date current_path current_schema
    current_time current_timestamp current_timezone current_user date date_add date_diff
    date_format date_from_unix_date date_part date_sub date_trunc dateadd datediff datepart day
    dayname dayofmonth dayofweek dayofyear decimal decode degrees dense_rank div double e
    element_at elt encode endswith equal_null every exists exp explode explode_outer expm1
    extract factorial filter find_in_set first first_value flatten float floor forall
    format_number format_string from_base32 from_csv from_json from_unixtime from_utc_timestamp
    from_xml get get_json_object getbit greatest grouping grouping_id hash hex
    histogram_numeric hll_sketch_agg hll_sketch_estimate hll_union hll_union_agg hmac hour
    hypot if ifnull ilike in initcap inline inline_outer input_file_block_length
    input_file_block_start input_file_name instr int is_valid_utf8 is_valid_variant
    is_variant_null isnan isnotnull isnull jaro_winkler_similarity json_array_length
    json_object_keys json_tuple kll_merge_agg_bigint kll_merge_agg_double kll_merge_agg_float
    kll_sketch_agg_bigint kll_sketch_agg_double kll_sketch_agg_float kll_sketch_get_n_bigint
    kll_sketch_get_n_double kll_sketch_get_n_float kll_sketch_get_quantile_bigint
    kll_sketch_get_quantile_double kll_sketch_get_quantile_float kll_sketch_get_rank_bigint
    kll_sketch_get_rank_double kll_sketch_get_rank_float kll_sketch_merge_bigint
    kll_sketch_merge_double kll_sketch_merge_float kll_sketch_to_string_bigint
    kll_sketch_to_string_double kll_sketch_to_string_float kurtosis lag last last_day
    last_value lcase lead least left len length levenshtein like listagg ln localtime
    localtimestamp locate log log10 log1p log2 lower lpad ltrim luhn_check make_date
    make_dt_interval make_interval make_time make_timestamp make_timestamp_ltz
    make_timestamp_ntz make_valid_utf8 make_ym_interval map map_concat map_contains_key
    map_entries map_filter map_from_arrays map_from_entries map_keys map_values map_zip_with
    mask max max_by md5 mean measure median min min_by minute mod mode
    monotonically_increasing_id month monthname months_between named_struct nanvl negative
    next_day not now nth_value ntile nullif nullifzero nvl nvl2 octet_length or overlay
    parse_json parse_url percent_rank percentile percentile_approx percentile_cont
    percentile_disc pi pmod posexplode posexplode_outer position positive pow power printf
    quarter quote radians raise_error rand randn random randstr range rank reduce regexp
    regexp_count regexp_extract regexp_extract_all regexp_instr regexp_like regexp_replace
    regexp_substr regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx
    regr_sxy regr_syy repeat replace reverse right rint rlike round row_number rpad rtrim
    schema_of_csv schema_of_json schema_of_variant schema_of_variant_agg schema_of_xml sec
    second sentences sequence session_user session_window sha sha1 sha2 shiftleft shiftright
    shiftrightunsigned shuffle sign signum sin sinh size skewness slice smallint some
    sort_array soundex space spark_partition_id split split_part sql_keywords sqrt st_asbinary
    st_geogfromwkb st_geomfromwkb st_setsrid st_srid stack startswith std stddev stddev_pop
    stddev_samp str_to_map string string_agg struct substr substring substring_index sum tan
    tanh theta_difference theta_intersection theta_intersection_agg theta_sketch_agg
    theta_sketch_estimate theta_union theta_union_agg time time_bucket time_diff
    time_from_micros time_from_millis time_from_seconds time_to_micros time_to_millis
    time_to_seconds time_trunc timestamp timestamp_micros timestamp_millis timestamp_nanos
    timestamp_seconds tinyint to_base32 to_binary to_char to_csv to_date to_json to_number
    to_time to_timestamp to_timestamp_ltz to_timestamp_ntz to_unix_timestamp to_utc_timestamp
    to_varchar to_variant_object to_xml transform transform_keys transform_values translate
    trim trunc try_add try_aes_decrypt try_avg try_cast try_divide try_element_at
    try_make_interval try_make_timestamp try_make_timestamp_ltz try_make_timestamp_ntz try_mod
    try_multiply try_parse_json try_parse_url try_subtract try_sum try_to_binary try_to_date
    try_to_number try_to_time try_to_timestamp try_url_decode try_validate_utf8
    try_variant_array_append try_variant_get try_variant_insert try_variant_set
    tuple_difference_double tuple_difference_integer tuple_difference_theta_double
    tuple_difference_theta_integer tuple_intersection_agg_double tuple_intersection_agg_integer
    tuple_intersection_double tuple_intersection_integer tuple_intersection_theta_double
    tuple_intersection_theta_integer tuple_sketch_agg_double tuple_sketch_agg_integer
    tuple_sketch_estimate_double tuple_sketch_estimate_integer tuple_sketch_summary_double
    tuple_sketch_summary_integer tuple_sketch_theta_double tuple_sketch_theta_integer
    tuple_union_agg_double tuple_union_agg_integer tuple_union_double tuple_union_integer
    tuple_union_theta_double tuple_union_theta_integer typeof ucase unbase64 unhex uniform
    unix_date unix_micros unix_millis unix_nanos unix_seconds unix_timestamp upper url_decode
    url_encode user uuid validate_utf8 var_pop var_samp variance variant_array_append
    variant_delete variant_explode variant_explode_outer variant_get variant_insert variant_set
    variant_strip_nulls vector_avg vector_cosine_similarity vector_inner_product
    vector_l2_distance vector_norm vector_normalize vector_sum version weekday weekofyear when
    width_bucket window window_time xpath xpath_boolean xpath_double xpath_float xpath_int
    xpath_long xpath_number xpath_short xpath_string xxhash64 year zeroifnull zip_with
    """
)

_JVM = "calls any Java method in the run worker's JVM (environment, files, secrets)"
_AVRO = "Avro functions can load a schema from a file or URL (option avroSchemaUrl)"
_PROTOBUF = "Protobuf functions read a descriptor file from the file system"
# Refused on purpose, with the reason; Spark built-ins unless said otherwise.
DENIED_FUNCTIONS: dict[str, str] = {
    "reflect": _JVM,
    "java_method": _JVM,
    "try_reflect": _JVM,
    "from_avro": _AVRO,
    "to_avro": _AVRO,
    "schema_of_avro": _AVRO,
    "from_protobuf": _PROTOBUF,
    "to_protobuf": _PROTOBUF,
    "python_worker_logs": "reads the logs of the run worker's Python processes",
    # A clause, not in SHOW FUNCTIONS: it makes table and function names from strings at run
    # time, past every check here.
    "identifier": "IDENTIFIER(...) names tables and functions at run time, unchecked",
}

# Table-valued functions a FROM clause may call: generators over values, no I/O.
TABLE_FUNCTIONS = _names(
    """
    range explode explode_outer inline inline_outer posexplode posexplode_outer stack
    json_tuple variant_explode variant_explode_outer
    """
)

_NAME_KEY = _CheckedSpark.ORIGINAL_NAME_META_KEY or ""
# Calls sqlglot parses with dedicated code (CAST, TRIM, CASE, TRANSFORM ...) keep no written
# name in the tree: their names are checked on the tokens instead, so `convert(...)` or
# `json_table(...)` (no Spark built-ins: a UDF of that name would run) cannot pass unnamed.
_KEYWORD_PARSED = frozenset(
    [
        *_CheckedSpark.parser_class.FUNCTION_PARSERS,
        *_CheckedSpark.parser_class.NO_PAREN_FUNCTION_PARSERS,
    ]
)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SHOWN = 160


@dataclass(frozen=True)
class CheckedSql:
    """What a checked text reads: table names (dotted, lower case) outside its CTEs."""

    tables: tuple[str, ...] = ()


def _shown(text: str) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= _SHOWN else flat[: _SHOWN - 3] + "...")


def check_sql(text: str, slot: Slot) -> CheckedSql:
    """The tables `text` reads, once it passed every rule for `slot`; else UnsafeSqlError
    naming the problem and quoting the SQL."""
    result = _analyse(text, slot)
    if isinstance(result, str):
        raise UnsafeSqlError(f"{result} in {_shown(text)}")
    return result


def check_tables(checked: CheckedSql, allowed: Iterable[str], what: str, text: str) -> None:
    """Refuse a table `checked` reads that is not in `allowed` (names Spark resolves without
    regard to case); `what` says what may be read, for the message."""
    names = {name.lower() for name in allowed}
    for table in checked.tables:
        if table not in names:
            raise UnsafeSqlError(
                f"reads table {table!r}, which is not {what} (allowed: "
                f"{', '.join(sorted(names)) or 'none'}) in {_shown(text)}"
            )


def check_query(text: str, allowed: Iterable[str], what: str) -> None:
    """A query (Slot.QUERY) reading only tables in `allowed`."""
    check_tables(check_sql(text, Slot.QUERY), allowed, what, text)


def check_configured_query(
    where: str, field: str, query: str, allowed: list[str], what: str
) -> None:
    """A query of metadata row `where`'s Configuration may read only `allowed` tables (and its
    CTEs): an input, not any table or view the Spark session or its catalog holds."""
    try:
        check_query(query, allowed, what)
    except UnsafeSqlError as error:
        raise MetadataError(f"{where}: Configuration.{field}: {error}") from error


@functools.lru_cache(maxsize=8192)
def _analyse(text: str, slot: Slot) -> CheckedSql | str:
    """A CheckedSql, or the problem; cached, since 10,000 products repeat many texts."""
    if not text.strip():
        return "empty SQL"
    try:
        tokens = _CheckedSpark().tokenize(text)
    except SqlglotError as error:
        return f"not Spark SQL that data_mesh can check ({_first_line(error)})"
    problem = _token_problem(tokens)
    if problem:
        return problem
    wrapped = text if slot is Slot.QUERY else f"SELECT {text}"
    try:
        trees = [tree for tree in sqlglot.parse(wrapped, read=_CheckedSpark) if tree is not None]
    except SqlglotError as error:
        return f"not Spark SQL that data_mesh can check ({_first_line(error)})"
    if len(trees) != 1:
        return "more than one SQL statement (';' separates statements)" if trees else "empty SQL"
    tree = trees[0]
    problem = (
        _statement_problem(tree)
        if slot is Slot.QUERY
        else _expression_problem(tree, named=slot is Slot.NAMED_EXPRESSION)
    )
    if problem:
        return problem
    problem = _identifier_problem(tree) or _function_problem(tree)
    if problem:
        return problem
    tables = _tables(tree)
    if isinstance(tables, str):
        return tables
    return CheckedSql(tables=tables)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _token_problem(tokens: list[Token]) -> str | None:
    for index, token in enumerate(tokens):
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        before = tokens[index - 1] if index else None
        call = after is not None and after.token_type == TokenType.L_PAREN
        name = token.text.strip("`")
        if call and token.token_type != TokenType.STRING and name.lower() in DENIED_FUNCTIONS:
            # Whatever sqlglot makes of it: a call of a denied name is refused.
            return _name_problem(name)
        if token.token_type == TokenType.HINT:
            return "an optimizer hint ('/*+ ... */'): set spark_config instead"
        if token.comments:
            return (
                "a SQL comment: '--' would swallow the SQL data_mesh adds after the text, and "
                "Spark nests '/* */' comments where other parsers do not, so neither is allowed "
                "(use the Description fields)"
            )
        after_dot = before is not None and before.token_type == TokenType.DOT
        if call and not after_dot and token.text.upper() in _KEYWORD_PARSED:
            problem = _name_problem(token.text)
            if problem:
                return problem
    return None


def _statement_problem(tree: exp.Expr) -> str | None:
    if isinstance(tree, exp.Query):
        return None
    kind = tree.name.upper() if isinstance(tree, exp.Command) else tree.key.upper()
    return f"only queries (SELECT ...) are allowed, found a {kind} statement"


def _expression_problem(tree: exp.Expr, *, named: bool) -> str | None:
    # The text was wrapped as `SELECT <text>`: anything but one projection (a FROM, a second
    # column, DISTINCT ...) came from the text and is not an expression.
    projections = tree.expressions if isinstance(tree, exp.Select) else []
    extra = [key for key, value in tree.args.items() if value and key != "expressions"]
    if not isinstance(tree, exp.Select) or extra or len(projections) != 1:
        return "not a single expression"
    projection = projections[0]
    if not named and isinstance(projection, exp.Alias | exp.Aliases | exp.Star):
        return "not a single expression (no alias or '*' here)"
    for node in projection.walk():
        if isinstance(node, exp.Query | exp.Subquery):
            return "a subquery: an expression may not read tables"
        if isinstance(node, exp.Table):
            return f"a table reference ({node.sql(dialect=_CheckedSpark)}) in an expression"
    return None


def _identifier_problem(tree: exp.Expr) -> str | None:
    for identifier in tree.find_all(exp.Identifier):
        if not identifier.name.isascii():
            return (
                f"identifier {identifier.name!r} holds non-ASCII characters (a look-alike "
                "letter?): names must be ASCII"
            )
    return None


def _name_problem(name: str) -> str | None:
    lower = name.strip("`").lower()
    if lower in DENIED_FUNCTIONS:
        return f"function {lower}() is not allowed: {DENIED_FUNCTIONS[lower]}"
    if lower not in ALLOWED_FUNCTIONS:
        return (
            f"function {name}() is not an allowed Spark built-in (user-defined and unknown "
            "functions are refused)"
        )
    return None


def _written_name(node: exp.Func) -> str | None:
    if isinstance(node, exp.Anonymous):
        return node.name
    name = node.meta.get(_NAME_KEY)
    return name if isinstance(name, str) else None


def _function_problem(tree: exp.Expr) -> str | None:
    if tree.find(exp.QueryTransform):
        return "TRANSFORM ... USING runs a script on the worker"
    for node in tree.find_all(exp.Func):
        parent = node.parent
        if isinstance(parent, exp.Dot) and parent.expression is node:
            return (
                f"qualified function name {parent.sql(dialect=_CheckedSpark)!r}: call built-ins "
                "by their plain name"
            )
        name = _written_name(node)
        if name is None:
            # Operators and syntax (AND, RLIKE, `x::int`, CASE, `array(...)[0]`) or a call
            # parsed by dedicated code, whose written name `_token_problem` checked.
            continue
        problem = _name_problem(name)
        if problem:
            return problem
        table_function = isinstance(parent, exp.Table) and parent.this is node
        if table_function and name.lower() not in TABLE_FUNCTIONS:
            return (
                f"table-valued function {name}() is not allowed (allowed: "
                f"{', '.join(sorted(TABLE_FUNCTIONS))})"
            )
    return None


def _tables(tree: exp.Expr) -> tuple[str, ...] | str:
    names: dict[str, None] = {}
    for table in tree.find_all(exp.Table):
        if isinstance(table.this, exp.Func):
            continue  # a table-valued function, checked with the functions
        parts = [part.name for part in table.parts]
        dotted = ".".join(parts)
        if any(not _PLAIN_NAME.fullmatch(part) for part in parts):
            if any(char in dotted for char in "/:\\"):
                return f"a direct file query ({table.sql(dialect=_CheckedSpark)}): read inputs"
            return f"table name {dotted!r} is not a plain identifier"
        if len(parts) == 1 and parts[0].lower() in _ctes_in_scope(table):
            continue
        names.setdefault(dotted.lower())
    return tuple(names)


def _ctes_in_scope(node: exp.Expr) -> set[str]:
    """CTE names `node` can see: every CTE of an enclosing query's WITH, except that inside a
    CTE's own body only the CTEs before it (and itself when RECURSIVE) are visible, as in
    Spark; a later one would resolve to a real table of that name."""
    visible: set[str] = set()
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            position = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            stop = position + 1 if parent.args.get("recursive") else position
            visible.update(cte.alias_or_name.lower() for cte in ctes[:stop])
        else:
            with_ = parent.args.get("with_") or parent.args.get("with")
            if isinstance(with_, exp.With) and child is not with_:
                visible.update(cte.alias_or_name.lower() for cte in with_.expressions)
        child, parent = parent, parent.parent
    return visible
