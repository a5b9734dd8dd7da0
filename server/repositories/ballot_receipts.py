"""SQL reading the short receipts (回执码) of electronic ballots (migration 0120); they are written by the
vote path's statement (repositories/casting.py)."""
from __future__ import annotations

import asyncpg


async def codes_of_ballots(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           ballot_ids: list) -> dict[str, str]:
    """ballot id (text) → short code, for the submissions that have one."""
    rows = await conn.fetch(
        """SELECT ballot_id::text AS ballot_id, short_code FROM ballot_receipt_item
            WHERE community_id = $1 AND meeting_id = $2 AND ballot_id = any($3::uuid[])""",
        community_id, meeting_id, ballot_ids)
    return {r["ballot_id"]: r["short_code"] for r in rows}


async def codes_of_voter(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                         voter_id: str) -> dict[str, str]:
    """ballot id (text) → short code, for every submission of the voting subject that has one."""
    rows = await conn.fetch(
        """SELECT i.ballot_id::text AS ballot_id, i.short_code
             FROM ballot_receipt r
             JOIN ballot_receipt_item i USING (community_id, meeting_id, short_code)
            WHERE r.community_id = $1 AND r.meeting_id = $2 AND r.voter_id = $3""",
        community_id, meeting_id, voter_id)
    return {r["ballot_id"]: r["short_code"] for r in rows}


async def receipts_of_code(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           short_code: str) -> list[asyncpg.Record]:
    """The submissions (matter id, receipt) a short code stands for, in matter order; empty if unknown."""
    return await conn.fetch(
        """SELECT s.matter_id, s.receipt
             FROM ballot_receipt_item i
             JOIN submission s USING (community_id, meeting_id, ballot_id)
             JOIN matter m ON m.community_id = s.community_id AND m.meeting_id = s.meeting_id
                          AND m.matter_id = s.matter_id
            WHERE i.community_id = $1 AND i.meeting_id = $2 AND i.short_code = $3
            ORDER BY m.position, s.matter_id""",
        community_id, meeting_id, short_code)
