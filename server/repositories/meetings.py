"""SQL for meetings, their matters and candidates, transitions, the frozen electorate and submissions."""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

MEETING_COLUMNS = """m.community_id, m.meeting_id, m.title, m.state, m.rules, m.show_live_results,
       m.opens_at, m.closes_at, m.register_version, m.total_area, m.total_persons, m.area_places,
       m.noticed_at, m.opened_at, m.closed_at, m.published_at, m.created_by, m.created_at,
       m.max_extensions, m.max_extension_days, m.voided_at, m.void_reason"""

MATTER_COLUMNS = """matter_id, position, kind, title, description, category, seats, alternates, body, scope"""
CANDIDATE_COLUMNS = """matter_id, candidate_id, position, name, unit_label, party_member, statement"""


def _meeting_row(row: asyncpg.Record) -> dict:
    meeting = dict(row)
    meeting["rules"] = json.loads(meeting["rules"]) if isinstance(meeting["rules"], str) else meeting["rules"]
    return meeting


def _meeting(row: asyncpg.Record | None) -> dict | None:
    return None if row is None else _meeting_row(row)


# ---------------------------------------------------------------- meetings

async def insert_meeting(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, title: str,
                         rules: dict, show_live_results: bool, opens_at: datetime | None,
                         closes_at: datetime | None, created_by: str, max_extensions: int = 0,
                         max_extension_days: int = 0) -> None:
    await conn.execute(
        """INSERT INTO meeting (community_id, meeting_id, title, rules, show_live_results,
                                opens_at, closes_at, created_by, max_extensions, max_extension_days)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)""",
        community_id, meeting_id, title, json.dumps(rules), show_live_results, opens_at, closes_at, created_by,
        max_extensions, max_extension_days)


async def get_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                      lock: str | None = None) -> dict | None:
    """One meeting; ``lock`` = 'update' or 'share' takes that row lock."""
    suffix = {None: "", "update": " FOR UPDATE", "share": " FOR SHARE"}[lock]
    row = await conn.fetchrow(
        f"SELECT {MEETING_COLUMNS} FROM meeting m WHERE m.community_id = $1 AND m.meeting_id = $2" + suffix,
        community_id, meeting_id)
    return _meeting(row)


