"""One watched meeting: its incremental count and the fan-out of its documents.

How it works (docs/live.md has the user-facing story):

- A :class:`LiveMeeting` keeps the pure engine's :class:`MeetingTally`
  (server.ballot.tally) fed from the database: each refresh reads the ballots
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
  small ring buffer for ``Last-Event-ID`` resume, and offered to every
  watcher's bounded queue.  A watcher whose queue is full is dropped (its
  connection closed); the others and the voting path are never slowed.
- When the broker reports that events may have been lost (Redis came back
  after an outage), and every ``live_poll_s`` as a safety net, the meeting
  refreshes anyway; a resync rebuilds the count from scratch and sends a fresh
  snapshot.

Every read goes through server.repositories (the submissions with the same query
as the counting service), so ``result`` in the results view is exactly the
``evote-result/1`` document of the committed submissions.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from server.ballot.rules import quorum_met, quorum_shortfall
from server.ballot.tally import Matter, MeetingTally, Submission
from server.ballot.weights import Electorate
from server.errors import Conflict, NotFound
from server.live.events import event_ballot_ids
from server.live.views import (
    RESULTS,
    TURNOUT,
    building_rows_from_totals,
    figure,
    matter_view,
    participation_view,
    percent,
    quorum_line,
    shortfall_doc,
)
from server.repositories import live as live_repo
from server.repositories import meetings as meetings_repo
from server.services import counting

if TYPE_CHECKING:
    from server.live.broker import Subscription
    from server.live.hub import LiveHub

log = logging.getLogger("evote.live")

# What a watcher's queue carries: (event id, "snapshot" or "update", the document as JSON text).
QueueItem = tuple[str, str, str]

# A submission's transaction may commit a little after its received_at; re-read this far back.
OVERLAP = timedelta(seconds=30)
EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


def submission_from_row(row: asyncpg.Record) -> Submission:
    # art. 137: the server's receive time is the legal vote time.
    return Submission(ballot_id=str(row["ballot_id"]), voter_id=row["voter_id"], matter_id=row["matter_id"],
                      channel=row["channel"], cast_at=row["received_at"],
                      choices=tuple(zip(row["candidate_ids"], row["choices"])))


# --------------------------------------------------------------------------
# Watchers
# --------------------------------------------------------------------------


@dataclass(eq=False)
class Watcher:
    """One open stream; ``organiser`` when it may see live results regardless of the meeting flag."""

    organiser: bool
    queue: asyncio.Queue[QueueItem | None]  # None: the stream ends
    on_drop: Callable[[], None] | None = None
    dropped: bool = False
    closed: bool = False

    def offer(self, item: QueueItem) -> bool:
        if self.dropped or self.closed:
            return False
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            # A slow client: drop it rather than buffer without bound or slow the others.
            self.dropped = True
            if self.on_drop is not None:
                try:
                    self.on_drop()
                except Exception:
                    log.debug("closing a dropped watcher failed", exc_info=True)
            return False

    def close(self) -> None:
        self.closed = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            if self.on_drop is not None:
                self.on_drop()


@dataclass
class Published:
    seq: int
    kind: str  # "snapshot" or "update"
    docs: dict[str, str]  # view -> JSON text


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
        self.watchers: set[Watcher] = set()
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
        self.show_live_results = False
        self.state = ""
        self._digest = b""
        self._docs: dict[str, dict[str, Any]] = {}

    # -- structure and counting --------------------------------------------

    def _reset(self, meeting: Mapping[str, Any], matters: list[Matter], electorate: Electorate) -> None:
        """Start counting afresh: the meeting's rules, its matters (in meeting order, as the counting
        service reads them) and its frozen electorate; nothing seen yet."""
        self.rules = counting.rules_from_json(meeting["rules"])
        self.matters = matters
        self.titles = {m.id: m.title for m in matters}
        self.names = {(m.id, candidate_id): name for m in matters for candidate_id, name in m.candidates}
        self.electorate = electorate
        # Each owner counts in the building of their first counted unit.
        self.building_of = {voter_id: s.buildings[0] for voter_id, s in electorate.subjects.items()}
        building_of = self.building_of
        self.tally = MeetingTally(self.meeting_id, self.rules, matters, electorate)
        self.seen: set[str] = set()
        self.watermark = EPOCH_START
        self.counted_channel: dict[tuple[str, str], str] = {}
        self.voter_channels: dict[str, Counter[str]] = {}
        self.skipped = 0
        self.register_version = meeting["register_version"]
        # Turnout kept up to date ballot by ballot (recomputing it over every owner took 40 ms a
        # refresh at 20,000 owners): per building [area, persons, voted area, voted persons],
        # per channel label [area, persons] of the owners with a counted ballot of that label.
        self._building_totals: dict[str, list[int]] = {}
        for voter_id, subject in electorate.subjects.items():
            entry = self._building_totals.setdefault(building_of[voter_id], [0, 0, 0, 0])
            entry[0] += subject.area
            entry[1] += 1
        self._voted_area = 0
        self._voted_persons = 0
        self._channel_users: dict[str, list[int]] = {}
        self._ballots: Counter[str] = Counter()

    def _take(self, row: asyncpg.Record) -> None:
        submission = submission_from_row(row)
        try:
            counted = self.tally.submit(submission)
        except ValueError:
            # The recount would refuse it too; keep counting the rest and say so in the log.
            self.skipped += 1
            log.warning("live tally skipped malformed ballot %s of %s/%s", submission.ballot_id,
                        self.community_id, self.meeting_id)
            return
        if not counted:
            return
        key = (submission.voter_id, submission.matter_id)
        channels = self.voter_channels.setdefault(submission.voter_id, Counter())
        before = {c for c, n in channels.items() if n > 0}
        previous = self.counted_channel.get(key)
        if previous is not None:
            channels[previous] -= 1
            self._ballots[previous] -= 1
        # proxy = an electronic ballot cast by a proxy for the owner (docs/paper-and-proxy.md)
        label = "proxy" if row["by_proxy"] else submission.channel
        channels[label] += 1
        self._ballots[label] += 1
        self.counted_channel[key] = label
        after = {c for c, n in channels.items() if n > 0}
        if before != after:
            self._voter_changed(submission.voter_id, before, after)

    def _voter_changed(self, voter_id: str, before: set[str], after: set[str]) -> None:
        """Move one owner's area and person between "voted / not yet" and between channel labels."""
        area = self.electorate.subjects[voter_id].area
        if bool(before) != bool(after):
            sign = 1 if after else -1
            self._voted_area += sign * area
            self._voted_persons += sign
            entry = self._building_totals[self.building_of[voter_id]]
            entry[2] += sign * area
            entry[3] += sign
        for label in before - after:
            users = self._channel_users[label]
            users[0] -= area
            users[1] -= 1
        for label in after - before:
            users = self._channel_users.setdefault(label, [0, 0])
            users[0] += area
            users[1] += 1

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
        electorate = self.electorate
        figures = self.tally.figures()
        result = self.tally.result()
        voted_area, voted_persons = self._voted_area, self._voted_persons
        short = quorum_shortfall(voted_area, voted_persons, electorate.total_area, electorate.total_persons)
        buildings, sort_by = building_rows_from_totals(self._building_totals, electorate, short)
        channels: dict[str, dict[str, Any]] = {}
        for channel in ("electronic", "paper", "proxy"):
            area, persons = self._channel_users.get(channel, (0, 0))
            channels[channel] = figure(area, persons)
            channels[channel]["ballots"] = self._ballots.get(channel, 0)
        base = {
            "community_id": self.community_id, "meeting_id": self.meeting_id, **self.meeting_meta,
            "totals": figure(electorate.total_area, electorate.total_persons),
            "quorum_line": quorum_line(electorate.total_area, electorate.total_persons),
            "turnout": {
                **figure(voted_area, voted_persons),
                "share": {"area": percent(voted_area, electorate.total_area),
                          "persons": percent(voted_persons, electorate.total_persons)},
                "quorum_met": quorum_met(voted_area, voted_persons, electorate.total_area,
                                         electorate.total_persons),
                "shortfall": shortfall_doc(short, "还需 {persons} 户 / {area} m² 参与", "参与已达法定比例"),
            },
            "buildings": buildings, "buildings_sorted_by": sort_by,
            "channels": channels,
        }
        turnout_matters, result_matters = [], []
        for matter, matter_result in zip(self.matters, result["matters"]):
            f = figures[matter.id]
            turnout_matters.append({
                "id": matter.id, "title": self.titles[matter.id], "kind": matter.kind,
                **participation_view(f.participating, matter_result["quorum_met"], electorate),
            })
            result_matters.append(matter_view(matter, matter_result, f, electorate, self.rules,
                                              self.titles[matter.id], self.names))
        return {
            TURNOUT: {**base, "view": TURNOUT, "matters": turnout_matters},
            RESULTS: {**base, "view": RESULTS, "matters": result_matters, "result": result},
        }

    def _publish_if_changed(self, kind: str, *, force: bool) -> bool:
        docs = self._build()
        digest = hashlib.sha256(json.dumps(docs, sort_keys=True, ensure_ascii=False, default=str).encode()).digest()
        if digest == self._digest and not force:
            return False
        self._digest = digest
        self.seq += 1
        event_id = self.event_id(self.seq)
        generated_at = datetime.now(UTC).isoformat()
        self._docs = {}
        texts = {}
        for view, doc in docs.items():
            full = {"type": kind, "event_id": event_id, "seq": self.seq, "generated_at": generated_at, **doc}
            self._docs[view] = full
            texts[view] = json.dumps(full, ensure_ascii=False, default=str)
        published = Published(self.seq, kind, texts)
        self.ring.append(published)
        for watcher in list(self.watchers):
            self._offer(watcher, published)
        return True

    # -- views --------------------------------------------------------------

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}.{seq}"

    def view_for(self, watcher_or_organiser: Watcher | bool) -> str:
        organiser = watcher_or_organiser.organiser if isinstance(watcher_or_organiser, Watcher) else bool(
            watcher_or_organiser)
        return RESULTS if organiser or self.show_live_results else TURNOUT

    def document(self, organiser: bool) -> dict[str, Any]:
        return self._docs[self.view_for(organiser)]

    def _offer(self, watcher: Watcher, published: Published) -> None:
        if not watcher.offer((self.event_id(published.seq), published.kind,
                              published.docs[self.view_for(watcher)])) and watcher.dropped:
            self.hub.dropped_watchers += 1
            self.detach(watcher)

    # -- watchers -------------------------------------------------------------

    async def attach(self, watcher: Watcher, last_event_id: str | None) -> None:
        """Add a watcher and queue what it must see first: the missed events, or a fresh snapshot."""
        if self._evict_handle is not None:
            self._evict_handle.cancel()
            self._evict_handle = None
        self.watchers.add(watcher)
        self._ensure_poll()
        missed = self._missed_since(last_event_id)
        if missed is None:
            doc = self._docs[self.view_for(watcher)]
            snapshot = dict(doc, type="snapshot")
            watcher.offer((doc["event_id"], "snapshot", json.dumps(snapshot, ensure_ascii=False, default=str)))
        else:
            for published in missed:
                self._offer(watcher, published)

    def _missed_since(self, last_event_id: str | None) -> list[Published] | None:
        """Events after ``last_event_id`` when it is ours and still in the ring; else None (send a snapshot)."""
        if not last_event_id:
            return None
        epoch, _, seq_text = last_event_id.partition(".")
        if epoch != self.epoch or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        if seq > self.seq:
            return None
        if seq == self.seq:
            return []
        if not self.ring or self.ring[0].seq > seq + 1:
            return None  # too old: part of what was missed has left the ring
        return [p for p in self.ring if p.seq > seq]

    def detach(self, watcher: Watcher) -> None:
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
        self.notify()

    def notify(self) -> None:
        self._dirty = True
        if self._refresh_task is None or self._refresh_task.done():
            self._refresh_task = asyncio.get_running_loop().create_task(self._debounced_refresh())

    async def _debounced_refresh(self) -> None:
        # Leading edge: a vote after a quiet spell is counted at once; during a burst, refreshes start
        # at least ``debounce_s`` apart, so a burst still costs at most ~1/debounce_s recomputations a
        # second.  (Sleeping the whole interval first added it to every vote's delivery: 0.25 s.)
        loop = asyncio.get_running_loop()
        while self._dirty:
            await asyncio.sleep(max(0.0, self._last_refresh_at + self.hub.debounce_s - loop.time()))
            self._last_refresh_at = loop.time()
            self._dirty = False
            try:
                await self.refresh()
            except (NotFound, Conflict):
                self._close_watchers()
                return
            except Exception:
                self._pending_scan = True  # ids taken by the failed refresh are found again by a scan
                log.warning("live refresh of %s/%s failed; retrying", self.community_id, self.meeting_id,
                            exc_info=True)
                self._dirty = True
                await asyncio.sleep(1.0)

    def _ensure_poll(self) -> None:
        if self._poll_task is None or self._poll_task.done():
            self._poll_task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        # Safety net: without Redis, other workers' votes show up at this pace.
        while self.watchers:
            await asyncio.sleep(self.hub.poll_s)
            self._pending_scan = True
            self.notify()

    def _close_watchers(self) -> None:
        for watcher in list(self.watchers):
            watcher.close()
        self.watchers.clear()

    async def close(self) -> None:
        self._close_watchers()
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
