"""SQL for the preparatory group (筹备组), its objections, and the temporary management committee."""
from __future__ import annotations

import asyncpg

GROUP_COLUMNS = "community_id, group_no, state, posted_from, posted_until, formed_on, created_by, created_at"
MEMBER_COLUMNS = "member_no, name, side, unit_label, party_member, leader, employment"
OBJECTION_COLUMNS = "objection_no, filed_by, text, filed_at, outcome, reason, resolved_by, resolved_at"


async def current_group(conn: asyncpg.Connection, community_id: str, *, for_update: bool = False):
    return await conn.fetchrow(
        f"""SELECT {GROUP_COLUMNS} FROM prep_group WHERE community_id = $1 AND state IN ('draft', 'posted', 'formed')
            {"FOR UPDATE" if for_update else ""}""", community_id)


async def last_group(conn: asyncpg.Connection, community_id: str):
    return await conn.fetchrow(
        f"SELECT {GROUP_COLUMNS} FROM prep_group WHERE community_id = $1 ORDER BY group_no DESC LIMIT 1", community_id)


async def insert_group(conn: asyncpg.Connection, community_id: str, actor: str) -> int:
    return await conn.fetchval(
        """INSERT INTO prep_group (community_id, group_no, created_by)
           VALUES ($1, (SELECT coalesce(max(group_no), 0) + 1 FROM prep_group WHERE community_id = $1), $2)
           RETURNING group_no""", community_id, actor)


async def replace_members(conn: asyncpg.Connection, community_id: str, group_no: int, members: list[tuple]) -> None:
    """members: (name, side, unit_label, party_member, leader, employment)."""
    await conn.execute("DELETE FROM prep_group_member WHERE community_id = $1 AND group_no = $2",
                       community_id, group_no)
    await conn.executemany(
        f"""INSERT INTO prep_group_member (community_id, group_no, {MEMBER_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
        [(community_id, group_no, i, *m) for i, m in enumerate(members, start=1)])


async def members(conn: asyncpg.Connection, community_id: str, group_no: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"SELECT {MEMBER_COLUMNS} FROM prep_group_member WHERE community_id = $1 AND group_no = $2 ORDER BY member_no",
        community_id, group_no)


async def post_group(conn: asyncpg.Connection, community_id: str, group_no: int, days: int):
    return await conn.fetchrow(
        f"""UPDATE prep_group SET state = 'posted', posted_from = clock_timestamp(),
                   posted_until = clock_timestamp() + make_interval(days => $3)
             WHERE community_id = $1 AND group_no = $2 AND state = 'draft' RETURNING {GROUP_COLUMNS}""",
        community_id, group_no, days)


async def objections(conn: asyncpg.Connection, community_id: str, group_no: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {OBJECTION_COLUMNS} FROM prep_group_objection WHERE community_id = $1 AND group_no = $2
            ORDER BY objection_no""", community_id, group_no)


async def insert_objection(conn: asyncpg.Connection, community_id: str, group_no: int, filed_by: str,
                           text: str) -> int:
    return await conn.fetchval(
        """INSERT INTO prep_group_objection (community_id, group_no, objection_no, filed_by, text)
           VALUES ($1, $2, (SELECT coalesce(max(objection_no), 0) + 1 FROM prep_group_objection
                             WHERE community_id = $1 AND group_no = $2), $3, $4)
           RETURNING objection_no""", community_id, group_no, filed_by, text)


async def resolve_objection(conn: asyncpg.Connection, community_id: str, group_no: int, objection_no: int, *,
                            outcome: str, reason: str, actor: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE prep_group_objection SET outcome = $4, reason = $5, resolved_by = $6,
                   resolved_at = clock_timestamp()
             WHERE community_id = $1 AND group_no = $2 AND objection_no = $3 AND outcome IS NULL
         RETURNING {OBJECTION_COLUMNS}""", community_id, group_no, objection_no, outcome, reason, actor)


async def reject_group(conn: asyncpg.Connection, community_id: str, group_no: int) -> None:
    await conn.execute("UPDATE prep_group SET state = 'rejected' WHERE community_id = $1 AND group_no = $2",
                       community_id, group_no)


async def settle_formed(conn: asyncpg.Connection, community_id: str | None = None) -> list[asyncpg.Record]:
    """Posted groups whose posting has ended with every objection resolved become formed, on the later of
    the posting's end and the last resolution (Beijing date); the community's formation date follows."""
    return await conn.fetch(
        """WITH due AS (
               SELECT g.community_id, g.group_no,
                      (greatest(g.posted_until, coalesce((SELECT max(o.resolved_at) FROM prep_group_objection o
                                                           WHERE o.community_id = g.community_id
                                                             AND o.group_no = g.group_no), g.posted_until))
                       AT TIME ZONE 'Asia/Shanghai')::date AS formed_on
                 FROM prep_group g
                WHERE g.state = 'posted' AND g.posted_until <= clock_timestamp()
                  AND ($1::text IS NULL OR g.community_id = $1)
                  AND NOT EXISTS (SELECT 1 FROM prep_group_objection o WHERE o.community_id = g.community_id
                                     AND o.group_no = g.group_no AND o.outcome IS NULL)
                FOR UPDATE OF g SKIP LOCKED),
           formed AS (
               UPDATE prep_group g SET state = 'formed', formed_on = due.formed_on FROM due
                WHERE g.community_id = due.community_id AND g.group_no = due.group_no
            RETURNING g.community_id, g.group_no, g.formed_on)
           UPDATE community c SET prep_group_formed_on = formed.formed_on FROM formed
            WHERE c.community_id = formed.community_id
        RETURNING c.community_id, formed.group_no, formed.formed_on""", community_id)


# --- the temporary management committee ---

async def active_temporary(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT community_id, tc_no, reason, created_on, ended_on, end_reason, created_by
             FROM temporary_committee WHERE community_id = $1 AND ended_on IS NULL""", community_id)


