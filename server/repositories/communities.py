"""SQL for districts, streets and communities."""
from __future__ import annotations

import asyncpg


async def upsert_district(conn: asyncpg.Connection, district_id: str, name: str) -> None:
    await conn.execute(
        """INSERT INTO district (district_id, name) VALUES ($1, $2)
           ON CONFLICT (district_id) DO UPDATE SET name = EXCLUDED.name""", district_id, name)


async def upsert_street(conn: asyncpg.Connection, street_id: str, district_id: str, name: str) -> None:
    await conn.execute(
        """INSERT INTO street (street_id, district_id, name) VALUES ($1, $2, $3)
           ON CONFLICT (street_id) DO UPDATE SET name = EXCLUDED.name""", street_id, district_id, name)


async def insert_community(conn: asyncpg.Connection, *, community_id: str, name: str, street_id: str | None,
                           count_parking_area: bool, prep_group_formed_on) -> None:
    await conn.execute(
        """INSERT INTO community (community_id, street_id, name, count_parking_area, prep_group_formed_on)
           VALUES ($1, $2, $3, $4, $5)""",
        community_id, street_id, name, count_parking_area, prep_group_formed_on)


async def get_community(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT c.community_id, c.name, c.street_id, s.name AS street_name, c.count_parking_area,
                  c.prep_group_formed_on, c.contact, c.created_at,
                  (SELECT max(version) FROM register_version v WHERE v.community_id = c.community_id)
                      AS register_version
             FROM community c LEFT JOIN street s ON s.street_id = c.street_id
            WHERE c.community_id = $1""", community_id)


async def lock_community(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT community_id, count_parking_area FROM community WHERE community_id = $1 FOR UPDATE",
        community_id)


async def list_communities_for(conn: asyncpg.Connection, *, staff_id: int, role: str,
                               street_id: str | None) -> list[asyncpg.Record]:
    base = """SELECT c.community_id, c.name, c.street_id,
                     (SELECT max(version) FROM register_version v WHERE v.community_id = c.community_id)
                         AS register_version
                FROM community c"""
    if role == "district_admin":
        return await conn.fetch(base + " ORDER BY c.community_id")
    if role == "street_admin":
        return await conn.fetch(base + " WHERE c.street_id = $1 ORDER BY c.community_id", street_id)
    if role == "shequ_admin":
        return await conn.fetch(
            base + " JOIN staff_shequ q ON q.shequ_id = c.shequ_id AND q.staff_id = $1 ORDER BY c.community_id",
            staff_id)
    return await conn.fetch(
        base + " JOIN staff_community sc ON sc.community_id = c.community_id AND sc.staff_id = $1"
               " ORDER BY c.community_id", staff_id)


async def set_contact(conn: asyncpg.Connection, community_id: str, contact: str) -> bool:
    return await conn.fetchval("UPDATE community SET contact = $2 WHERE community_id = $1 RETURNING true",
                               community_id, contact) is not None


async def set_community_settings(conn: asyncpg.Connection, community_id: str, *,
                                 count_parking_area: bool | None, prep_group_formed_on) -> None:
    await conn.execute(
        """UPDATE community SET count_parking_area = coalesce($2, count_parking_area),
                                prep_group_formed_on = coalesce($3, prep_group_formed_on)
            WHERE community_id = $1""", community_id, count_parking_area, prep_group_formed_on)
