"""What the register keeps of an owner's phone and ID number, and the sign-in check against it (pure).

Sign-in asks for the last four characters of the phone or of the ID number on record
(:func:`server.ballot.masking.last4`: digits, and an ID number's may end in X).  The
register keeps no number in clear, only:

- a keyed hash of those four characters: ``HMAC-SHA256(identity key, context)`` where the
  context binds them to their kind (phone or ID number), community and owner, so two owners
  with the same four digits get different hashes and a hash cannot be moved to another row;
- the masked display forms (``138****5678``, ``3505**********1234``);
- the full phone only encrypted (AES-256-GCM, :func:`seal_phone`) where a notification
  channel needs it, and only when a master key is configured.

The identity key and the phone key are loaded by ``server.services.personal_data``.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.ballot.masking import last4, mask_id_number, mask_phone

PHONE = "phone"
ID_NUMBER = "id_number"
KINDS = (PHONE, ID_NUMBER)
DIGEST_SIZE = 32
NONCE_SIZE = 12
_CONTEXT = b"evote identity last4 v1"
# A transfer's new owner (docs/meetings.md "Transfers during voting") is in no register version:
# their numbers are hashed under the owner id ``transfer:<transfer_id>`` (a register owner id
# has no ':', so no register owner shares it) and their phone sealed under register version 0.
TRANSFER_OWNER_PREFIX = "transfer:"
TRANSFER_VERSION = 0


@dataclass(frozen=True)
class ProtectedIdentity:
    """What is stored for one owner instead of their phone and ID number."""

    phone_hmac: bytes | None       # None: no phone on record
    id_hmac: bytes | None          # None: no ID number on record
    phone_masked: str
    id_masked: str
    phone_enc: bytes | None        # None: no phone, or no master key to encrypt it with


def key_id(key: bytes) -> str:
    """A short public name of an identity key (which key made a row's hashes)."""
    return hmac.new(key, b"evote identity key id", hashlib.sha256).hexdigest()[:16]


def last4_digest(key: bytes, kind: str, community_id: str, owner_id: str, four: str) -> bytes:
    """The keyed hash of four sign-in characters (upper case) of one owner's phone or ID number."""
    if kind not in KINDS:
        raise ValueError(f"unknown identity kind {kind!r}")
    message = b"\x00".join((_CONTEXT, kind.encode(), community_id.encode(), owner_id.encode(),
                            four.upper().encode()))
    return hmac.digest(key, message, "sha256")


def transfer_owner_id(transfer_id: int) -> str:
    """The owner id a transfer's new owner is hashed and sealed under: ``transfer:<transfer_id>``."""
    return f"{TRANSFER_OWNER_PREFIX}{transfer_id}"


def _digest_of(key: bytes, kind: str, community_id: str, owner_id: str, number: str) -> bytes | None:
    four = last4(number)
    return last4_digest(key, kind, community_id, owner_id, four) if len(four) == 4 else None


def phone_aad(community_id: str, version: int, owner_id: str) -> bytes:
    """What an encrypted phone is bound to: its community, register version and owner."""
    return f"evote phone v1\x00{community_id}\x00{version}\x00{owner_id}".encode()


def seal_phone(aead: AESGCM, community_id: str, version: int, owner_id: str, phone: str) -> bytes:
    """nonce (12 bytes) || AES-256-GCM ciphertext of the phone."""
    nonce = secrets.token_bytes(NONCE_SIZE)
    return nonce + aead.encrypt(nonce, phone.encode(), phone_aad(community_id, version, owner_id))


def open_phone(aead: AESGCM, community_id: str, version: int, owner_id: str, sealed: bytes) -> str:
    """The phone sealed by :func:`seal_phone`; raises cryptography's InvalidTag for another key or row."""
    return aead.decrypt(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:],
                        phone_aad(community_id, version, owner_id)).decode()


def protect_identity(key: bytes, aead: AESGCM | None, *, community_id: str, version: int, owner_id: str,
                     phone: str, id_number: str) -> ProtectedIdentity:
    """Hashes, masked forms and (with ``aead``) the sealed phone of one owner's numbers."""
    phone, id_number = phone.strip(), id_number.strip().upper()
    return ProtectedIdentity(
        phone_hmac=_digest_of(key, PHONE, community_id, owner_id, phone),
        id_hmac=_digest_of(key, ID_NUMBER, community_id, owner_id, id_number),
        phone_masked=mask_phone(phone) if phone else "",
        id_masked=mask_id_number(id_number) if id_number else "",
        phone_enc=seal_phone(aead, community_id, version, owner_id, phone) if aead is not None and phone else None,
    )


def identity_matches_digests(key: bytes, given: str, *, community_id: str, owner_id: str,
                             phone_hmac: bytes | None, id_hmac: bytes | None) -> bool:
    """Whether ``given`` is the last four of the phone or of the ID number whose hashes are stored.

    Both hashes are computed and compared in constant time (no early exit); a missing hash
    (nothing on record) never matches.  ``given`` is compared in upper case (an ID number's
    final X may be typed x).
    """
    four = given.strip().upper()
    ok = False
    for kind, stored in ((PHONE, phone_hmac), (ID_NUMBER, id_hmac)):
        computed = last4_digest(key, kind, community_id, owner_id, four)
        if stored is not None and len(stored) == DIGEST_SIZE:
            ok |= hmac.compare_digest(computed, bytes(stored))
    return ok
