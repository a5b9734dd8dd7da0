"""Areas: exact decimal strings to integer centi-m² and back."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.ballot.amounts import AreaFormatError, format_area, parse_area


@pytest.mark.parametrize(
    ("text", "centi"),
    [
        ("88.5", 8850),
        ("102.37", 10237),
        ("100", 10000),
        ("100.0", 10000),
        ("100.00", 10000),
        ("0.01", 1),
        ("0.1", 10),
        ("007.5", 750),  # leading zeros are unambiguous
        ("123456789012.99", 12345678901299),
    ],
)
def test_parse_area_accepts_plain_decimals(text, centi):
    assert parse_area(text) == centi
    assert type(parse_area(text)) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0.00",
        "-3",
        "+3",
        "1.234",  # three decimals: refuse rather than round
        "1e2",
        "1E2",
        "1,234.5",  # thousands separator
        "1 234",
        " 88.5",
        "88.5 ",
        ".5",
        "5.",
        "88,5",  # decimal comma
        "８８.５",  # full-width digits
        "١٢",  # Arabic-Indic digits that \d would accept
        "nan",
        "inf",
        "1_000",
        "1234567890123",  # 13-digit integer part
    ],
)
def test_parse_area_rejects(text):
    with pytest.raises(AreaFormatError) as info:
        parse_area(text)
    assert isinstance(info.value, ValueError)
    assert "面积" in str(info.value)


def test_parse_area_rejects_non_strings():
    with pytest.raises(AreaFormatError):
        parse_area(88.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("centi", "text"),
    [(8850, "88.50"), (10237, "102.37"), (1, "0.01"), (0, "0.00"), (100, "1.00"), (-105, "-1.05"), (-5, "-0.05")],
)
def test_format_area_has_two_decimals(centi, text):
    assert format_area(centi) == text


@pytest.mark.parametrize("value", [1.5, True, "100", None])
def test_format_area_refuses_non_integers(value):
    with pytest.raises(TypeError):
        format_area(value)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**14 - 1))
def test_round_trip(centi):
    assert parse_area(format_area(centi)) == centi
