"""Live tallies of open meetings: one in-memory count per meeting per worker.

How it works (docs/live.md has the user-facing story):

- :class:`LiveHub` (one per worker, ``app[appkeys.LIVE]``) holds a
  :class:`LiveMeeting` for every meeting someone is watching.
- A :class:`LiveMeeting` keeps the pure engine's :class:`MeetingTally`
  (server.ballot.tally) fed from the database: each refresh reads only the
  submissions received since the last one (with an overlap window, so a
  transaction that committed late is not missed; ballot ids already seen are
  skipped).  The database is the truth; the broker only says "look again".
- Broker events are coalesced: a burst of votes triggers one refresh after
  ``live_debounce_s``, and events arriving during a refresh trigger at most one
  more.  One refresh serves every watcher of the meeting.
- After a refresh whose figures changed, the new document is serialised once
  per view (full results / turnout only), kept in a small ring buffer for
  ``Last-Event-ID`` resume, and offered to every watcher's bounded queue.  A
  watcher whose queue is full is dropped (its connection closed); the others
  and the voting path are never slowed.
- When the broker reports that events may have been lost (Redis came back
  after an outage), and every ``live_poll_s`` as a safety net, the meeting
  refreshes anyway; a resync rebuilds the count from scratch and sends a fresh
  snapshot.

Documents carry areas as strings with two decimals and persons as integers;
``result`` in the results view is exactly the ``evote-result/1`` document of
the committed submissions.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from server import appkeys
from server.ballot.amounts import format_area
from server.ballot.rules import (
    THRESHOLD_NAMES,
    THRESHOLD_PERCENT,
    Shortfall,
    quorum_met,
    quorum_shortfall,
    yes_shortfall_converts,
    yes_shortfall_new_voters,
)
from server.ballot.tally import ELECTION, Matter, MeetingTally, Rules, Submission, decide_election
from server.ballot.weights import Electorate
from server.errors import Conflict, NotFound
from server.live.events import meeting_channel
from server.services import counting

log = logging.getLogger("evote.live")

RESULTS = "results"  # organisers, or everyone when the meeting shows live results
TURNOUT = "turnout"  # owners and the public
# A submission's transaction may commit a little after its received_at; re-read this far back.
OVERLAP = timedelta(seconds=30)
EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)

STATUS_TEXT = {
    "passed": "通过",
    "failed": "未通过",
    "no_quorum": "未达参与表决法定比例",
    "elected": "已选出",
}


# --------------------------------------------------------------------------
# Reading the database (explicit columns; the database is the truth)
# --------------------------------------------------------------------------


async def fetch_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT community_id, meeting_id, title, state, rules, show_live_results,
                  register_version, total_area, total_persons, opens_at, closes_at
             FROM meeting WHERE community_id = $1 AND meeting_id = $2""",
        community_id, meeting_id)


async def fetch_matters(conn: asyncpg.Connection, community_id: str, meeting_id: str
                        ) -> tuple[list[Matter], dict[str, str], dict[tuple[str, str], str]]:
    """Matters in meeting order (as the counting service reads them), their titles, and candidate
    names by (matter, candidate)."""
    matters = await counting.load_matters(conn, community_id, meeting_id)
    titles = {m.id: m.title for m in matters}
    names = {(m.id, candidate_id): name for m in matters for candidate_id, name in m.candidates}
    return matters, titles, names


async def fetch_electorate(conn: asyncpg.Connection, meeting: asyncpg.Record
                           ) -> tuple[Electorate, dict[str, str]]:
    """The frozen electorate of the meeting (as the counting service reads it) and each voter's building."""
    electorate = await counting.load_electorate(conn, meeting["community_id"], meeting["meeting_id"],
                                                meeting["total_area"], meeting["total_persons"])
    return electorate, {voter_id: s.buildings[0] for voter_id, s in electorate.subjects.items()}


# Same shape and semantics as the counting service's query (server.repositories.meetings.all_submissions):
# a submission is its choice rows (bundle-format.md), so one without any choice row is not counted.
SUBMISSIONS_SINCE = """
SELECT s.ballot_id, s.voter_id, s.matter_id, s.channel, s.received_at,
       s.proxy_voter_id IS NOT NULL AS by_proxy,
       array_agg(c.candidate_id ORDER BY c.candidate_id) AS candidate_ids,
       array_agg(c.choice ORDER BY c.candidate_id) AS choices
  FROM submission s
  JOIN submission_choice c
    ON c.community_id = s.community_id AND c.meeting_id = s.meeting_id AND c.ballot_id = s.ballot_id
 WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.received_at >= $3
 GROUP BY s.community_id, s.meeting_id, s.ballot_id
 ORDER BY s.received_at, s.ballot_id
"""


