"""Fields of the election services' input, checked without I/O.

Nominations and the committee steps name each field in their messages by its
Chinese label (``请填写备案文号``); text is stripped.  Dates are ISO dates.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from server.errors import ValidationFailed, missing_field
from server.services.input_dates import iso_date

# The bodies an election forms (a matter of body "other" elects nobody to a standing body).
BODIES = ("committee", "supervisory")


def read_text(data: dict, name: str, *, required: bool = False, max_length: int = 200, label: str = "") -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise missing_field(name, label=label)
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{label or name}应为文字", fields={name: "应为文字"})
    if len(value) > max_length:
        raise ValidationFailed(f"{label or name}过长（最多 {max_length} 字）", fields={name: f"最多 {max_length} 字"})
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValidationFailed(f"{label or name}含有无效字符", fields={name: "无效字符"})
    return value.strip()


def read_body(data: dict) -> str:
    value = data.get("body")
    if value not in BODIES:
        raise ValidationFailed("请选择参选业主委员会（committee）或监事会（supervisory）", fields={"body": "无效"})
    return value


def read_flag(data: dict, name: str, label: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{label}应为 true 或 false", fields={name: "布尔值"})
    return value


def parse_date(value: Any, name: str, label: str) -> date:
    if not isinstance(value, str):
        raise ValidationFailed(f"请填写{label}（如 2026-05-01）", fields={name: "日期"})
    try:
        return iso_date(value, name)
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确（如 2026-05-01）", fields={name: "日期"}) from None
