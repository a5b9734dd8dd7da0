"""Owners' phone and ID numbers at rest: the keys, the protected forms stored at import, the start-up step.

What the register keeps of a number (server/ballot/identity.py, docs/privacy.md): an HMAC of
its last four characters, its masked form, and — for the phone, only with a master key — the
full number encrypted for a notification channel.

The keys (like the result keys of server/services/result_keys.py):

- ``EVOTE_MASTER_KEY`` set: the identity (HMAC) key and the phone encryption key are derived
  from it with HKDF-SHA256 (two different ``info`` strings);
- not set: the identity key is 32 random bytes in ``{data_dir}/keys/identity_hmac.key`` (0600,
  made on first use), and full phones are **not stored at all**.

Changing the master key, or setting one after owners were imported without it, changes the
identity key: the hashes stored before no longer match anybody's digits.  Every row names the
key that made it (``identity_key_id``), so sign-in reports such a row as a server fault
instead of counting the owner's attempt as wrong; re-import the register to hash it anew.
"""
from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.ballot import identity
from server.ballot.identity import ProtectedIdentity
from server.repositories import locks
from server.repositories import personal_data as repo
from server.settings import Settings

log = logging.getLogger("evote.personal_data")

_HKDF_IDENTITY = b"evote identity hmac v1"
_HKDF_PHONE = b"evote phone encryption v1"
KEY_FILE = "identity_hmac.key"


class IdentityKeyError(RuntimeError):
    """The identity key cannot be loaded (unreadable or malformed key file)."""


@dataclass(frozen=True)
class IdentityKeys:
    hmac_key: bytes
    key_id: str
    phone_aead: AESGCM | None       # None: no master key, full phones are not stored

    def protect(self, *, community_id: str, version: int, owner_id: str, phone: str,
                id_number: str) -> ProtectedIdentity:
        return identity.protect_identity(self.hmac_key, self.phone_aead, community_id=community_id,
                                         version=version, owner_id=owner_id, phone=phone, id_number=id_number)

    def protect_new_owner(self, *, community_id: str, transfer_id: int, phone: str,
                          id_number: str) -> ProtectedIdentity:
        """:meth:`protect` for the new owner of a transfer during voting (owner id ``transfer:<id>``,
        register version 0: :func:`server.ballot.identity.transfer_owner_id`)."""
        return self.protect(community_id=community_id, version=identity.TRANSFER_VERSION,
                            owner_id=identity.transfer_owner_id(transfer_id), phone=phone, id_number=id_number)

    def key_id_for(self, protected: ProtectedIdentity) -> str | None:
        """The key id stored with ``protected``: None when it holds no hash (no number on record)."""
        return self.key_id if protected.phone_hmac is not None or protected.id_hmac is not None else None


def _derive(master_key: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key.encode("utf-8"))


def key_file_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / KEY_FILE


