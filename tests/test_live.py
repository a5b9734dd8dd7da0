"""Live tallies: figures equal a full recount, visibility, SSE and WebSocket streams, limits."""
from __future__ import annotations

import asyncio
import json
import random
import uuid

import pytest

from server import appkeys
from server.services.counting import compute_result
from tests import helpers_meetings
from tests.helpers_live import Voting, frozen_electorate, recount, wait_for


def live_url(cid: str, mid: str, tail: str = "") -> str:
    return f"/api/admin/communities/{cid}/meetings/{mid}/live{tail}"


class SSE:
    """A tiny reader of a text/event-stream response: events and comments, in order."""

    def __init__(self, resp):
        self.resp = resp
        self.comments: list[str] = []

    async def next(self, timeout: float = 10.0) -> dict:
        event: dict = {}
        data: list[str] = []
        while True:
            line = await asyncio.wait_for(self.resp.content.readline(), timeout)
            if not line:
                raise EOFError("stream ended")
            text = line.decode().rstrip("\n")
            if text == "":
                if data:
                    event["data"] = json.loads("\n".join(data))
                    return event
                continue
            if text.startswith(":"):
                self.comments.append(text[1:].strip())
                continue
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name in ("id", "event", "retry"):
                event[name] = value

    async def comment(self, text: str, timeout: float = 10.0) -> None:
        """Read on until a comment line ``: text`` arrives (events in between are skipped)."""
        while text not in self.comments:
            line = await asyncio.wait_for(self.resp.content.readline(), timeout)
            if not line:
                raise EOFError("stream ended")
            decoded = line.decode().rstrip("\n")
            if decoded.startswith(":"):
                self.comments.append(decoded[1:].strip())

    async def until(self, predicate, timeout: float = 10.0) -> dict:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = await self.next(timeout=max(0.1, deadline - loop.time()))
            if predicate(event):
                return event


@pytest.fixture
async def open_meeting(client, db_pool, staff_headers, imported_community):
    """An open meeting made through the meetings API; returns a Voting (cid, mid, voters, areas, vote())."""
    async def make(units: int = 40, *, client_=None, **kwargs):
        c = client_ or client
        m = await helpers_meetings.open_meeting(db_pool, c, staff_headers, imported_community, units=units, **kwargs)
        return await Voting(c, db_pool, m).load()
    return make


def yes(matter_id: str = "M1", choice: str = "yes") -> list[dict]:
    return [{"matter_id": matter_id, "choice": choice}]


def random_vote(rng: random.Random, matter_id: str) -> dict:
    """An electronic vote as the owner page sends it (never more yes marks than seats: the API refuses)."""
    if matter_id.startswith("E"):
        marks = rng.sample([f"C{i}" for i in range(1, 8)], rng.randint(1, 7))
        choices = {c: rng.choice(("yes", "no", "abstain")) for c in marks}
        while sum(1 for v in choices.values() if v == "yes") > 5:
            choices[next(c for c, v in choices.items() if v == "yes")] = "no"
        return {"matter_id": matter_id, "marks": choices}
    return {"matter_id": matter_id, "choice": rng.choice(("yes", "yes", "no", "abstain"))}


def random_paper(rng: random.Random, matter_id: str) -> list[tuple[str, str]]:
    """A paper ballot's choices; an election ballot may be spoiled (more yes marks than seats) or
    blank, a resolution ballot blank or unclear (invalid)."""
    if matter_id.startswith("E"):
        if rng.random() < 0.1:
            return [("", "invalid")]
        marks = rng.sample([f"C{i}" for i in range(1, 8)], rng.randint(1, 7))
        return [(c, rng.choice(("yes", "yes", "no", "abstain"))) for c in marks]
    return [("", rng.choice(("yes", "yes", "no", "abstain", "invalid")))]


