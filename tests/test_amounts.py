"""Areas: exact decimal strings to integer milli-m² and back, with two or three decimals."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.ballot.amounts import AreaFormatError, area_ceiling, area_places, format_area, parse_area


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("88.5", 88500),
        ("102.37", 102370),
        ("71.125", 71125),
        ("100", 100000),
        ("100.0", 100000),
        ("100.00", 100000),
        ("100.000", 100000),
        ("0.01", 10),
        ("0.001", 1),
        ("0.1", 100),
        ("007.5", 7500),  # leading zeros are unambiguous
        ("123456789012.999", 123456789012999),
    ],
)
def test_parse_area_accepts_plain_decimals(text, milli):
    assert parse_area(text) == milli
    assert type(parse_area(text)) is int


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "0.00",
        "0.000",
        "-3",
        "+3",
        "1.2345",  # four decimals: refuse rather than round
        "0.0001",
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
    assert "面积" in str(info.value) and "至多三位小数" in str(info.value)


def test_parse_area_rejects_non_strings():
    with pytest.raises(AreaFormatError):
        parse_area(88.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("milli", "text"),
    [(88500, "88.50"), (102370, "102.37"), (10, "0.01"), (0, "0.00"), (1000, "1.00"), (-1050, "-1.05"),
     (-50, "-0.05")],
)
def test_format_area_has_two_decimals(milli, text):
    assert format_area(milli) == text
    assert format_area(milli, places=2) == text


@pytest.mark.parametrize(
    ("milli", "text"),
    [(71125, "71.125"), (88500, "88.500"), (1, "0.001"), (0, "0.000"), (-1050, "-1.050"), (-5, "-0.005")],
)
def test_format_area_with_three_decimals(milli, text):
    assert format_area(milli, places=3) == text


@pytest.mark.parametrize("milli", [71125, 1, 9, -5, 100001])
def test_format_area_refuses_to_round_to_two_decimals(milli):
    with pytest.raises(ValueError, match="2 decimals"):
        format_area(milli)


@pytest.mark.parametrize("places", [0, 1, 4, True, "2"])
def test_format_area_refuses_other_places(places):
    with pytest.raises(ValueError):
        format_area(1000, places)  # type: ignore[arg-type]


def test_area_places_is_three_when_any_area_needs_a_third_decimal():
    assert area_places([]) == 2
    assert area_places([88500, 102370, 100000]) == 2
    assert area_places([88500, 71125]) == 3
    assert area_places([parse_area("71.120")]) == 2  # the value, not how it was written
    with pytest.raises(TypeError):
        area_places([1.5])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("milli", "places", "ceiling"),
    [(1, 2, 10), (10, 2, 10), (11, 2, 20), (0, 2, 0), (-5, 2, 0), (-15, 2, -10), (71125, 3, 71125), (7, 3, 7)],
)
def test_area_ceiling(milli, places, ceiling):
    assert area_ceiling(milli, places) == ceiling
    format_area(ceiling, places)  # always printable


@pytest.mark.parametrize("value", [1.5, True, "100", None])
def test_format_area_refuses_non_integers(value):
    with pytest.raises(TypeError):
        format_area(value)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**15 - 1))
def test_round_trip(milli):
    places = area_places([milli])
    assert parse_area(format_area(milli, places)) == milli
    if places == 2:
        assert parse_area(format_area(milli, 3)) == milli
