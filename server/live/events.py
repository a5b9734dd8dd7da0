"""Announcing changes to a meeting so live views (every worker's) can refresh.

Services call ``publish_meeting_event`` after their transaction commits.  It
never raises: a broker outage must not fail or delay a vote; live views catch
up from the database when the broker is back (see server.live.meeting).

An event that names the ballots it announces (``"ballot_ids": [...]``, whatever
its ``type``: electronic, paper or proxy votes) lets every live view read exactly
those rows by id; an event without them makes the views scan for what they
missed (:func:`event_ballot_ids`).
"""
from __future__ import annotations

import logging
import uuid
from typing import Any

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


def event_ballot_ids(event: dict[str, Any]) -> list[uuid.UUID] | None:
    """The ballot ids an event names, or None when it names none (or any is not a UUID)."""
    ids = event.get("ballot_ids")
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        return None
    try:
        return [uuid.UUID(i) for i in ids]
    except (TypeError, ValueError, AttributeError):
        return None
