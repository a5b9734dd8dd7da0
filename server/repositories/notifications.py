"""SQL for WeChat subscribe messages: owners' opt-ins (which double as the outbox) and the access token."""
from __future__ import annotations

from datetime import datetime

import asyncpg

OPTIN_COLUMNS = ("community_id, meeting_id, voter_id, kind, openid, template_id, accepted_at, state, "
                 "about_meeting_id, payload::text AS payload, attempts, next_attempt_at, last_error, sent_at")


async def bound_openid(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> str | None:
    """The WeChat user bound to the subject's live code (set when it was redeemed in the mini program)."""
    return await conn.fetchval(
        """SELECT wechat_openid FROM ballot_code
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND revoked_at IS NULL""",
        community_id, meeting_id, voter_id)


async def optins(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                 voter_id: str | None = None) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {OPTIN_COLUMNS} FROM notification_optin
             WHERE community_id = $1 AND meeting_id = $2 AND ($3::text IS NULL OR voter_id = $3)
             ORDER BY voter_id, kind""",
        community_id, meeting_id, voter_id)


async def accept(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, voter_id: str, kind: str,
                 openid: str, template_id: str) -> asyncpg.Record:
    """Record an acceptance; a new one after a sent, given-up or withdrawn message starts a new wait."""
    return await conn.fetchrow(
        f"""INSERT INTO notification_optin (community_id, meeting_id, voter_id, kind, openid, template_id)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (community_id, meeting_id, voter_id, kind) DO UPDATE
               SET openid = EXCLUDED.openid, template_id = EXCLUDED.template_id,
                   accepted_at = clock_timestamp(),
                   state = CASE WHEN notification_optin.state = 'queued' THEN 'queued' ELSE 'waiting' END,
                   payload = CASE WHEN notification_optin.state = 'queued' THEN notification_optin.payload END,
                   about_meeting_id = CASE WHEN notification_optin.state = 'queued'
                                           THEN notification_optin.about_meeting_id END,
                   attempts = CASE WHEN notification_optin.state = 'queued' THEN notification_optin.attempts
                                   ELSE 0 END,
                   last_error = NULL, sent_at = NULL
            RETURNING {OPTIN_COLUMNS}""",
        community_id, meeting_id, voter_id, kind, openid, template_id)


async def withdraw(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, voter_id: str,
                   kind: str) -> bool:
    status = await conn.execute(
        """UPDATE notification_optin SET state = 'withdrawn', payload = NULL, next_attempt_at = NULL
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND kind = $4
              AND state IN ('waiting', 'queued')""",
        community_id, meeting_id, voter_id, kind)
    return status.endswith(" 1")


# --- queueing: each UPDATE moves waiting opt-ins whose event happened after their acceptance ---
# The payload columns are gathered here; the message text is built by the service from them.

async def queue_voting_opened(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """UPDATE notification_optin o
              SET state = 'queued', about_meeting_id = o.meeting_id, next_attempt_at = clock_timestamp(),
                  payload = jsonb_build_object('title', m.title, 'at', m.opened_at, 'until', m.closes_at)
             FROM meeting m
            WHERE o.state = 'waiting' AND o.kind = 'voting_opened'
              AND m.community_id = o.community_id AND m.meeting_id = o.meeting_id
              AND m.opened_at IS NOT NULL AND m.opened_at > o.accepted_at AND m.state = 'open'
        RETURNING o.community_id, o.meeting_id, o.voter_id, o.kind""")


async def queue_extensions(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """UPDATE notification_optin o
              SET state = 'queued', about_meeting_id = o.meeting_id, next_attempt_at = clock_timestamp(),
                  payload = jsonb_build_object('title', m.title, 'at', e.published_at, 'until', e.closes_at,
                                               'reason', e.reason)
             FROM meeting m,
                  LATERAL (SELECT published_at, closes_at, reason FROM meeting_extension x
                            WHERE x.community_id = m.community_id AND x.meeting_id = m.meeting_id
                            ORDER BY number DESC LIMIT 1) e
            WHERE o.state = 'waiting' AND o.kind = 'extension'
              AND m.community_id = o.community_id AND m.meeting_id = o.meeting_id
              AND e.published_at > o.accepted_at AND m.state IN ('noticed', 'open')
        RETURNING o.community_id, o.meeting_id, o.voter_id, o.kind""")


async def queue_results(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return await conn.fetch(
        """UPDATE notification_optin o
              SET state = 'queued', about_meeting_id = o.meeting_id, next_attempt_at = clock_timestamp(),
                  payload = jsonb_build_object('title', m.title, 'at', r.published_at,
                                               'until', r.objection_ends_at)
             FROM meeting m JOIN meeting_result r USING (community_id, meeting_id)
            WHERE o.state = 'waiting' AND o.kind = 'result_published'
              AND m.community_id = o.community_id AND m.meeting_id = o.meeting_id
              AND r.published_at IS NOT NULL AND r.published_at > o.accepted_at
        RETURNING o.community_id, o.meeting_id, o.voter_id, o.kind""")


async def queue_notices(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """'notice_published' speaks of the community's next meeting: the first one noticed after the acceptance."""
    return await conn.fetch(
        """WITH next AS (
               SELECT o.community_id, o.meeting_id, o.voter_id, o.kind, n.meeting_id AS about, n.title,
                      n.noticed_at, n.opens_at
                 FROM notification_optin o
                CROSS JOIN LATERAL (
                      SELECT m.meeting_id, m.title, m.noticed_at, m.opens_at FROM meeting m
                       WHERE m.community_id = o.community_id AND m.meeting_id <> o.meeting_id
                         AND m.noticed_at > o.accepted_at AND m.state IN ('noticed', 'open')
                       ORDER BY m.noticed_at LIMIT 1) n
                WHERE o.state = 'waiting' AND o.kind = 'notice_published')
           UPDATE notification_optin o
              SET state = 'queued', about_meeting_id = next.about, next_attempt_at = clock_timestamp(),
                  payload = jsonb_build_object('title', next.title, 'at', next.noticed_at, 'until', next.opens_at)
             FROM next
            WHERE o.community_id = next.community_id AND o.meeting_id = next.meeting_id
              AND o.voter_id = next.voter_id AND o.kind = next.kind AND o.state = 'waiting'
        RETURNING o.community_id, o.meeting_id, o.voter_id, o.kind""")


async def queue_reminders(conn: asyncpg.Connection, *, days_before_close: int) -> list[asyncpg.Record]:
    """Reminders to subjects that have not voted on any matter, by any channel, once the close is near."""
    return await conn.fetch(
        """UPDATE notification_optin o
              SET state = 'queued', about_meeting_id = o.meeting_id, next_attempt_at = clock_timestamp(),
                  payload = jsonb_build_object('title', m.title, 'at', clock_timestamp(), 'until', m.closes_at)
             FROM meeting m
            WHERE o.state = 'waiting' AND o.kind = 'reminder'
              AND m.community_id = o.community_id AND m.meeting_id = o.meeting_id AND m.state = 'open'
              AND clock_timestamp() >= m.closes_at - make_interval(days => $1)
              AND clock_timestamp() < m.closes_at
              AND NOT EXISTS (SELECT 1 FROM submission s
                               WHERE s.community_id = o.community_id AND s.meeting_id = o.meeting_id
                                 AND s.voter_id = o.voter_id)
        RETURNING o.community_id, o.meeting_id, o.voter_id, o.kind""",
        days_before_close)


async def expire_reminders(conn: asyncpg.Connection) -> int:
    """A waiting reminder whose subject voted, or whose meeting is over, has nothing left to remind of."""
    status = await conn.execute(
        """UPDATE notification_optin o SET state = 'withdrawn'
             FROM meeting m
            WHERE o.state = 'waiting' AND o.kind = 'reminder'
              AND m.community_id = o.community_id AND m.meeting_id = o.meeting_id
              AND m.state NOT IN ('noticed', 'open')""")
    return int(status.split()[-1])


# --- sending ---

async def claim_due(conn: asyncpg.Connection, *, limit: int, lease_s: int) -> list[asyncpg.Record]:
    """Take up to ``limit`` due messages for this worker: their next attempt moves ``lease_s`` ahead, so a
    worker that dies mid-send leaves them to be retried, and no other worker sends them meanwhile."""
    return await conn.fetch(
        f"""UPDATE notification_optin o
               SET next_attempt_at = clock_timestamp() + make_interval(secs => $2), attempts = o.attempts + 1
              FROM (SELECT community_id, meeting_id, voter_id, kind FROM notification_optin
                     WHERE state = 'queued' AND next_attempt_at <= clock_timestamp()
                     ORDER BY next_attempt_at
                     LIMIT $1 FOR UPDATE SKIP LOCKED) due
             WHERE o.community_id = due.community_id AND o.meeting_id = due.meeting_id
               AND o.voter_id = due.voter_id AND o.kind = due.kind
         RETURNING {", ".join("o." + c.strip() for c in OPTIN_COLUMNS.split(","))}""",
        limit, lease_s)


async def mark_sent(conn: asyncpg.Connection, key: tuple[str, str, str, str]) -> None:
    await conn.execute(
        """UPDATE notification_optin SET state = 'sent', sent_at = clock_timestamp(), next_attempt_at = NULL,
                  last_error = NULL
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND kind = $4 AND state = 'queued'""",
        *key)


async def mark_retry(conn: asyncpg.Connection, key: tuple[str, str, str, str], *, delay_s: float,
                     error: str) -> None:
    await conn.execute(
        """UPDATE notification_optin
              SET next_attempt_at = clock_timestamp() + make_interval(secs => $5), last_error = $6
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND kind = $4 AND state = 'queued'""",
        *key, delay_s, error)


async def mark_given_up(conn: asyncpg.Connection, key: tuple[str, str, str, str], *, error: str) -> None:
    await conn.execute(
        """UPDATE notification_optin SET state = 'given_up', next_attempt_at = NULL, last_error = $5
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND kind = $4 AND state = 'queued'""",
        *key, error)


async def counts(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT kind, state, count(*)::int AS n FROM notification_optin
            WHERE community_id = $1 AND meeting_id = $2 GROUP BY kind, state ORDER BY kind, state""",
        community_id, meeting_id)


# --- the access token, shared by every worker ---

async def cached_token(conn: asyncpg.Connection, appid: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT token, expires_at, clock_timestamp() AS now FROM wechat_access_token WHERE appid = $1", appid)


async def store_token(conn: asyncpg.Connection, appid: str, token: str, expires_in_s: int) -> datetime:
    return await conn.fetchval(
        """INSERT INTO wechat_access_token (appid, token, expires_at)
           VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))
           ON CONFLICT (appid) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at,
                                              fetched_at = clock_timestamp()
           RETURNING expires_at""",
        appid, token, expires_in_s)


async def expire_token(conn: asyncpg.Connection, appid: str, token: str) -> None:
    """WeChat refused this token: the next caller fetches a new one (unless another worker already did)."""
    await conn.execute(
        "UPDATE wechat_access_token SET expires_at = clock_timestamp() WHERE appid = $1 AND token = $2",
        appid, token)
