"""`read_properties` against `java.util.Properties.load(Reader)` itself, not a reading of its docs.

All texts are loaded by one JVM (`java/PropertiesDump.java`, started once: it costs seconds)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from data_mesh.catalog.errors import QueryFileError
from data_mesh.transforms.properties import read_properties

JAVA_DUMP = Path(__file__).parent / "java" / "PropertiesDump.java"

# Texts data_mesh must read exactly as Java does (the same pairs, or an error from both).
SAME_AS_JAVA: dict[str, str] = {
    "equals": "a=b\n",
    "whitespace_separator": "key value\n",
    "colon_separator": "a:b\n",
    "tab_and_form_feed_separators": "a\tb\nc\fd\n",
    "separator_then_another": "a = = b\nc==d\ne := f\ng : = h\n",
    "escaped_separators_in_key": "a\\=b = c\nd\\:e:f\ng\\ h i\n",
    "continuation_drops_leading_whitespace": "a = one \\\n    two \\\n\t\fthree\nb = 2\n",
    "trailing_whitespace_kept": "a = x  \nb = y\\t\nc = z \t\n",
    "comments": "# c\n! c\n  # indented\n\t! tab\na=1\n",
    "comment_backslash_does_not_continue": "! comment \\\nb=2\n# x \\\nc=3\n",
    "unicode_escapes": "a = \\u00e9\\u0041\n\\u0061b = v\n",
    "surrogate_pair_escape": "a = \\uD83D\\uDE00 \\ud83d\\ude00\n",
    "even_backslashes_do_not_continue": "a=b\\\\\nc=d\n",
    "odd_backslashes_continue": "a = b\\\\\\\nc\n",
    "cr_and_crlf": "a\r\nb = 2\rc = 3\r\n",
    "no_line_break_chars_of_python": "a = x\u2028y\x0bz\x85w\x1cq\u2029r\n",
    "continuation_then_empty_line": "a = 1\\\n\n b = 2\n",
    "lone_backslash_then_empty_line": "\\\n\nb = 1\n",
    "continuation_then_hash": "a = 1\\\n# not a comment\n",
    "continuation_then_blank_line_at_end": "a = 'x' \\\n   \n",
    "key_without_value": "a\nb =\nc   \n",
    "empty_key": "=v\n:w\n",
    "duplicates_kept_in_order": "a = 1\na = 2\n",
    "blank_lines_and_no_final_newline": "   \n\t\f\n a=1",
    "unknown_escapes": 'a = \\q\\b\\"\\\\ \\#\n',
    "control_escapes": "a = \\n\\r\\t\\f\n",
    "escaped_leading_spaces_in_value": "a=\\ \\ lead\n",
    "continuation_inside_key": "key\\\n  word = v\n",
    "byte_order_mark": "\ufeffa = 1\n",
    "continuation_with_crlf": "a = x\\\r\n  y\r\n",
    "literal_non_ascii": "a = \u00e9 \u00fc \u4e2d \U0001f600\n",
    "empty_file": "",
    "seed_000_style": (
        "df_driver = select * from analytics_sor1_cdz.sor1_driver_table\n\n\n"
        "df_target = select \\\n  a.user_id as UNQ_USER_ID, \\\n  a.user_name as NAME \\\n"
        "  from df_driver a\n"
    ),
    "malformed_unicode_escape_short": "a = x\\u12\n",
    "malformed_unicode_escape_letters": "a = x\\uZZZZ\n",
    "malformed_unicode_escape_in_key": "\\u00g1 = x\n",
}

# Texts Java reads but data_mesh refuses on purpose (metadata/README.md lists these rules):
# (text, the error's `file:line`, words of the rule).
STRICTER_THAN_JAVA: dict[str, tuple[str, str, str]] = {
    "continuation_at_end_of_file": ("b = 1\na = 1 \\", "f:2", "no continuation at the end"),
    "continuation_before_final_newline": ("a = 1 \\\n", "f:1", "no continuation at the end"),
    "lone_surrogate_escape": ("a = 1\nb = \\uD83D\n", "f:2", "valid Unicode"),
}


@pytest.fixture(scope="module")
def java_reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    java = shutil.which("java")
    if java is None:
        pytest.skip("no `java` on PATH (Spark needs it too)")
    folder = tmp_path_factory.mktemp("properties")
    texts = {**SAME_AS_JAVA, **{name: case[0] for name, case in STRICTER_THAN_JAVA.items()}}
    files = []
    for name, text in texts.items():
        file = folder / f"{name}.properties"
        file.write_bytes(text.encode("utf-8"))
        files.append(str(file))
    result = subprocess.run(
        [java, str(JAVA_DUMP), *files], capture_output=True, text=True, check=True, timeout=120
    )
    lines = result.stdout.splitlines()
    assert len(lines) == len(texts), result.stderr
    return {name: json.loads(line) for name, line in zip(texts, lines, strict=True)}


@pytest.mark.parametrize("name", list(SAME_AS_JAVA))
def test_reads_as_java_properties_does(name: str, java_reads: dict[str, dict[str, object]]) -> None:
    java = java_reads[name]
    try:
        ours: dict[str, object] = {
            "entries": [[e.key, e.value] for e in read_properties(SAME_AS_JAVA[name], "f")]
        }
    except QueryFileError as error:
        assert "error" in java, f"Java reads {java}, data_mesh refuses: {error}"
        assert "malformed \\uXXXX escape" in str(error)
        return
    assert ours == java


@pytest.mark.parametrize("name", list(STRICTER_THAN_JAVA))
def test_stricter_than_java_names_file_line_and_rule(
    name: str, java_reads: dict[str, dict[str, object]]
) -> None:
    text, where, rule = STRICTER_THAN_JAVA[name]
    assert "entries" in java_reads[name]  # Java accepts it: data_mesh's rule is its own
    with pytest.raises(QueryFileError, match=rf"^{where}: .*data_mesh rule: .*{rule}"):
        read_properties(text, "f")
