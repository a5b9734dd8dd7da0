"""Masking personal data for anything shown outside the register itself."""
from __future__ import annotations


def mask_name(name: str) -> str:
    """张三丰 → 张**; a one-character name stays one star: 李 → *."""
    if not name:
        return ""
    if len(name) == 1:
        return "*"
    return name[0] + "*" * (len(name) - 1)


# The masked forms keep only the first three characters: the last four are what sign-in checks
# (server/services/signin.py), so no staff view may show them.
SHOWN_PREFIX = 3
# What an auditor sees instead of a masked phone or ID number.
HIDDEN_FROM_AUDITORS = "已隐去"
# Staff roles that see no masked phone or ID number at all.
ROLES_WITHOUT_NUMBERS = frozenset({"auditor"})


def mask_phone(phone: str) -> str:
    """13812345678 → 138********; fewer than 7 digits: all stars."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:SHOWN_PREFIX] + "*" * (len(digits) - SHOWN_PREFIX)


def mask_id_number(id_number: str) -> str:
    """350502199001011234 → 350***************; fewer than 8 characters: all stars."""
    if len(id_number) < 8:
        return "*" * len(id_number)
    return id_number[:SHOWN_PREFIX] + "*" * (len(id_number) - SHOWN_PREFIX)


def masked_for_role(masked: str, role: str) -> str:
    """A stored masked phone or ID number as a staff role may see it: auditors see none of it."""
    if role in ROLES_WITHOUT_NUMBERS:
        return HIDDEN_FROM_AUDITORS if masked else ""
    return masked


def last4(value: str) -> str:
    """The last four digits/letters of a phone or ID number, as owners are asked for them."""
    cleaned = "".join(ch for ch in value if ch.isalnum()).upper()
    return cleaned[-4:]
