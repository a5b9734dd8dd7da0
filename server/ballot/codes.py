"""Ballot codes: what a QR code carries, and the identity check at sign-in (pure, no I/O).

A ballot code is 20 characters of Crockford's base32 alphabet (digits and capital
letters without I, L, O, U): 100 bits from ``secrets``.  Every character is in
WeChat's ``scene`` charset, is URL-safe (no escaping in ``/b/{code}``), and cannot
be misread (no 0/O, 1/I/L).  Only ``sha256(code)`` is stored.

Sign-in asks for the last four characters of the phone or ID number on record;
attempts are limited (``MAX_FAILED_ATTEMPTS``), then the code is locked: for each of
``LOCK_LADDER_SECONDS`` in turn (15 minutes, then 4 hours), then until staff unlock it.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from urllib.parse import urlsplit

from server.ballot.masking import last4

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"   # Crockford base32
CODE_LENGTH = 20                                 # 20 × 5 bits = 100 bits; ≤ 32 for WeChat's scene
MAX_CODE_LENGTH = 32
MAX_FAILED_ATTEMPTS = 5
LOCK_SECONDS = 15 * 60                           # the first lockout
# How long the 1st, 2nd, ... lockout lasts; the one after the last lasts until a staff unlock.
LOCK_LADDER_SECONDS = (LOCK_SECONDS, 4 * 60 * 60)

_CODE_RE = re.compile(f"^[{ALPHABET}]{{{CODE_LENGTH}}}$")
# Crockford decoding: letters people confuse with digits read as those digits.
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})
_DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
_LAST4_RE = re.compile(r"^[0-9A-Za-z]{4}$")


def generate_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(text: str) -> str | None:
    """The canonical code for what was scanned or typed, or None if it cannot be one.

    Case, spaces and hyphens are ignored; I/L read as 1 and O as 0 (Crockford).
    """
    if not isinstance(text, str) or len(text) > 64:
        return None
    cleaned = text.strip().replace("-", "").replace(" ", "").upper().translate(_CONFUSABLE)
    return cleaned if _CODE_RE.match(cleaned) else None


def code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode("ascii")).digest()


PUBLIC_URL_NOT_USABLE = (
    "二维码地址（EVOTE_PUBLIC_URL）{why}，业主用自己的手机扫码打不开选票页，印出的选票二维码将毫无用处。"
    "请先把 EVOTE_PUBLIC_URL 设为业主手机能访问的地址（如 https://vote.example.cn）再发放；"
    "如果只是测试，请注明为测试（test）")


def public_url_problem(public_url: str) -> str | None:
    """Why QR codes pointing at ``public_url`` would be useless on printed sheets, or None.

    Unset (empty), not http(s), or a host that only the server itself reaches: a loopback
    address (127.0.0.0/8, ::1, ``localhost``) or an unspecified one (0.0.0.0, ::).
    """
    if not public_url or not public_url.strip():
        return PUBLIC_URL_NOT_USABLE.format(why="未设置")
    parts = urlsplit(public_url.strip())
    host = (parts.hostname or "").rstrip(".").lower()
    if parts.scheme not in ("http", "https") or not host:
        return PUBLIC_URL_NOT_USABLE.format(why=f"“{public_url}”不是 http(s) 网址")
    if host == "localhost" or host.endswith(".localhost"):
        return PUBLIC_URL_NOT_USABLE.format(why=f"指向本机（{host}）")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback or address.is_unspecified:
        return PUBLIC_URL_NOT_USABLE.format(why=f"指向本机（{host}）")
    return None


def code_url(public_url: str, code: str) -> str:
    return f"{public_url.rstrip('/')}/b/{code}"


def device_hash(device_id: str | None) -> bytes | None:
    """What is stored about the device that redeemed a code (never the id itself)."""
    if not device_id:
        return None
    return hashlib.sha256(b"evote-device:" + device_id.encode("ascii")).digest()


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_RE.match(device_id))


def valid_last4(text: str) -> bool:
    return bool(_LAST4_RE.match(text))


def identity_matches(given: str, *, phone: str, id_number: str) -> bool:
    """Whether ``given`` is the last 4 of the phone or of the ID number, given in clear.

    The rule sign-in applies; the register keeps no number in clear, so the server checks
    the stored keyed hashes with :func:`server.ballot.identity.identity_matches_digests`.

    Both are compared in constant time (no early exit), and an empty record never
    matches: an owner without a phone or ID number on record cannot sign in this way.
    """
    given = given.strip().upper()
    ok = False
    for recorded in (last4(phone), last4(id_number)):
        if len(recorded) == 4:
            ok |= hmac.compare_digest(recorded.encode(), given.encode())
    return ok


def attempts_left(failed_attempts: int) -> int:
    return max(0, MAX_FAILED_ATTEMPTS - failed_attempts)
