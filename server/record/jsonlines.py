"""JSON that remembers where each value starts, so a message can name the line at fault.

meeting.json is parsed by the standard library's pure-Python JSON scanner with
hooks that note where each value starts (no JSON parser of our own).  Objects
come back as :class:`JsonObject` (with the line of each key's value) and arrays
as :class:`JsonArray` (with the line of each item); :func:`plain` strips them
to ordinary dicts and lists.  A key given twice in one object is refused.
"""
from __future__ import annotations

import bisect
import json
import json.decoder
import json.scanner
from collections.abc import Callable
from typing import Any

from server.record.format import BundleError

__all__ = ["JsonArray", "JsonObject", "is_int", "json_type", "load_json", "plain"]

# The pure-Python parts of the json package used below are undocumented and
# absent from the type stubs; these are their CPython 3.11 signatures, JSONObject's
# as called here: object_hook None and object_pairs_hook ``list``, so it returns the pairs.
ScanOnce = Callable[[str, int], tuple[Any, int]]
_json_object: Callable[
    [tuple[str, int], bool, ScanOnce, None, type[list[Any]], dict[str, str] | None],
    tuple[list[tuple[str, Any]], int],
] = (
    json.decoder.JSONObject  # type: ignore[attr-defined]  # undocumented, not in the stubs
)
_json_array: Callable[[tuple[str, int], ScanOnce], tuple[list[Any], int]] = (
    json.decoder.JSONArray  # type: ignore[attr-defined]  # undocumented, not in the stubs
)
_py_make_scanner: Callable[[json.JSONDecoder], ScanOnce] = (
    json.scanner.py_make_scanner  # type: ignore[attr-defined]  # undocumented, not in the stubs
)


class JsonObject(dict[str, Any]):
    """A JSON object that remembers its line and the line of each key's value."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of ``key``'s value, or of the object itself when the key is absent."""
        return self.key_lines.get(key, self.line)


class JsonArray(list[Any]):
    """A JSON array that remembers its line and each item's line."""

    line: int
    item_lines: list[int]


class _LineTrackingDecoder(json.JSONDecoder):
    """json's pure-Python scanner with hooks that record where values start.

    The stdlib parses objects through ``parse_object(…, scan_once, …)`` and
    calls ``scan_once`` at the start of every member value; wrapping it per
    object gives each key's line without writing a JSON parser.  Duplicate
    keys, which ``json`` would silently collapse, are refused.
    """

    def __init__(self, name: str, text: str) -> None:
        super().__init__()
        self._name = name
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.parse_object = self._parse_object
        self.parse_array = self._parse_array
        self.scan_once = _py_make_scanner(self)

    def line_at(self, position: int) -> int:
        return bisect.bisect_left(self._newlines, position) + 1

    def _parse_object(
        self,
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: ScanOnce,
        object_hook: object,
        object_pairs_hook: object,
        memo: dict[str, str] | None = None,
    ) -> tuple[JsonObject, int]:
        string, start = s_and_end
        value_starts: list[int] = []

        def tracking_scan(text: str, index: int) -> tuple[Any, int]:
            value_starts.append(index)
            return scan_once(text, index)

        pairs, end = _json_object(s_and_end, strict, tracking_scan, None, list, memo)
        result = JsonObject()
        result.line = self.line_at(start - 1)
        result.key_lines = {}
        for (key, value), value_start in zip(pairs, value_starts):
            if key in result:
                raise BundleError(self._name, self.line_at(value_start), f"键 {key!r} 重复")
            result[key] = value
            result.key_lines[key] = self.line_at(value_start)
        return result, end

    def _parse_array(self, s_and_end: tuple[str, int], scan_once: ScanOnce) -> tuple[JsonArray, int]:
        string, start = s_and_end
        item_starts: list[int] = []

        def tracking_scan(text: str, index: int) -> tuple[Any, int]:
            item_starts.append(index)
            return scan_once(text, index)

        values, end = _json_array(s_and_end, tracking_scan)
        result = JsonArray(values)
        result.line = self.line_at(start - 1)
        result.item_lines = [self.line_at(index) for index in item_starts[: len(values)]]
        return result, end


def load_json(name: str, text: str) -> Any:
    """Parse ``text`` (the file ``name``) with line tracking; bad JSON raises BundleError."""
    try:
        return _LineTrackingDecoder(name, text).decode(text)
    except json.JSONDecodeError as exc:
        raise BundleError(name, exc.lineno, f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, absurd nesting
        raise BundleError(name, 1, f"不是可用的 JSON：{exc}") from None


def plain(value: Any) -> Any:
    """Strip the line-tracking types so callers get ordinary dicts and lists."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def json_type(value: Any) -> str:
    """What a JSON value is, in Chinese, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "数字"
    if isinstance(value, str):
        return "字符串"
    if isinstance(value, list):
        return "数组"
    return "对象"