def _read_or_create_key_file(path: Path) -> bytes:
    """The 32-byte key in ``path`` (hex), made with 0600 on first use; safe against a racing worker."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_bytes(32).hex() + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)       # atomic, and refuses to replace a key another worker made
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise IdentityKeyError(f"identity key file {path} cannot be read: {exc}") from None
    if len(key) != 32:
        raise IdentityKeyError(f"identity key file {path} does not hold 32 bytes")
    return key


def identity_keys(settings: Settings) -> IdentityKeys:
    """The keys for ``settings`` (blocking on first use without a master key: the key file)."""
    if settings.master_key:
        key = _derive(settings.master_key, _HKDF_IDENTITY)
        return IdentityKeys(key, identity.key_id(key), AESGCM(_derive(settings.master_key, _HKDF_PHONE)))
    key = _read_or_create_key_file(key_file_path(settings))
    return IdentityKeys(key, identity.key_id(key), None)


_loaded: dict[tuple[str, Path], IdentityKeys] = {}


async def load_identity_keys(settings: Settings) -> IdentityKeys:
    """:func:`identity_keys`, read once per master key and data directory."""
    cache_key = (settings.master_key, settings.data_dir.resolve())
    keys = _loaded.get(cache_key)
    if keys is None:
        keys = await asyncio.to_thread(identity_keys, settings)
        _loaded[cache_key] = keys
    return keys


def owner_records(keys: IdentityKeys, community_id: str, version: int, owners) -> list[tuple]:
    """COPY records of the ``owner`` table for a register import (columns: ``register_repo.OWNER_COLUMNS``).

    ``owners``: server.ballot.register_table.OwnerDetails; their numbers end here.
    """
    records = []
    for o in owners:
        p = keys.protect(community_id=community_id, version=version, owner_id=o.owner_id, phone=o.phone,
                         id_number=o.id_number)
        named = p.phone_hmac is not None or p.id_hmac is not None
        records.append((community_id, version, o.owner_id, o.name, p.phone_hmac, p.id_hmac,
                        keys.key_id if named else None, p.phone_masked, p.id_masked, p.phone_enc,
                        bool(o.possession_evidence), o.possession_evidence))
    return records


async def protect_stored_identities(conn: asyncpg.Connection, settings: Settings) -> int:
    """The data step of migrations 0073 and 0075: convert every row still holding a clear number.

    Runs after the migrations (``evote migrate``, every command's database, the server's start),
    in one transaction: hashes, masks and (with a master key) encrypts the numbers of every
    register version's owners and of every transfer's new owner, blanks the clear columns and
    validates the constraints that keep them blank.  Once those are valid this is a single
    catalogue lookup.  Returns the rows converted (owners and new owners).
    """
    if await repo.clear_checks_validated(conn):
        return 0
    async with conn.transaction():
        await locks.xact_lock(conn, "personal-data", "protect")
        if await repo.clear_checks_validated(conn):   # another worker did it meanwhile
            return 0
        rows = await repo.owners_in_clear(conn)
        new_owners = await repo.new_owners_in_clear(conn)
        if rows or new_owners:
            keys = await load_identity_keys(settings)
            records = []
            for r in rows:
                p = keys.protect(community_id=r["community_id"], version=r["version"], owner_id=r["owner_id"],
                                 phone=r["phone"], id_number=r["id_number"])
                records.append((r["community_id"], r["version"], r["owner_id"], p.phone_hmac, p.id_hmac,
                                keys.key_id_for(p), p.phone_masked, p.id_masked, p.phone_enc))
            await repo.store_protected(conn, records)
            new_records = []
            for r in new_owners:
                p = keys.protect_new_owner(community_id=r["community_id"], transfer_id=r["transfer_id"],
                                           phone=r["phone"], id_number=r["id_number"])
                new_records.append((r["community_id"], r["meeting_id"], r["transfer_id"], p.phone_hmac, p.id_hmac,
                                    keys.key_id_for(p), p.phone_masked, p.id_masked, p.phone_enc))
            await repo.store_new_owners_protected(conn, new_records)
        await repo.validate_clear_checks(conn)
    converted = len(rows) + len(new_owners)
    if converted:
        log.info("personal data: %d owner and %d transfer new-owner rows converted to keyed hashes and masked "
                 "forms (%s)", len(rows), len(new_owners),
                 "full phones encrypted" if settings.master_key else "no master key: full phones not kept")
    return converted


async def notification_phone(conn: asyncpg.Connection, settings: Settings, *, community_id: str, version: int,
                             owner_id: str) -> str | None:
    """The full phone of an owner, for a notification channel: only with the master key it was sealed
    under; None when none is stored (no phone, or imported without a master key)."""
    sealed = await repo.sealed_phone(conn, community_id, version, owner_id)
    if sealed is None or not settings.master_key:
        return None
    keys = await load_identity_keys(settings)
    assert keys.phone_aead is not None
    return identity.open_phone(keys.phone_aead, community_id, version, owner_id, sealed)
