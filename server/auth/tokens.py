"""EdDSA (Ed25519) tokens: staff sessions and owners' ballot tokens.

Every token is verified with ``algorithms=["EdDSA"]`` pinned, its ``typ``
header checked, and ``aud``, ``iss``, ``exp``, ``iat``, ``sub`` and ``jti``
required.  The signing key is one Ed25519 key shared by every worker: a PEM
file (``Settings.token_key_path``), created
on first start with O_EXCL so concurrent workers agree on one.
"""
from __future__ import annotations

import binascii
import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from server.errors import Unauthorized

STAFF_AUDIENCE = "evote-staff"
BALLOT_AUDIENCE = "evote-ballot"
STAFF_TYP = "evote-staff+jwt"
BALLOT_TYP = "evote-ballot+jwt"
_REQUIRED = ["exp", "iat", "iss", "aud", "sub", "jti"]
_LEEWAY_S = 5
_TOKEN = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def load_or_create_private_key(path: Path) -> Ed25519PrivateKey:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another worker won the race; read its key below
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            return key
    # The file may be written by another process right now: wait for a whole PEM.
    for _ in range(50):
        data = path.read_bytes()
        if data.rstrip().endswith(b"-----END PRIVATE KEY-----"):
            loaded = serialization.load_pem_private_key(data, password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            return loaded
        time.sleep(0.05)
    raise ValueError(f"{path} does not hold a PEM private key")


# Verified tokens, so an owner's page loads, status checks and vote do not each pay for the
# Ed25519 verification again (18 % of the server's time on the vote path).  Keyed by the exact
# token text; ``exp`` is checked again on every hit, revocation is checked by the callers as before.
_VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class TokenKeys:
    private_key: Ed25519PrivateKey
    issuer: str
    _verified: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False, compare=False)
    _headers: set = field(default_factory=set, init=False, repr=False, compare=False)

    @cached_property
    def public_key(self) -> Ed25519PublicKey:
        # Derived once: deriving it on every verify was 1 % of the vote path.
        return self.private_key.public_key()

    def issue(self, *, typ: str, audience: str, subject: str, ttl_s: int | None = None,
              expires_at: int | None = None, claims: dict | None = None) -> tuple[str, dict]:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": expires_at if expires_at is not None else now + int(ttl_s or 0),
            "jti": secrets.token_urlsafe(16),
        }
        payload.update(claims or {})
        token = jwt.encode(payload, self.private_key, algorithm="EdDSA", headers={"typ": typ})
        return token, payload

    def verify(self, token: str, *, typ: str, audience: str) -> dict:
        key = (token, typ, audience)
        cached = self._verified.get(key)
        if cached is not None:
            if cached["exp"] + 5 < time.time():   # the same 5 s leeway as jwt.decode below
                self._verified.pop(key, None)
                raise Unauthorized("登录已过期，请重新登录", code="token_expired")
            self._verified.move_to_end(key)
            return dict(cached)
        claims = self._accept_plain(token, typ=typ, audience=audience)
        if claims is None:
            claims = self._verify_signed(token, typ=typ, audience=audience)
        if isinstance(claims.get("exp"), int) and "nbf" not in claims:
            self._verified[key] = dict(claims)
            if len(self._verified) > _VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return claims

    def _accept_plain(self, token: str, *, typ: str, audience: str) -> dict | None:
        """The claims of a token exactly as this module issues it, when it is valid; None for anything
        else (then ``_verify_signed``, PyJWT, decides and says why).

        The same checks as PyJWT with the options below, for the one shape we issue: a header of
        exactly ``alg`` EdDSA and ``typ``, our own Ed25519 signature, ``exp`` an integer not past (5 s
        leeway), ``iat`` a number not in the future, no ``nbf``, ``iss`` ours, ``aud`` the audience (a
        string), ``sub`` and ``jti`` strings.  Without PyJWT's generic parsing a first-use token costs
        the signature check and little else (PyJWT's parsing was 9 % of the vote path's server time).
        Accepting here implies PyJWT would accept (tests/test_vote_path.py compares them).
        """
        shape = _TOKEN.fullmatch(token)
        if shape is None:
            return None
        parts = shape.groups()
        try:
            if (parts[0], typ) not in self._headers:     # the few headers seen, each decoded once
                header = orjson.loads(_b64decode(parts[0]))
                if (not isinstance(header, dict) or header.keys() != {"alg", "typ"} or header["alg"] != "EdDSA"
                        or header["typ"] != typ):
                    return None
                if len(self._headers) < 16:
                    self._headers.add((parts[0], typ))
            # Ed25519 signing is deterministic (RFC 8032): what this key signs these bytes with now is what
            # it signed them with when we issued the token.  Signing again and comparing in constant time
            # costs less than half a verification (72 against 164 µs here) and accepts exactly the tokens we
            # made; any other signature, valid or not, is left to PyJWT's full verification (None below).
            if not hmac.compare_digest(self.private_key.sign(f"{parts[0]}.{parts[1]}".encode("ascii")),
                                       _b64decode(parts[2])):
                return None
            claims = orjson.loads(_b64decode(parts[1]))
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            return None
        if not isinstance(claims, dict) or "nbf" in claims:
            return None
        now = time.time()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not (type(exp) is int and exp > now - _LEEWAY_S):
            return None
        if not ((type(iat) is int or type(iat) is float) and iat <= now + _LEEWAY_S):
            return None
        if (claims.get("iss") != self.issuer or type(claims.get("iss")) is not str
                or claims.get("aud") != audience or type(claims.get("aud")) is not str
                or type(claims.get("sub")) is not str or type(claims.get("jti")) is not str):
            return None
        return claims

    def _verify_signed(self, token: str, *, typ: str, audience: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != typ or header.get("alg") != "EdDSA":
                raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token")
            return jwt.decode(
                token,
                self.public_key,
                algorithms=["EdDSA"],
                audience=audience,
                issuer=self.issuer,
                options={"require": _REQUIRED},
                leeway=_LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("登录已过期，请重新登录", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token") from None


def _b64decode(segment: str) -> bytes:
    """base64url without padding (``segment`` is of its alphabet: see _TOKEN)."""
    return binascii.a2b_base64(segment.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-len(segment) % 4))