@pytest.mark.parametrize("allow_revision", [False, True])
async def test_live_figures_equal_a_full_recount_after_random_votes(client, db_pool, open_meeting, staff_headers,
                                                                   allow_revision):
    v = await open_meeting(60, rules={"allow_revision": allow_revision})
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    rng = random.Random(4 if allow_revision else 3)
    electronic: set[tuple[str, str]] = set()
    paper: dict[tuple[str, str], int] = {}
    resp = await client.get(live_url(cid, mid), headers=headers)
    assert resp.status == 200
    assert (await resp.json())["turnout"]["persons"] == 0
    for round_ in range(6):
        for _ in range(rng.randint(3, 12)):
            voter = rng.choice(v.voters)
            matters = rng.sample(["M1", "M2", "E1"], rng.randint(1, 3))
            if rng.random() < 0.75:
                if not allow_revision and any((voter, m) in electronic for m in matters):
                    await v.vote(voter, [random_vote(rng, m) for m in matters], expect=409)  # already voted
                    continue
                await v.vote(voter, [random_vote(rng, m) for m in matters])
                electronic.update((voter, m) for m in matters)
            else:
                matter = matters[0]
                if (voter, matter) in paper and not allow_revision:
                    continue  # the database refuses a second paper ballot (unique key)
                paper[(voter, matter)] = paper.get((voter, matter), -1) + 1 if allow_revision else 0
                await v.paper(voter, matter, random_paper(rng, matter), revision=paper[(voter, matter)])
        doc = await (await client.get(live_url(cid, mid), headers=headers)).json()
        expected = await recount(db_pool, cid, mid)
        assert doc["result"] == expected, f"round {round_}"
        async with db_pool.acquire() as conn:
            assert doc["result"] == await compute_result(conn, cid, mid)  # the counting service agrees
    # The figures shown around the result agree with it too.
    for matter, shown in zip(expected["matters"], doc["matters"]):
        assert shown["participating"] == matter["participating"]
        assert shown["electorate"] == matter["electorate"]
        assert shown["invalid"] == matter["invalid"]
        assert shown["outcome"] == matter["outcome"]
    assert doc["totals"] == expected["totals"]
    assert doc["channels"]["electronic"]["ballots"] > 0 and doc["channels"]["paper"]["ballots"] > 0
    voted = {voter for voter, _ in electronic} | {voter for voter, _ in paper}
    assert doc["turnout"]["persons"] == len(voted)
    # An owner counts once in each building they hold counted units in (docs/live.md).
    subjects = (await frozen_electorate(db_pool, cid, mid)).subjects
    assert sum(b["voted"]["persons"] for b in doc["buildings"]) == sum(len(subjects[v].buildings) for v in voted)


