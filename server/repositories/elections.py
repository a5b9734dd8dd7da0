"""SQL for nominations, candidate sources, runoffs, committees, their members and events."""
from __future__ import annotations

import json
from datetime import date

import asyncpg

NOMINATION_COLUMNS = """community_id, nomination_id, body, owner_id, register_version, name, unit_label,
       party_member, statement, source, nominated_by, nominated_at, status, reason, decided_by, decided_at"""
COMMITTEE_COLUMNS = """community_id, committee_id, body, meeting_id, matter_id, seats, alternate_places, formed,
       reason, notes, pending_runoff, elected_on, first_meeting_on, filing_date, filing_ref, seal_status,
       term_start, term_end, created_by, created_at"""
MEMBER_COLUMNS = """community_id, committee_id, member_no, candidate_id, meeting_id, matter_id, owner_id, name,
       unit_label, party_member, role, office, status, left_on, leave_reason, promoted_on"""
EVENT_COLUMNS = "community_id, committee_id, seq, at, kind, summary, detail, actor"


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


def _committee_row(row: asyncpg.Record) -> dict:
    out = dict(row)
    out["pending_runoff"] = _json(out["pending_runoff"])
    out["notes"] = list(out["notes"])
    return out


def _committee(row: asyncpg.Record | None) -> dict | None:
    return None if row is None else _committee_row(row)


# ---------------------------------------------------------------- the register

async def owner_profile(conn: asyncpg.Connection, community_id: str, owner_id: str) -> asyncpg.Record | None:
    """The owner in the latest register version: name and the units they hold."""
    return await conn.fetchrow(
        """SELECT o.version, o.owner_id, o.name,
                  coalesce(array_agg(w.unit_id ORDER BY w.unit_id) FILTER (WHERE w.unit_id IS NOT NULL),
                           '{}') AS units
             FROM owner o
             LEFT JOIN ownership w ON w.community_id = o.community_id AND w.version = o.version
                                   AND w.owner_id = o.owner_id
            WHERE o.community_id = $1 AND o.owner_id = $2
              AND o.version = (SELECT max(version) FROM register_version WHERE community_id = $1)
            GROUP BY o.version, o.owner_id, o.name""", community_id, owner_id)


# ---------------------------------------------------------------- nominations

async def insert_nomination(conn: asyncpg.Connection, *, community_id: str, body: str, owner_id: str,
                            register_version: int, name: str, unit_label: str, party_member: bool,
                            statement: str, source: str, nominated_by: str) -> asyncpg.Record:
    """Insert with the next id (the caller holds the ``nomination`` lock of the community)."""
    return await conn.fetchrow(
        f"""INSERT INTO nomination (community_id, nomination_id, body, owner_id, register_version, name,
                                    unit_label, party_member, statement, source, nominated_by)
            SELECT $1, coalesce(max(nomination_id), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10
              FROM nomination WHERE community_id = $1
         RETURNING {NOMINATION_COLUMNS}""",
        community_id, body, owner_id, register_version, name, unit_label, party_member, statement, source,
        nominated_by)


async def get_nomination(conn: asyncpg.Connection, community_id: str, nomination_id: int, *,
                         lock: bool = False) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {NOMINATION_COLUMNS} FROM nomination WHERE community_id = $1 AND nomination_id = $2"
        + (" FOR UPDATE" if lock else ""), community_id, nomination_id)


async def list_nominations(conn: asyncpg.Connection, community_id: str, *, status: str | None = None,
                           body: str | None = None, owner_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {NOMINATION_COLUMNS} FROM nomination
             WHERE community_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR body = $3)
               AND ($4::text IS NULL OR owner_id = $4)
             ORDER BY nomination_id""", community_id, status, body, owner_id)


async def decide_nomination(conn: asyncpg.Connection, community_id: str, nomination_id: int, *, status: str,
                            reason: str, decided_by: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE nomination SET status = $3, reason = $4, decided_by = $5, decided_at = clock_timestamp()
             WHERE community_id = $1 AND nomination_id = $2 AND status = 'pending'
         RETURNING {NOMINATION_COLUMNS}""", community_id, nomination_id, status, reason, decided_by)


# ---------------------------------------------------------------- candidate sources

