"""What every handler uses: reading JSON bodies and their fields, JSON responses, the app's pool, settings and effects."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server import appkeys
from server.errors import BadRequest, NotFound, PayloadTooLarge, ValidationFailed, missing_field
from server.services.effects import Effects


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object; a clear 4xx otherwise."""
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    if not body:
        raise BadRequest("请求内容为空", code="empty_body")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadRequest("请求内容不是有效的 JSON", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest("请求内容必须是 JSON 对象", code="invalid_json")
    return data


def field(data: dict, name: str, kind: type | tuple, *, required: bool = True, default: Any = None,
          max_length: int | None = None) -> Any:
    """One typed field of a JSON body, with a Chinese message naming it when wrong."""
    if name not in data or data[name] is None:
        if required:
            raise missing_field(name)
        return default
    value = data[name]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise ValidationFailed(f"字段 {name} 类型不正确", fields={name: "类型不正确"})
    if max_length is not None and isinstance(value, (str, list)) and len(value) > max_length:
        raise ValidationFailed(f"字段 {name} 过长", fields={name: f"最多 {max_length}"})
    return value


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False, default=str))


def pool(request: web.Request):
    return request.app[appkeys.DB_POOL]


def settings(request: web.Request):
    return request.app[appkeys.SETTINGS]


def effects(request: web.Request) -> Effects:
    return request.app[appkeys.EFFECTS]


INT4_MAX = 2_147_483_647


def int_path(request: web.Request, name: str, not_found_code: str, message: str) -> int:
    """A numeric id in the URL; anything that cannot be one (``abc``, ``0``, ``+1``, too large) is
    the same 404 as an id that does not exist, with that resource's code."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= INT4_MAX:
        raise NotFound(message, code=not_found_code)
    return int(raw)
