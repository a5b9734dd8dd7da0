"""Areas as exact integers of centi-square-metres (0.01 m²).

Every area in evote is an ``int`` counting 0.01 m².  The register and the public
bundle write areas as decimal strings ("88.5", "102.37"); this module is the one
place that converts between the two, so no float ever touches a tally.
"""
from __future__ import annotations

import re

__all__ = ["CENTI_PER_M2", "AreaFormatError", "format_area", "parse_area"]

CENTI_PER_M2 = 100

# ASCII digits only: ``\d`` would also accept full-width and other Unicode digits,
# which look alike on paper but are not what the register means.  The integer
# part is capped at 12 digits (a trillion m²) so absurd input fails cleanly here
# instead of deep inside int().
_AREA_PATTERN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")


class AreaFormatError(ValueError):
    """An area string that is not a positive decimal with at most two decimals."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"面积 {text!r} 不是至多两位小数的正数（如 88.5、102.37）")


def parse_area(text: str) -> int:
    """Parse an area in m² to integer centi-m²: ``"88.5"`` → ``8850``.

    Accepted: ASCII digits, optionally a dot and one or two digits; the value must
    be greater than zero.  Rejected: signs, exponents, thousands separators,
    surrounding spaces, a bare dot (``"5."``, ``".5"``), more than two decimals.
    Rejecting instead of rounding keeps the register exactly as recorded.
    """
    if not isinstance(text, str):
        raise AreaFormatError(str(text))
    match = _AREA_PATTERN.fullmatch(text)
    if match is None:
        raise AreaFormatError(text)
    whole, fraction = match.group(1), match.group(2) or ""
    centi = int(whole) * CENTI_PER_M2 + int(fraction.ljust(2, "0"))
    if centi <= 0:
        raise AreaFormatError(text)
    return centi


def format_area(centi: int) -> str:
    """Format integer centi-m² as m² with exactly two decimals: ``8850`` → ``"88.50"``.

    Negative values are formatted with a leading minus (differences on a
    dashboard); ``bool`` is refused because ``True`` would silently print "0.01".
    """
    if not isinstance(centi, int) or isinstance(centi, bool):
        raise TypeError(f"area must be an int of centi-m², got {type(centi).__name__}")
    sign = "-" if centi < 0 else ""
    whole, fraction = divmod(abs(centi), CENTI_PER_M2)
    return f"{sign}{whole}.{fraction:02d}"
