"""`evote demo` step: the live dashboard's link for the demo meeting (docs/live.md)."""
from __future__ import annotations

import asyncpg

from server.repositories import meetings as meetings_repo
from server.settings import Settings


async def demo_dashboard_step(pool: asyncpg.Pool, settings: Settings, info: dict) -> None:
    """Add the dashboard link of the demo meeting (else the community's latest noticed one) to ``info``."""
    community_id = info["community_id"]
    meeting_id = info.get("meeting_id")
    if meeting_id is None:
        async with pool.acquire() as conn:
            meetings = await meetings_repo.list_meetings(conn, community_id)  # newest first
        meeting_id = next((m["meeting_id"] for m in meetings if m is not None and m["state"] != "draft"), None)
    if meeting_id:
        info.setdefault("links", []).append(("dashboard:", f"{settings.public_url}/dashboard/{community_id}/{meeting_id}"))
