"""Live streams under load and after outages, in-process: readers share refreshes, a lost database
is retried at once when the next vote arrives, a broker outage falls back to fast polling, a replayed
vote is announced.  (With real processes, a restarted PostgreSQL and a killed Redis: tests/test_faults.py.)"""
from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from server import appkeys
from server.live import meeting as live_meeting
from tests import helpers_meetings
from tests.helpers_live import Voting, insert_submission, wait_for


def turnout_url(cid: str, mid: str) -> str:
    return f"/api/public/meetings/{cid}/{mid}/turnout"


def yes(matter_id: str = "M1") -> list[dict]:
    return [{"matter_id": matter_id, "choice": "yes"}]


@pytest.fixture
async def live_app(aiohttp_client, settings, db_pool, staff_headers, imported_community):
    """An app whose safety-net poll never fires by itself, and an open meeting of 20 units loaded."""
    from server.app import create_app

    async def make(**overrides):
        client = await aiohttp_client(create_app(settings.replace(live_poll_s=3600, **overrides)))
        m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=20)
        v = await Voting(client, db_pool, m).load()
        resp = await client.get(turnout_url(v.community_id, v.meeting_id))
        assert resp.status == 200
        live = client.server.app[appkeys.LIVE].meetings[(v.community_id, v.meeting_id)]
        return client, v, live
    return make


def watch(live):
    watcher = live.hub.new_watcher(organiser=False)
    watcher.queue = asyncio.Queue()  # unbounded: we look at everything that arrives
    return watcher


def received(watcher) -> list[dict]:
    docs = []
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        if item is not None:
            docs.append(json.loads(item[2]))
    return docs


async def test_concurrent_readers_share_one_refresh_and_see_the_vote_before_them(live_app):
    """Fifty simultaneous reads of the public turnout (page loads, stream connects) cost a refresh or
    two, not fifty run one after another under the meeting's lock while the votes' updates wait."""
    client, v, live = await live_app(live_debounce_s=0.05)
    cid, mid = v.community_id, v.meeting_id
    await v.vote(v.voters[0], yes())
    before = live.refreshes
    responses = await asyncio.gather(*(client.get(turnout_url(cid, mid)) for _ in range(50)))
    bodies = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 50
    assert {b["turnout"]["persons"] for b in bodies} == {1}  # each read is as of its request, vote included
    assert live.refreshes - before <= 3, live.refreshes - before


async def test_after_a_lost_database_the_next_vote_brings_the_stream_back_at_once(live_app, monkeypatch):
    """A refresh that fails (the database restarting) is retried when the next event arrives, not after
    a fixed pause; a reader meanwhile gets a 503, not a hang; the stream's events stay in order."""
    monkeypatch.setattr(live_meeting, "RETRY_FIRST_S", 30.0)  # without the wake-up, 30 s
    monkeypatch.setattr(live_meeting, "RETRY_MAX_S", 30.0)
    client, v, live = await live_app(live_debounce_s=0.01)
    cid, mid = v.community_id, v.meeting_id
    watcher = watch(live)
    await live.attach(watcher, None)
    for voter in v.voters[:2]:
        await v.token(voter)
    pool = live.hub.pool

    class LostDatabase:
        """The live views' pool while the database restarts: every connection is gone."""

        def acquire(self):
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    live.hub.pool = LostDatabase()
    await v.vote(v.voters[0], yes())  # committed; its refresh fails
    await wait_for(lambda: live._refresh_task is not None and live._dirty)
    resp = await client.get(turnout_url(cid, mid))
    assert resp.status == 503 and resp.headers["Retry-After"]
    live.hub.pool = pool
    await v.vote(v.voters[1], yes())  # the database is back: this event wakes the waiting refresh
    await wait_for(lambda: live.document(False)["turnout"]["persons"] == 2)
    docs = received(watcher)
    assert docs[-1]["turnout"]["persons"] == 2
    seqs = [d["seq"] for d in docs]
    assert seqs == sorted(set(seqs))
    live.detach(watcher)


async def test_while_the_broker_is_down_other_workers_votes_are_polled_every_second(live_app, db_pool,
                                                                                   monkeypatch):
    """Without word from Redis, another worker's vote (a row this worker was never told of) still
    reaches the stream: the safety-net poll runs every second instead of every ``live_poll_s``."""
    client, v, live = await live_app(live_debounce_s=0.01)
    cid, mid = v.community_id, v.meeting_id
    monkeypatch.setattr(live.hub, "broker_healthy", lambda: False)
    watcher = watch(live)
    await live.attach(watcher, None)
    await insert_submission(db_pool, cid, mid, v.voters[0], "M1", [("", "yes")])  # no event
    await wait_for(lambda: live.document(False)["turnout"]["persons"] == 1, timeout=10)
    assert received(watcher)[-1]["turnout"]["persons"] == 1
    live.detach(watcher)


async def test_a_replayed_vote_is_announced(live_app, monkeypatch):
    """A vote stored by a request whose answer was lost (nothing announced) shows up when the owner
    retries with the same idempotency key, not at the next safety-net poll."""
    client, v, live = await live_app(live_debounce_s=0.01)
    broker = client.server.app[appkeys.BROKER]
    publish = broker.publish

    async def lost(channel, event):
        return None

    monkeypatch.setattr(broker, "publish", lost)
    token = await v.token(v.voters[0])
    key = uuid.uuid4().hex
    first = await helpers_meetings.cast(client, token, yes(), idempotency_key=key)
    assert first.status == 201
    await asyncio.sleep(0.1)
    assert live.document(False)["turnout"]["persons"] == 0  # never announced
    monkeypatch.setattr(broker, "publish", publish)
    again = await helpers_meetings.cast(client, token, yes(), idempotency_key=key)
    assert again.status == 200
    assert (await again.json())["receipts"] == (await first.json())["receipts"]
    await wait_for(lambda: live.document(False)["turnout"]["persons"] == 1)


async def test_a_vote_whose_connection_was_lost_at_commit_reaches_the_stream(live_app, db_pool, monkeypatch):
    """The connection dies during the COMMIT: the vote is stored, the owner gets a 503 and may never
    retry.  The live view is told to look for unannounced rows, and shows the vote without waiting
    for the safety-net poll."""
    from server.services import casting

    client, v, live = await live_app(live_debounce_s=0.01)
    cid, mid = v.community_id, v.meeting_id
    token = await v.token(v.voters[0])

    async def stored_then_lost(pool, effects, definition, principal, votes, idempotency_key, **group):
        await insert_submission(db_pool, cid, mid, principal.voter_id, "M1", [("", "yes")])
        raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")

    monkeypatch.setattr(casting, "_cast", stored_then_lost)
    resp = await helpers_meetings.cast(client, token, yes())
    assert resp.status == 503
    await wait_for(lambda: live.document(False)["turnout"]["persons"] == 1)
