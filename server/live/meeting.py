"""One watched meeting: its incremental count and the fan-out of its documents.

How it works (docs/live.md has the user-facing story):

- A :class:`LiveMeeting` keeps a :class:`~server.live.count.LiveCount` (the pure
  engine's :class:`MeetingTally` and the dashboard's turnout figures) fed from
  the database: each refresh reads the ballots
  that events named by id, and, when an event named none or the safety-net poll
  is due, checks for missed rows and reads the submissions received since the
  last one (with an overlap window, so a transaction that committed late is not
  missed; ballot ids already seen are skipped).  The database is the truth; the
  broker only says "look again".
- Broker events are coalesced: a burst of votes triggers one refresh after
  ``live_debounce_s``, and events arriving during a refresh trigger at most one
  more.  One refresh serves every watcher of the meeting.
- After a refresh whose figures changed, the new document is serialised once
  per view (full results / turnout only, built by server.live.views), kept in a
  small ring buffer for ``Last-Event-ID`` resume, and sent to every watcher.
  A stream's watcher (:class:`FrameWatcher`) gets the document framed once per
  framing (SSE, chunked SSE, WebSocket; server.live.frames) and written by the
  refresh straight to its connection; an in-process or compressed stream's
  (:class:`Watcher`) is offered it on a bounded queue.  An owner's stream shows
  only the matters that owner may vote on (a matter scoped to some buildings is
  left out for the others): that variant is serialised once per set of matters,
  when a watcher needs it.  A watcher that falls ``live_queue_size`` documents
  behind (queue full, or that many frames unsent on its connection) is dropped
  (its connection closed); the others and the voting path are never slowed.
- When the broker reports that events may have been lost (Redis came back
  after an outage), and every ``live_poll_s`` as a safety net, the meeting
  refreshes anyway; a resync rebuilds the count from scratch and sends a fresh
  snapshot.

Every read goes through server.repositories (the submissions with the same query
as the counting service), so ``result`` in the results view is exactly the
``evote-result/2`` document of the committed submissions.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from server.ballot.tally import Matter
from server.ballot.weights import Electorate
from server.errors import Conflict, NotFound
from server.live import frames
from server.live.count import LiveCount
from server.live.events import event_ballot_ids
from server.live.views import RESULTS, TURNOUT, only_matters, voting_ended
from server.live.watchers import AnyWatcher, FrameWatcher
from server.repositories import live as live_repo
from server.repositories import meetings as meetings_repo
from server.services import counting
from server.services.effects import IN_DOUBT

if TYPE_CHECKING:
    from server.live.broker import Subscription
    from server.live.hub import LiveHub

log = logging.getLogger("evote.live")

# The matters a watcher is shown: None for all of them (staff, the public), else an owner's.
Visible = frozenset[str] | None

# A submission's transaction may commit a little after its received_at; re-read this far back.
OVERLAP = timedelta(seconds=30)
# After a failed refresh (the database away), the next try after 0.05 s, doubling up to 0.4 s; at once
# when an event arrives.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 0.4
# The safety-net poll's pace while the broker cannot tell this worker of other workers' votes.
OUTAGE_POLL_S = 1.0
EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def _dumps(doc: Mapping[str, Any]) -> str:
    """A frame's JSON text (orjson: compact, UTF-8; json where orjson refuses a value)."""
    try:
        return orjson.dumps(doc, default=str, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(doc, ensure_ascii=False, default=str)


def _digest(docs: Mapping[str, Any]) -> bytes:
    """Whether the documents changed: a hash of their canonical (key-sorted) JSON."""
    try:
        text = orjson.dumps(docs, default=str, option=_ORJSON_OPTIONS | orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(docs, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(text).digest()




@dataclass
class Published:
    seq: int
    kind: str  # "snapshot" or "update"
    docs: dict[tuple[str, Visible], str]  # (view, matters shown) -> JSON text


# --------------------------------------------------------------------------
# One meeting
# --------------------------------------------------------------------------


class LiveMeeting:
    def __init__(self, hub: LiveHub, community_id: str, meeting_id: str) -> None:
        self.hub = hub
        self.community_id, self.meeting_id = community_id, meeting_id
        self.epoch = secrets.token_hex(4)  # event ids of another worker or instance never match
        self.seq = 0
        self.ring: deque[Published] = deque(maxlen=hub.ring_size)
        self.watchers: set[AnyWatcher] = set()
        # The current event's frames, (view, matters shown, framing) -> bytes, shared by its watchers;
        # and its snapshot for a stream that connects, as text (view, matters shown) and framed.
        self._frames: dict[tuple[str, Visible, str], bytes] = {}
        self._snapshot_texts: dict[tuple[str, Visible], str] = {}
        self._snapshot_frames: dict[tuple[str, Visible, str], bytes] = {}
        self._lock = asyncio.Lock()
        self._dirty = False
        self._need_full = True
        self._refresh_task: asyncio.Task[None] | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._evict_handle: asyncio.TimerHandle | None = None
        self._subscription: Subscription | None = None
        self.refreshes = 0  # how many recomputations ran (coalescing is measured by it)
        self._last_refresh_at = float("-inf")  # loop time the last coalesced refresh started
        self._pending_ids: set[uuid.UUID] = set()  # ballots named by events since the last refresh
        self._pending_scan = False  # an event named no ballots (or the poll is due): check for missed rows
        self._wake = asyncio.Event()  # set by notify(): ends the wait after a failed refresh at once
        # Readers that asked for the figures as of now (JSON snapshots, stream connects): they share the
        # next refresh instead of each running one under the lock (single flight).
        self._fresh_waiter: asyncio.Future[None] | None = None
        self.show_live_results = False
        self.state = ""
        self._digest = b""
        self._docs: dict[str, dict[str, Any]] = {}

    # -- structure and counting --------------------------------------------

    def _reset(self, meeting: Mapping[str, Any], matters: list[Matter], electorate: Electorate) -> None:
        """Start counting afresh: the meeting's rules, its matters (in meeting order, as the counting
        service reads them) and its frozen electorate; nothing seen yet."""
        self.count = LiveCount(self.meeting_id, counting.rules_from_json(meeting["rules"]), matters, electorate)
        self.seen: set[str] = set()
        self.watermark = EPOCH_START
        self.skipped = 0
        self.register_version = meeting["register_version"]

    def _take(self, row: asyncpg.Record) -> None:
        submission = counting.submission_from_row(row)
        # proxy = an electronic ballot cast by a proxy for the owner (docs/paper-and-proxy.md)
        label = "proxy" if row["by_proxy"] else submission.channel
        try:
            self.count.take(submission, label)
        except ValueError:
            # The recount would refuse it too; keep counting the rest and say so in the log.
            self.skipped += 1
            log.warning("live tally skipped malformed ballot %s of %s/%s", submission.ballot_id,
                        self.community_id, self.meeting_id)

    async def refresh(self, *, full: bool = False, scan: bool | None = None) -> bool:
        """Bring the count up to what was announced; publish if the figures changed. Returns whether published.

        Incrementally, the ballots named by casting events are read by id (primary key).  A scan
        (``scan=True``, or by default when an event named no ballots or the safety-net poll is due)
        also checks that nothing else is missing: if the meeting has more counted submissions than
        were seen, the rows since the watermark (with the overlap) are read, and if that is not
        enough, all of them.  Re-reading the overlap on every refresh cost 140 ms at 6,000 votes a
        minute, and on every stream connect after a rush (docs/performance.md).
        """
        async with self._lock:
            if scan is None:
                scan, self._pending_scan = self._pending_scan, False
            full = full or self._need_full
            pool = self.hub.pool
            async with pool.acquire() as conn:
                meeting = await meetings_repo.get_meeting(conn, self.community_id, self.meeting_id)
                if meeting is None:
                    raise NotFound("找不到该会议", code="meeting_not_found")
                if meeting["state"] == "draft" or meeting["total_persons"] is None:
                    raise Conflict("会议尚未发布公告，暂无表决数据", code="meeting_not_noticed")
                if not full and meeting["register_version"] != self.register_version:
                    full = True
                cid, mid = self.community_id, self.meeting_id
                if full:
                    self._pending_ids.clear()
                    matters = await counting.load_matters(conn, cid, mid)
                    electorate = await counting.load_electorate(conn, cid, mid, meeting["total_area"],
                                                                meeting["total_persons"])
                    rows = await meetings_repo.all_submissions(conn, cid, mid)
                    self._reset(meeting, matters, electorate)
                    self._need_full = False
                    self._absorb(rows)
                else:
                    ids = list(self._pending_ids)
                    self._pending_ids.clear()
                    if ids:
                        self._absorb(await meetings_repo.all_submissions(conn, cid, mid, ballot_ids=ids))
                    if scan:
                        # Every seen ballot was committed before this count, so "more" means "missed".
                        if await live_repo.count_counted_submissions(conn, cid, mid) > len(self.seen):
                            self._absorb(await meetings_repo.all_submissions(conn, cid, mid,
                                                                             since=self.watermark - OVERLAP))
                            if await live_repo.count_counted_submissions(conn, cid, mid) > len(self.seen):
                                self._absorb(await meetings_repo.all_submissions(conn, cid, mid))
            self.refreshes += 1
            self.state = meeting["state"]
            self.show_live_results = meeting["show_live_results"]
            self.meeting_meta = {"title": meeting["title"], "state": meeting["state"],
                                 "show_live_results": meeting["show_live_results"],
                                 "opens_at": meeting["opens_at"].isoformat() if meeting["opens_at"] else None,
                                 "closes_at": meeting["closes_at"].isoformat() if meeting["closes_at"] else None}
            return self._publish_if_changed("snapshot" if full else "update", force=full)

    def _absorb(self, rows: list[asyncpg.Record]) -> None:
        for row in rows:
            ballot_id = str(row["ballot_id"])
            if ballot_id in self.seen:
                continue
            self.seen.add(ballot_id)
            self._take(row)
            if row["received_at"] > self.watermark:
                self.watermark = row["received_at"]

    def _build(self) -> dict[str, dict[str, Any]]:
        return self.count.documents({"community_id": self.community_id, "meeting_id": self.meeting_id,
                                     **self.meeting_meta}, ended=voting_ended(self.state))

    def _publish_if_changed(self, kind: str, *, force: bool) -> bool:
        docs = self._build()
        digest = _digest(docs)
        if digest == self._digest and not force:
            return False
        self._digest = digest
        self.seq += 1
        event_id = self.event_id(self.seq)
        generated_at = datetime.now(UTC).isoformat()
        self._docs = {}
        texts: dict[tuple[str, Visible], str] = {}
        for view, doc in docs.items():
            full = {"type": kind, "event_id": event_id, "seq": self.seq, "generated_at": generated_at, **doc}
            self._docs[view] = full
            texts[(view, None)] = _dumps(full)
        published = Published(self.seq, kind, texts)
        self.ring.append(published)
        self._frames, self._snapshot_texts, self._snapshot_frames = {}, {}, {}
        for watcher in list(self.watchers):
            self._offer(watcher, published)
        return True

    # -- views --------------------------------------------------------------

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}.{seq}"

    def view_for(self, watcher_or_organiser: AnyWatcher | bool) -> str:
        organiser = bool(watcher_or_organiser) if isinstance(watcher_or_organiser, bool) else (
            watcher_or_organiser.organiser)
        return RESULTS if organiser or self.show_live_results else TURNOUT

    def visible_matters(self, voter_id: str | None) -> Visible:
        """The matters shown to an owner (None: every matter; staff and the public pass no voter)."""
        return None if voter_id is None else self.count.visible_matters(voter_id)

    def document(self, organiser: bool, voter_id: str | None = None) -> dict[str, Any]:
        """The current document for an organiser or not; an owner's shows only their matters."""
        doc = self._docs[self.view_for(organiser)]
        visible = self.visible_matters(voter_id)
        return doc if visible is None else only_matters(doc, visible)

    def _text(self, published: Published, view: str, visible: Visible) -> str | None:
        """The JSON text of a published document as a watcher sees it: serialised once per variant,
        while it is the current one (an older variant never made is not made later: None)."""
        key = (view, visible)
        text = published.docs.get(key)
        if text is None and visible is not None and published.seq == self.seq and self._docs:
            text = published.docs[key] = _dumps(only_matters(self._docs[view], visible))
        return text

    def _frame(self, published: Published, view: str, visible: Visible, framing: str, text: str) -> bytes:
        """``text`` framed for a stream: built once per variant and framing while it is the current event."""
        if published.seq != self.seq:
            return frames.encode(framing, self.event_id(published.seq), published.kind, text)
        key = (view, visible, framing)
        frame = self._frames.get(key)
        if frame is None:
            frame = self._frames[key] = frames.encode(framing, self.event_id(published.seq), published.kind, text)
        return frame

    def _offer(self, watcher: AnyWatcher, published: Published) -> None:
        view = RESULTS if watcher.organiser or self.show_live_results else TURNOUT
        visible = None if watcher.voter_id is None else self.count.visible_matters(watcher.voter_id)
        if isinstance(watcher, FrameWatcher):
            # the fan-out's path: the current event's frame, once the first watcher of its variant made it
            frame = self._frames.get((view, visible, watcher.framing)) if published.seq == self.seq else None
            if frame is None:
                text = self._text(published, view, visible)
                if text is None:
                    return
                frame = self._frame(published, view, visible, watcher.framing, text)
            sent = watcher.write(frame)
        else:
            text = self._text(published, view, visible)
            if text is None:
                return
            sent = watcher.offer((self.event_id(published.seq), published.kind, text))
        if not sent and watcher.dropped:
            self.hub.dropped_watchers += 1
            self.detach(watcher)

    # -- watchers -------------------------------------------------------------

    async def attach(self, watcher: AnyWatcher, last_event_id: str | None) -> None:
        """Add a watcher and queue what it must see first: the missed events, or a fresh snapshot."""
        if self._evict_handle is not None:
            self._evict_handle.cancel()
            self._evict_handle = None
        self.watchers.add(watcher)
        self._ensure_poll()
        view, visible = self.view_for(watcher), self.visible_matters(watcher.voter_id)
        missed = self._missed_since(last_event_id, view, visible)
        if missed is None:
            self._send_snapshot(watcher, view, visible)
        else:
            for published in missed:
                self._offer(watcher, published)

    def _send_snapshot(self, watcher: AnyWatcher, view: str, visible: Visible) -> None:
        """The current document as a snapshot: serialised (and framed) once per variant and event,
        not once per connecting stream (2,000 owners connecting at once)."""
        event_id = self._docs[view]["event_id"]
        text = self._snapshot_texts.get((view, visible))
        if text is None:
            doc = self._docs[view] if visible is None else only_matters(self._docs[view], visible)
            text = self._snapshot_texts[(view, visible)] = _dumps(dict(doc, type="snapshot"))
        if isinstance(watcher, FrameWatcher):
            key = (view, visible, watcher.framing)
            frame = self._snapshot_frames.get(key)
            if frame is None:
                frame = self._snapshot_frames[key] = frames.encode(watcher.framing, event_id, "snapshot", text)
            watcher.write(frame)
        else:
            watcher.offer((event_id, "snapshot", text))

    def _missed_since(self, last_event_id: str | None, view: str = RESULTS,
                      visible: Visible = None) -> list[Published] | None:
        """Events after ``last_event_id`` when it is ours and still in the ring, each serialised as
        ``view`` with ``visible`` matters (or the current one); else None (send a snapshot)."""
        if not last_event_id:
            return None
        epoch, _, seq_text = last_event_id.partition(".")
        if epoch != self.epoch or not (seq_text.isascii() and seq_text.isdigit()):
            return None
        seq = int(seq_text)
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.ring or self.ring[0].seq > seq + 1:
            return None  # too old: part of what was missed has left the ring
        missed = [p for p in self.ring if p.seq > seq]
        if any((view, visible) not in p.docs and p.seq != self.seq for p in missed):
            return None  # an owner's variant of an older event was never made: a snapshot says it all
        return missed

    def detach(self, watcher: AnyWatcher) -> None:
        self.watchers.discard(watcher)
        if not self.watchers:
            self.hub._schedule_evict(self)

    # -- coalescing ---------------------------------------------------------

    def on_event(self, event: dict | None) -> None:
        """Broker listener: ``None`` means events may have been lost (rebuild)."""
        if event is None:
            self._need_full = True
        else:
            ids = event_ballot_ids(event)
            if ids is None:
                self._pending_scan = True
            else:
                self._pending_ids.update(ids)
        # A write that lost its connection says nothing of the database being back: it must not cut
        # short the wait after a failed refresh (every refused vote of an outage would).
        self.notify(wake=event is None or event.get("type") != IN_DOUBT)

    def notify(self, *, wake: bool = True) -> None:
        self._dirty = True
        if wake:
            self._wake.set()
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._debounced_refresh())

    async def fresh(self) -> None:
        """Bring the figures up to the database as of this call: wait for a refresh that starts after it.

        Every caller meanwhile shares that one refresh (it is the coalesced one of the votes, so it
        also waits out ``debounce_s`` during a burst).  Each reader running a refresh of its own under
        the meeting's lock queued the votes' refreshes behind every page load and stream connect:
        20 clients reading the public turnout in a loop held a stream's updates back 1.4 s at 23 votes
        a second (docs/live.md).  Raises what the refresh raised (NotFound, Conflict, a lost database).
        """
        if self._fresh_waiter is None or self._fresh_waiter.done():
            self._fresh_waiter = asyncio.get_running_loop().create_future()
        waiter = self._fresh_waiter
        self.notify()
        await asyncio.shield(waiter)

    def _settle_fresh(self, waiter: asyncio.Future[None] | None, error: BaseException | None) -> None:
        if waiter is None or waiter.done():
            return
        if error is None:
            waiter.set_result(None)
        else:
            waiter.set_exception(error)
            waiter.exception()  # retrieved here: nobody may be waiting any more

    async def _debounced_refresh(self) -> None:
        # Leading edge: a vote after a quiet spell is counted at once; during a burst, refreshes start
        # at least ``debounce_s`` apart, so a burst still costs at most ~1/debounce_s recomputations a
        # second.  (Sleeping the whole interval first added it to every vote's delivery: 0.25 s.)
        loop = asyncio.get_running_loop()
        backoff = RETRY_FIRST_S
        while self._dirty:
            await asyncio.sleep(max(0.0, self._last_refresh_at + self.hub.debounce_s - loop.time()))
            self._last_refresh_at = loop.time()
            self._dirty = False
            self._wake.clear()
            waiter, self._fresh_waiter = self._fresh_waiter, None
            try:
                await self.refresh()
            except asyncio.CancelledError:
                self._settle_fresh(waiter, NotFound("找不到该会议", code="meeting_not_found"))
                raise
            except (NotFound, Conflict) as exc:
                self._settle_fresh(waiter, exc)
                self._close_watchers()
                return
            except Exception as exc:
                self._settle_fresh(waiter, exc)
                self._pending_scan = True  # ids taken by the failed refresh are found again by a scan
                log.warning("live refresh of %s/%s failed; retrying", self.community_id, self.meeting_id,
                            exc_info=True)
                self._dirty = True
                # The database is away (restarting, unreachable): try again soon, and at once when an
                # event arrives, since a vote acknowledged means it is back.  A fixed second here, taken
                # again after every failure, delayed streams 1.2 to 2.3 s after an outage (docs/live.md).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(backoff):
                        await self._wake.wait()
                backoff = min(backoff * 2, RETRY_MAX_S)
            else:
                self._settle_fresh(waiter, None)
                backoff = RETRY_FIRST_S

    def _ensure_poll(self) -> None:
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        # Safety net: without Redis, other workers' votes show up at this pace.  While the Redis
        # subscription is down (no word of other workers' votes), every OUTAGE_POLL_S instead.
        waited = 0.0
        while self.watchers:
            step = min(self.hub.poll_s, OUTAGE_POLL_S)
            await asyncio.sleep(step)
            waited += step
            if waited >= self.hub.poll_s or not self.hub.broker_healthy():
                waited = 0.0
                self._pending_scan = True
                self.notify()

    def _close_watchers(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()
        self.watchers.clear()

    async def close(self) -> None:
        self._close_watchers()
        self._settle_fresh(self._fresh_waiter, NotFound("找不到该会议", code="meeting_not_found"))
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        for task in (self._refresh_task, self._poll_task):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
