"""Output shaping `mapping`: two columns mapped to one name are refused when the configuration
is parsed (load and validate), not by Spark's AMBIGUOUS_REFERENCE at write time."""

from __future__ import annotations

import json
from typing import Any

import pytest

from data_mesh.catalog.errors import MetadataError
from data_mesh.catalog.transformation_configs import parse_transformation_config

SQL = {"query": "select a, b, c from src.t"}


def _parse(type_name: str, configuration: dict[str, Any]) -> None:
    parse_transformation_config(7, type_name, json.dumps(configuration), "shape_t")


@pytest.mark.parametrize(
    "mapping",
    [
        {"a": "X", "b": "X"},
        # Spark compares column names case-insensitively.
        {"a": "X", "b": "x"},
    ],
)
def test_two_columns_mapped_to_one_target_are_refused(mapping: dict[str, str]) -> None:
    with pytest.raises(MetadataError) as error:
        _parse("sql", {**SQL, "mapping": mapping})
    message = str(error.value)
    assert message.startswith("Transformations row 7 (shape_t): Configuration (sql) is invalid")
    assert "mapping: " in message and "columns 'a' and 'b' are both mapped to" in message


def test_distinct_targets_and_swaps_of_unknown_columns_pass() -> None:
    _parse("sql", {**SQL, "mapping": {"a": "X", "b": "Y", "c": "c"}})
    _parse("properties_sequence", {"folder": "f", "que_name": "q", "seq_name": "s"})


@pytest.mark.parametrize(
    ("type_name", "configuration"),
    [
        (
            "aggregate",
            {
                "input_dataset": "i",
                "groupby_columns": ["country"],
                "agg_functions": {"revenue": "sum(amount)", "orders": "count(*)"},
                "mapping": {"orders": "REVENUE"},
            },
        ),
        (
            "select",
            {
                "input_dataset": "i",
                "columns": ["a", "b + 1 as revenue"],
                "mapping": {"a": "revenue"},
            },
        ),
    ],
)
def test_target_that_is_an_unmapped_result_column_is_refused(
    type_name: str, configuration: dict[str, Any]
) -> None:
    with pytest.raises(MetadataError, match=r"row 7 \(shape_t\).*already has a column 'revenue'"):
        _parse(type_name, configuration)


def test_target_of_a_column_that_is_renamed_away_passes() -> None:
    _parse(
        "select",
        {"input_dataset": "i", "columns": ["a", "b", "c + 1"], "mapping": {"a": "X", "b": "a"}},
    )
    _parse(
        "aggregate",
        {
            "input_dataset": "i",
            "groupby_columns": ["t.country", "upper(city)"],
            "agg_functions": {"n": "count(*)"},
            "mapping": {"country": "COUNTRY_CODE", "n": "N"},
        },
    )
