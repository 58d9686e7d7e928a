"""The `.properties` query/sequence parser and the query-only rule."""

from __future__ import annotations

import pytest

from data_mesh.catalog.errors import QueryFileError
from data_mesh.transforms.properties import (
    parse_query_file,
    parse_sequence_file,
    plan_sequence,
)

SEED_QUERY = r"""
df_driver = select * from analytics_sor1_cdz.sor1_driver_table


df_payments = select * from analytics_sor1_cdz.sor_1payments_table


df_target = select \
  a.user_id as UNQ_USER_ID, \
  a.user_name as NAME, \
  b.amount as PAYMENT_AMOUNT \
  from df_driver a \
  left join df_payments b \
  on a.user_id = b.userid
"""


def test_seed_000_query_file_with_continuations() -> None:
    statements = parse_query_file(SEED_QUERY, "q.properties")
    assert list(statements) == ["df_driver", "df_payments", "df_target"]
    assert statements["df_target"].sql == (
        "select a.user_id as UNQ_USER_ID, a.user_name as NAME, b.amount as PAYMENT_AMOUNT "
        "from df_driver a left join df_payments b on a.user_id = b.userid"
    )
    assert statements["df_target"].line == 8


def test_comments_separators_and_escapes() -> None:
    text = (
        "# a comment\n"
        "! another comment \\\n"
        "a : select 1\n"
        "   b=select '\\u00e9\\t' as x\n"
        "e = select 'back\\\\slash'\n"
    )
    statements = parse_query_file(text, "f")
    # A comment line ending in a backslash does not continue (Java rules).
    assert statements["a"].sql == "select 1"
    assert statements["b"].sql == "select '\u00e9\t' as x"
    assert statements["e"].sql == "select 'back\\slash'"
    assert list(statements) == ["a", "b", "e"]


def test_escaped_space_key_is_rejected_as_a_name() -> None:
    with pytest.raises(QueryFileError, match=r"f:1: statement name 'c d'"):
        parse_query_file("c\\ d = select 2\n", "f")


def test_even_number_of_backslashes_does_not_continue() -> None:
    statements = parse_query_file("a = select '\\\\'\nb = select 2\n", "f")
    assert statements["a"].sql == "select '\\'"
    assert statements["b"].sql == "select 2"


def test_duplicate_key_is_an_error_naming_both_lines() -> None:
    with pytest.raises(QueryFileError, match=r"q.properties:3: duplicate statement 'a' .*line 1"):
        parse_query_file("a = select 1\n\na = select 2\n", "q.properties")


def test_whitespace_separates_key_and_value_as_in_java() -> None:
    # Java reads `df_a select 1` as key `df_a`, value `select 1`; so does data_mesh.
    statements = parse_query_file("df_a select 1\ndf\\u005fb:select 2\n", "q")
    assert statements["df_a"].sql == "select 1"
    assert statements["df_b"].sql == "select 2"
    # A forgotten `name =` makes the first SQL word the name: the SQL policy then names it.
    with pytest.raises(QueryFileError, match=r"q.properties:2: statement 'select': not Spark SQL"):
        plan_sequence("a = select 1\nselect * from t\n", "q.properties", "a\n", "s")


def test_trailing_whitespace_of_a_value_is_kept() -> None:
    assert parse_query_file("a = select 1 \t\n", "q")["a"].sql == "select 1 \t"
    plan = plan_sequence("a = select 1;  \n", "q", "a\n", "s")
    assert plan.output.sql == "select 1;  "


def test_line_breaks_are_javas_only() -> None:
    # str.splitlines() would end the line at the form feed and at U+2028; Java does not.
    statements = parse_query_file("a\fselect 'x\u2028y'\r\nb = select 2\rc = select 3", "q")
    assert statements["a"].sql == "select 'x\u2028y'"
    assert [s.line for s in statements.values()] == [1, 2, 3]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a = select 1\n\na = select 2\n", r"q:3: duplicate statement 'a' .*line 1.*rule"),
        ("a-b = select 1\n", r"q:1: statement name 'a-b' must be a plain identifier.*rule"),
        ("a = select 1\n= select 2\n", r"q:2: statement name '' must be a plain identifier"),
        ("a = select 1\nb\n", r"q:2: statement 'b' has an empty query.*rule"),
        ("a = select \\uD800\n", r"q:1: a \\uD800-\\uDFFF escape .*rule"),
    ],
)
def test_stricter_than_java_query_file_rules(text: str, error: str) -> None:
    with pytest.raises(QueryFileError, match=error):
        parse_query_file(text, "q")


