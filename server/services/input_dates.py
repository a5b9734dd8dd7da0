"""Every date and time staff (and owners' proxies) send is read here: ISO 8601 text within a sane
range of years, so that a typo (``0202-03-01``, ``9999-12-31``) is refused with one code instead of
being stored, or overflowing date arithmetic later.

The range, 2000-01-01 to 2100-12-31 (docs/security.md "Limits"), covers every real meeting,
committee term and document date; a value outside it is 422 ``value_out_of_range`` naming the
field.  A text that is no date at all raises ``ValueError``, for the caller to refuse in its own
words.
"""
from __future__ import annotations

from datetime import date, datetime

from server.errors import ValidationFailed

MIN_YEAR = 2000
MAX_YEAR = 2100
RANGE_TEXT = f"{MIN_YEAR}-01-01 至 {MAX_YEAR}-12-31"


def check_year(moment: date, name: str) -> None:
    """422 ``value_out_of_range`` when ``moment`` (a date, or a datetime as given) lies outside the range."""
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValidationFailed(f"{name} 超出允许的日期范围（{RANGE_TEXT}）", code="value_out_of_range",
                               fields={name: RANGE_TEXT})


def iso_date(text: str, name: str) -> date:
    """``YYYY-MM-DD`` within the range; ``ValueError`` if it is not a date."""
    value = date.fromisoformat(text)
    check_year(value, name)
    return value


def iso_datetime(text: str, name: str) -> datetime:
    """An ISO 8601 time within the range (a time zone is the caller's to require); ``ValueError``
    if it is not a time."""
    value = datetime.fromisoformat(text)
    check_year(value, name)
    return value
