"""SQL for the public record: the meeting as the record names it, the submissions' receipts, the stored files.

The matters and the submissions with their choices are read by the counting
service's loaders (server.repositories.meetings: list_matters, list_candidates,
all_submissions), so the record and the live count read the same rows; the
register version by server.repositories.register.register_rows.
"""
from __future__ import annotations

import asyncpg


async def record_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record | None:
    """The meeting with its frozen register version, totals and area places, its times and the community's name."""
    return await conn.fetchrow(
        """SELECT m.meeting_id, m.title, m.state, m.rules::text AS rules, m.register_version,
                  m.total_area, m.total_persons, m.area_places, m.opens_at, m.closes_at, m.noticed_at, m.opened_at,
                  m.closed_at, c.name AS community_name
             FROM meeting m JOIN community c ON c.community_id = m.community_id
            WHERE m.community_id = $1 AND m.meeting_id = $2""", community_id, meeting_id)


async def submission_receipts(conn: asyncpg.Connection, community_id: str,
                              meeting_id: str) -> list[asyncpg.Record]:
    """(ballot_id as text, receipt) of every submission of the meeting, in no particular order."""
    return await conn.fetch(
        """SELECT ballot_id::text AS ballot_id, receipt FROM submission
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)


async def stored_files(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """(name, content) of each file stored when the meeting's result was signed, by name."""
    return await conn.fetch(
        """SELECT name, content FROM meeting_record_file WHERE community_id = $1 AND meeting_id = $2
            ORDER BY name""", community_id, meeting_id)
