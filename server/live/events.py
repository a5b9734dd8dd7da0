"""Announcing changes to a meeting so live views (every worker's) can refresh.

Services call ``publish_meeting_event`` after their transaction commits.  It
never raises: a broker outage must not fail or delay a vote; live views catch
up from the database when the broker is back (see server.live.hub).
"""
from __future__ import annotations

import logging

from aiohttp import web

from server import appkeys

log = logging.getLogger("evote.events")


def meeting_channel(community_id: str, meeting_id: str) -> str:
    return f"evote:meeting:{community_id}:{meeting_id}"


async def publish_meeting_event(app: web.Application, community_id: str, meeting_id: str, event: dict) -> None:
    broker = app.get(appkeys.BROKER)
    if broker is None:
        return
    try:
        await broker.publish(meeting_channel(community_id, meeting_id), event)
    except Exception:  # the vote is committed already; live views will resync
        log.warning("could not publish %s for %s/%s", event.get("type"), community_id, meeting_id, exc_info=True)
