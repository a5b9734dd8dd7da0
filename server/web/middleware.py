"""The one error middleware, request logging and the headers of every response.

Domain errors become the JSON envelope; aiohttp's own HTTP errors (unknown
route, wrong method, body too large) get the same envelope; a lost or refused
database connection is a 503 with ``Retry-After``; anything else is a 500 with a
generic message: no stack trace or SQL text reaches a client.  Paths and query
strings with a NUL or a lone surrogate are refused before any handler sees
them, and a ballot code in a path is logged as a hash prefix (docs/security.md).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import time
from http import HTTPStatus

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
from aiohttp import http_exceptions, web, web_protocol

from server import appkeys
from server.ballot.text_checks import has_forbidden_characters
from server.errors import (
    ApiError,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    invalid_characters,
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


# Seconds a client is asked to wait after a 503 (every 503 carries it).
RETRY_AFTER_S = 5

# Connection-level database failures: the database is restarting, unreachable or the pool is
# exhausted.  The request did not happen; the client may retry (503 + Retry-After).
_UNAVAILABLE = (
    ConnectionError, OSError, asyncio.TimeoutError,
    asyncpg.exceptions.PostgresConnectionError,      # ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg_base.InternalClientError,                 # "cannot switch to state N" after a lost connection
    asyncpg_base.InterfaceError,                      # pool closing, connection released mid-query
)


def error_response(error: ApiError) -> web.Response:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if error.status == 503 else None
    return web.json_response(error.envelope(), status=error.status, headers=headers,
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
    if isinstance(exc, RecursionError):
        return BadRequest("请求内容嵌套过深", code="too_deep")
    if isinstance(exc, http_exceptions.HttpProcessingError):
        # aiohttp could not parse what a handler read: a multipart part with a malformed header, a
        # bad chunk.  The client sent it; its text is not echoed.
        return BadRequest("请求内容的格式不正确", code="malformed_body")
    if isinstance(exc, (asyncpg_base.DataError, asyncpg.exceptions.DataError, OverflowError)):
        # A value the database cannot hold (an integer beyond its column, a date beyond its range,
        # a NUL in text) that the edge did not catch: the caller's input, not the server.
        log.warning("value refused by the database: %s", exc.__class__.__name__)
        return ValidationFailed("提交的数值或日期超出允许范围", code="value_out_of_range")
    if isinstance(exc, UnicodeError):
        return invalid_characters()
    if isinstance(exc, _UNAVAILABLE):
        log.error("dependency unavailable: %s", exc.__class__.__name__)
        return ServiceUnavailable()
    log.exception("unhandled error", extra={"request_id": request_id})
    return ApiError("服务器内部错误，请稍后再试", code="internal_error", status=500,
                    fields={"request_id": request_id})


# Request ids only tell log lines apart: 16 hex digits from a generator seeded once per process, not
# read from the kernel per request (os.urandom was 2-4 % of the vote path's server time).
_request_ids = random.Random(os.urandom(16))


def new_request_id() -> str:
    return f"{_request_ids.getrandbits(64):016x}"


@web.middleware
async def error_middleware(request: web.Request, handler):
    request_id = request.headers.get("X-Request-Id") or new_request_id()
    request[appkeys.REQUEST_ID] = request_id
    started = time.perf_counter()
    status = 500
    code = None
    try:
        if _unsafe_request_text(request):
            raise invalid_characters()
        response = await handler(request)
        status = response.status
        if status == 503 and "Retry-After" not in response.headers and not response.prepared:
            response.headers["Retry-After"] = str(RETRY_AFTER_S)
        return response
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:   # redirects and the like pass
            status = exc.status
            raise
        error = _client_error(exc, request_id)
        status, code = error.status, error.code
        return error_response(error)
    finally:
        path = loggable_path(request)
        extra = {"method": request.method, "path": path, "status": status,
                 "ms": round((time.perf_counter() - started) * 1000, 1), "request_id": request_id}
        if code:
            extra["code"] = code
        log.info("%s %s %s", request.method, path, status, extra=extra)


def _unsafe_request_text(request: web.Request) -> bool:
    """A NUL or a lone surrogate in the path, a path parameter or the query string."""
    raw_path = request.raw_path           # the request target as sent: path and query string, undecoded
    if has_forbidden_characters(raw_path):
        return True
    if "%" not in raw_path:
        # Nothing is percent-decoded: the path, its parameters and the query's keys and values are made
        # of the target's own characters (HTTP's parser refuses a NUL or a non-ASCII byte in it).
        return False
    if has_forbidden_characters(request.path):
        return True
    if any(has_forbidden_characters(value) for value in request.match_info.values()):
        return True
    return any(has_forbidden_characters(key) or has_forbidden_characters(value)
               for key, value in request.query.items())


def code_digest(code: str) -> str:
    """What the log shows instead of a ballot code: ``#`` and the first 8 hex digits of its SHA-256."""
    return "#" + hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def loggable_path(request: web.Request) -> str:
    """The request path with any ballot code (a ``{code}`` path parameter, or whatever follows
    ``/b/``) replaced by its hash prefix: codes never reach the log."""
    path = request.path
    code = request.match_info.get("code")
    if code:
        return path.replace(code, code_digest(code))
    if path.startswith("/b/"):
        return "/b/" + code_digest(path[3:])
    return path


# ---------------------------------------------------------------- headers of every response

# No inline script may run: every page loads its script from files (a JSON data block is not script).
# Style attributes stay allowed: the dashboard sizes its bars with them.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SERVER_NAME = "evote"
# Responses that carry a token: never cached anywhere.
TOKEN_PATHS = frozenset({"/api/staff/login", "/api/ballot/redeem"})


def security_headers(secure: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Server": SERVER_NAME,
    }
    if secure:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def install_security_headers(app: web.Application, *, public_url: str) -> None:
    """Every response of ``app`` (JSON, files, streams, aiohttp's own errors) gets the headers
    above; HSTS only when the public URL is https."""
    headers = security_headers(public_url.lower().startswith("https://"))

    async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(headers)    # one call; replaces any of these a handler set
        if request.path in TOKEN_PATHS:
            response.headers["Cache-Control"] = "no-store"

    app.on_response_prepare.append(on_prepare)
    _quiet_protocol_errors(headers)


def _quiet_protocol_errors(headers: dict[str, str]) -> None:
    """aiohttp answers a request it cannot parse (a header over its size limit, a bad request
    line) itself, before any middleware, with the parser's message, which quotes the start of
    the offending header (a bearer token).  Answer with the status line only, and our headers."""
    original = web_protocol.RequestHandler.handle_error
    if getattr(original, "_evote_quiet", False):
        return

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None):
        if status != 500:
            try:
                message = f"{status} {HTTPStatus(status).phrase}"
            except ValueError:
                message = str(status)
        response = original(self, request, status, exc, message)
        response.headers.update(headers)
        return response

    handle_error._evote_quiet = True  # type: ignore[attr-defined]
    web_protocol.RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
