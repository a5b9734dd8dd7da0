"""The meeting scheduler: opens and closes meetings at their set times, in every worker.

Every ``settings.scheduler_interval_s`` each worker runs one pass: one guarded
``UPDATE ... WHERE state = 'noticed' ... RETURNING`` (and one for 'open'),
each with its transition rows and audit entries in the same transaction.  Rows
are picked ``FOR UPDATE SKIP LOCKED`` and re-checked on state, so when several
workers run a pass at the same moment each meeting changes state exactly once.
Close hooks (results, signing) run after the close commits, only in the worker
that closed the meeting.
"""
from __future__ import annotations

import logging

import asyncpg

from server.repositories import meetings as repo
from server.services import meetings as meetings_service
from server.services.effects import Effects

log = logging.getLogger("evote.scheduler")

ACTOR = "system:scheduler"


async def run_once(pool: asyncpg.Pool, effects: Effects) -> dict[str, list[tuple[str, str]]]:
    """One pass; returns the (community_id, meeting_id) pairs opened and closed by this call."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            opened = await repo.open_due(conn, meetings_service.NOTICE_DAYS)
            await meetings_service.record_scheduled(conn, opened, from_state="noticed", to_state="open", actor=ACTOR)
        async with conn.transaction():
            closed = await repo.close_due(conn)
            await meetings_service.record_scheduled(conn, closed, from_state="open", to_state="closed", actor=ACTOR)
    done = {"opened": [(r["community_id"], r["meeting_id"]) for r in opened],
            "closed": [(r["community_id"], r["meeting_id"]) for r in closed]}
    for community_id, meeting_id in done["opened"]:
        log.info("opened meeting %s/%s", community_id, meeting_id)
        await effects.state_changed(community_id, meeting_id, "open")
    for community_id, meeting_id in done["closed"]:
        log.info("closed meeting %s/%s", community_id, meeting_id)
        await effects.meeting_closed(pool, community_id, meeting_id)
    return done
