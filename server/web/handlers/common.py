"""What every handler uses: reading JSON bodies and their fields, JSON responses, the app's pool, settings and effects."""
from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson
from aiohttp import web

from server import appkeys
from server.ballot.text_checks import has_forbidden_characters
from server.errors import BadRequest, NotFound, PayloadTooLarge, ValidationFailed, invalid_characters, missing_field
from server.services.effects import Effects

# Limits of every JSON body (docs/security.md): nesting depth, integers (PostgreSQL bigint).
MAX_JSON_DEPTH = 32
INT8_MIN, INT8_MAX = -(2 ** 63), 2 ** 63 - 1
INT4_MIN = -(2 ** 31)


class _OutOfRange(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:            # before int(): a 5,000-digit number costs time and trips Python's limit
        raise _OutOfRange(text[:20])
    value = int(text)
    if not INT8_MIN <= value <= INT8_MAX:
        raise _OutOfRange(text)
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text[:20])
    return value


def _refuse_constant(text: str) -> Any:
    raise json.JSONDecodeError(f"{text} is not JSON", text, 0)


def _check_tree(data: Any) -> None:
    """Depth and characters of a parsed body, iteratively (no recursion on hostile input)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            if has_forbidden_characters(node):
                raise invalid_characters()
            continue
        if not isinstance(node, (dict, list)):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"请求内容嵌套过深（最多 {MAX_JSON_DEPTH} 层）", code="too_deep")
        if isinstance(node, dict):
            stack.extend((key, depth) for key in node)
            stack.extend((value, depth + 1) for value in node.values())
        else:
            stack.extend((value, depth + 1) for value in node)


# What a body may hold for orjson alone to parse it within the limits (see parse_json_body): no ``\u``
# escape and no run of 19 digits anywhere, at most MAX_JSON_DEPTH brackets.
_NOT_PLAIN = re.compile(rb"\\u|[0-9]{19}")


def parse_json_body(body: bytes) -> Any:
    """JSON text within the limits above: too deep → 400 too_deep, a number beyond bigint (or
    not finite) → 422 value_out_of_range, a NUL or lone surrogate in any string → 400
    invalid_characters, anything else not JSON → 400 invalid_json."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH and _NOT_PLAIN.search(body) is None:
        # Most bodies (an owner's ballot): orjson, and no walk of the result.  Within the limits by
        # construction: no deeper than its brackets; a NUL or a surrogate in a string needs a \u escape
        # (orjson refuses raw control characters and surrogates in UTF-8); an integer of at most 18
        # digits fits bigint; orjson refuses a number that is infinite as a double.  Anything orjson
        # refuses is parsed again below, which says why (tests/test_json_body.py compares both).
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    return parse_json_checked(body)


def parse_json_checked(body: bytes) -> Any:
    """``parse_json_body`` the long way: json with hooks for the numbers, then a walk of the result."""
    try:
        data = json.loads(body, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(f"请求内容嵌套过深（最多 {MAX_JSON_DEPTH} 层）", code="too_deep") from None
    except _OutOfRange:
        raise ValidationFailed("提交的数值超出允许范围", code="value_out_of_range") from None
    except (UnicodeDecodeError, ValueError):          # JSONDecodeError is a ValueError
        raise BadRequest("请求内容不是有效的 JSON", code="invalid_json") from None
    _check_tree(data)
    return data


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object; a clear 4xx otherwise (limits: ``parse_json_body``)."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    if not body:
        raise BadRequest("请求内容为空", code="empty_body")
    data = parse_json_body(body)
    if not isinstance(data, dict):
        raise BadRequest("请求内容必须是 JSON 对象", code="invalid_json")
    return data


def field(data: dict, name: str, kind: type | tuple, *, required: bool = True, default: Any = None,
          max_length: int | None = None, min_value: int = INT4_MIN, max_value: int = 2 ** 31 - 1) -> Any:
    """One typed field of a JSON body, with a Chinese message naming it when wrong; an integer
    must lie within [min_value, max_value] (by default a PostgreSQL integer column's range)."""
    if name not in data or data[name] is None:
        if required:
            raise missing_field(name)
        return default
    value = data[name]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ValidationFailed(f"字段 {name} 类型不正确", fields={name: "类型不正确"})
    if isinstance(value, int) and not isinstance(value, bool) and not min_value <= value <= max_value:
        raise ValidationFailed(f"字段 {name} 超出允许范围", code="value_out_of_range",
                               fields={name: f"{min_value}–{max_value}"})
    if max_length is not None and isinstance(value, (str, list)) and len(value) > max_length:
        raise ValidationFailed(f"字段 {name} 过长", fields={name: f"最多 {max_length}"})
    return value


# orjson writes what json.dumps(ensure_ascii=False, default=str) writes, without its spaces (UTF-8, the
# same escapes); datetimes, dataclasses and subclasses of str/int still go through str() as before.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps_bytes(data: Any) -> bytes:
    """JSON as UTF-8 bytes: orjson (a fifth of json's time on the vote path's answers); json for what
    orjson refuses (an integer beyond 64 bits, a key that is not a string)."""
    try:
        return orjson.dumps(data, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return json.dumps(data, ensure_ascii=False, default=str).encode()


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=dumps_bytes(data), status=status, headers=headers, content_type="application/json",
                        charset="utf-8")


def pool(request: web.Request):
    return request.app[appkeys.DB_POOL]


def settings(request: web.Request):
    return request.app[appkeys.SETTINGS]


def effects(request: web.Request) -> Effects:
    return request.app[appkeys.EFFECTS]


INT4_MAX = 2_147_483_647


def int_query(request: web.Request, name: str, *, default: int | None, min_value: int,
              max_value: int = INT4_MAX) -> int | None:
    """An integer query parameter (ASCII digits only: ``²`` or ``١`` are digits to Python but not to
    ``int``), within [min_value, max_value]; 422 naming the range otherwise, ``default`` when absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not min_value <= int(raw) <= max_value:
        raise ValidationFailed(f"{name} 应为 {min_value}–{max_value} 的整数", fields={name: f"{min_value}–{max_value}"})
    return int(raw)


def int_path(request: web.Request, name: str, not_found_code: str, message: str) -> int:
    """A numeric id in the URL; anything that cannot be one (``abc``, ``0``, ``+1``, too large) is
    the same 404 as an id that does not exist, with that resource's code."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= INT4_MAX:
        raise NotFound(message, code=not_found_code)
    return int(raw)
