"""SQL for paper ballots (double entry), proxies' authorizations, and the submissions they create."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime

import asyncpg

from server.repositories import locks

PAPER_COLUMNS = """p.paper_id, p.voter_id, p.identified_by, p.status, p.resolution, p.resolved_by,
       p.resolution_note, p.received_at, p.created_at"""
ENTRY_COLUMNS = """paper_id, entry_no, staff_id, entered_by, votes, paper_date, scan_ref, entered_at"""
AUTH_COLUMNS = """a.authorization_id, a.owner_voter_id, a.proxy_voter_id, a.kind, a.matters, a.valid_until,
       a.document_ref, a.note, a.created_by, a.created_at, a.revoked_at, a.revoked_by, a.revoke_reason"""


# ---------------------------------------------------------------- shared

async def meeting_clock(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record | None:
    """Lock the meeting row FOR SHARE (a close waits for us) and read the server's time once."""
    return await conn.fetchrow(
        """SELECT state, opens_at, closes_at, rules, clock_timestamp() AS now FROM meeting
            WHERE community_id = $1 AND meeting_id = $2 FOR SHARE""", community_id, meeting_id)


async def lock_voter(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> None:
    """Serialise the paper and proxy paths of one owner (any worker) for this transaction."""
    await locks.xact_lock(conn, "vote", community_id, meeting_id, voter_id)


async def code_owner(conn: asyncpg.Connection, digest: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT community_id, meeting_id, voter_id, serial, revoked_at FROM ballot_code WHERE code_hash = $1""",
        digest)


async def in_electorate(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM electorate WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3",
        community_id, meeting_id, voter_id))


_INSERT_SUBMISSIONS = """
WITH s AS (
    INSERT INTO submission (community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
                            received_at, paper_date, proxy_voter_id, idempotency_key, salt, receipt)
    SELECT $1, $2, t.ballot_id, $3, t.matter_id, $4,
           CASE WHEN $6 THEN coalesce((SELECT max(p.revision) FROM submission p
                                        WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.voter_id = $3
                                          AND p.matter_id = t.matter_id AND p.channel = $4), 0) + 1
                ELSE 0 END,
           $5, $7, $8, $9, t.salt, t.receipt
      FROM unnest($10::uuid[], $11::text[], $12::bytea[], $13::bytea[]) AS t(ballot_id, matter_id, salt, receipt)
     -- a proxy never votes after the owner's own vote for the matter (checked in this statement's snapshot)
     WHERE $8::text IS NULL OR NOT EXISTS (
           SELECT 1 FROM submission o
            WHERE o.community_id = $1 AND o.meeting_id = $2 AND o.voter_id = $3
              AND o.matter_id = t.matter_id AND o.proxy_voter_id IS NULL)
    RETURNING ballot_id
), c AS (
    INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, choice)
    SELECT $1, $2, c.ballot_id, c.candidate_id, c.choice
      FROM unnest($14::uuid[], $15::text[], $16::text[]) AS c(ballot_id, candidate_id, choice)
      JOIN s ON s.ballot_id = c.ballot_id
)
SELECT ballot_id FROM s
"""


async def insert_submissions(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, voter_id: str,
                             channel: str, received_at: datetime, allow_revision: bool, paper_date: date | None,
                             proxy_voter_id: str | None, idempotency_key: str | None,
                             rows: list[tuple[uuid.UUID, str, bytes, bytes]],
                             choices: list[tuple[uuid.UUID, str, str]]) -> set[uuid.UUID]:
    """Insert submissions (ballot_id, matter_id, salt, receipt) and their choices; returns the inserted ids."""
    inserted = await conn.fetch(
        _INSERT_SUBMISSIONS, community_id, meeting_id, voter_id, channel, received_at, allow_revision, paper_date,
        proxy_voter_id, idempotency_key,
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
        [c[0] for c in choices], [c[1] for c in choices], [c[2] for c in choices])
    return {r["ballot_id"] for r in inserted}


async def voter_matter_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                                   matter_ids: list[str]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT ballot_id, matter_id, channel, revision, received_at, proxy_voter_id, idempotency_key, receipt
             FROM submission WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3
              AND matter_id = any($4::text[])
            ORDER BY received_at""", community_id, meeting_id, voter_id, matter_ids)


async def proxy_submissions_by_key(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                   proxy_voter_id: str, idempotency_key: str) -> list[asyncpg.Record]:
    """What a proxy submitted earlier under an idempotency key, for any owner, with each
    submission's choices as JSON text (``[[candidate_id, choice], ...]``): a retry is told from a
    reuse of the key for another owner or other choices."""
    return await conn.fetch(
        """SELECT s.voter_id, s.matter_id, s.ballot_id, s.received_at, s.receipt,
                  coalesce((SELECT json_agg(json_build_array(c.candidate_id, c.choice))::text
                              FROM submission_choice c
                             WHERE c.community_id = s.community_id AND c.meeting_id = s.meeting_id
                               AND c.ballot_id = s.ballot_id), '[]') AS choices
             FROM submission s
            WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.proxy_voter_id = $3
              AND s.idempotency_key = $4
            ORDER BY s.received_at""", community_id, meeting_id, proxy_voter_id, idempotency_key)


