"""Masking personal data for anything shown outside the register itself."""
from __future__ import annotations


def mask_name(name: str) -> str:
    """张三丰 → 张**; a one-character name stays one star: 李 → *."""
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_id_number(id_number: str) -> str:
    """350502199001011234 → 3505**********1234."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def last4(value: str) -> str:
    """The last four digits/letters of a phone or ID number, as owners are asked for them."""
    cleaned = "".join(ch for ch in value if ch.isalnum()).upper()
    return cleaned[-4:]
