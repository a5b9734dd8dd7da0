"""This worker's live tallies: one :class:`LiveMeeting` per watched meeting.

:class:`LiveHub` (one per worker, ``app[appkeys.LIVE]``, made by :func:`live_ctx`)
holds a :class:`~server.live.meeting.LiveMeeting` for every meeting someone is
watching, subscribed to that meeting's broker channel; a meeting nobody has
watched for ``idle_s`` is closed.  How a meeting counts and fans out its
documents: server.live.meeting.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from server import appkeys
from server.errors import Conflict, NotFound
from server.live.events import meeting_channel
from server.live.meeting import LiveMeeting
from server.live.watchers import FrameWatcher, Watcher

log = logging.getLogger("evote.live")

# The live tallies hold every counted submission (a meeting after a 60,000-vote rush: ~1 million
# objects the garbage collector tracks).  Each full collection walked them all: 160-190 ms, every
# ~2.5 s during a fan-out to 2,000 watchers.  After a meeting's load, and whenever the tallies have
# grown by FREEZE_AFTER_BALLOTS since, they are moved out of the collector's sight (gc.freeze, after one
# collection so no garbage is frozen); an eviction gives them back (gc.unfreeze) so a closed meeting's
# cycles are collected.  docs/performance.md.
FREEZE_AFTER_BALLOTS = 20_000
FREEZE_CHECK_S = 15.0


class LiveHub:
    """Every watched meeting of this worker, and the settings their streams share."""

    def __init__(self, app: web.Application) -> None:
        settings = app[appkeys.SETTINGS]
        self.app = app
        self.pool = app[appkeys.DB_POOL]
        self.debounce_s = settings.live_debounce_s
        self.poll_s = settings.live_poll_s
        self.queue_size = settings.live_queue_size
        self.ring_size = settings.live_ring_size
        self.heartbeat_s = settings.live_heartbeat_s
        self.idle_s = 60.0
        self.meetings: dict[tuple[str, str], LiveMeeting] = {}
        self.dropped_watchers = 0
        self.closing = False
        self._frozen_ballots = 0        # ballots held by the live tallies at the last freeze
        self._freeze_task: asyncio.Task[None] | None = None

    async def meeting(self, community_id: str, meeting_id: str, *, fresh: bool = False) -> LiveMeeting:
        """The live meeting, loaded; ``fresh`` brings it up to the database first."""
        key = (community_id, meeting_id)
        live = self.meetings.get(key)
        if live is None:
            live = LiveMeeting(self, community_id, meeting_id)
            self.meetings[key] = live
            broker = self.app.get(appkeys.BROKER)
            if broker is not None:
                live._subscription = broker.subscribe(meeting_channel(community_id, meeting_id), live.on_event)
            try:
                await live.refresh(full=True)
            except BaseException:
                if self.meetings.get(key) is live:
                    del self.meetings[key]
                await live.close()
                raise
            self._schedule_evict(live)
            self.freeze_tallies()
            if self._freeze_task is None:
                self._freeze_task = asyncio.get_running_loop().create_task(self._freeze_when_grown())
        elif fresh or not live._docs:
            try:
                await live.fresh()
            except (NotFound, Conflict):
                if self.meetings.get(key) is live:
                    del self.meetings[key]
                    await live.close()
                raise
        return live

    def broker_healthy(self) -> bool:
        """Whether this worker hears of other workers' votes now (no broker: a single process)."""
        broker = self.app.get(appkeys.BROKER)
        return broker is None or broker.healthy

    def new_watcher(self, *, organiser: bool, on_drop: Callable[[], None] | None = None,
                    voter_id: str | None = None) -> Watcher:
        """A stream's watcher; ``voter_id`` for an owner, who sees only the matters they may vote on."""
        return Watcher(organiser=organiser, queue=asyncio.Queue(maxsize=self.queue_size), on_drop=on_drop,
                       voter_id=voter_id)

    def frame_watcher(self, *, organiser: bool, framing: str, transport: asyncio.WriteTransport,
                      on_drop: Callable[[], None] | None = None, voter_id: str | None = None) -> FrameWatcher:
        """A stream whose frames (server.live.frames ``framing``) the fan-out writes to ``transport``;
        dropped once it holds ``live_queue_size`` frames unsent, as a queued watcher is when its queue fills."""
        return FrameWatcher(organiser=organiser, framing=framing, transport=transport, max_frames=self.queue_size,
                            on_drop=on_drop, voter_id=voter_id)

    def _schedule_evict(self, live: LiveMeeting) -> None:
        if live.watchers or self.closing:
            return
        if live._evict_handle is not None:
            live._evict_handle.cancel()
        live._evict_handle = asyncio.get_running_loop().call_later(self.idle_s, self._evict, live)

    def _evict(self, live: LiveMeeting) -> None:
        live._evict_handle = None
        if live.watchers:
            return
        key = (live.community_id, live.meeting_id)
        if self.meetings.get(key) is live:
            del self.meetings[key]
        asyncio.get_running_loop().create_task(self._close_and_thaw(live))

    async def _close_and_thaw(self, live: LiveMeeting) -> None:
        await live.close()
        gc.unfreeze()                   # the evicted tally may hold cycles: let the collector see it again
        if self.meetings:
            self.freeze_tallies()
        else:
            self._frozen_ballots = 0

    def held_ballots(self) -> int:
        return sum(len(getattr(live, "seen", ())) for live in self.meetings.values())

    def freeze_tallies(self) -> None:
        """Collect once, then keep everything alive now out of later collections (gc.freeze)."""
        started = time.perf_counter()
        gc.collect()
        gc.freeze()
        self._frozen_ballots = self.held_ballots()
        log.info("live tallies frozen: %d ballots, %d objects, %.0f ms", self._frozen_ballots,
                 gc.get_freeze_count(), (time.perf_counter() - started) * 1000)

    async def _freeze_when_grown(self) -> None:
        while not self.closing:
            await asyncio.sleep(FREEZE_CHECK_S)
            if self.meetings and self.held_ballots() - self._frozen_ballots >= FREEZE_AFTER_BALLOTS:
                self.freeze_tallies()

    def stop_watchers(self) -> None:
        """On shutdown: end every stream so the server can stop at once."""
        self.closing = True
        for live in self.meetings.values():
            live._close_watchers()

    async def close(self) -> None:
        self.closing = True
        if self._freeze_task is not None:
            self._freeze_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._freeze_task
        for live in list(self.meetings.values()):
            if live._evict_handle is not None:
                live._evict_handle.cancel()
            await live.close()
        self.meetings.clear()
        gc.unfreeze()


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: this worker's live hub (after the database and broker contexts)."""
    hub = LiveHub(app)
    app[appkeys.LIVE] = hub
    yield
    await hub.close()
