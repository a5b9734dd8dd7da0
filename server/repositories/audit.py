"""SQL for the audit trail (``audit_log``); the hash chain itself is computed in server.services.audit."""
from __future__ import annotations

from datetime import datetime

import asyncpg

ROW_COLUMNS = "community_id, seq, at, actor, action, detail::text AS detail, prev_hash, hash"


async def last_entry(conn: asyncpg.Connection, chain: str) -> asyncpg.Record | None:
    """The chain's newest row (seq, hash), or None for an empty chain."""
    return await conn.fetchrow(
        "SELECT seq, hash FROM audit_log WHERE community_id = $1 ORDER BY seq DESC LIMIT 1", chain)


async def now_ms(conn: asyncpg.Connection) -> datetime:
    """The server's time now, to the millisecond (what an entry's ``at`` holds)."""
    return await conn.fetchval("SELECT date_trunc('milliseconds', clock_timestamp())")


async def insert_entry(conn: asyncpg.Connection, *, chain: str, seq: int, at: datetime, actor: str, action: str,
                       detail_json: str, prev_hash: bytes, digest: bytes) -> None:
    await conn.execute(
        """INSERT INTO audit_log (community_id, seq, at, actor, action, detail, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8)""",
        chain, seq, at, actor, action, detail_json, prev_hash, digest)


async def chain_rows(conn: asyncpg.Connection, chain: str | None = None) -> list[asyncpg.Record]:
    """Every row of one chain (or of all chains), in chain and seq order; ``detail`` as stored text."""
    if chain:
        return await conn.fetch(
            f"SELECT {ROW_COLUMNS} FROM audit_log WHERE community_id = $1 ORDER BY community_id, seq", chain)
    return await conn.fetch(f"SELECT {ROW_COLUMNS} FROM audit_log ORDER BY community_id, seq")


async def entry_hash(conn: asyncpg.Connection, chain: str, seq: int) -> bytes | None:
    """The stored hash of one entry, or None when the row does not exist."""
    row = await conn.fetchrow("SELECT hash FROM audit_log WHERE community_id = $1 AND seq = $2", chain, seq)
    return bytes(row["hash"]) if row is not None else None


async def signed_audit_heads(conn: asyncpg.Connection, community_id: str | None) -> list[asyncpg.Record]:
    """(meeting_id, signed_json) of every signed result (of one community, or all)."""
    return await conn.fetch(
        """SELECT meeting_id, signed_json FROM meeting_result WHERE $1::text IS NULL OR community_id = $1""",
        community_id)
