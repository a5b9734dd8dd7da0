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
        """SELECT staff_id, username, display_name, password_hash, role, street_id, active, token_generation
             FROM staff WHERE username = $1""", username)


async def get_staff(conn: asyncpg.Connection, staff_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT staff_id, username, display_name, role, street_id, active, token_generation
             FROM staff WHERE staff_id = $1""", staff_id)


async def get_staff_for_token(conn: asyncpg.Connection, staff_id: int, jti: str) -> asyncpg.Record | None:
    """The account behind a token and whether the token's jti was revoked: one round trip."""
    return await conn.fetchrow(
        """SELECT s.staff_id, s.username, s.role, s.street_id, s.active, s.token_generation,
                  EXISTS (SELECT 1 FROM staff_token_revoked r WHERE r.jti = $2) AS revoked
             FROM staff s WHERE s.staff_id = $1""", staff_id, jti)


async def get_staff_for_update(conn: asyncpg.Connection, staff_id: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT staff_id, username, display_name, password_hash, role, street_id, active, token_generation
             FROM staff WHERE staff_id = $1 FOR UPDATE""", staff_id)


async def revoke_token(conn: asyncpg.Connection, *, jti: str, staff_id: int, expires_at: int) -> None:
    await conn.execute(
        """INSERT INTO staff_token_revoked (jti, staff_id, expires_at)
           VALUES ($1, $2, to_timestamp($3)) ON CONFLICT (jti) DO NOTHING""", jti, staff_id, expires_at)


async def delete_expired_revocations(conn: asyncpg.Connection) -> int:
    status = await conn.execute("DELETE FROM staff_token_revoked WHERE expires_at < now() - interval '1 minute'")
    return int(status.split()[-1])


async def bump_token_generation(conn: asyncpg.Connection, staff_id: int) -> int:
    return await conn.fetchval(
        """UPDATE staff SET token_generation = token_generation + 1 WHERE staff_id = $1
           RETURNING token_generation""", staff_id)


async def set_active(conn: asyncpg.Connection, staff_id: int, active: bool) -> None:
    await conn.execute("UPDATE staff SET active = $2 WHERE staff_id = $1", staff_id, active)


async def set_role(conn: asyncpg.Connection, staff_id: int, *, role: str, street_id: str | None) -> None:
    await conn.execute("UPDATE staff SET role = $2, street_id = $3 WHERE staff_id = $1", staff_id, role, street_id)


async def replace_staff_communities(conn: asyncpg.Connection, staff_id: int, community_ids: list[str]) -> None:
    await conn.execute("DELETE FROM staff_community WHERE staff_id = $1", staff_id)
    await add_staff_communities(conn, staff_id, community_ids)


async def lock_throttle_row(conn: asyncpg.Connection, key: str) -> asyncpg.Record:
    """The throttle row of ``key`` (created if missing), locked for this transaction."""
    await conn.execute(
        "INSERT INTO staff_login_throttle (key) VALUES ($1) ON CONFLICT (key) DO NOTHING", key)
    return await conn.fetchrow(
        """SELECT key, failures, level, locked_until, last_failure_at, now() AS now
             FROM staff_login_throttle WHERE key = $1 FOR UPDATE""", key)


async def update_throttle(conn: asyncpg.Connection, key: str, *, failures: int, level: int,
                          lock_seconds: int | None) -> None:
    await conn.execute(
        """UPDATE staff_login_throttle
              SET failures = $2, level = $3, last_failure_at = now(),
                  locked_until = CASE WHEN $4::int IS NULL THEN locked_until
                                      ELSE now() + make_interval(secs => $4::int) END
            WHERE key = $1""", key, failures, level, lock_seconds)


async def uncount_attempt(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute(
        "UPDATE staff_login_throttle SET failures = greatest(failures - 1, 0) WHERE key = $1", key)


async def delete_stale_throttles(conn: asyncpg.Connection, idle_s: int) -> int:
    status = await conn.execute(
        """DELETE FROM staff_login_throttle
            WHERE last_failure_at < now() - make_interval(secs => $1::int)
              AND (locked_until IS NULL OR locked_until < now())""", idle_s)
    return int(status.split()[-1])


async def clear_throttle(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("DELETE FROM staff_login_throttle WHERE key = $1", key)


async def clear_throttles_like(conn: asyncpg.Connection, prefix: str) -> None:
    await conn.execute("DELETE FROM staff_login_throttle WHERE starts_with(key, $1)", prefix)


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
    if role == "shequ_admin":   # the communities of its 社区 (staff_shequ)
        return bool(await conn.fetchval(
            """SELECT 1 FROM community c JOIN staff_shequ q ON q.shequ_id = c.shequ_id
                WHERE c.community_id = $1 AND q.staff_id = $2""", community_id, staff_id))
    return bool(await conn.fetchval(
        "SELECT 1 FROM staff_community WHERE community_id = $1 AND staff_id = $2", community_id, staff_id))


async def list_staff(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT s.staff_id, s.username, s.display_name, s.role, s.street_id, s.active,
                  coalesce(array_agg(sc.community_id ORDER BY sc.community_id)
                           FILTER (WHERE sc.community_id IS NOT NULL), '{}') AS communities
             FROM staff s LEFT JOIN staff_community sc ON sc.staff_id = s.staff_id
            GROUP BY s.staff_id ORDER BY s.staff_id""")


async def get_staff_id(conn: asyncpg.Connection, username: str) -> int | None:
    return await conn.fetchval("SELECT staff_id FROM staff WHERE username = $1", username)


async def communities_outside_street(conn: asyncpg.Connection, community_ids: list[str],
                                     street_id: str | None) -> list[str]:
    rows = await conn.fetch(
        """SELECT c FROM unnest($1::text[]) AS c
            WHERE NOT EXISTS (SELECT 1 FROM community WHERE community_id = c AND street_id = $2)""",
        community_ids, street_id)
    return [r["c"] for r in rows]


async def add_staff_shequ(conn: asyncpg.Connection, staff_id: int, shequ_id: str) -> None:
    await conn.execute("INSERT INTO staff_shequ (staff_id, shequ_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                       staff_id, shequ_id)


async def shequ_in_street(conn: asyncpg.Connection, shequ_id: str | None, street_id: str | None) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM shequ WHERE shequ_id = $1 AND street_id = $2",
                                    shequ_id, street_id))
