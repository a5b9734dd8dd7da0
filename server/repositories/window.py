"""SQL for the voting window: voiding a meeting and its extensions (延期公告).

Both UPDATEs are guarded, as the closes are (repositories/meetings.py: close_by_hand,
close_due): an extension only moves a close that has not come yet, a close only happens once the
close time has come, so of an extension and a close at the same moment exactly one wins.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

EXTENSION_COLUMNS = "number, previous_closes_at, closes_at, reason, actor, published_at"


async def void_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                       reason: str) -> asyncpg.Record | None:
    """draft / noticed / open -> voided; None when the meeting is in none of those states."""
    return await conn.fetchrow(
        """UPDATE meeting SET state = 'voided', voided_at = clock_timestamp(), void_reason = $3
            WHERE community_id = $1 AND meeting_id = $2 AND state IN ('draft', 'noticed', 'open')
        RETURNING state AS from_state, voided_at""",
        community_id, meeting_id, reason)


async def move_close(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                     closes_at: datetime) -> datetime | None:
    """Set a later close, only while the meeting is noticed or open and before its current close.

    Returns the moment the guard was checked (the extension's publication time), or None.
    """
    return await conn.fetchval(
        """WITH now AS (SELECT clock_timestamp() AS t)
           UPDATE meeting SET closes_at = $3
             FROM now
            WHERE community_id = $1 AND meeting_id = $2 AND state IN ('noticed', 'open')
              AND closes_at > now.t AND $3 > closes_at
        RETURNING now.t""",
        community_id, meeting_id, closes_at)


async def insert_extension(conn: asyncpg.Connection, *, community_id: str, meeting_id: str,
                           previous_closes_at: datetime, closes_at: datetime, reason: str, actor: str,
                           published_at: datetime) -> asyncpg.Record:
    # The meeting row is locked by the caller, so max(number) + 1 cannot race.
    return await conn.fetchrow(
        f"""INSERT INTO meeting_extension (community_id, meeting_id, number, previous_closes_at, closes_at,
                                           reason, actor, published_at)
            SELECT $1, $2, coalesce(max(number), 0) + 1, $3, $4, $5, $6, $7
              FROM meeting_extension WHERE community_id = $1 AND meeting_id = $2
         RETURNING {EXTENSION_COLUMNS}""",
        community_id, meeting_id, previous_closes_at, closes_at, reason, actor, published_at)


async def list_extensions(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """The meeting's extensions, first to last."""
    return await conn.fetch(
        f"""SELECT {EXTENSION_COLUMNS} FROM meeting_extension
             WHERE community_id = $1 AND meeting_id = $2 ORDER BY number""", community_id, meeting_id)