async def list_meetings(conn: asyncpg.Connection, community_id: str) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {MEETING_COLUMNS}, (SELECT count(*) FROM matter t WHERE t.community_id = m.community_id
                                          AND t.meeting_id = m.meeting_id) AS matter_count
              FROM meeting m WHERE m.community_id = $1 ORDER BY m.created_at DESC, m.meeting_id""",
        community_id)
    return [_meeting_row(r) for r in rows]


async def update_draft(conn: asyncpg.Connection, community_id: str, meeting_id: str, changes: dict) -> None:
    """Set the given columns (title, rules, show_live_results, opens_at, closes_at, extension limits)."""
    allowed = ("title", "rules", "show_live_results", "opens_at", "closes_at", "max_extensions",
               "max_extension_days")
    names = [name for name in allowed if name in changes]
    if not names:
        return
    sets = ", ".join(f"{name} = ${i + 3}{'::jsonb' if name == 'rules' else ''}" for i, name in enumerate(names))
    values = [json.dumps(changes[n]) if n == "rules" else changes[n] for n in names]
    await conn.execute(f"UPDATE meeting SET {sets} WHERE community_id = $1 AND meeting_id = $2",
                       community_id, meeting_id, *values)


async def mark_noticed(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, register_version: int,
                       total_area: int, total_persons: int, area_places: int) -> datetime | None:
    return await conn.fetchval(
        """UPDATE meeting SET state = 'noticed', register_version = $3, total_area = $4, total_persons = $5,
                              area_places = $6, noticed_at = clock_timestamp()
            WHERE community_id = $1 AND meeting_id = $2 AND state = 'draft'
        RETURNING noticed_at""",
        community_id, meeting_id, register_version, total_area, total_persons, area_places)


async def open_by_hand(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                       notice_days: int) -> asyncpg.Record | None:
    """noticed -> open if the notice period has passed; opens_at moves to now if it was later."""
    return await conn.fetchrow(
        """WITH now AS (SELECT clock_timestamp() AS t)
           UPDATE meeting SET state = 'open', opened_at = now.t, opens_at = least(coalesce(opens_at, now.t), now.t)
             FROM now
            WHERE community_id = $1 AND meeting_id = $2 AND state = 'noticed'
              AND noticed_at + make_interval(days => $3) <= now.t
        RETURNING opened_at, opens_at""",
        community_id, meeting_id, notice_days)


async def close_by_hand(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> datetime | None:
    """open -> closed, only once the noticed close time has come (voting is never closed early).

    Guarded like the scheduler's close and against an extension (repositories/window.py): the
    one that takes the row first wins, the other finds the state or the close time changed.
    """
    return await conn.fetchval(
        """UPDATE meeting SET state = 'closed', closed_at = clock_timestamp()
            WHERE community_id = $1 AND meeting_id = $2 AND state = 'open'
              AND closes_at <= clock_timestamp()
        RETURNING closed_at""",
        community_id, meeting_id)


async def open_due(conn: asyncpg.Connection, notice_days: int, limit: int = 100) -> list[asyncpg.Record]:
    """noticed -> open for every meeting whose opening time came and whose notice period passed.

    One UPDATE: a second worker running it at the same time waits for the row
    locks and then finds the state changed, so each meeting opens exactly once.
    """
    return await conn.fetch(
        """UPDATE meeting m SET state = 'open', opened_at = clock_timestamp()
             FROM (SELECT community_id, meeting_id FROM meeting
                    WHERE state = 'noticed' AND opens_at <= clock_timestamp()
                      AND noticed_at + make_interval(days => $1) <= clock_timestamp()
                    ORDER BY opens_at LIMIT $2
                    FOR UPDATE SKIP LOCKED) due
            WHERE m.community_id = due.community_id AND m.meeting_id = due.meeting_id AND m.state = 'noticed'
        RETURNING m.community_id, m.meeting_id, m.opened_at""",
        notice_days, limit)


async def close_due(conn: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """open -> closed for every meeting whose closing time came (exactly once, as open_due).

    The close time is checked again by the UPDATE on the row it locked: an extension committed
    in between (repositories/window.py) keeps the meeting open.
    """
    return await conn.fetch(
        """UPDATE meeting m SET state = 'closed', closed_at = clock_timestamp()
             FROM (SELECT community_id, meeting_id FROM meeting
                    WHERE state = 'open' AND closes_at <= clock_timestamp()
                    ORDER BY closes_at LIMIT $1
                    FOR UPDATE SKIP LOCKED) due
            WHERE m.community_id = due.community_id AND m.meeting_id = due.meeting_id AND m.state = 'open'
              AND m.closes_at <= clock_timestamp()
        RETURNING m.community_id, m.meeting_id, m.closed_at""",
        limit)


async def insert_transition(conn: asyncpg.Connection, *, community_id: str, meeting_id: str,
                            from_state: str | None, to_state: str, actor: str, note: str = "") -> None:
    # The meeting row is locked by the caller's UPDATE, so max(seq) + 1 cannot race.
    await conn.execute(
        """INSERT INTO meeting_transition (community_id, meeting_id, seq, from_state, to_state, actor, note)
           SELECT $1, $2, coalesce(max(seq), 0) + 1, $3, $4, $5, $6
             FROM meeting_transition WHERE community_id = $1 AND meeting_id = $2""",
        community_id, meeting_id, from_state, to_state, actor, note)


async def list_transitions(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT seq, from_state, to_state, actor, at, note FROM meeting_transition
            WHERE community_id = $1 AND meeting_id = $2 ORDER BY seq""", community_id, meeting_id)


# ---------------------------------------------------------------- matters and candidates

async def list_matters(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {MATTER_COLUMNS} FROM matter WHERE community_id = $1 AND meeting_id = $2
            ORDER BY position""", community_id, meeting_id)


async def list_candidates(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {CANDIDATE_COLUMNS} FROM candidate WHERE community_id = $1 AND meeting_id = $2
            ORDER BY matter_id, position""", community_id, meeting_id)


async def next_matter_position(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(position), 0) + 1 FROM matter WHERE community_id = $1 AND meeting_id = $2",
        community_id, meeting_id)


async def next_candidate_position(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                  matter_id: str) -> int:
    return await conn.fetchval(
        """SELECT coalesce(max(position), 0) + 1 FROM candidate
            WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3""",
        community_id, meeting_id, matter_id)


async def insert_matter(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter: dict,
                        position: int) -> None:
    """Insert a matter; ``scope`` (building names) may be left out: the whole community."""
    await conn.execute(
        """INSERT INTO matter (community_id, meeting_id, matter_id, position, kind, title, description,
                               category, seats, alternates, body, scope)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text[])""",
        community_id, meeting_id, matter["matter_id"], position, matter["kind"], matter["title"],
        matter["description"], matter["category"], matter.get("seats"), matter.get("alternates"),
        matter.get("body"), list(matter.get("scope") or ()))


