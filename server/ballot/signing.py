"""Signing the result of a meeting: canonical JSON bytes and Ed25519, given key objects.

Pure, no I/O.  The signed document (``result.sig.json`` in a bundle) is::

    {"format": "evote-signed-result/1",
     "payload": {...},                # what is signed
     "key_id": "…", "public_key": "<base64 raw 32 bytes>",
     "signature": "<base64 Ed25519 signature of canonical_bytes(payload)>"}

``canonical_bytes`` is JSON with sorted keys, no insignificant whitespace and
UTF-8 text (not \\u escapes), so any language can rebuild the exact bytes.
Payloads hold only strings, integers, booleans, lists and objects (no floats).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "KEY_ID_HEX",
    "SIGNED_FORMAT",
    "SignatureProblem",
    "canonical_bytes",
    "key_id",
    "load_public_key",
    "public_key_from_raw",
    "public_key_pem",
    "raw_public_key",
    "sha256_hex",
    "sign_payload",
    "verify_signed",
]

SIGNED_FORMAT = "evote-signed-result/1"
KEY_ID_HEX = 16  # hex characters of sha256(raw public key) that name a key


class SignatureProblem(ValueError):
    """A signed document that does not verify; ``str()`` says why (Chinese)."""


def canonical_bytes(obj: Any) -> bytes:
    def no_floats(value: Any) -> Any:
        if isinstance(value, float):
            raise TypeError("floats are not allowed in signed payloads")
        raise TypeError(f"not JSON: {type(value).__name__}")

    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False, default=no_floats).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """The short name of a key: the first 16 hex characters of sha256(raw public key)."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:KEY_ID_HEX]


def public_key_from_raw(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """A public key from PEM, or from base64 / hex of the raw 32 bytes."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("不是 Ed25519 公钥")
        return key
    for decode in (bytes.fromhex, base64.b64decode):
        try:
            raw = decode(text.decode("ascii"))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if len(raw) == 32:
            return public_key_from_raw(raw)
    raise ValueError("无法识别的公钥格式（应为 PEM，或 32 字节公钥的 base64 / 十六进制）")


def sign_payload(private_key: Ed25519PrivateKey, payload: dict[str, Any]) -> dict[str, Any]:
    """The signed document of ``payload``."""
    public = private_key.public_key()
    signature = private_key.sign(canonical_bytes(payload))
    return {
        "format": SIGNED_FORMAT,
        "payload": payload,
        "key_id": key_id(public),
        "public_key": base64.b64encode(raw_public_key(public)).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }


def verify_signed(document: Any, public_key: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """Check a signed document; returns its payload or raises :class:`SignatureProblem`.

    With ``public_key`` (the one the community published) the document must be
    signed by that key; without, by the key it names itself — which only shows
    the record was not changed after signing, not who signed it.
    """
    if not isinstance(document, dict) or document.get("format") != SIGNED_FORMAT:
        raise SignatureProblem(f"签名文件格式应为 {SIGNED_FORMAT}")
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise SignatureProblem("签名文件缺少 payload")
    try:
        embedded = public_key_from_raw(base64.b64decode(document.get("public_key", ""), validate=True))
        signature = base64.b64decode(document.get("signature", ""), validate=True)
    except (ValueError, binascii.Error, TypeError):
        raise SignatureProblem("签名文件中的公钥或签名无法解码") from None
    if document.get("key_id") != key_id(embedded):
        raise SignatureProblem("签名文件中的 key_id 与公钥不符")
    if payload.get("key_id") != document.get("key_id"):
        raise SignatureProblem("payload 中的 key_id 与签名文件不符")
    key = embedded
    if public_key is not None:
        if key_id(public_key) != key_id(embedded):
            raise SignatureProblem(
                f"签名所用密钥 {key_id(embedded)} 不是所给公钥 {key_id(public_key)}")
        key = public_key
    try:
        key.verify(signature, canonical_bytes(payload))
    except InvalidSignature:
        raise SignatureProblem("签名无效：结果在签名后被改动，或不是用该密钥签名") from None
    return payload
