"""SQL for staff accounts and their scopes."""
from __future__ import annotations

import asyncpg


async def insert_staff(conn: asyncpg.Connection, *, username: str, display_name: str, password_hash: str,
                       role: str, street_id: str | None) -> int:
    return await conn.fetchval(
        """INSERT INTO staff (username, display_name, password_hash, role, street_id)
           VALUES ($1, $2, $3, $4, $5) RETURNING staff_id""",
        username, display_name, password_hash, role, street_id)


async def add_staff_communities(conn: asyncpg.Connection, staff_id: int, community_ids: list[str]) -> None:
    await conn.executemany(
        "INSERT INTO staff_community (community_id, staff_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        [(c, staff_id) for c in community_ids])


async def get_staff_by_username(conn: asyncpg.Connection, username: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT staff_id, username, display_name, password_hash, role, street_id, active
             FROM staff WHERE username = $1""", username)


async def get_staff(conn: asyncpg.Connection, staff_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT staff_id, username, display_name, role, street_id, active
             FROM staff WHERE staff_id = $1""", staff_id)


async def update_password_hash(conn: asyncpg.Connection, staff_id: int, password_hash: str) -> None:
    await conn.execute("UPDATE staff SET password_hash = $2 WHERE staff_id = $1", staff_id, password_hash)


async def staff_communities(conn: asyncpg.Connection, staff_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT community_id FROM staff_community WHERE staff_id = $1 ORDER BY community_id", staff_id)
    return [r["community_id"] for r in rows]


async def may_touch_community(conn: asyncpg.Connection, *, staff_id: int, role: str, street_id: str | None,
                              community_id: str) -> bool:
    if role == "district_admin":
        return True
    if role == "street_admin":
        return bool(await conn.fetchval(
            "SELECT 1 FROM community WHERE community_id = $1 AND street_id = $2", community_id, street_id))
    return bool(await conn.fetchval(
        "SELECT 1 FROM staff_community WHERE community_id = $1 AND staff_id = $2", community_id, staff_id))


async def list_staff(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT staff_id, username, display_name, role, street_id, active FROM staff ORDER BY staff_id")
