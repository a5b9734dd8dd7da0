"""Two `evote serve` processes sharing the test database and a Redis of our own.

- A vote cast through worker A appears on a live stream served by worker B
  (fan-out through Redis pub/sub; the workers' safety-net polling is off).
- Redis stops: votes still succeed; when Redis is back on the same port, B's
  stream catches up to the right figures (a fresh snapshot from the database).
"""
from __future__ import annotations

import shutil

import aiohttp
import pytest

from server.services.counting import compute_result
from tests import helpers_meetings
from tests.helpers_live import RedisProcess, ServeProcess, Voting
from tests.test_live import SSE

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None,
                                reason="redis-server binary not installed (apt-get install redis-server)")


@pytest.fixture
async def cluster(tmp_path, settings):
    """A Redis and two workers A and B; yields (redis, a, b, session)."""
    redis = RedisProcess(tmp_path)
    redis.start()
    workers = [ServeProcess(database_url=settings.database_url, data_dir=settings.data_dir, redis_url=redis.url,
                            log_path=tmp_path / f"worker-{name}.log") for name in "ab"]
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=30))
    try:
        for worker in workers:
            await worker.ready(session)
        yield redis, workers[0], workers[1], session
    finally:
        await session.close()
        for worker in workers:
            worker.stop()
        redis.stop()


async def _setup(client, db_pool, staff_headers, imported_community, session, worker):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=40)
    voting = await Voting(client, db_pool, m).load()
    headers = await staff_headers("prep_group", communities=[m.community_id])
    url = f"{worker.base}/api/admin/communities/{m.community_id}/meetings/{m.meeting_id}/live/stream"
    token = headers["Authorization"].split(" ", 1)[1]
    resp = await session.get(url + f"?access_token={token}")
    assert resp.status == 200, await resp.text()
    return voting, resp


async def _vote_on(session, worker, voting: Voting, voter: str, choice: str = "yes"):
    token = await voting.token(voter)
    async with session.post(f"{worker.base}/api/ballot/votes",
                            json={"votes": [{"matter_id": "M1", "choice": choice}]},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
        assert resp.status == 201, await resp.text()


async def test_a_vote_on_worker_a_reaches_a_stream_on_worker_b(cluster, client, db_pool, staff_headers,
                                                               imported_community):
    _redis, a, b, session = cluster
    voting, resp = await _setup(client, db_pool, staff_headers, imported_community, session, b)
    stream = SSE(resp)
    first = await stream.next()
    assert first["event"] == "snapshot" and first["data"]["turnout"]["persons"] == 0
    await _vote_on(session, a, voting, voting.voters[0])
    update = await stream.until(lambda e: e["data"]["turnout"]["persons"] == 1, timeout=15)
    assert update["data"]["matters"][0]["yes"]["persons"] == 1
    await _vote_on(session, a, voting, voting.voters[1], "no")
    update = await stream.until(lambda e: e["data"]["turnout"]["persons"] == 2, timeout=15)
    async with db_pool.acquire() as conn:
        assert update["data"]["result"] == await compute_result(conn, voting.community_id, voting.meeting_id)
    resp.close()


async def test_voting_goes_on_while_redis_is_down_and_streams_catch_up(cluster, client, db_pool, staff_headers,
                                                                      imported_community):
    redis, a, b, session = cluster
    voting, resp = await _setup(client, db_pool, staff_headers, imported_community, session, b)
    stream = SSE(resp)
    assert (await stream.next())["data"]["turnout"]["persons"] == 0
    await _vote_on(session, a, voting, voting.voters[0])
    await stream.until(lambda e: e["data"]["turnout"]["persons"] == 1, timeout=15)

    redis.stop()
    for voter in voting.voters[1:6]:  # every vote is accepted without Redis
        await _vote_on(session, a, voting, voter)
    redis.start()  # same port

    caught_up = await stream.until(lambda e: e["data"]["turnout"]["persons"] == 6, timeout=30)
    async with db_pool.acquire() as conn:
        assert caught_up["data"]["result"] == await compute_result(conn, voting.community_id, voting.meeting_id)
    assert caught_up["data"]["matters"][0]["yes"]["persons"] == 6
    # And fan-out works again afterwards.
    await _vote_on(session, a, voting, voting.voters[6], "no")
    await stream.until(lambda e: e["data"]["turnout"]["persons"] == 7, timeout=15)
    resp.close()