async def fetch_submissions_since(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                  since: datetime) -> list[asyncpg.Record]:
    return await conn.fetch(SUBMISSIONS_SINCE, community_id, meeting_id, since)


# The same rows for given ballot ids (the casting path names them in its event, after the commit).
SUBMISSIONS_BY_ID = SUBMISSIONS_SINCE.replace("AND s.received_at >= $3", "AND s.ballot_id = any($3::uuid[])")
assert SUBMISSIONS_BY_ID != SUBMISSIONS_SINCE


async def fetch_submissions_by_id(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                  ballot_ids: list[uuid.UUID]) -> list[asyncpg.Record]:
    return await conn.fetch(SUBMISSIONS_BY_ID, community_id, meeting_id, ballot_ids)


async def count_counted_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> int:
    """How many submissions have choice rows (the ones SUBMISSIONS_SINCE returns); an index-only count."""
    return await conn.fetchval(
        """SELECT count(DISTINCT ballot_id) FROM submission_choice
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)


def event_ballot_ids(event: dict) -> list[uuid.UUID] | None:
    """The ballot ids an event names, or None when it names none (or any is not a UUID)."""
    ids = event.get("ballot_ids")
    if not isinstance(ids, list) or not ids or len(ids) > 1000:
        return None
    try:
        return [uuid.UUID(i) for i in ids]
    except (TypeError, ValueError, AttributeError):
        return None


def submission_from_row(row: asyncpg.Record) -> Submission:
    # art. 137: the server's receive time is the legal vote time.
    return Submission(ballot_id=str(row["ballot_id"]), voter_id=row["voter_id"], matter_id=row["matter_id"],
                      channel=row["channel"], cast_at=row["received_at"],
                      choices=tuple(zip(row["candidate_ids"], row["choices"])))


# --------------------------------------------------------------------------
# Pure document building
# --------------------------------------------------------------------------


def percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with two decimals, rounded down ("66.66"); display only."""
    if whole <= 0:
        return "0.00"
    hundredths = part * 10000 // whole
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def figure(area: int, persons: int) -> dict[str, Any]:
    return {"area": format_area(area), "persons": persons}


def quorum_line(total_area: int, total_persons: int) -> dict[str, Any]:
    """The smallest participation that meets 2/3 on each axis."""
    return figure(-(-2 * total_area // 3), -(-2 * total_persons // 3))


def shortfall_doc(short: Shortfall, text_missing: str, text_met: str) -> dict[str, Any]:
    doc = figure(short.area, short.persons)
    doc["met"] = short.met
    doc["text"] = text_met if short.met else text_missing.format(persons=short.persons, area=format_area(short.area))
    return doc


def quorum_shortfall_doc(part_area: int, part_persons: int, total_area: int, total_persons: int) -> dict[str, Any]:
    return shortfall_doc(quorum_shortfall(part_area, part_persons, total_area, total_persons),
                         "还需 {persons} 户 / {area} m² 参与", "参与已达法定比例")


def yes_shortfall_doc(threshold: str, yes_area: int, yes_persons: int, part_area: int, part_persons: int,
                      allow_revision: bool) -> dict[str, Any]:
    doc = {"new_voters": shortfall_doc(yes_shortfall_new_voters(threshold, yes_area, yes_persons, part_area,
                                                                part_persons),
                                       "赞成还差 {persons} 户 / {area} m²", "赞成已达通过比例")}
    if allow_revision:
        doc["converts"] = shortfall_doc(yes_shortfall_converts(threshold, yes_area, yes_persons, part_area,
                                                               part_persons),
                                        "改投赞成还差 {persons} 户 / {area} m²", "赞成已达通过比例")
    return doc


def participation_view(part, quorum: bool, electorate: Electorate) -> dict[str, Any]:
    """How far a matter's participation is, on both axes: shared by the turnout and results views."""
    return {
        "participating": figure(part.area, part.persons),
        "participating_share": {"area": percent(part.area, electorate.total_area),
                                "persons": percent(part.persons, electorate.total_persons)},
        "quorum_met": quorum,
        "quorum_shortfall": quorum_shortfall_doc(part.area, part.persons, electorate.total_area,
                                                 electorate.total_persons),
    }


def matter_view(matter: Matter, result: dict[str, Any], figures, electorate: Electorate, rules: Rules,
                title: str, candidate_names: dict[tuple[str, str], str]) -> dict[str, Any]:
    """One matter for the results view: the result object plus shares and distances."""
    part = figures.participating
    doc = {
        "id": matter.id, "title": title, "kind": matter.kind, "category": matter.category,
        "threshold": matter.threshold, "threshold_text": THRESHOLD_NAMES[matter.threshold],
        "threshold_percent": THRESHOLD_PERCENT[matter.threshold],
        **participation_view(part, result["quorum_met"], electorate),
        "outcome": result["outcome"],
        "status_text": STATUS_TEXT.get(result["outcome"], "未选出" if matter.kind == ELECTION else "未通过"),
    }
    if matter.kind != ELECTION:
        yes = figures.by_choice["yes"]
        doc.update({
            "yes": result["yes"], "no": result["no"], "abstain": result["abstain"],
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes.area, yes.persons, part.area, part.persons,
                                               rules.allow_revision),
        })
        return doc
    # Standing as if participation were already met, so organisers see who leads.
    if_quorum = decide_election(matter, figures, True, rules.rank_by)
    candidates = []
    for candidate_id in matter.candidate_ids:
        yes = figures.candidates[candidate_id]
        if candidate_id in if_quorum.elected:
            standing, standing_text = "elected", "当选"
        elif candidate_id in if_quorum.alternates:
            standing, standing_text = "alternate", "候补"
        elif candidate_id in if_quorum.runoff_needed:
            standing, standing_text = "runoff", "需另行选举"
        elif candidate_id in if_quorum.passed:
            standing, standing_text = "passing", "达到票数但无席位"
        else:
            standing, standing_text = "short", "未达票数"
        candidates.append({
            "id": candidate_id, "name": candidate_names.get((matter.id, candidate_id), candidate_id),
            "yes": figure(yes.area, yes.persons),
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "passed": candidate_id in if_quorum.passed and result["quorum_met"],
            "standing": standing, "standing_text": standing_text,
            "rank": if_quorum.ranked.index(candidate_id) + 1 if candidate_id in if_quorum.ranked else None,
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes.area, yes.persons, part.area, part.persons,
                                               rules.allow_revision),
        })
    doc.update({
        "seats": matter.seats, "alternates_count": matter.alternates,
        "spoiled": figure(figures.spoiled.area, figures.spoiled.persons),
        "candidates": candidates,
        "elected": result["elected"], "alternates": result["alternates"], "runoff_needed": result["runoff_needed"],
        "standing_provisional": not result["quorum_met"],
    })
    return doc


def building_rows(electorate: Electorate, building_of: dict[str, str], voted: set[str],
                  shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """Turnout per building, sorted by how much the building's non-voters could still bring.

    The axis that is relatively further from its 2/3 line decides the order
    (cross-multiplied: short_area/total_area vs short_persons/total_persons):
    buildings with the most non-voting area (or persons) first, the other axis
    breaking ties, then the building name.
    """
    totals: dict[str, list[int]] = {}
    for voter_id, subject in electorate.subjects.items():
        entry = totals.setdefault(building_of[voter_id], [0, 0, 0, 0])
        entry[0] += subject.area
        entry[1] += 1
        if voter_id in voted:
            entry[2] += subject.area
            entry[3] += 1
    return building_rows_from_totals(totals, electorate, shortfall)


def building_rows_from_totals(totals: dict[str, list[int]], electorate: Electorate,
                              shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """:func:`building_rows` from per-building [area, persons, voted area, voted persons]."""
    by_area = shortfall.area * max(electorate.total_persons, 1) >= shortfall.persons * max(electorate.total_area, 1)
    sort_by = "area" if by_area else "persons"
    rows = []
    for building, (area, persons, v_area, v_persons) in totals.items():
        rows.append({
            "building": building,
            "totals": figure(area, persons),
            "voted": figure(v_area, v_persons),
            "remaining": figure(area - v_area, persons - v_persons),
            "share": {"area": percent(v_area, area), "persons": percent(v_persons, persons)},
            "_key": ((area - v_area, persons - v_persons) if by_area else (persons - v_persons, area - v_area)),
        })
    rows.sort(key=lambda r: (-r["_key"][0], -r["_key"][1], r["building"]))
    for rank, row in enumerate(rows, 1):
        del row["_key"]
        row["rank"] = rank
    return rows, sort_by


# --------------------------------------------------------------------------
# Watchers
# --------------------------------------------------------------------------


@dataclass(eq=False)
class Watcher:
    """One open stream; ``results`` when it may see live results regardless of the meeting flag."""

    organiser: bool
    queue: asyncio.Queue
    on_drop: Callable[[], None] | None = None
    dropped: bool = False
    closed: bool = False

    def offer(self, item: tuple[str, str, dict[str, str]]) -> bool:
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
        self._refresh_task: asyncio.Task | None = None
        self._poll_task: asyncio.Task | None = None
        self._evict_handle: asyncio.TimerHandle | None = None
        self._subscription = None
        self.refreshes = 0  # how many recomputations ran (coalescing is measured by it)
        self._last_refresh_at = float("-inf")  # loop time the last coalesced refresh started
        self._pending_ids: set[uuid.UUID] = set()  # ballots named by events since the last refresh
        self._pending_scan = False  # an event named no ballots (or the poll is due): check for missed rows
        self.show_live_results = False
        self.state = ""
        self._digest = b""
        self._docs: dict[str, dict[str, Any]] = {}

    # -- structure and counting --------------------------------------------

    def _reset(self, meeting: asyncpg.Record, matters, titles, names, electorate, building_of) -> None:
        self.rules = counting.rules_from_json(meeting["rules"])
        self.matters, self.titles, self.names = matters, titles, names
        self.electorate, self.building_of = electorate, building_of
        self.tally = MeetingTally(self.meeting_id, self.rules, matters, electorate)
        self.seen: set[str] = set()
        self.watermark = EPOCH_START
        self.counted_channel: dict[tuple[str, str], str] = {}
        self.voter_channels: dict[str, Counter] = {}
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
        self._ballots: Counter = Counter()

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
                meeting = await fetch_meeting(conn, self.community_id, self.meeting_id)
                if meeting is None:
                    raise NotFound("找不到该会议", code="meeting_not_found")
                if meeting["state"] == "draft" or meeting["total_persons"] is None:
                    raise Conflict("会议尚未发布公告，暂无表决数据", code="meeting_not_noticed")
                if not full and meeting["register_version"] != self.register_version:
                    full = True
                cid, mid = self.community_id, self.meeting_id
                if full:
                    self._pending_ids.clear()
                    matters, titles, names = await fetch_matters(conn, cid, mid)
                    electorate, building_of = await fetch_electorate(conn, meeting)
                    rows = await fetch_submissions_since(conn, cid, mid, EPOCH_START)
                    self._reset(meeting, matters, titles, names, electorate, building_of)
                    self._need_full = False
                    self._absorb(rows)
                else:
                    ids = list(self._pending_ids)
                    self._pending_ids.clear()
                    if ids:
                        self._absorb(await fetch_submissions_by_id(conn, cid, mid, ids))
                    if scan:
                        # Every seen ballot was committed before this count, so "more" means "missed".
                        if await count_counted_submissions(conn, cid, mid) > len(self.seen):
                            self._absorb(await fetch_submissions_since(conn, cid, mid, self.watermark - OVERLAP))
                            if await count_counted_submissions(conn, cid, mid) > len(self.seen):
                                self._absorb(await fetch_submissions_since(conn, cid, mid, EPOCH_START))
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

    def view_for(self, watcher_or_organiser) -> str:
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


# --------------------------------------------------------------------------
# The hub: every watched meeting of this worker
# --------------------------------------------------------------------------


class LiveHub:
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
        elif fresh or not live._docs:
            try:
                await live.refresh()
            except (NotFound, Conflict):
                self.meetings.pop(key, None)
                await live.close()
                raise
        return live

    def new_watcher(self, *, organiser: bool, on_drop: Callable[[], None] | None = None) -> Watcher:
        return Watcher(organiser=organiser, queue=asyncio.Queue(maxsize=self.queue_size), on_drop=on_drop)

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
        asyncio.get_running_loop().create_task(live.close())

    def stop_watchers(self) -> None:
        """On shutdown: end every stream so the server can stop at once."""
        self.closing = True
        for live in self.meetings.values():
            live._close_watchers()

    async def close(self) -> None:
        self.closing = True
        for live in list(self.meetings.values()):
            if live._evict_handle is not None:
                live._evict_handle.cancel()
            await live.close()
        self.meetings.clear()


async def live_ctx(app: web.Application):
    """cleanup_ctx: this worker's live hub (after the database and broker contexts)."""
    hub = LiveHub(app)
    app[appkeys.LIVE] = hub
    yield
    await hub.close()


async def demo_dashboard_step(pool: asyncpg.Pool, settings, info: dict) -> None:
    """`evote demo` step: print the dashboard link of the demo meeting (the latest noticed one)."""
    community_id = info["community_id"]
    meeting_id = info.get("meeting_id")
    if meeting_id is None:
        async with pool.acquire() as conn:
            meeting_id = await conn.fetchval(
                """SELECT meeting_id FROM meeting WHERE community_id = $1 AND state <> 'draft'
                    ORDER BY created_at DESC LIMIT 1""", community_id)
    if meeting_id:
        info.setdefault("links", []).append(("dashboard:", f"{settings.public_url}/dashboard/{community_id}/{meeting_id}"))
