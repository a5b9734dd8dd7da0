"""The fan-out writes each published document's shared, already-framed bytes straight to every
stream's connection (server.live.frames, FrameWatcher): the frames arrive intact on SSE (chunked
and HTTP/1.0) and WebSockets, a stream that stops reading is dropped while the others get every
update, and a compressed WebSocket still gets its messages through its own handler."""
from __future__ import annotations

import asyncio
import json

import pytest

from server import appkeys
from server.live import frames
from server.live.watchers import FrameWatcher, Watcher
from tests import helpers_meetings
from tests.helpers_live import Voting, wait_for
from tests.test_live import SSE, live_url, yes


@pytest.fixture
async def open_meeting(client, db_pool, staff_headers, imported_community):
    """An open meeting made through the meetings API; returns a Voting."""
    async def make(units: int = 40, *, client_=None):
        c = client_ or client
        m = await helpers_meetings.open_meeting(db_pool, c, staff_headers, imported_community, units=units)
        return await Voting(c, db_pool, m).load()
    return make


def test_frames_are_what_aiohttp_would_send():
    text = '{"type":"update","turnout":{"persons":3},"note":"业主"}'
    body = f"id: e.1\nevent: update\ndata: {text}\n\n".encode()
    assert frames.encode(frames.SSE, "e.1", "update", text) == body
    assert frames.encode(frames.SSE_CHUNKED, "e.1", "update", text) == b"%x\r\n" % len(body) + body + b"\r\n"
    payload = text.encode()
    assert frames.encode(frames.WS, "e.1", "update", text) == bytes([0x81, len(payload)]) + payload
    long = "x" * 300
    assert frames.ws_frame(long.encode())[:4] == bytes([0x81, 126, 1, 44])
    huge = b"y" * 70_000
    assert frames.ws_frame(huge)[:10] == bytes([0x81, 127]) + (70_000).to_bytes(8, "big")
    assert frames.heartbeat(frames.SSE_CHUNKED) == b"d\r\n: heartbeat\n\n\r\n"


async def _ws_until(ws, persons: int) -> dict:
    while True:
        msg = await ws.receive_json(timeout=10)
        if msg["type"] in ("snapshot", "update") and msg["turnout"]["persons"] == persons:
            return msg


async def test_a_stalled_stream_is_dropped_while_the_others_get_every_update(aiohttp_client, settings, db_pool,
                                                                            open_meeting, staff_headers):
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.01, live_queue_size=2,
                                                              live_poll_s=3600)))
    v = await open_meeting(30, client_=client)
    cid, mid = v.community_id, v.meeting_id
    headers = await staff_headers("prep_group", communities=[cid])
    hub = client.server.app[appkeys.LIVE]

    fast_sse = await client.get(live_url(cid, mid, "/stream"), headers=headers)
    sse = SSE(fast_sse)
    assert (await sse.next())["event"] == "snapshot"
    token = await v.token(v.voters[0])
    owner_ws = await client.ws_connect(f"/api/ballot/live/ws?token={token}")
    assert (await owner_ws.receive_json(timeout=10))["type"] == "snapshot"
    live = hub.meetings[(cid, mid)]
    await wait_for(lambda: len(live.watchers) == 2)
    before = set(live.watchers)
    stalled = await client.get(live_url(cid, mid, "/stream"), headers=headers)  # never read
    await wait_for(lambda: len(live.watchers) == 3)
    assert all(isinstance(w, FrameWatcher) for w in live.watchers)
    assert sorted(w.framing for w in live.watchers) == [frames.SSE_CHUNKED, frames.SSE_CHUNKED, frames.WS]
    (slow,) = live.watchers - before

    # The stalled stream's connection fills (its client reads nothing while this loop runs):
    # once it holds more than live_queue_size frames unsent, it is dropped; writes never wait.
    published = live.ring[-1]
    view = live.view_for(slow)
    frame_size = len(live._frame(published, view, None, slow.framing, published.docs[(view, None)]))
    dropped_before = hub.dropped_watchers
    for _ in range(100_000):
        held = slow.transport.get_write_buffer_size()
        live._offer(slow, published)
        if slow.dropped:
            break
        assert held <= slow.max_frames * frame_size + 64 * 1024
    assert slow.dropped and slow not in live.watchers
    assert hub.dropped_watchers == dropped_before + 1
    await wait_for(lambda: len(live.watchers) == 2)

    # The others get every update, whole.
    for n in range(1, 6):
        await v.vote(v.voters[n], yes())
        await live.refresh()  # one update per vote
        event = await sse.until(lambda e, n=n: e["data"]["turnout"]["persons"] == n)
        assert event["event"] == "update" and event["id"] == event["data"]["event_id"]
        assert event["data"]["matters"][0]["yes"]["persons"] == n
        msg = await _ws_until(owner_ws, n)
        assert msg["type"] == "update" and msg["view"] == "turnout"
    await owner_ws.close()
    fast_sse.close()
    stalled.close()
    await wait_for(lambda: not live.watchers)


