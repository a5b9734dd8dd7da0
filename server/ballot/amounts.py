"""Areas as exact integers of milli-square-metres (0.001 m²).

Every area in evote is an ``int`` counting 0.001 m²: registers and surveys give
areas with up to three decimals (voting-rules.md).  The register and the public
bundle write areas as decimal strings ("88.5", "102.37", "71.125"); this module
is the one place that converts between the two, so no float ever touches a
tally.

A register is printed with two decimals unless one of its areas needs three
(:func:`area_places`); :func:`format_area` refuses a value that the requested
number of places cannot show exactly, so nothing is ever rounded silently.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "AREA_PLACES",
    "MILLI_PER_M2",
    "AreaFormatError",
    "area_ceiling",
    "area_places",
    "format_area",
    "parse_area",
]

MILLI_PER_M2 = 1000
AREA_PLACES = (2, 3)  # the decimals an area is printed with
_UNIT_OF_PLACES = {2: 10, 3: 1}  # milli-m² in the last printed digit

# ASCII digits only: ``\d`` would also accept full-width and other Unicode digits,
# which look alike on paper but are not what the register means.  The integer
# part is capped at 12 digits (a trillion m²) so absurd input fails cleanly here
# instead of deep inside int().
_AREA_PATTERN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,3}))?")


class AreaFormatError(ValueError):
    """An area string that is not a positive decimal with at most three decimals."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"面积 {text!r} 不是至多三位小数的正数（如 88.5、102.37、71.125）")


def parse_area(text: str) -> int:
    """Parse an area in m² to integer milli-m²: ``"88.5"`` → ``88500``, ``"71.125"`` → ``71125``.

    Accepted: ASCII digits, optionally a dot and one to three digits; the value
    must be greater than zero.  Rejected: signs, exponents, thousands separators,
    surrounding spaces, a bare dot (``"5."``, ``".5"``), more than three
    decimals.  Rejecting instead of rounding keeps the register exactly as
    recorded.
    """
    if not isinstance(text, str):
        raise AreaFormatError(str(text))
    match = _AREA_PATTERN.fullmatch(text)
    if match is None:
        raise AreaFormatError(text)
    whole, fraction = match.group(1), match.group(2) or ""
    milli = int(whole) * MILLI_PER_M2 + int(fraction.ljust(3, "0"))
    if milli <= 0:
        raise AreaFormatError(text)
    return milli


def _check_int(value: object) -> None:
    # ``bool`` is refused because ``True`` would silently print "0.001".
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"area must be an int of milli-m², got {type(value).__name__}")


def _unit(places: int) -> int:
    unit = _UNIT_OF_PLACES.get(places) if isinstance(places, int) and not isinstance(places, bool) else None
    if unit is None:
        raise ValueError(f"an area is printed with 2 or 3 decimals, not {places!r}")
    return unit


def format_area(value: int, places: int = 2) -> str:
    """Format integer milli-m² as m² with exactly ``places`` (2 or 3) decimals.

    ``88500`` → ``"88.50"``; ``71125`` with ``places=3`` → ``"71.125"``.  A value
    that two decimals cannot show exactly (``71125`` with ``places=2``) raises
    ``ValueError`` instead of being rounded: print the register's areas with
    :func:`area_places`, or round a shortfall up with :func:`area_ceiling`
    first.  Negative values are formatted with a leading minus (differences on
    a dashboard).
    """
    _check_int(value)
    unit = _unit(places)
    if value % unit:
        raise ValueError(f"area {value} milli-m² cannot be shown exactly with {places} decimals")
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), MILLI_PER_M2)
    return f"{sign}{whole}.{fraction // unit:0{places}d}"


def area_places(areas: Iterable[int]) -> int:
    """The decimals a register's areas are printed with: 3 when any of them needs a third, else 2."""
    for value in areas:
        _check_int(value)
        if value % _UNIT_OF_PLACES[2]:
            return 3
    return 2


def area_ceiling(value: int, places: int = 2) -> int:
    """The smallest value ``>= value`` that ``places`` decimals show exactly.

    For what must be reached ("还需 … m²"): a need of 0.001 m² shown with two
    decimals is 0.01 m², never 0.00.
    """
    _check_int(value)
    unit = _unit(places)
    return -(-value // unit) * unit
