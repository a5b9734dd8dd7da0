"""What must follow a commit: events for live views, and the close hooks.

Services that change a meeting take an :class:`Effects` and call it after their
transaction has committed, never inside it.  The application builds one at
set-up (``server.app.build_effects``), where the close hooks are listed
explicitly; tools and tests without an app build their own.

Publishing never raises (a broker outage must not fail a committed vote), and a
failing close hook is logged while the others still run: everything a hook does
is also re-done on demand (signing by publish/export, formation on request).
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from server.settings import Settings

log = logging.getLogger("evote.effects")

Publisher = Callable[[str, str, dict[str, Any]], Awaitable[None]]
# The event type of "a write lost its database connection and may have committed": live views scan
# for rows they were not told of, on their own schedule (the database may still be away).
IN_DOUBT = "submissions_in_doubt"
# hook(pool, effects, community_id, meeting_id), run once after a meeting has closed
CloseHook = Callable[[asyncpg.Pool, "Effects", str, str], Awaitable[None]]


async def _nobody_listens(community_id: str, meeting_id: str, event: dict[str, Any]) -> None:
    return None


@dataclass
class Effects:
    settings: Settings
    publish: Publisher = _nobody_listens
    close_hooks: list[CloseHook] = field(default_factory=list)

    async def meeting_event(self, community_id: str, meeting_id: str, event: dict[str, Any]) -> None:
        """Tell every worker's live views that the meeting changed (after commit)."""
        await self.publish(community_id, meeting_id, event)

    async def state_changed(self, community_id: str, meeting_id: str, state: str) -> None:
        await self.meeting_event(community_id, meeting_id, {"type": "state", "state": state})

    async def meeting_closed(self, pool: asyncpg.Pool, community_id: str, meeting_id: str) -> None:
        """Announce the close and run every close hook; a failing hook does not stop the others."""
        await self.state_changed(community_id, meeting_id, "closed")
        for hook in list(self.close_hooks):
            try:
                await hook(pool, self, community_id, meeting_id)
            except Exception:
                log.exception("close hook %s failed for %s/%s", getattr(hook, "__name__", hook),
                              community_id, meeting_id)
