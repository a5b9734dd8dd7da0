"""Characters no request may carry: a NUL (PostgreSQL text cannot hold it) and a lone surrogate
(not encodable as UTF-8).  Checked at the edge (server/web) for paths, query strings and every
string of a JSON body."""
from __future__ import annotations

import re

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def has_forbidden_characters(text: str) -> bool:
    return _FORBIDDEN.search(text) is not None


_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: object) -> str:
    """A CSV cell a spreadsheet will not run as a formula: a cell beginning with = + - @, a tab or
    a carriage return gets a leading single quote (for CSVs people open; never for the signed
    public record, whose format is fixed)."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_LEADS) else text
