"""SQL for a meeting's attached documents (table meeting_attachment, migration 0085)."""
from __future__ import annotations

import asyncpg

_META = "attachment_id, title, filename, media_type, size, sha256, uploaded_by, uploaded_at"


async def insert(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, title: str, filename: str,
                 media_type: str, size: int, sha256: str, content: bytes, uploaded_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO meeting_attachment (community_id, meeting_id, title, filename, media_type, size, sha256,
                                           content, uploaded_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {_META}""",
        community_id, meeting_id, title, filename, media_type, size, sha256, content, uploaded_by)


async def list_meta(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """Every attachment of the meeting without its content, in upload order."""
    return await conn.fetch(
        f"""SELECT {_META} FROM meeting_attachment WHERE community_id = $1 AND meeting_id = $2
            ORDER BY attachment_id""", community_id, meeting_id)


async def list_with_content(conn: asyncpg.Connection, community_id: str,
                            meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {_META}, content FROM meeting_attachment WHERE community_id = $1 AND meeting_id = $2
            ORDER BY attachment_id""", community_id, meeting_id)


async def get(conn: asyncpg.Connection, community_id: str, meeting_id: str,
              attachment_id: int) -> asyncpg.Record | None:
    """One attachment with its content."""
    return await conn.fetchrow(
        f"""SELECT {_META}, content FROM meeting_attachment
             WHERE community_id = $1 AND meeting_id = $2 AND attachment_id = $3""",
        community_id, meeting_id, attachment_id)


async def delete(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                 attachment_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""DELETE FROM meeting_attachment WHERE community_id = $1 AND meeting_id = $2 AND attachment_id = $3
            RETURNING {_META}""", community_id, meeting_id, attachment_id)


async def count(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int:
    return await conn.fetchval(
        "SELECT count(*) FROM meeting_attachment WHERE community_id = $1 AND meeting_id = $2",
        community_id, meeting_id)


async def meeting_noticed(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> bool | None:
    """Whether the meeting's notice was published (None: no such meeting)."""
    return await conn.fetchval(
        "SELECT noticed_at IS NOT NULL FROM meeting WHERE community_id = $1 AND meeting_id = $2",
        community_id, meeting_id)