def test_unterminated_continuation_is_an_error() -> None:
    with pytest.raises(QueryFileError, match=r"q.properties:1: unterminated line continuation"):
        parse_query_file("a = select \\\n  1 \\\n", "q.properties")


def test_empty_query_and_empty_file() -> None:
    with pytest.raises(QueryFileError, match="has an empty query"):
        parse_query_file("a =   \n", "q")
    with pytest.raises(QueryFileError, match="no statements found"):
        parse_query_file("# nothing\n\n", "q")


def test_sequence_file() -> None:
    assert parse_sequence_file("# order\ndf_a\n  df_b  \n\ndf_c\n", "s") == ["df_a", "df_b", "df_c"]
    assert parse_sequence_file("df_\\\n  a\r\ndf\\u005fb", "s") == ["df_a", "df_b"]
    with pytest.raises(QueryFileError, match=r"s:2: 'df_a' appears twice.*line 1.*rule"):
        parse_sequence_file("df_a\ndf_a\n", "s")
    with pytest.raises(QueryFileError, match="the sequence is empty"):
        parse_sequence_file("\n# x\n", "s")
    # Java reads `df_a df_b` as key `df_a` with value `df_b`: refused, not half-run.
    with pytest.raises(QueryFileError, match=r"s:2: 'df_a' is followed by 'df_b'.*rule"):
        parse_sequence_file("df_x\ndf_a df_b\n", "s")
    with pytest.raises(QueryFileError, match=r"s:1: 'df\.a' is not a statement name.*rule"):
        parse_sequence_file("df.a\n", "s")


def test_sequence_naming_a_missing_query() -> None:
    with pytest.raises(QueryFileError, match=r"seq.properties: names 'df_nope', not defined in q"):
        plan_sequence("df_a = select 1\n", "q", "df_a\ndf_nope\n", "seq.properties")


def test_plan_follows_sequence_order_and_last_is_output() -> None:
    plan = plan_sequence("b = select 2\na = select 1\n", "q", "a\nb\n", "s")
    assert [s.name for s in plan.statements] == ["a", "b"]
    assert plan.output.name == "b"


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DROP TABLE analytics.x", "DROP"),
        ("drop table if exists x", "DROP"),
        ("insert into t select * from s", "INSERT"),
        ("delete from t", "DELETE"),
        ("create table t as select 1 as a", "CREATE"),
        ("truncate table t", "TRUNCATE"),
    ],
)
def test_ddl_and_dml_are_rejected(sql: str, kind: str) -> None:
    with pytest.raises(
        QueryFileError, match=rf"q:1: statement 'a': only queries .* found a {kind}"
    ):
        plan_sequence(f"a = {sql}\n", "q", "a\n", "s")


def test_two_statements_in_one_entry_are_rejected() -> None:
    with pytest.raises(QueryFileError, match="more than one SQL statement"):
        plan_sequence("a = select 1; drop table x\n", "q", "a\n", "s")


def test_queries_with_ctes_and_samples_pass() -> None:
    plan = plan_sequence(
        "a = with x as (select 1 as v) select * from x\nb = select * from a tablesample (10 rows)\n",
        "q",
        "a\nb\n",
        "s",
    )
    assert len(plan.statements) == 2


def test_text_sqlglot_cannot_parse_is_refused_not_guessed_at() -> None:
    # The old fallback let any unparseable text starting with a query keyword through.
    with pytest.raises(QueryFileError, match="q:1: statement 'a': not Spark SQL that data_mesh"):
        plan_sequence("a = select from where (\n", "q", "a\n", "s")
