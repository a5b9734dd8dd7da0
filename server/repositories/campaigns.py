"""SQL for the district level: 社区, campaigns and their communities, management choices, subsidy recipients."""
from __future__ import annotations

import asyncpg

# --- 社区 ---

async def upsert_shequ(conn: asyncpg.Connection, shequ_id: str, street_id: str, name: str) -> None:
    await conn.execute(
        """INSERT INTO shequ (shequ_id, street_id, name) VALUES ($1, $2, $3)
           ON CONFLICT (shequ_id) DO UPDATE SET name = EXCLUDED.name""", shequ_id, street_id, name)


async def get_shequ(conn: asyncpg.Connection, shequ_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT shequ_id, street_id, name FROM shequ WHERE shequ_id = $1", shequ_id)


async def list_shequs(conn: asyncpg.Connection, street_id: str | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT q.shequ_id, q.street_id, q.name, count(c.community_id)::int AS communities
             FROM shequ q LEFT JOIN community c ON c.shequ_id = q.shequ_id
            WHERE $1::text IS NULL OR q.street_id = $1
            GROUP BY q.shequ_id ORDER BY q.street_id, q.shequ_id""", street_id)


async def set_community_shequ(conn: asyncpg.Connection, community_id: str, shequ_id: str | None) -> None:
    await conn.execute("UPDATE community SET shequ_id = $2 WHERE community_id = $1", community_id, shequ_id)


async def staff_shequs(conn: asyncpg.Connection, staff_id: int) -> list[str]:
    return [r["shequ_id"] for r in await conn.fetch(
        "SELECT shequ_id FROM staff_shequ WHERE staff_id = $1 ORDER BY shequ_id", staff_id)]


async def add_staff_shequ(conn: asyncpg.Connection, staff_id: int, shequ_id: str) -> None:
    await conn.execute("INSERT INTO staff_shequ (staff_id, shequ_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       staff_id, shequ_id)


# --- campaigns ---

async def insert_campaign(conn: asyncpg.Connection, *, campaign_id: str, district_id: str, name: str, starts_on,
                          actor: str) -> None:
    await conn.execute(
        """INSERT INTO campaign (campaign_id, district_id, name, starts_on, created_by)
           VALUES ($1, $2, $3, $4, $5)""", campaign_id, district_id, name, starts_on, actor)


async def insert_batches(conn: asyncpg.Connection, campaign_id: str, batches: list[tuple]) -> None:
    await conn.executemany(
        """INSERT INTO campaign_batch (campaign_id, batch_no, name, due_on, share_percent, one_per_shequ)
           VALUES ($1, $2, $3, $4, $5, $6)""", [(campaign_id, *b) for b in batches])


async def insert_areas(conn: asyncpg.Connection, campaign_id: str, areas: list[tuple]) -> None:
    await conn.executemany(
        "INSERT INTO campaign_area (campaign_id, area_id, name, due_on) VALUES ($1, $2, $3, $4)",
        [(campaign_id, *a) for a in areas])


async def get_campaign(conn: asyncpg.Connection, campaign_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT p.campaign_id, p.district_id, d.name AS district_name, p.name, p.starts_on, p.created_at,
                  (SELECT count(*)::int FROM campaign_community cc WHERE cc.campaign_id = p.campaign_id)
                      AS communities
             FROM campaign p JOIN district d USING (district_id) WHERE p.campaign_id = $1""", campaign_id)


async def list_campaigns(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT p.campaign_id, p.district_id, p.name, p.starts_on,
                  (SELECT count(*)::int FROM campaign_community cc WHERE cc.campaign_id = p.campaign_id)
                      AS communities
             FROM campaign p ORDER BY p.starts_on DESC, p.campaign_id""")


async def batches(conn: asyncpg.Connection, campaign_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT batch_no, name, due_on, share_percent, one_per_shequ FROM campaign_batch
            WHERE campaign_id = $1 ORDER BY batch_no""", campaign_id)


async def areas(conn: asyncpg.Connection, campaign_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT area_id, name, due_on FROM campaign_area WHERE campaign_id = $1 ORDER BY area_id", campaign_id)


async def insert_community_if_missing(conn: asyncpg.Connection, *, community_id: str, name: str, street_id: str,
                                      shequ_id: str | None) -> bool:
    status = await conn.execute(
        """INSERT INTO community (community_id, street_id, shequ_id, name) VALUES ($1, $2, $3, $4)
           ON CONFLICT (community_id) DO NOTHING""", community_id, street_id, shequ_id, name)
    return status.endswith(" 1")


async def upsert_campaign_communities(conn: asyncpg.Connection, campaign_id: str, rows: list[tuple]) -> None:
    """rows: (community_id, batch_no, area_id, households)."""
    await conn.executemany(
        """INSERT INTO campaign_community (community_id, campaign_id, batch_no, area_id, households)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (community_id, campaign_id) DO UPDATE
              SET batch_no = EXCLUDED.batch_no, area_id = EXCLUDED.area_id, households = EXCLUDED.households""",
        [(r[0], campaign_id, *r[1:]) for r in rows])


# Every fact a community's stage is derived from, for all communities of a campaign in one query.
async def campaign_facts(conn: asyncpg.Connection, campaign_id: str, *, street_id: str | None = None,
                         shequ_ids: list[str] | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT c.community_id, c.name, c.street_id, st.name AS street_name, c.shequ_id, sq.name AS shequ_name,
                  cc.batch_no, cc.area_id, ca.due_on AS area_due_on, cc.households,
                  c.prep_group_formed_on,
                  (SELECT (min(p.ends_at) AT TIME ZONE 'Asia/Shanghai')::date FROM register_posting p
                    WHERE p.community_id = c.community_id AND p.ends_at <= clock_timestamp()) AS register_posted_on,
                  (m.first_noticed AT TIME ZONE 'Asia/Shanghai')::date AS first_noticed_on,
                  coalesce(m.voting_open, false) AS voting_open,
                  (m.voted_at AT TIME ZONE 'Asia/Shanghai')::date AS voted_on,
                  k.formed_on AS committee_formed_on, k.filed_on, coalesce(k.sealed, false) AS sealed,
                  mc.decided_on AS management_on, mc.mode AS management_mode, mc.contract_type, mc.company
             FROM campaign_community cc
             JOIN community c ON c.community_id = cc.community_id
             LEFT JOIN street st ON st.street_id = c.street_id
             LEFT JOIN shequ sq ON sq.shequ_id = c.shequ_id
             LEFT JOIN campaign_area ca ON ca.campaign_id = cc.campaign_id AND ca.area_id = cc.area_id
             LEFT JOIN LATERAL (
                   SELECT min(noticed_at) AS first_noticed, bool_or(state = 'open') AS voting_open,
                          min(closed_at) FILTER (WHERE state IN ('closed', 'published')) AS voted_at
                     FROM meeting m
                    WHERE m.community_id = c.community_id AND m.noticed_at IS NOT NULL AND m.state <> 'voided') m
                    ON true
             LEFT JOIN LATERAL (
                   SELECT min(elected_on) AS formed_on, min(filing_date) AS filed_on,
                          bool_or(seal_status = 'made') AS sealed
                     FROM committee k
                    WHERE k.community_id = c.community_id AND k.body = 'committee' AND k.formed) k ON true
             LEFT JOIN LATERAL (
                   SELECT decided_on, mode, contract_type, company FROM management_choice x
                    WHERE x.community_id = c.community_id ORDER BY choice_no DESC LIMIT 1) mc ON true
            WHERE cc.campaign_id = $1
              AND ($2::text IS NULL OR c.street_id = $2)
              AND ($3::text[] IS NULL OR c.shequ_id = ANY ($3))
            ORDER BY c.street_id, c.shequ_id, c.community_id""",
        campaign_id, street_id, shequ_ids)


async def shequs_of_campaign(conn: asyncpg.Connection, campaign_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT DISTINCT q.shequ_id, q.name, q.street_id FROM campaign_community cc
             JOIN community c ON c.community_id = cc.community_id JOIN shequ q ON q.shequ_id = c.shequ_id
            WHERE cc.campaign_id = $1 AND cc.area_id IS NULL ORDER BY q.shequ_id""", campaign_id)


# --- management choice and subsidy recipients ---

async def next_choice_no(conn: asyncpg.Connection, community_id: str) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(choice_no), 0) + 1 FROM management_choice WHERE community_id = $1", community_id)


async def insert_management_choice(conn: asyncpg.Connection, *, community_id: str, choice_no: int, mode: str,
                                   company: str | None, contract_type: str | None, decided_on, meeting_id: str,
                                   matter_id: str, actor: str) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO management_choice (community_id, choice_no, mode, company, contract_type, decided_on,
                                          meeting_id, matter_id, recorded_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           RETURNING community_id, choice_no, mode, company, contract_type, decided_on, meeting_id, matter_id,
                     recorded_by, recorded_at""",
        community_id, choice_no, mode, company, contract_type, decided_on, meeting_id, matter_id, actor)


async def management_choices(conn: asyncpg.Connection, community_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT community_id, choice_no, mode, company, contract_type, decided_on, meeting_id, matter_id,
                  recorded_by, recorded_at
             FROM management_choice WHERE community_id = $1 ORDER BY choice_no""", community_id)


async def matter_with_result(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             matter_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT x.category, x.kind, r.result_json, r.status AS result_status,
                  (r.published_at AT TIME ZONE 'Asia/Shanghai')::date AS published_on
             FROM matter x LEFT JOIN meeting_result r USING (community_id, meeting_id)
            WHERE x.community_id = $1 AND x.meeting_id = $2 AND x.matter_id = $3""",
        community_id, meeting_id, matter_id)


async def insert_recipient(conn: asyncpg.Connection, *, community_id: str, name: str, duty: str, employment: str,
                           actor: str) -> int:
    return await conn.fetchval(
        """INSERT INTO subsidy_recipient (community_id, recipient_no, name, duty, employment, recorded_by)
           VALUES ($1, (SELECT coalesce(max(recipient_no), 0) + 1 FROM subsidy_recipient WHERE community_id = $1),
                   $2, $3, $4, $5)
           RETURNING recipient_no""", community_id, name, duty, employment, actor)


async def recipients(conn: asyncpg.Connection, community_ids: list[str]) -> list[asyncpg.Record]:
    """The formed preparatory group's members, then anyone else recorded as a recipient."""
    return await conn.fetch(
        """SELECT community_id, source, recipient_no, name, duty, employment FROM (
               SELECT m.community_id, 'prep_group' AS source, m.member_no AS recipient_no, m.name,
                      '筹备组' || CASE WHEN m.leader THEN '组长' ELSE '成员' END AS duty, m.employment
                 FROM prep_group g JOIN prep_group_member m USING (community_id, group_no)
                WHERE g.state = 'formed' AND g.community_id = ANY ($1)
               UNION ALL
               SELECT community_id, 'recorded', recipient_no, name, duty, employment FROM subsidy_recipient
                WHERE community_id = ANY ($1)) r
            ORDER BY community_id, source, recipient_no""", community_ids)
