"""The one error middleware and request logging.

Domain errors become the JSON envelope; aiohttp's own HTTP errors (unknown
route, wrong method, body too large) get the same envelope; anything else is a
500 with a generic message: no stack trace or SQL text reaches a client.
"""
from __future__ import annotations

import json
import logging
import secrets
import time

import asyncpg
from aiohttp import web

from server import appkeys
from server.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
)

log = logging.getLogger("evote.http")

# aiohttp's own HTTP errors: the code and message of the domain error of that status, where there is one.
_HTTP_CODES: dict[int, tuple[str, str]] = {
    **{error.status: (error.code, error.message)
       for error in (BadRequest, Unauthorized, Forbidden, NotFound, PayloadTooLarge)},
    405: ("method_not_allowed", "不支持该请求方式"),
    406: ("not_acceptable", "不支持请求的格式"),
    415: ("unsupported_media_type", "不支持该内容格式"),
    429: ("too_many_attempts", "请求过于频繁，请稍后再试"),
}


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.envelope(), status=error.status,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


def _client_error(exc: Exception, request_id: str) -> ApiError:
    """What the client is told about a failed request (called while handling ``exc``)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, web.HTTPException):
        code, message = _HTTP_CODES.get(exc.status, ("http_error", "请求无法处理"))
        return ApiError(message, code=code, status=exc.status)
    if isinstance(exc, asyncpg.exceptions.IntegrityConstraintViolationError):
        # A service should have mapped this; refuse it cleanly rather than leak SQL.
        log.warning("unmapped constraint violation", exc_info=True)
        return Conflict("操作与已有数据冲突，请刷新后重试")
    if isinstance(exc, (ConnectionError, asyncpg.exceptions.CannotConnectNowError, OSError)):
        log.error("dependency unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable()
    log.exception("unhandled error", extra={"request_id": request_id})
    return ApiError("服务器内部错误，请稍后再试", code="internal_error", status=500,
                    fields={"request_id": request_id})


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
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:   # redirects and the like pass
            status = exc.status
            raise
        error = _client_error(exc, request_id)
        status, code = error.status, error.code
        return error_response(error)
    finally:
        extra = {"method": request.method, "path": request.path, "status": status,
                 "ms": round((time.perf_counter() - started) * 1000, 1), "request_id": request_id}
        if code:
            extra["code"] = code
        log.info("%s %s %s", request.method, request.path, status, extra=extra)