async def test_a_stream_that_left_is_detached_and_others_still_receive(client, db_pool, open_meeting):
    v = await open_meeting(20)
    url = f"/api/public/meetings/{v.community_id}/{v.meeting_id}/turnout"
    first = await client.get(url, headers={"Accept": "text/event-stream"})
    second = await client.get(url, headers={"Accept": "text/event-stream"})
    a, b = SSE(first), SSE(second)
    assert (await a.next())["event"] == "snapshot" and (await b.next())["event"] == "snapshot"
    live = client.server.app[appkeys.LIVE].meetings[(v.community_id, v.meeting_id)]
    first.close()
    await v.vote(v.voters[0], yes())
    update = await b.until(lambda e: e["data"]["turnout"]["persons"] == 1)
    assert update["event"] == "update" and "result" not in update["data"]
    await wait_for(lambda: len(live.watchers) == 1)
    second.close()


async def test_an_http_1_0_stream_gets_unchunked_events(client, db_pool, open_meeting):
    v = await open_meeting(20)
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /api/public/meetings/{v.community_id}/{v.meeting_id}/turnout HTTP/1.0\r\n"
                 f"Host: {host}\r\nAccept: text/event-stream\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    assert b"chunked" not in head.lower()

    async def event() -> dict:
        fields: dict = {}
        while True:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\n")
            if not line:
                if "data" in fields:
                    return fields
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value

    snapshot = await event()
    assert snapshot["event"] == "snapshot" and snapshot["data"]["turnout"]["persons"] == 0
    live = client.server.app[appkeys.LIVE].meetings[(v.community_id, v.meeting_id)]
    assert [w.framing for w in live.watchers] == [frames.SSE]
    await v.vote(v.voters[0], yes())
    while (update := await event())["data"]["turnout"]["persons"] != 1:
        pass
    assert update["event"] == "update"
    writer.close()


async def test_a_compressed_websocket_is_served_by_its_own_handler(client, db_pool, open_meeting, staff_headers):
    v = await open_meeting(20)
    headers = await staff_headers("prep_group", communities=[v.community_id])
    ws = await client.ws_connect(live_url(v.community_id, v.meeting_id, "/ws"), headers=headers, compress=15)
    assert ws.compress
    assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
    live = client.server.app[appkeys.LIVE].meetings[(v.community_id, v.meeting_id)]
    assert [type(w) for w in live.watchers] == [Watcher]
    await v.vote(v.voters[0], yes())
    msg = await _ws_until(ws, 1)
    assert msg["type"] == "update" and msg["view"] == "results"
    await ws.close()


async def test_a_quiet_websocket_gets_heartbeats(aiohttp_client, settings, db_pool, open_meeting):
    from server.app import create_app

    client = await aiohttp_client(create_app(settings.replace(live_heartbeat_s=0.3, live_poll_s=3600)))
    v = await open_meeting(20, client_=client)
    ws = await client.ws_connect(f"/api/ballot/live/ws?token={await v.token(v.voters[0])}")
    assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
    assert await ws.receive_json(timeout=10) == {"type": "heartbeat"}
    await ws.send_str("ping")
    while (msg := await ws.receive_json(timeout=10))["type"] == "heartbeat":
        pass
    assert msg == {"type": "pong"}
    await ws.close()
