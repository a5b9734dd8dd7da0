"""SQL for the register's public posting (业主名册公示) and owners' corrections."""
from __future__ import annotations

import asyncpg

POSTING_COLUMNS = "community_id, posting_no, version, starts_at, ends_at, created_by, created_at"
CORRECTION_COLUMNS = ("posting_no, correction_no, unit_id, owner_id, text, filed_at, status, reason, new_version, "
                      "diff::text AS diff, resolved_by, resolved_at")


async def latest_version(conn: asyncpg.Connection, community_id: str) -> int | None:
    return await conn.fetchval("SELECT max(version) FROM register_version WHERE community_id = $1", community_id)


async def insert_posting(conn: asyncpg.Connection, community_id: str, version: int, days: int,
                         actor: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO register_posting (community_id, posting_no, version, starts_at, ends_at, created_by)
            VALUES ($1, (SELECT coalesce(max(posting_no), 0) + 1 FROM register_posting WHERE community_id = $1),
                    $2, clock_timestamp(), clock_timestamp() + make_interval(days => $3), $4)
            RETURNING {POSTING_COLUMNS}""", community_id, version, days, actor)


async def current_posting(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""SELECT {POSTING_COLUMNS}, clock_timestamp() < ends_at AS running FROM register_posting
             WHERE community_id = $1 ORDER BY posting_no DESC LIMIT 1""", community_id)


async def posted_units(conn: asyncpg.Connection, community_id: str, version: int) -> list[asyncpg.Record]:
    """The per-building public list: units and areas, no names."""
    return await conn.fetch(
        """SELECT building, unit_id, kind, area, area_source FROM unit
            WHERE community_id = $1 AND version = $2 ORDER BY building, unit_id""", community_id, version)


async def unit_owners(conn: asyncpg.Connection, community_id: str, version: int, unit_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT o.owner_id, o.name, o.phone_hmac, o.id_hmac, s.representative
             FROM ownership s JOIN owner o USING (community_id, version, owner_id)
            WHERE s.community_id = $1 AND s.version = $2 AND s.unit_id = $3 ORDER BY o.owner_id""",
        community_id, version, unit_id)


async def owner_units(conn: asyncpg.Connection, community_id: str, version: int, owner_id: str) -> list[asyncpg.Record]:
    """The owner's units with their areas, sources and co-owners (names)."""
    return await conn.fetch(
        """SELECT u.unit_id, u.building, u.kind, u.area, u.area_source,
                  array(SELECT o.name FROM ownership x JOIN owner o USING (community_id, version, owner_id)
                         WHERE x.community_id = u.community_id AND x.version = u.version AND x.unit_id = u.unit_id
                           AND x.owner_id <> $3 ORDER BY x.owner_id) AS co_owners
             FROM ownership s JOIN unit u USING (community_id, version, unit_id)
            WHERE s.community_id = $1 AND s.version = $2 AND s.owner_id = $3 ORDER BY u.unit_id""",
        community_id, version, owner_id)


async def throttle(conn: asyncpg.Connection, community_id: str, unit_id: str) -> asyncpg.Record:
    await conn.execute(
        """INSERT INTO posting_lookup_throttle (community_id, unit_id) VALUES ($1, $2)
           ON CONFLICT DO NOTHING""", community_id, unit_id)
    return await conn.fetchrow(
        """SELECT failures, locked_until, locked_until > clock_timestamp() AS locked
             FROM posting_lookup_throttle WHERE community_id = $1 AND unit_id = $2 FOR UPDATE""",
        community_id, unit_id)


async def record_lookup(conn: asyncpg.Connection, community_id: str, unit_id: str, *, ok: bool, limit: int,
                        lock_minutes: int) -> asyncpg.Record:
    return await conn.fetchrow(
        """UPDATE posting_lookup_throttle
              SET failures = CASE WHEN $3 THEN 0 WHEN failures + 1 >= $4 THEN 0 ELSE failures + 1 END,
                  locked_until = CASE WHEN NOT $3 AND failures + 1 >= $4
                                      THEN clock_timestamp() + make_interval(mins => $5) ELSE locked_until END
            WHERE community_id = $1 AND unit_id = $2 RETURNING failures, locked_until""",
        community_id, unit_id, ok, limit, lock_minutes)


async def insert_correction(conn: asyncpg.Connection, community_id: str, posting_no: int, unit_id: str,
                            owner_id: str, text: str) -> int:
    return await conn.fetchval(
        """INSERT INTO register_correction (community_id, posting_no, correction_no, unit_id, owner_id, text)
           VALUES ($1, $2, (SELECT coalesce(max(correction_no), 0) + 1 FROM register_correction
                             WHERE community_id = $1 AND posting_no = $2), $3, $4, $5)
           RETURNING correction_no""", community_id, posting_no, unit_id, owner_id, text)


async def corrections(conn: asyncpg.Connection, community_id: str, posting_no: int | None = None,
                      owner_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {CORRECTION_COLUMNS} FROM register_correction
             WHERE community_id = $1 AND ($2::int IS NULL OR posting_no = $2) AND ($3::text IS NULL OR owner_id = $3)
             ORDER BY posting_no, correction_no""", community_id, posting_no, owner_id)


async def resolve_correction(conn: asyncpg.Connection, community_id: str, posting_no: int, correction_no: int, *,
                             status: str, reason: str | None, new_version: int | None, diff_json: str | None,
                             actor: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"""UPDATE register_correction SET status = $4, reason = $5, new_version = $6, diff = $7::jsonb,
                   resolved_by = $8, resolved_at = clock_timestamp()
             WHERE community_id = $1 AND posting_no = $2 AND correction_no = $3 AND status = 'open'
         RETURNING {CORRECTION_COLUMNS}""",
        community_id, posting_no, correction_no, status, reason, new_version, diff_json, actor)


async def notice_blockers(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record:
    """What keeps a notice back: the rule's switch, a running posting, open corrections."""
    return await conn.fetchrow(
        """SELECT c.register_posting_required AS required,
                  EXISTS (SELECT 1 FROM register_posting p WHERE p.community_id = c.community_id) AS posted,
                  (SELECT max(ends_at) FROM register_posting p WHERE p.community_id = c.community_id
                      AND p.ends_at > clock_timestamp()) AS running_until,
                  (SELECT count(*)::int FROM register_correction r WHERE r.community_id = c.community_id
                      AND r.status = 'open') AS open_corrections
             FROM community c WHERE c.community_id = $1""", community_id)


async def set_posting_required(conn: asyncpg.Connection, community_id: str, required: bool) -> None:
    await conn.execute("UPDATE community SET register_posting_required = $2 WHERE community_id = $1",
                       community_id, required)


async def version_units(conn: asyncpg.Connection, community_id: str, version: int) -> list[asyncpg.Record]:
    """Each unit of a version with its area, source and owners' ids, for the diff of an accepted correction."""
    return await conn.fetch(
        """SELECT u.unit_id, u.building, u.kind, u.area, u.area_source,
                  array(SELECT owner_id FROM ownership x WHERE x.community_id = u.community_id
                           AND x.version = u.version AND x.unit_id = u.unit_id ORDER BY owner_id) AS owners
             FROM unit u WHERE u.community_id = $1 AND u.version = $2""", community_id, version)


async def community_name(conn: asyncpg.Connection, community_id: str) -> str | None:
    return await conn.fetchval("SELECT name FROM community WHERE community_id = $1", community_id)
