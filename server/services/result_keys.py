"""Per-community Ed25519 result keys: made on first use, rotated on request, never stored in the clear.

Where the private key lives (docs/verification.md, "Keys"):

- ``EVOTE_MASTER_KEY`` set: the raw private key is encrypted with AES-256-GCM
  under a key derived from the master key (HKDF-SHA256), with the community and
  key id as associated data, and stored in ``community_key.private_key_enc``.
  A database dump alone does not reveal it.
- no master key: the key is a PEM file ``{data_dir}/keys/result-{community}-{key_id}.pem``
  created with mode 0600, and the table names the file.

The public key and key id (first 16 hex of sha256 of the raw public key) are
public: ``GET /api/public/communities/{cid}/keys`` lists every key, retired ones
included, so old records keep verifying.  Creating and rotating a key are audited.
"""
from __future__ import annotations

import asyncio
import base64
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from server.ballot.signing import key_id as key_id_of
from server.ballot.signing import public_key_from_raw, public_key_pem, raw_public_key
from server.errors import NotFound
from server.repositories import communities as community_repo
from server.repositories import locks
from server.repositories import result_keys as repo
from server.services import audit
from server.settings import Settings

_HKDF_INFO = b"evote result-key encryption v1"


class ResultKeyError(RuntimeError):
    """A key that cannot be loaded (missing file, wrong master key)."""


@dataclass(frozen=True)
class ResultKey:
    community_id: str
    key_id: str
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()


def keys_dir(settings: Settings) -> Path:
    return settings.data_dir / "keys"


def _aead(settings: Settings) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        settings.master_key.encode("utf-8"))
    return AESGCM(key)


def _aad(community_id: str, key_id: str) -> bytes:
    return f"{community_id}\x00{key_id}".encode()


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())


def _write_key_file(path: Path, key: Ed25519PrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
        fh.flush()
        os.fsync(fh.fileno())


def _read_key_file(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ResultKeyError(f"result key file {path} is missing") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ResultKeyError(f"{path} is not an Ed25519 private key")
    return key


async def _insert_new_key(conn: asyncpg.Connection, settings: Settings, community_id: str,
                          actor: str) -> ResultKey:
    key = Ed25519PrivateKey.generate()
    kid = key_id_of(key.public_key())
    encrypted, key_file = None, None
    if settings.master_key:
        nonce = secrets.token_bytes(12)
        encrypted = nonce + _aead(settings).encrypt(nonce, _raw_private(key), _aad(community_id, kid))
    else:
        key_file = f"result-{community_id}-{kid}.pem"
        await asyncio.to_thread(_write_key_file, keys_dir(settings) / key_file, key)
    await repo.insert_key(conn, community_id=community_id, key_id=kid, public_key=raw_public_key(key.public_key()),
                          private_key_enc=encrypted, key_file=key_file, created_by=actor)
    return ResultKey(community_id, kid, key)


async def _load(settings: Settings, row: asyncpg.Record) -> ResultKey:
    community_id, kid = row["community_id"], row["key_id"]
    if row["private_key_enc"] is not None:
        if not settings.master_key:
            raise ResultKeyError(f"result key {kid} is encrypted but EVOTE_MASTER_KEY is not set")
        blob = bytes(row["private_key_enc"])
        try:
            raw = _aead(settings).decrypt(blob[:12], blob[12:], _aad(community_id, kid))
        except Exception:  # cryptography's InvalidTag: wrong master key or a changed row
            raise ResultKeyError(f"result key {kid} cannot be decrypted with this EVOTE_MASTER_KEY") from None
        key = Ed25519PrivateKey.from_private_bytes(raw)
    else:
        key = await asyncio.to_thread(_read_key_file, keys_dir(settings) / row["key_file"])
    if key_id_of(key.public_key()) != kid or raw_public_key(key.public_key()) != bytes(row["public_key"]):
        raise ResultKeyError(f"result key {kid} does not match its public key")
    return ResultKey(community_id, kid, key)


async def active_key(conn: asyncpg.Connection, settings: Settings, community_id: str, *,
                     actor: str) -> ResultKey:
    """The community's signing key, made (and audited) on first use.  Run in a transaction."""
    await locks.xact_lock(conn, "result-key", community_id)
    row = await repo.active_key(conn, community_id)
    if row is not None:
        return await _load(settings, row)
    key = await _insert_new_key(conn, settings, community_id, actor)
    await audit.append(conn, community_id=community_id, actor=actor, action="result_key.create",
                       detail={"key_id": key.key_id, "storage": "encrypted" if settings.master_key else "file"})
    return key


async def rotate(conn: asyncpg.Connection, settings: Settings, community_id: str, *, actor: str) -> dict:
    """Retire the active key (if any) and make a new one; audited.  Run in a transaction."""
    await locks.xact_lock(conn, "result-key", community_id)
    old = await repo.retire_active_key(conn, community_id, rotated_by=actor)
    new = await _insert_new_key(conn, settings, community_id, actor)
    await audit.append(conn, community_id=community_id, actor=actor, action="result_key.rotate",
                       detail={"retired_key_id": old, "key_id": new.key_id})
    return {"retired_key_id": old, "key_id": new.key_id}


async def rotate_community_key(pool: asyncpg.Pool, settings: Settings, community_id: str, *, actor: str) -> dict:
    """:func:`rotate` in its own transaction, for an existing community."""
    async with pool.acquire() as conn, conn.transaction():
        if await community_repo.get_community(conn, community_id) is None:
            raise NotFound("小区不存在", code="community_not_found")
        return await rotate(conn, settings, community_id, actor=actor)


async def public_keys(conn: asyncpg.Connection, community_id: str) -> list[dict]:
    """Every key of the community, newest first: id, public key, created and retired times."""
    rows = await repo.public_keys(conn, community_id)
    out = []
    for row in rows:
        public = public_key_from_raw(bytes(row["public_key"]))
        out.append({
            "key_id": row["key_id"],
            "public_key": base64.b64encode(bytes(row["public_key"])).decode("ascii"),
            "public_key_pem": public_key_pem(public),
            "created_at": _iso(row["created_at"]),
            "retired_at": _iso(row["retired_at"]),
            "active": row["retired_at"] is None,
        })
    return out


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
