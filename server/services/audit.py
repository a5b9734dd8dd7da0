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
    last = await conn.fetchrow(
        "SELECT seq, hash FROM audit_log WHERE community_id = $1 ORDER BY seq DESC LIMIT 1", chain)
    seq = (last["seq"] + 1) if last else 1
    prev = bytes(last["hash"]) if last else GENESIS
    at = await conn.fetchval("SELECT date_trunc('milliseconds', clock_timestamp())")
    digest = chain_hash(prev, chain, seq, at, actor, action, detail)
    await conn.execute(
        """INSERT INTO audit_log (community_id, seq, at, actor, action, detail, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)""",
        chain, seq, at, actor, action, json.dumps(detail, ensure_ascii=False), prev, digest)
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
    if community_id:
        rows = await conn.fetch(
            "SELECT community_id, seq, at, actor, action, detail::text AS detail, prev_hash, hash "
            "FROM audit_log WHERE community_id = $1 ORDER BY community_id, seq", community_id)
    else:
        rows = await conn.fetch(
            "SELECT community_id, seq, at, actor, action, detail::text AS detail, prev_hash, hash "
            "FROM audit_log ORDER BY community_id, seq")
    problems: list[ChainProblem] = []
    chain, expected_seq, prev = None, 1, GENESIS
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
