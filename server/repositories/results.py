"""SQL for signed results, the stored record files, publication and objections."""
from __future__ import annotations

from datetime import datetime

import asyncpg

from server.repositories import locks

RESULT_COLUMNS = """community_id, meeting_id, result_json, signed_json, key_id, receipts_root, receipt_count,
       signed_at, status, published_at, published_by, objection_ends_at, finalized_at, finalized_by"""
OBJECTION_COLUMNS = """objection_id, submitted_by, on_behalf_of, text, created_at, response, responded_by,
       responded_at"""


async def lock_meeting_result(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> None:
    """Serialise signing of one meeting (the row may not exist yet)."""
    await locks.xact_lock(conn, "result", community_id, meeting_id)


async def get_result(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                     for_update: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {RESULT_COLUMNS} FROM meeting_result WHERE community_id = $1 AND meeting_id = $2"
        + (" FOR UPDATE" if for_update else ""), community_id, meeting_id)


async def meeting_state(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> str | None:
    return await conn.fetchval("SELECT state FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                               community_id, meeting_id)


async def analyze_submissions(conn: asyncpg.Connection) -> None:
    """Fresh planner statistics for the submission tables (after a meeting's worth of votes)."""
    await conn.execute("ANALYZE submission, submission_choice")


async def insert_result(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, pseudonym_key: bytes,
                        result_json: str, signed_json: str, key_id: str, receipts_root: bytes,
                        receipt_count: int) -> None:
    await conn.execute(
        """INSERT INTO meeting_result (community_id, meeting_id, pseudonym_key, result_json, signed_json,
                                       key_id, receipts_root, receipt_count)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        community_id, meeting_id, pseudonym_key, result_json, signed_json, key_id, receipts_root, receipt_count)


async def insert_files(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                       files: list[tuple[str, bytes, str]]) -> None:
    await conn.executemany(
        """INSERT INTO meeting_record_file (community_id, meeting_id, name, content, sha256)
           VALUES ($1, $2, $3, $4, $5)""",
        [(community_id, meeting_id, name, content, digest) for name, content, digest in files])


async def record_file(conn: asyncpg.Connection, community_id: str, meeting_id: str, name: str) -> bytes | None:
    content = await conn.fetchval(
        "SELECT content FROM meeting_record_file WHERE community_id = $1 AND meeting_id = $2 AND name = $3",
        community_id, meeting_id, name)
    return bytes(content) if content is not None else None


async def audit_head(conn: asyncpg.Connection, chain: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT seq, hash FROM audit_log WHERE community_id = $1 ORDER BY seq DESC LIMIT 1", chain)


async def mark_meeting_published(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> datetime | None:
    """closed -> published (the guarded UPDATE; migration 0010 enforces the order)."""
    return await conn.fetchval(
        """UPDATE meeting SET state = 'published', published_at = clock_timestamp()
            WHERE community_id = $1 AND meeting_id = $2 AND state = 'closed' RETURNING published_at""",
        community_id, meeting_id)


async def set_published(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, actor: str,
                        published_at: datetime, objection_ends_at: datetime) -> None:
    await conn.execute(
        """UPDATE meeting_result SET status = 'preliminary', published_at = $3, published_by = $4,
                                      objection_ends_at = $5
            WHERE community_id = $1 AND meeting_id = $2 AND status = 'unpublished'""",
        community_id, meeting_id, published_at, actor, objection_ends_at)


async def set_final(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, actor: str) -> datetime:
    return await conn.fetchval(
        """UPDATE meeting_result SET status = 'final', finalized_at = clock_timestamp(), finalized_by = $3
            WHERE community_id = $1 AND meeting_id = $2 AND status = 'preliminary' RETURNING finalized_at""",
        community_id, meeting_id, actor)


async def insert_objection(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, submitted_by: str,
                           on_behalf_of: str, text: str) -> asyncpg.Record:
    # The caller holds the meeting_result row FOR UPDATE, so max + 1 cannot race.
    return await conn.fetchrow(
        f"""INSERT INTO result_objection (community_id, meeting_id, objection_id, submitted_by, on_behalf_of, text)
            SELECT $1, $2, coalesce(max(objection_id), 0) + 1, $3, $4, $5
              FROM result_objection WHERE community_id = $1 AND meeting_id = $2
            RETURNING {OBJECTION_COLUMNS}""",
        community_id, meeting_id, submitted_by, on_behalf_of, text)


async def respond_objection(conn: asyncpg.Connection, community_id: str, meeting_id: str, objection_id: int, *,
                            actor: str, response: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE result_objection SET response = $4, responded_by = $5, responded_at = clock_timestamp()
             WHERE community_id = $1 AND meeting_id = $2 AND objection_id = $3 AND response IS NULL
            RETURNING {OBJECTION_COLUMNS}""",
        community_id, meeting_id, objection_id, response, actor)


async def get_objection(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                        objection_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {OBJECTION_COLUMNS} FROM result_objection
             WHERE community_id = $1 AND meeting_id = $2 AND objection_id = $3""",
        community_id, meeting_id, objection_id)


async def list_objections(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {OBJECTION_COLUMNS} FROM result_objection WHERE community_id = $1 AND meeting_id = $2
            ORDER BY objection_id""", community_id, meeting_id)


async def count_unanswered(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM result_objection WHERE community_id = $1 AND meeting_id = $2
              AND response IS NULL""", community_id, meeting_id)