async def update_matter(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter: dict) -> None:
    """Rewrite a matter's editable columns (title, description, category, seats, alternates, body, scope)."""
    await conn.execute(
        """UPDATE matter SET title = $4, description = $5, category = $6, seats = $7, alternates = $8, body = $9,
                             scope = $10::text[]
            WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3""",
        community_id, meeting_id, matter["matter_id"], matter["title"], matter["description"], matter["category"],
        matter.get("seats"), matter.get("alternates"), matter.get("body"), list(matter.get("scope") or ()))


async def insert_candidates(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                            candidates: list[dict], first_position: int) -> None:
    await conn.executemany(
        """INSERT INTO candidate (community_id, meeting_id, matter_id, candidate_id, position, name,
                                  unit_label, party_member, statement)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [(community_id, meeting_id, matter_id, c["candidate_id"], first_position + i, c["name"],
          c["unit_label"], c["party_member"], c["statement"]) for i, c in enumerate(candidates)])


async def delete_matter(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> bool:
    await conn.execute(
        "DELETE FROM candidate WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3",
        community_id, meeting_id, matter_id)
    status = await conn.execute(
        "DELETE FROM matter WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3",
        community_id, meeting_id, matter_id)
    return status != "DELETE 0"


async def delete_candidate(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                           candidate_id: str) -> bool:
    status = await conn.execute(
        """DELETE FROM candidate WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3
              AND candidate_id = $4""", community_id, meeting_id, matter_id, candidate_id)
    return status != "DELETE 0"


# ---------------------------------------------------------------- electorate

ELECTORATE_COLUMNS = """voter_id, representative, area, building, units, buildings, building_areas, building_units"""


async def copy_electorate(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """records: (community_id, meeting_id, voter_id, representative, area, building, units, buildings,
    building_areas, building_units), one per voting subject (migration 0070)."""
    await conn.copy_records_to_table(
        "electorate", records=records,
        columns=["community_id", "meeting_id", "voter_id", "representative", "area", "building", "units",
                 "buildings", "building_areas", "building_units"])


async def electorate_rows(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {ELECTORATE_COLUMNS} FROM electorate
             WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id""", community_id, meeting_id)


async def electorate_member(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            voter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {ELECTORATE_COLUMNS} FROM electorate
             WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3""", community_id, meeting_id, voter_id)


async def area_places(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int | None:
    """The decimals the meeting's areas are printed with (frozen at notice; None for a draft)."""
    return await conn.fetchval(
        "SELECT area_places FROM meeting WHERE community_id = $1 AND meeting_id = $2", community_id, meeting_id)


# ---------------------------------------------------------------- submissions (reads)

async def voter_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            voter_id: str) -> list[asyncpg.Record]:
    """Every submission of one voter, oldest first (no choices: receipts and status only)."""
    return await conn.fetch(
        """SELECT ballot_id, matter_id, channel, revision, received_at, receipt, idempotency_key
             FROM submission WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3
            ORDER BY received_at, matter_id""", community_id, meeting_id, voter_id)


async def all_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                          since: datetime | None = None,
                          ballot_ids: Sequence[uuid.UUID] | None = None) -> list[asyncpg.Record]:
    """Every submission with its choices as parallel arrays, in receive order.

    ``since`` keeps those received at or after it, ``ballot_ids`` those with these ids: the live
    tally reads its increments with the same query as the counting service reads a meeting.
    A submission is its choice rows (bundle-format.md): one without any is not returned.
    ``by_proxy``: cast by a proxy for the owner.
    """
    args: list[object] = [community_id, meeting_id]
    where = ""
    if since is not None:
        args.append(since)
        where += f" AND s.received_at >= ${len(args)}"
    if ballot_ids is not None:
        args.append(list(ballot_ids))
        where += f" AND s.ballot_id = any(${len(args)}::uuid[])"
    return await conn.fetch(
        # LATERAL by the full key: an index lookup per submission whatever the table statistics say
        # (a plain join was planned as a quadratic nested loop on a freshly filled table).
        f"""SELECT s.ballot_id, s.voter_id, s.matter_id, s.channel, s.received_at,
                   s.proxy_voter_id IS NOT NULL AS by_proxy, ch.candidate_ids, ch.choices
             FROM submission s
             CROSS JOIN LATERAL (
                   SELECT array_agg(c.candidate_id ORDER BY c.candidate_id) AS candidate_ids,
                          array_agg(c.choice ORDER BY c.candidate_id) AS choices
                     FROM submission_choice c
                    WHERE c.community_id = s.community_id AND c.meeting_id = s.meeting_id
                      AND c.ballot_id = s.ballot_id) ch
            WHERE s.community_id = $1 AND s.meeting_id = $2{where} AND ch.candidate_ids IS NOT NULL
            ORDER BY s.received_at, s.ballot_id""", *args)