async def test_distances_and_quorum_on_both_axes(client, db_pool, open_meeting, staff_headers):
    v = await open_meeting(30, matters=[
        {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}])
    headers = await staff_headers("committee", communities=[v.community_id])
    total_persons = len(v.voters)
    # Two thirds of the persons, largest first, vote yes: quorum on both axes, and M1 passes.
    biggest = sorted(v.voters, key=lambda voter: -v.areas[voter])
    for voter in biggest[:-(-2 * total_persons // 3)]:
        await v.vote(voter, yes())
    doc = await (await client.get(live_url(v.community_id, v.meeting_id), headers=headers)).json()
    m1 = doc["matters"][0]
    assert doc["turnout"]["quorum_met"] is True and m1["quorum_met"] is True
    assert m1["outcome"] == "passed" and m1["status_text"] == "通过"
    assert m1["quorum_shortfall"]["text"] == "参与已达法定比例"
    assert m1["yes_shortfall"]["new_voters"]["met"] is True


async def test_before_quorum_the_page_says_how_far_each_line_is(client, db_pool, open_meeting, staff_headers):
    from server.ballot.amounts import area_ceiling, format_area

    v = await open_meeting(30)
    headers = await staff_headers("prep_group", communities=[v.community_id])
    voter = v.voters[0]
    await v.vote(voter, yes("M1", "no"))
    doc = await (await client.get(live_url(v.community_id, v.meeting_id), headers=headers)).json()
    m1 = doc["matters"][0]
    total_area, total_persons = sum(v.areas.values()), len(v.voters)
    places = doc["places"]  # the register's decimals; a need is rounded up to them
    need_persons = -(-(2 * total_persons - 3) // 3)
    need_area = -(-(2 * total_area - 3 * v.areas[voter]) // 3)
    assert m1["outcome"] == "no_quorum" and m1["status_text"] == "未达参与表决法定比例"
    assert m1["quorum_shortfall"]["persons"] == need_persons
    assert m1["quorum_shortfall"]["text"] == (
        f"还需 {need_persons} 户 / {format_area(area_ceiling(need_area, places), places)} m² 参与")
    # One no vote: a majority needs 2 new yes persons and more than the voter's area.
    assert m1["yes_shortfall"]["new_voters"]["persons"] == 2
    assert m1["yes_shortfall"]["new_voters"]["area"] == format_area(area_ceiling(v.areas[voter] + 1, places), places)
    assert m1["yes_shortfall"]["new_voters"]["text"].startswith("赞成还差 2 户 / ")
    # Buildings are ordered by what their non-voters could still bring.
    key = doc["buildings_sorted_by"]
    remaining = [float(b["remaining"][key]) for b in doc["buildings"]]
    assert remaining == sorted(remaining, reverse=True)
    subjects = (await frozen_electorate(db_pool, v.community_id, v.meeting_id)).subjects
    assert sum(b["voted"]["persons"] for b in doc["buildings"]) == len(subjects[voter].buildings)
    election = doc["matters"][2]
    assert election["kind"] == "election" and len(election["candidates"]) == 7
    assert all(c["standing"] == "short" for c in election["candidates"])
    assert election["candidates"][0]["name"] == "王芳"


async def test_election_standing_follows_the_votes(client, db_pool, open_meeting, staff_headers):
    v = await open_meeting(20)
    headers = await staff_headers("prep_group", communities=[v.community_id])
    # Everyone votes: C1..C5 get every yes, C6 none.
    for voter in v.voters:
        await v.vote(voter, [{"matter_id": "E1", "marks": {"C1": "yes", "C2": "yes", "C3": "yes", "C4": "yes",
                                                           "C5": "yes", "C6": "no"}}])
    doc = await (await client.get(live_url(v.community_id, v.meeting_id), headers=headers)).json()
    election = doc["matters"][2]
    standing = {c["id"]: c["standing"] for c in election["candidates"]}
    assert [standing[c] for c in ("C1", "C2", "C3", "C4", "C5")] == ["elected"] * 5
    assert standing["C6"] == "short" and standing["C7"] == "short"
    assert election["outcome"] == "elected" and election["elected"] == ["C1", "C2", "C3", "C4", "C5"]
    assert election["standing_provisional"] is False


async def test_a_vote_event_naming_a_paper_ballot_is_read_by_id_without_a_rescan(aiohttp_client, settings, db_pool,
                                                                                open_meeting, staff_headers,
                                                                                monkeypatch):
    """Paper and proxy votes announced like electronic ones (``ballot_ids`` in the event) are read by id."""
    from server.app import create_app
    from server.live.events import publish_meeting_event
    from server.repositories import live as live_repo
    from server.repositories import meetings as meetings_repo
    from tests.helpers_live import insert_submission

    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.01, live_poll_s=3600)))
    v = await open_meeting(20, client_=client)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    app = client.server.app
    await client.get(live_url(cid, mid), headers=headers)  # loads the meeting
    live = app[appkeys.LIVE].meetings[(cid, mid)]
    reads: list[dict] = []
    counts: list[tuple] = []
    read_submissions, count_submissions = meetings_repo.all_submissions, live_repo.count_counted_submissions

    async def recorded_read(conn, community_id, meeting_id, **filters):
        reads.append(filters)
        return await read_submissions(conn, community_id, meeting_id, **filters)

    async def recorded_count(*args):
        counts.append(args)
        return await count_submissions(*args)

    monkeypatch.setattr(meetings_repo, "all_submissions", recorded_read)
    monkeypatch.setattr(live_repo, "count_counted_submissions", recorded_count)
    ballot_id = await insert_submission(db_pool, cid, mid, v.voters[0], "M1", [("", "yes")], channel="paper")
    await publish_meeting_event(app, cid, mid, {"type": "vote", "ballot_ids": [ballot_id]})
    await wait_for(lambda: live.document(True)["turnout"]["persons"] == 1)
    assert reads == [{"ballot_ids": [uuid.UUID(ballot_id)]}]  # that row, by id
    assert counts == []  # no check for missed rows, no rescan
    doc = live.document(True)
    assert doc["channels"]["paper"] == {"area": doc["turnout"]["area"], "persons": 1, "ballots": 1}
    assert doc["result"] == await recount(db_pool, cid, mid)


# --------------------------------------------------------------------------
# Visibility
# --------------------------------------------------------------------------


async def test_organisers_see_results_others_see_turnout_only(client, db_pool, open_meeting, staff_headers,
                                                             make_community):
    v = await open_meeting(20)
    cid, mid = v.community_id, v.meeting_id
    await v.vote(v.voters[0], yes())
    for role in ("prep_group", "committee"):
        doc = await (await client.get(live_url(cid, mid), headers=await staff_headers(role, communities=[cid]))).json()
        assert doc["view"] == "results" and "result" in doc and "yes" in doc["matters"][0]
    street = await staff_headers("street_admin", street_id="test-street")
    doc = await (await client.get(live_url(cid, mid), headers=street)).json()
    assert doc["view"] == "results"
    auditor = await staff_headers("auditor", communities=[cid])
    doc = await (await client.get(live_url(cid, mid), headers=auditor)).json()
    assert doc["view"] == "turnout" and "result" not in doc and "yes" not in doc["matters"][0]
    assert doc["turnout"]["persons"] == 1
    # Staff of another community are refused; the public gets turnout only.
    other = await staff_headers("prep_group", communities=[await make_community()])
    resp = await client.get(live_url(cid, mid), headers=other)
    assert resp.status == 403
    resp = await client.get(live_url(cid, mid))
    assert resp.status == 401
    public = await (await client.get(f"/api/public/meetings/{cid}/{mid}/turnout")).json()
    assert public["view"] == "turnout" and "result" not in public
    assert public["turnout"]["persons"] == 1
    assert all(set(m) >= {"participating", "quorum_met"} and "yes" not in m for m in public["matters"])
    # Owners, over their WebSocket, get turnout only as well.
    ws = await client.ws_connect(f"/api/ballot/live/ws?token={await v.token(v.voters[1])}")
    owner = await ws.receive_json(timeout=10)
    assert owner["view"] == "turnout" and "result" not in owner
    await ws.close()


async def test_a_meeting_that_shows_live_results_shows_them_to_everyone(client, db_pool, open_meeting):
    v = await open_meeting(20, show_live_results=True)
    await v.vote(v.voters[0], yes())
    public = await (await client.get(f"/api/public/meetings/{v.community_id}/{v.meeting_id}/turnout")).json()
    assert public["view"] == "results"
    assert public["matters"][0]["yes"]["persons"] == 1
    ws = await client.ws_connect(f"/api/ballot/live/ws?token={await v.token(v.voters[1])}")
    owner = await ws.receive_json(timeout=10)
    assert owner["view"] == "results" and owner["matters"][0]["yes"]["persons"] == 1
    await ws.close()


async def test_unknown_and_draft_meetings(client, imported_community, staff_headers, db_pool):
    cid, _rows = await imported_community(10)
    headers = await staff_headers("prep_group", communities=[cid])
    resp = await client.get(live_url(cid, "no-such"), headers=headers)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "meeting_not_found"
    resp = await client.get(f"/api/public/meetings/{cid}/no-such/turnout")
    assert resp.status == 404
    admin = await staff_headers("district_admin")
    body = helpers_meetings.meeting_body()
    assert (await client.post(f"/api/admin/communities/{cid}/meetings", json=body, headers=admin)).status == 201
    resp = await client.get(live_url(cid, body["meeting_id"]), headers=headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "meeting_not_noticed"


# --------------------------------------------------------------------------
# Streams
# --------------------------------------------------------------------------


async def test_sse_snapshot_update_resume_and_heartbeat(aiohttp_client, settings, db_pool, open_meeting,
                                                       make_staff):
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_heartbeat_s=0.3, live_debounce_s=0.05)))
    v = await open_meeting(30, client_=client)
    cid, mid = v.community_id, v.meeting_id
    username, password = await make_staff("prep_group", communities=[cid])
    token = (await (await client.post("/api/staff/login", json={"username": username, "password": password}))
             .json())["token"]
    app = client.server.app

    # EventSource cannot send headers: the token comes in the query.
    resp = await client.get(live_url(cid, mid, "/stream") + f"?access_token={token}")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    stream = SSE(resp)
    first = await stream.next()
    assert first["event"] == "snapshot" and first["data"]["turnout"]["persons"] == 0
    assert first["id"] == first["data"]["event_id"]

    await v.vote(v.voters[0], yes())
    update = await stream.until(lambda e: e["data"]["turnout"]["persons"] == 1)
    assert update["event"] == "update"
    assert update["data"]["matters"][0]["yes"]["persons"] == 1
    # Heartbeats are comments, sent while nothing happens.
    await stream.comment("heartbeat")
    resp.close()

    # Two more votes while disconnected; resuming from the last id replays exactly what was missed.
    live = app[appkeys.LIVE].meetings[(cid, mid)]
    await v.vote(v.voters[1], yes("M1", "no"))
    await wait_for(lambda: live.document(True)["turnout"]["persons"] == 2)
    await v.vote(v.voters[2], yes("M1", "abstain"))
    await wait_for(lambda: live.document(True)["turnout"]["persons"] == 3)
    resp = await client.get(live_url(cid, mid, "/stream") + f"?access_token={token}",
                            headers={"Last-Event-ID": update["id"]})
    stream = SSE(resp)
    replayed = [await stream.next(), await stream.next()]
    assert [e["event"] for e in replayed] == ["update", "update"]
    assert [e["data"]["turnout"]["persons"] for e in replayed] == [2, 3]
    resp.close()

    # An id from another server (or too old) gets a fresh snapshot instead.
    resp = await client.get(live_url(cid, mid, "/stream") + f"?access_token={token}",
                            headers={"Last-Event-ID": "deadbeef.1"})
    snap = await SSE(resp).next()
    assert snap["event"] == "snapshot" and snap["data"]["turnout"]["persons"] == 3
    resp.close()

    # A bad token is refused before the stream starts.
    resp = await client.get(live_url(cid, mid, "/stream") + "?access_token=nope")
    assert resp.status == 401


