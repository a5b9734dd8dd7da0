"""SQL of the live tallies (server/live/meeting.py) that the counting service does not share.

A live meeting reads its meeting row, matters, electorate and submissions
through the same functions as the counting service (server.repositories.meetings,
server.services.counting), so a live figure and a recount agree.
"""
from __future__ import annotations

import asyncpg


async def count_counted_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int:
    """How many submissions have choice rows (the ones ``meetings.all_submissions`` returns); an
    index-only count."""
    count: int = await conn.fetchval(
        """SELECT count(DISTINCT ballot_id) FROM submission_choice
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    return count