async def insert_candidate_sources(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """rows: (community_id, meeting_id, matter_id, candidate_id, nomination_id, owner_id)."""
    await conn.executemany(
        """INSERT INTO candidate_source (community_id, meeting_id, matter_id, candidate_id, nomination_id, owner_id)
           VALUES ($1, $2, $3, $4, $5, $6)""", rows)


async def candidate_sources(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT matter_id, candidate_id, nomination_id, owner_id FROM candidate_source
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)


async def unvetted_candidates(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """Candidates of committee / supervisory election matters that no qualified nomination stands behind.

    Vetted: a ``candidate_source`` row whose nomination is qualified for the matter's body; or, in a
    runoff matter, a candidate carried over from the counted election it continues (listed in the
    runoff plan, or a source row without a nomination).  Elections of body 'other' are free-form.
    Rows: matter_id, matter_title, body, candidate_id, name; in ballot order.
    """
    return await conn.fetch(
        """SELECT c.matter_id, m.title AS matter_title, m.body, c.candidate_id, c.name
             FROM candidate c
             JOIN matter m ON m.community_id = c.community_id AND m.meeting_id = c.meeting_id
                          AND m.matter_id = c.matter_id
             LEFT JOIN candidate_source s ON s.community_id = c.community_id AND s.meeting_id = c.meeting_id
                                         AND s.matter_id = c.matter_id AND s.candidate_id = c.candidate_id
             LEFT JOIN nomination n ON n.community_id = s.community_id AND n.nomination_id = s.nomination_id
             LEFT JOIN election_runoff r ON r.community_id = c.community_id AND r.meeting_id = c.meeting_id
                                        AND r.matter_id = c.matter_id
            WHERE c.community_id = $1 AND c.meeting_id = $2
              AND m.kind = 'election' AND m.body IN ('committee', 'supervisory')
              AND NOT coalesce(n.status = 'qualified' AND n.body = m.body, false)
              AND NOT (r.matter_id IS NOT NULL
                       AND ((s.candidate_id IS NOT NULL AND s.nomination_id IS NULL)
                            OR coalesce(r.plan -> 'candidates' ? c.candidate_id, false)))
            ORDER BY m.position, c.position""", community_id, meeting_id)


# ---------------------------------------------------------------- runoffs

async def insert_runoff(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, matter_id: str,
                        origin_meeting_id: str, origin_matter_id: str, plan: dict, created_by: str) -> None:
    await conn.execute(
        """INSERT INTO election_runoff (community_id, meeting_id, matter_id, origin_meeting_id, origin_matter_id,
                                        plan, created_by)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)""",
        community_id, meeting_id, matter_id, origin_meeting_id, origin_matter_id, json.dumps(plan), created_by)


async def get_runoff(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> dict | None:
    row = await conn.fetchrow(
        """SELECT meeting_id, matter_id, origin_meeting_id, origin_matter_id, plan, created_by, created_at
             FROM election_runoff WHERE community_id = $1 AND meeting_id = $2 AND matter_id = $3""",
        community_id, meeting_id, matter_id)
    if row is None:
        return None
    return dict(row) | {"plan": _json(row["plan"])}


async def runoff_of(conn: asyncpg.Connection, community_id: str, origin_meeting_id: str,
                    origin_matter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT meeting_id, matter_id FROM election_runoff
            WHERE community_id = $1 AND origin_meeting_id = $2 AND origin_matter_id = $3""",
        community_id, origin_meeting_id, origin_matter_id)


async def count_runoffs_from(conn: asyncpg.Connection, community_id: str, origin_meeting_id: str) -> int:
    """How many runoffs continue elections of the meeting (their ids are numbered after it)."""
    return await conn.fetchval(
        "SELECT count(*) FROM election_runoff WHERE community_id = $1 AND origin_meeting_id = $2",
        community_id, origin_meeting_id)


# ---------------------------------------------------------------- committees

async def insert_committee(conn: asyncpg.Connection, *, community_id: str, body: str, meeting_id: str,
                           matter_id: str, seats: int, alternate_places: int, formed: bool, reason: str,
                           notes: list[str], pending_runoff: dict | None, elected_on: date | None,
                           created_by: str) -> dict:
    """Insert with the next id (the caller holds the ``committee`` lock of the community)."""
    row = await conn.fetchrow(
        f"""INSERT INTO committee (community_id, committee_id, body, meeting_id, matter_id, seats, alternate_places,
                                   formed, reason, notes, pending_runoff, elected_on, created_by)
            SELECT $1, coalesce(max(committee_id), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11, $12
              FROM committee WHERE community_id = $1
         RETURNING {COMMITTEE_COLUMNS}""",
        community_id, body, meeting_id, matter_id, seats, alternate_places, formed, reason, notes,
        None if pending_runoff is None else json.dumps(pending_runoff), elected_on, created_by)
    return _committee_row(row)


async def get_committee(conn: asyncpg.Connection, community_id: str, committee_id: int, *,
                        lock: bool = False) -> dict | None:
    row = await conn.fetchrow(
        f"SELECT {COMMITTEE_COLUMNS} FROM committee WHERE community_id = $1 AND committee_id = $2"
        + (" FOR UPDATE" if lock else ""), community_id, committee_id)
    return _committee(row)


async def committee_for_matter(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str, *,
                               lock: bool = False) -> dict | None:
    row = await conn.fetchrow(
        f"""SELECT {COMMITTEE_COLUMNS} FROM committee WHERE community_id = $1 AND meeting_id = $2
              AND matter_id = $3""" + (" FOR UPDATE" if lock else ""), community_id, meeting_id, matter_id)
    return _committee(row)


async def list_committees(conn: asyncpg.Connection, community_ids: list[str]) -> list[dict]:
    rows = await conn.fetch(
        f"""SELECT {COMMITTEE_COLUMNS} FROM committee WHERE community_id = ANY($1::text[])
             ORDER BY community_id, committee_id""", community_ids)
    return [_committee_row(r) for r in rows]


async def update_committee(conn: asyncpg.Connection, community_id: str, committee_id: int, changes: dict) -> None:
    allowed = ("formed", "reason", "notes", "pending_runoff", "elected_on", "first_meeting_on", "filing_date",
               "filing_ref", "seal_status", "term_start", "term_end")
    names = [n for n in allowed if n in changes]
    if not names:
        return
    sets = ", ".join(f"{n} = ${i + 3}{'::jsonb' if n == 'pending_runoff' else ''}" for i, n in enumerate(names))
    values = [(None if changes[n] is None else json.dumps(changes[n])) if n == "pending_runoff" else changes[n]
              for n in names]
    await conn.execute(f"UPDATE committee SET {sets} WHERE community_id = $1 AND committee_id = $2",
                       community_id, committee_id, *values)


# ---------------------------------------------------------------- members

async def insert_members(conn: asyncpg.Connection, rows: list[dict]) -> None:
    await conn.executemany(
        """INSERT INTO committee_member (community_id, committee_id, member_no, candidate_id, meeting_id, matter_id,
                                         owner_id, name, unit_label, party_member, role)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
        [(r["community_id"], r["committee_id"], r["member_no"], r["candidate_id"], r["meeting_id"], r["matter_id"],
          r["owner_id"], r["name"], r["unit_label"], r["party_member"], r["role"]) for r in rows])


async def list_members(conn: asyncpg.Connection, community_id: str, committee_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {MEMBER_COLUMNS} FROM committee_member WHERE community_id = $1 AND committee_id = $2
             ORDER BY member_no""", community_id, committee_id)


async def set_offices(conn: asyncpg.Connection, community_id: str, committee_id: int, chair: int,
                      vice_chairs: list[int]) -> None:
    await conn.execute(
        "UPDATE committee_member SET office = '' WHERE community_id = $1 AND committee_id = $2 AND office <> ''",
        community_id, committee_id)
    await conn.execute(
        """UPDATE committee_member SET office = CASE WHEN member_no = $3 THEN 'chair' ELSE 'vice_chair' END
            WHERE community_id = $1 AND committee_id = $2 AND member_no = ANY($4::int[])""",
        community_id, committee_id, chair, [chair, *vice_chairs])


async def member_leaves(conn: asyncpg.Connection, community_id: str, committee_id: int, member_no: int,
                        left_on: date, reason: str) -> None:
    await conn.execute(
        """UPDATE committee_member SET status = 'left', left_on = $4, leave_reason = $5, office = ''
            WHERE community_id = $1 AND committee_id = $2 AND member_no = $3""",
        community_id, committee_id, member_no, left_on, reason)


async def promote_member(conn: asyncpg.Connection, community_id: str, committee_id: int, member_no: int,
                         promoted_on: date) -> None:
    await conn.execute(
        """UPDATE committee_member SET role = 'member', promoted_on = $4
            WHERE community_id = $1 AND committee_id = $2 AND member_no = $3 AND role = 'alternate'""",
        community_id, committee_id, member_no, promoted_on)


# ---------------------------------------------------------------- events

async def append_event(conn: asyncpg.Connection, *, community_id: str, committee_id: int, kind: str, summary: str,
                       detail: dict, actor: str) -> None:
    """Next seq of the committee's log (the caller holds the committee row lock)."""
    await conn.execute(
        """INSERT INTO committee_event (community_id, committee_id, seq, kind, summary, detail, actor)
           SELECT $1, $2, coalesce(max(seq), 0) + 1, $3, $4, $5::jsonb, $6
             FROM committee_event WHERE community_id = $1 AND committee_id = $2""",
        community_id, committee_id, kind, summary, json.dumps(detail, ensure_ascii=False, default=str), actor)


async def list_events(conn: asyncpg.Connection, community_id: str, committee_id: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {EVENT_COLUMNS} FROM committee_event WHERE community_id = $1 AND committee_id = $2
             ORDER BY seq""", community_id, committee_id)


# ---------------------------------------------------------------- deadlines

async def communities_of_street(conn: asyncpg.Connection, street_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT community_id, name, prep_group_formed_on FROM community WHERE street_id = $1
            ORDER BY community_id""", street_id)


async def community_deadline_rows(conn: asyncpg.Connection, community_ids: list[str]) -> list[asyncpg.Record]:
    """Per community: name, prep group date and the day its first meeting opened (Beijing time)."""
    return await conn.fetch(
        """SELECT c.community_id, c.name, c.prep_group_formed_on,
                  (SELECT min((m.opened_at AT TIME ZONE 'Asia/Shanghai')::date) FROM meeting m
                    WHERE m.community_id = c.community_id AND m.opened_at IS NOT NULL) AS first_assembly_on
             FROM community c WHERE c.community_id = ANY($1::text[]) ORDER BY c.community_id""", community_ids)


async def closed_on(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> date | None:
    return await conn.fetchval(
        """SELECT (closed_at AT TIME ZONE 'Asia/Shanghai')::date FROM meeting
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)


async def today_in_china(conn: asyncpg.Connection) -> date:
    return await conn.fetchval("SELECT (clock_timestamp() AT TIME ZONE 'Asia/Shanghai')::date")