async def test_public_turnout_stream(client, db_pool, open_meeting):
    v = await open_meeting(20)
    resp = await client.get(f"/api/public/meetings/{v.community_id}/{v.meeting_id}/turnout",
                            headers={"Accept": "text/event-stream"})
    stream = SSE(resp)
    first = await stream.next()
    assert first["event"] == "snapshot" and first["data"]["view"] == "turnout"
    await v.vote(v.voters[0], yes("M2", "no"))
    update = await stream.until(lambda e: e["data"]["turnout"]["persons"] == 1)
    assert "result" not in update["data"]
    resp.close()


async def test_websocket_for_staff_and_owners(client, db_pool, open_meeting, staff_headers):
    v = await open_meeting(20)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    staff_ws = await client.ws_connect(live_url(cid, mid, "/ws"), headers=headers)
    snapshot = await staff_ws.receive_json(timeout=10)
    assert snapshot["type"] == "snapshot" and snapshot["view"] == "results"

    # An owner (signed in: a ballot session) watches with the token in the first message.
    token = await v.token(v.voters[0])
    owner_ws = await client.ws_connect("/api/ballot/live/ws")
    await owner_ws.send_json({"token": token})
    owner_snapshot = await owner_ws.receive_json(timeout=10)
    assert owner_snapshot["type"] == "snapshot" and owner_snapshot["view"] == "turnout"
    assert "result" not in owner_snapshot

    await v.vote(v.voters[0], yes())
    for ws, view in ((staff_ws, "results"), (owner_ws, "turnout")):
        while True:
            msg = await ws.receive_json(timeout=10)
            if msg["type"] == "update" and msg["turnout"]["persons"] == 1:
                break
        assert msg["view"] == view
        assert ("yes" in msg["matters"][0]) == (view == "results")
    await staff_ws.close()
    await owner_ws.close()

    # The token can also come in the query; a bad token gets an error message and a close.
    owner_ws = await client.ws_connect(f"/api/ballot/live/ws?token={token}")
    assert (await owner_ws.receive_json(timeout=10))["type"] == "snapshot"
    await owner_ws.close()
    bad = await client.ws_connect("/api/ballot/live/ws")
    await bad.send_json({"token": "not-a-token"})
    error = await bad.receive_json(timeout=10)
    assert error["type"] == "error" and error["code"] == "invalid_token"
    await bad.close()