async def temporaries(conn: asyncpg.Connection, community_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT community_id, tc_no, reason, created_on, ended_on, end_reason, created_by
             FROM temporary_committee WHERE community_id = $1 ORDER BY tc_no""", community_id)


async def committee_standing(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    """The newest formed committee (业主委员会) and whether its term lapsed (Beijing today)."""
    return await conn.fetchrow(
        """SELECT committee_id, elected_on, term_end,
                  term_end IS NOT NULL AND term_end < (clock_timestamp() AT TIME ZONE 'Asia/Shanghai')::date
                      AS lapsed
             FROM committee WHERE community_id = $1 AND body = 'committee' AND formed
            ORDER BY elected_on DESC, committee_id DESC LIMIT 1""", community_id)


async def insert_temporary(conn: asyncpg.Connection, community_id: str, reason: str, actor: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO temporary_committee (community_id, tc_no, reason, created_on, created_by)
           VALUES ($1, (SELECT coalesce(max(tc_no), 0) + 1 FROM temporary_committee WHERE community_id = $1), $2,
                   (clock_timestamp() AT TIME ZONE 'Asia/Shanghai')::date, $3)
           RETURNING community_id, tc_no, reason, created_on, ended_on, end_reason, created_by""",
        community_id, reason, actor)


async def insert_temporary_members(conn: asyncpg.Connection, community_id: str, tc_no: int,
                                   members: list[tuple]) -> None:
    await conn.executemany(
        """INSERT INTO temporary_committee_member (community_id, tc_no, member_no, name, side, unit_label)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        [(community_id, tc_no, i, *m) for i, m in enumerate(members, start=1)])


async def temporary_members(conn: asyncpg.Connection, community_id: str, tc_no: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT member_no, name, side, unit_label FROM temporary_committee_member
            WHERE community_id = $1 AND tc_no = $2 ORDER BY member_no""", community_id, tc_no)


async def end_temporaries_superseded(conn: asyncpg.Connection, community_id: str | None = None) -> int:
    """An active temporary committee ends on the day a committee elected after its creation was formed."""
    status = await conn.execute(
        """WITH due AS (
               SELECT t.community_id, t.tc_no,
                      (SELECT min(c.elected_on) FROM committee c
                        WHERE c.community_id = t.community_id AND c.body = 'committee' AND c.formed
                          AND c.elected_on >= t.created_on) AS elected_on
                 FROM temporary_committee t
                WHERE t.ended_on IS NULL AND ($1::text IS NULL OR t.community_id = $1))
           UPDATE temporary_committee t SET ended_on = due.elected_on, end_reason = '业主委员会已选举产生'
             FROM due
            WHERE t.community_id = due.community_id AND t.tc_no = due.tc_no AND due.elected_on IS NOT NULL
              AND t.ended_on IS NULL""", community_id)
    return int(status.split()[-1])


async def set_convener(conn: asyncpg.Connection, community_id: str, meeting_id: str, tc_no: int) -> None:
    await conn.execute(
        """INSERT INTO meeting_convener (community_id, meeting_id, convener, tc_no)
           VALUES ($1, $2, 'temporary_committee', $3)
           ON CONFLICT (community_id, meeting_id) DO UPDATE SET tc_no = EXCLUDED.tc_no""",
        community_id, meeting_id, tc_no)


async def convened_meetings(conn: asyncpg.Connection, community_id: str, tc_no: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT m.meeting_id, m.title, m.state FROM meeting_convener v JOIN meeting m USING (community_id, meeting_id)
            WHERE v.community_id = $1 AND v.tc_no = $2 ORDER BY m.created_at""", community_id, tc_no)


async def meeting_state(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> str | None:
    return await conn.fetchval("SELECT state FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                               community_id, meeting_id)