# ---------------------------------------------------------------- paper ballots

async def open_paper_ballot(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            voter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {PAPER_COLUMNS} FROM paper_ballot p
             WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.voter_id = $3
               AND p.status IN ('pending', 'mismatch') FOR UPDATE""", community_id, meeting_id, voter_id)


async def get_paper_ballot(conn: asyncpg.Connection, community_id: str, meeting_id: str, paper_id: int, *,
                           for_update: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {PAPER_COLUMNS} FROM paper_ballot p
             WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.paper_id = $3"""
        + (" FOR UPDATE" if for_update else ""), community_id, meeting_id, paper_id)


async def counted_paper_ballots(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                voter_id: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM paper_ballot WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3
              AND status IN ('matched', 'resolved') AND resolution <> 'void'""", community_id, meeting_id, voter_id)


async def insert_paper_ballot(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                              identified_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO paper_ballot AS p (community_id, meeting_id, voter_id, identified_by)
            VALUES ($1, $2, $3, $4) RETURNING {PAPER_COLUMNS}""", community_id, meeting_id, voter_id, identified_by)


async def insert_entry(conn: asyncpg.Connection, community_id: str, meeting_id: str, paper_id: int, *,
                       entry_no: int, staff_id: int, entered_by: str, votes: dict, paper_date: date | None,
                       scan_ref: str, entered_at: datetime) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO paper_entry (community_id, meeting_id, paper_id, entry_no, staff_id, entered_by, votes,
                                     paper_date, scan_ref, entered_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10) RETURNING {ENTRY_COLUMNS}""",
        community_id, meeting_id, paper_id, entry_no, staff_id, entered_by, json.dumps(votes, sort_keys=True),
        paper_date, scan_ref, entered_at)


async def entries(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                  paper_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT community_id, {ENTRY_COLUMNS} FROM paper_entry
             WHERE community_id = $1 AND meeting_id = $2 AND paper_id = any($3::bigint[])
             ORDER BY paper_id, entry_no""", community_id, meeting_id, paper_ids)


async def set_paper_status(conn: asyncpg.Connection, community_id: str, meeting_id: str, paper_id: int, *,
                           status: str, resolution: str | None = None, resolved_by: str | None = None,
                           note: str = "", received_at: datetime | None = None) -> None:
    await conn.execute(
        """UPDATE paper_ballot SET status = $4, resolution = $5, resolved_by = $6, resolution_note = $7,
                                   received_at = $8
            WHERE community_id = $1 AND meeting_id = $2 AND paper_id = $3""",
        community_id, meeting_id, paper_id, status, resolution, resolved_by, note, received_at)


async def link_paper_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str, paper_id: int,
                                 ballot_ids: list[uuid.UUID]) -> None:
    await conn.execute(
        """INSERT INTO paper_submission (community_id, meeting_id, ballot_id, paper_id)
           SELECT $1, $2, b, $3 FROM unnest($4::uuid[]) AS b""", community_id, meeting_id, paper_id, ballot_ids)


async def list_paper_ballots(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             status: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {PAPER_COLUMNS} FROM paper_ballot p
             WHERE p.community_id = $1 AND p.meeting_id = $2 AND ($3::text IS NULL OR p.status = $3)
             ORDER BY p.paper_id""", community_id, meeting_id, status)


async def status_counts(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, int]:
    """How many sheets of the meeting are in each status (statuses with none are absent)."""
    rows = await conn.fetch(
        """SELECT status, count(*) AS n FROM paper_ballot WHERE community_id = $1 AND meeting_id = $2
            GROUP BY status""", community_id, meeting_id)
    return {r["status"]: r["n"] for r in rows}


async def paper_ballot_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                   paper_ids: list[int]) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT l.paper_id, s.ballot_id, s.matter_id, s.received_at, s.paper_date, s.receipt
             FROM paper_submission l
             JOIN submission s ON s.community_id = l.community_id AND s.meeting_id = l.meeting_id
                              AND s.ballot_id = l.ballot_id
            WHERE l.community_id = $1 AND l.meeting_id = $2 AND l.paper_id = any($3::bigint[])
            ORDER BY l.paper_id, s.matter_id""", community_id, meeting_id, paper_ids)


# ---------------------------------------------------------------- proxies

async def lock_proxy(conn: asyncpg.Connection, community_id: str, meeting_id: str, proxy_voter_id: str) -> None:
    """Serialise registrations for one proxy, so the cap holds under concurrent requests."""
    await locks.xact_lock(conn, "proxy", community_id, meeting_id, proxy_voter_id)