# --------------------------------------------------------------------------
# Limits: coalescing and slow consumers
# --------------------------------------------------------------------------


async def test_a_burst_of_votes_is_coalesced_into_few_updates(aiohttp_client, settings, db_pool, open_meeting,
                                                              staff_headers):
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.3, live_poll_s=3600)))
    v = await open_meeting(80, client_=client)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    app = client.server.app
    voters = v.voters[:40]
    for voter in voters:
        await v.token(voter)  # sign everyone in first, so the burst is only votes
    await client.get(live_url(cid, mid), headers=headers)  # loads the meeting
    hub = app[appkeys.LIVE]
    live = hub.meetings[(cid, mid)]
    watcher = hub.new_watcher(organiser=True)
    watcher.queue = asyncio.Queue()  # unbounded here: we count what arrives
    await live.attach(watcher, None)
    refreshes_before = live.refreshes
    # 40 votes in one burst, each announced after its commit.
    await asyncio.gather(*(v.vote(voter, yes()) for voter in voters))
    await wait_for(lambda: live.document(True)["turnout"]["persons"] == 40)
    events = []
    while not watcher.queue.empty():
        events.append(watcher.queue.get_nowait())
    updates = [e for e in events if e[1] == "update"]
    assert 1 <= len(updates) <= 10, len(updates)
    assert live.refreshes - refreshes_before <= 10
    assert json.loads(updates[-1][2])["turnout"]["persons"] == 40
    live.detach(watcher)


