"""The append-only, hash-chained audit trail (one chain per community; '*' for global).

Each row's hash is ``sha256(prev_hash || canonical(row))`` where canonical is
the JSON of community_id, seq, at, actor, action, detail with sorted keys.
Appending takes a transaction-level advisory lock on the chain, so concurrent
writers (any worker) extend it one at a time; call it inside the transaction
that makes the change, so the change and its record commit together.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from server.repositories import audit as repo
from server.repositories import locks

GLOBAL = "*"
GENESIS = b"\x00" * 32


def _canonical(community_id: str, seq: int, at: datetime, actor: str, action: str, detail: dict) -> bytes:
    return json.dumps(
        {"community_id": community_id, "seq": seq, "at": at.isoformat(), "actor": actor,
         "action": action, "detail": detail},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"),
    ).encode()


def chain_hash(prev_hash: bytes, community_id: str, seq: int, at: datetime, actor: str,
               action: str, detail: dict) -> bytes:
    return hashlib.sha256(prev_hash + _canonical(community_id, seq, at, actor, action, detail)).digest()


async def append(conn: asyncpg.Connection, *, community_id: str | None, actor: str, action: str,
                 detail: dict | None = None) -> int:
    """Append one entry to the community's chain; returns its seq. Must run in a transaction."""
    chain = community_id or GLOBAL
    detail = json.loads(json.dumps(detail or {}, ensure_ascii=False, default=str))
    await locks.xact_lock(conn, "audit", chain)
    last = await repo.last_entry(conn, chain)
    seq = (last["seq"] + 1) if last else 1
    prev = bytes(last["hash"]) if last else GENESIS
    at = await repo.now_ms(conn)
    digest = chain_hash(prev, chain, seq, at, actor, action, detail)
    await repo.insert_entry(conn, chain=chain, seq=seq, at=at, actor=actor, action=action,
                            detail_json=json.dumps(detail, ensure_ascii=False), prev_hash=prev, digest=digest)
    return seq


@dataclass(frozen=True)
class ChainProblem:
    community_id: str
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"audit chain {self.community_id} seq {self.seq}: {self.problem}"


async def verify_chain(conn: asyncpg.Connection, community_id: str | None = None) -> tuple[int, list[ChainProblem]]:
    """Recompute every chain (or one); returns (entries checked, problems)."""
    rows = await repo.chain_rows(conn, community_id)
    problems: list[ChainProblem] = []
    chain, expected_seq, prev = "", 1, GENESIS    # chain ids are never empty
    for row in rows:
        if row["community_id"] != chain:
            chain, expected_seq, prev = row["community_id"], 1, GENESIS
        if row["seq"] != expected_seq:
            problems.append(ChainProblem(chain, row["seq"], f"expected seq {expected_seq} (a row is missing)"))
        if bytes(row["prev_hash"]) != prev:
            problems.append(ChainProblem(chain, row["seq"], "prev_hash does not match the previous row"))
        digest = chain_hash(bytes(row["prev_hash"]), chain, row["seq"], row["at"], row["actor"],
                            row["action"], json.loads(row["detail"]))
        if digest != bytes(row["hash"]):
            problems.append(ChainProblem(chain, row["seq"], "hash does not match the row's content"))
        prev, expected_seq = bytes(row["hash"]), row["seq"] + 1
    return len(rows), problems


async def verify_audit(pool: asyncpg.Pool, community_id: str | None = None) -> tuple[int, list[ChainProblem]]:
    """:func:`verify_chain`, plus the heads signed into meeting results: a chain whose last rows were
    removed is intact by itself, but no longer holds the entry a signed result names."""
    async with pool.acquire() as conn:
        count, problems = await verify_chain(conn, community_id)
        heads = _signed_heads(await repo.signed_audit_heads(conn, community_id))
        for chain, seq, digest, meeting_id in heads:
            stored = await repo.entry_hash(conn, chain, seq)
            if stored is None:
                problems.append(ChainProblem(chain, seq, f"entry signed into the result of meeting {meeting_id} "
                                                         "is missing (rows removed from the end?)"))
            elif stored.hex() != digest:
                problems.append(ChainProblem(chain, seq, f"hash differs from the one signed into the result "
                                                         f"of meeting {meeting_id}"))
    return count, problems


def _signed_heads(rows: list[asyncpg.Record]) -> list[tuple[str, int, str, str]]:
    """(chain, seq, hash hex, meeting id) of the audit head signed into each result that names one."""
    heads = []
    for row in rows:
        head = json.loads(row["signed_json"])["payload"].get("audit_head") or {}
        if head.get("seq"):
            heads.append((head["chain"], head["seq"], head["hash"], row["meeting_id"]))
    return heads
