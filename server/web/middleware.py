"""The one error middleware and request logging.

Domain errors become the JSON envelope; aiohttp's own HTTP errors (unknown
route, wrong method, body too large) get the same envelope; anything else is a
500 with a generic message: no stack trace or SQL text reaches a client.
"""
from __future__ import annotations

import logging
import secrets
import time

import asyncpg
from aiohttp import web

from server import appkeys
from server.errors import ApiError

log = logging.getLogger("evote.http")

_HTTP_CODES = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "您没有权限进行此操作"),
    404: ("not_found", "找不到该内容"),
    405: ("method_not_allowed", "不支持该请求方式"),
    406: ("not_acceptable", "不支持请求的格式"),
    413: ("payload_too_large", "提交的内容过大"),
    415: ("unsupported_media_type", "不支持该内容格式"),
    429: ("too_many_attempts", "请求过于频繁，请稍后再试"),
}


def error_response(status: int, code: str, message: str, fields: dict | None = None,
                   headers: dict | None = None) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "fields": fields or {}}},
        status=status,
        headers=headers,
        dumps=_dumps,
    )


def _dumps(obj) -> str:
    import json

    return json.dumps(obj, ensure_ascii=False)


@web.middleware
async def error_middleware(request: web.Request, handler):
    request_id = request.headers.get("X-Request-Id") or secrets.token_hex(8)
    request[appkeys.REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    code = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as exc:
        status, code = exc.status, exc.code
        return error_response(exc.status, exc.code, exc.message, exc.fields)
    except web.HTTPException as exc:
        if exc.status < 400:
            status = exc.status
            raise
        status = exc.status
        code, message = _HTTP_CODES.get(exc.status, ("http_error", "请求无法处理"))
        if exc.status == 413:
            message = "提交的内容过大"
        return error_response(exc.status, code, message)
    except asyncpg.exceptions.IntegrityConstraintViolationError:
        # A service should have mapped this; refuse it cleanly rather than leak SQL.
        log.warning("unmapped constraint violation", exc_info=True)
        status, code = 409, "conflict"
        return error_response(409, "conflict", "操作与已有数据冲突，请刷新后重试")
    except (ConnectionError, asyncpg.exceptions.CannotConnectNowError, OSError) as exc:
        log.error("dependency unavailable: %s", exc.__class__.__name__)
        status, code = 503, "unavailable"
        return error_response(503, "unavailable", "服务暂时不可用，请稍后再试")
    except Exception:
        log.exception("unhandled error", extra={"request_id": request_id})
        status, code = 500, "internal_error"
        return error_response(500, "internal_error", "服务器内部错误，请稍后再试",
                              {"request_id": request_id})
    finally:
        extra = {"method": request.method, "path": request.path, "status": status,
                 "ms": round((time.perf_counter() - started) * 1000, 1), "request_id": request_id}
        if code:
            extra["code"] = code
        log.info("%s %s %s", request.method, request.path, status, extra=extra)