async def live_count_for_proxy(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                               proxy_voter_id: str) -> int:
    return await conn.fetchval(
        """SELECT count(*) FROM proxy_authorization
            WHERE community_id = $1 AND meeting_id = $2 AND proxy_voter_id = $3 AND revoked_at IS NULL""",
        community_id, meeting_id, proxy_voter_id)


async def holds_live_authorization(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                   voter_id: str) -> bool:
    """Whether ``voter_id`` has authorized someone (an owner who delegated cannot also be a proxy)."""
    return bool(await conn.fetchval(
        """SELECT true FROM proxy_authorization WHERE community_id = $1 AND meeting_id = $2
              AND owner_voter_id = $3 AND revoked_at IS NULL""", community_id, meeting_id, voter_id))


async def insert_authorization(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                               owner_voter_id: str, proxy_voter_id: str, kind: str, matters: list[str] | None,
                               valid_until: datetime, document_ref: str, note: str,
                               created_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO proxy_authorization AS a (community_id, meeting_id, owner_voter_id, proxy_voter_id, kind,
                                                  matters, valid_until, document_ref, note, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {AUTH_COLUMNS}""",
        community_id, meeting_id, owner_voter_id, proxy_voter_id, kind, matters, valid_until, document_ref, note,
        created_by)


async def revoke_authorization(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                               authorization_id: int, *, actor: str, reason: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE proxy_authorization AS a SET revoked_at = clock_timestamp(), revoked_by = $4, revoke_reason = $5
             WHERE a.community_id = $1 AND a.meeting_id = $2 AND a.authorization_id = $3 AND a.revoked_at IS NULL
         RETURNING {AUTH_COLUMNS}""", community_id, meeting_id, authorization_id, actor, reason)


async def get_authorization(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            authorization_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {AUTH_COLUMNS} FROM proxy_authorization a
             WHERE a.community_id = $1 AND a.meeting_id = $2 AND a.authorization_id = $3""",
        community_id, meeting_id, authorization_id)


async def live_authorization(conn: asyncpg.Connection, community_id: str, meeting_id: str, owner_voter_id: str,
                             proxy_voter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {AUTH_COLUMNS} FROM proxy_authorization a
             WHERE a.community_id = $1 AND a.meeting_id = $2 AND a.owner_voter_id = $3 AND a.proxy_voter_id = $4
               AND a.revoked_at IS NULL""", community_id, meeting_id, owner_voter_id, proxy_voter_id)


async def list_authorizations(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                              proxy_voter_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {AUTH_COLUMNS} FROM proxy_authorization a
             WHERE a.community_id = $1 AND a.meeting_id = $2
               AND ($3::text IS NULL OR (a.proxy_voter_id = $3 AND a.revoked_at IS NULL))
             ORDER BY a.authorization_id""", community_id, meeting_id, proxy_voter_id)


async def link_proxy_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                 authorization_id: int, ballot_ids: list[uuid.UUID]) -> None:
    await conn.execute(
        """INSERT INTO proxy_submission (community_id, meeting_id, ballot_id, authorization_id)
           SELECT $1, $2, b, $3 FROM unnest($4::uuid[]) AS b""",
        community_id, meeting_id, authorization_id, ballot_ids)


async def owners_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             voter_ids: list[str]) -> list[asyncpg.Record]:
    """Who voted for which matter, for the status of authorizations (no choices)."""
    return await conn.fetch(
        """SELECT voter_id, matter_id, channel, proxy_voter_id, received_at FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = any($3::text[])
            ORDER BY received_at""", community_id, meeting_id, voter_ids)


# ---------------------------------------------------------------- the record extension

async def proxy_record_rows(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT l.ballot_id::text AS ballot_id, s.proxy_voter_id, l.authorization_id, a.kind
             FROM proxy_submission l
             JOIN submission s ON s.community_id = l.community_id AND s.meeting_id = l.meeting_id
                              AND s.ballot_id = l.ballot_id
             JOIN proxy_authorization a ON a.community_id = l.community_id AND a.meeting_id = l.meeting_id
                                       AND a.authorization_id = l.authorization_id
            WHERE l.community_id = $1 AND l.meeting_id = $2
            ORDER BY s.received_at, l.ballot_id""", community_id, meeting_id)


async def paper_record_rows(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.ballot_id::text AS ballot_id, l.paper_id, s.paper_date
             FROM submission s
             LEFT JOIN paper_submission l ON l.community_id = s.community_id AND l.meeting_id = s.meeting_id
                                         AND l.ballot_id = s.ballot_id
            WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.channel = 'paper'
            ORDER BY s.received_at, s.ballot_id""", community_id, meeting_id)


async def proxy_ballot_ids(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> set[str]:
    rows = await conn.fetch(
        """SELECT ballot_id::text AS ballot_id FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND proxy_voter_id IS NOT NULL""", community_id, meeting_id)
    return {r["ballot_id"] for r in rows}
