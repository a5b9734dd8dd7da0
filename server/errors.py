"""Domain errors and their single JSON envelope.

Every refusal a client can see is an ``ApiError`` with a stable ``code`` (for
programs) and a Chinese ``message`` (for owners and staff).  The error
middleware in ``server.web.middleware`` turns them into
``{"error": {"code", "message", "fields"}}`` with the right HTTP status.
"""
from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(self, message: str | None = None, *, code: str | None = None,
                 fields: dict[str, Any] | None = None, status: int | None = None):
        self.message = message or self.message
        self.code = code or self.code
        self.fields = fields or {}
        if status is not None:
            self.status = status
        super().__init__(f"{self.code}: {self.message}")

    def envelope(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class BadRequest(ApiError):
    status, code, message = 400, "bad_request", "请求有误"


class ValidationFailed(ApiError):
    status, code, message = 422, "validation_failed", "提交的内容有误，请检查后重试"


class Unauthorized(ApiError):
    status, code, message = 401, "unauthorized", "请先登录"


class Forbidden(ApiError):
    status, code, message = 403, "forbidden", "您没有权限进行此操作"


class NotFound(ApiError):
    status, code, message = 404, "not_found", "找不到该内容"


class Conflict(ApiError):
    status, code, message = 409, "conflict", "操作与当前状态冲突"


class TooManyAttempts(ApiError):
    status, code, message = 429, "too_many_attempts", "尝试次数过多，请稍后再试"


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "提交的内容过大"


class ServiceUnavailable(ApiError):
    status, code, message = 503, "unavailable", "服务暂时不可用，请稍后再试"


def missing_field(name: str, *, label: str = "", where: str = "") -> ValidationFailed:
    """A required field that is absent or empty, in one wording: 请填写 + what is missing.

    ``label`` is the field's Chinese name for people (else the JSON ``name`` is shown), ``where``
    says whose field it is (e.g. "第 2 个议题的"); ``fields`` marks ``name`` 必填.
    """
    what = label or f"字段 {name}"
    return ValidationFailed(f"请填写{where}{what}", fields={name: "必填"})


def invalid_characters() -> BadRequest:
    """NUL or a lone surrogate in a body, path or query: refused at the edge, one wording."""
    return BadRequest("请求中含有不允许的字符（如空字符或无效的 Unicode 字符）", code="invalid_characters")