async def test_a_slow_watcher_is_dropped_and_the_others_get_everything(aiohttp_client, settings, db_pool,
                                                                        open_meeting, staff_headers):
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.01, live_queue_size=3,
                                                              live_poll_s=3600)))
    v = await open_meeting(30, client_=client)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    app = client.server.app
    await client.get(live_url(cid, mid), headers=headers)
    hub = app[appkeys.LIVE]
    live = hub.meetings[(cid, mid)]
    closed = []
    slow = hub.new_watcher(organiser=True, on_drop=lambda: closed.append(True))
    await live.attach(slow, None)  # never read: its queue fills up
    fast = hub.new_watcher(organiser=True)
    await live.attach(fast, None)
    seen = []

    async def drain():
        while True:
            item = await fast.queue.get()
            if item is None:
                return
            seen.append(json.loads(item[2])["turnout"]["persons"])

    reader = asyncio.get_running_loop().create_task(drain())
    for voter in v.voters[:8]:
        await v.vote(voter, yes())
        await live.refresh()  # one update per vote, so the slow queue must overflow
    await wait_for(lambda: seen and seen[-1] == 8)
    assert slow.dropped and closed == [True]
    assert slow not in live.watchers and fast in live.watchers
    assert seen == list(range(0, 9))  # the fast watcher missed nothing (0 = the first snapshot)
    assert hub.dropped_watchers >= 1
    reader.cancel()


async def test_an_sse_client_that_stops_reading_is_disconnected(aiohttp_client, settings, db_pool, open_meeting,
                                                               staff_headers):
    """End to end: a stream whose connection stops taking its frames is closed by the server."""
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.01, live_queue_size=2,
                                                              live_poll_s=3600)))
    v = await open_meeting(30, client_=client)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    app = client.server.app
    resp = await client.get(live_url(cid, mid, "/stream"), headers=headers)
    assert resp.status == 200
    live = app[appkeys.LIVE].meetings[(cid, mid)]
    await wait_for(lambda: len(live.watchers) == 1)
    (watcher,) = live.watchers
    # Offer faster than the client reads (it reads nothing while this loop runs): once the connection
    # holds more than live_queue_size frames unsent, the stream is dropped.
    published = live.ring[-1]
    for _ in range(100_000):
        live._offer(watcher, published)
        if watcher.dropped:
            break
    assert watcher.dropped
    await wait_for(lambda: not live.watchers)
    resp.close()
