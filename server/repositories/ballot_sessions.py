"""SQL for owners' ballot sessions (``ballot_session``: one row per issued ballot token)."""
from __future__ import annotations

from datetime import datetime

import asyncpg


async def insert_session(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, jti: str, voter_id: str,
                         code_serial: int | None, device_hash: bytes | None, expires_at: datetime) -> None:
    await conn.execute(
        """INSERT INTO ballot_session (community_id, meeting_id, jti, voter_id, code_serial, device_hash, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        community_id, meeting_id, jti, voter_id, code_serial, device_hash, expires_at)


async def session_revoked(conn: asyncpg.Connection, community_id: str, meeting_id: str, jti: str) -> bool | None:
    """Whether the session was revoked; None when there is no such session."""
    return await conn.fetchval(
        """SELECT revoked_at IS NOT NULL FROM ballot_session
            WHERE community_id = $1 AND meeting_id = $2 AND jti = $3""",
        community_id, meeting_id, jti)
