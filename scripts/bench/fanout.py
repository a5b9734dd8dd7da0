"""Job 2 of the benchmark: live fan-out.

WATCHERS streams (half SSE on the public turnout stream, half owners' WebSockets) while votes are cast
one after another at a steady pace; for each vote and watcher, the delay from the vote's legal receive
time (the database clock inside the committing transaction, so an upper bound of commit->delivery) to
the moment the watcher sees the turnout count include it.  Server RSS with the watchers connected.
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from common import COMMUNITY, MEETING, Bench, ballot_body, log, percentile, rounded, rss_mb

# compact or spaced JSON (the server's frames are compact)
TURNOUT_PERSONS = re.compile(rb'"turnout": ?\{"area": ?"[0-9.]+", ?"persons": ?(\d+)')
TURNOUT_PERSONS_TEXT = re.compile(r'"turnout": ?\{"area": ?"[0-9.]+", ?"persons": ?(\d+)')


@dataclass
class WatcherLog:
    kind: str
    seen: list[tuple[float, int]] = field(default_factory=list)   # (time, turnout persons)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None


async def sse_watcher(session: aiohttp.ClientSession, url: str, w: WatcherLog, stop: asyncio.Event) -> None:
    try:
        async with session.get(url, headers={"Accept": "text/event-stream"}) as resp:
            if resp.status != 200:
                w.error = f"SSE {resp.status}"
                w.ready.set()
                return
            while not stop.is_set():
                line = await resp.content.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    m = TURNOUT_PERSONS.search(line)
                    if m:
                        w.seen.append((time.time(), int(m.group(1))))
                        w.ready.set()
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        if not stop.is_set():
            w.error = f"SSE {exc!r}"
    finally:
        w.ready.set()


async def ws_watcher(session: aiohttp.ClientSession, url: str, w: WatcherLog, stop: asyncio.Event) -> None:
    try:
        async with session.ws_connect(url, heartbeat=None, max_msg_size=0) as ws:
            async for msg in ws:
                if stop.is_set():
                    break
                if msg.type == aiohttp.WSMsgType.TEXT:
                    m = TURNOUT_PERSONS_TEXT.search(msg.data)
                    if m:
                        w.seen.append((time.time(), int(m.group(1))))
                        w.ready.set()
                    elif '"type": "error"' in msg.data:
                        w.error = msg.data[:200]
                        break
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        if not stop.is_set():
            w.error = f"WS {exc!r}"
    finally:
        w.ready.set()


async def fanout(bench: Bench) -> None:
    a = bench.args
    n = a.watchers
    sse_url = f"{bench.base_url}/api/public/meetings/{COMMUNITY}/{MEETING}/turnout"
    stop = asyncio.Event()
    logs = [WatcherLog("sse" if i % 2 == 0 else "ws") for i in range(n)]
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    voters = list(range(len(bench.tokens) - bench.reserve, len(bench.tokens)))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        started = time.perf_counter()
        for i, w in enumerate(logs):
            if w.kind == "sse":
                tasks.append(asyncio.create_task(sse_watcher(session, sse_url, w, stop)))
            else:
                token = bench.tokens[i % len(bench.tokens)]
                tasks.append(asyncio.create_task(
                    ws_watcher(session, f"{bench.base_url.replace('http', 'ws')}/api/ballot/live/ws?token={token}",
                               w, stop)))
            if i % 100 == 99:
                await asyncio.sleep(0.05)   # connect in waves, as owners arrive
        await asyncio.wait_for(asyncio.gather(*(w.ready.wait() for w in logs)), timeout=120)
        connect_s = time.perf_counter() - started
        broken = [w.error for w in logs if w.error]
        connected = n - len(broken)
        await asyncio.sleep(1.0)
        memory = rss_mb(bench.server_pid)
        log(f"fan-out: {connected}/{n} watchers connected in {connect_s:.1f} s, server RSS {memory} MB")
        # Votes one after another at a steady pace: each one raises the turnout by exactly one person.
        base = max((w.seen[-1][1] for w in logs if w.seen), default=0)
        votes: list[tuple[float, int]] = []   # (legal receive time as epoch seconds, turnout after it)
        interval = 1.0 / a.fanout_rate
        async with aiohttp.ClientSession() as voter_session:
            next_at = time.perf_counter()
            for k, i in enumerate(voters[:a.fanout_votes], start=1):
                async with voter_session.post(f"{bench.base_url}/api/ballot/votes", json=ballot_body(i),
                                              headers={"Authorization": f"Bearer {bench.tokens[i]}"}) as resp:
                    body = await resp.json()
                    if resp.status != 201:
                        bench.failures.append(f"fan-out vote refused: {resp.status} {body}")
                        continue
                received = datetime.fromisoformat(body["received_at"]).timestamp()
                votes.append((received, base + k))
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        await asyncio.sleep(max(2.0, a.settle))
        memory = max(memory, rss_mb(bench.server_pid))
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies: list[float] = []
    missed = 0
    for w in logs:
        if w.error:
            continue
        j = 0
        for received, persons in votes:
            while j < len(w.seen) and w.seen[j][1] < persons:
                j += 1
            if j == len(w.seen):
                missed += 1
                continue
            latencies.append((w.seen[j][0] - received) * 1000)
    r = bench.results
    r.update({"watchers": connected, "watchers_failed": len(broken), "rss_mb": memory,
              "fanout_votes": len(votes), "fanout_p50_ms": rounded(percentile(latencies, 50)),
              "fanout_p99_ms": rounded(percentile(latencies, 99)),
              "fanout_max_ms": round(max(latencies), 1) if latencies else None, "fanout_missed": missed})
    if broken:
        bench.failures.append(f"{len(broken)} watchers failed (e.g. {broken[:3]})")
    if missed:
        bench.failures.append(f"{missed} (watcher, vote) deliveries never arrived")
    bench.row("fan-out", "watchers connected (SSE + WS)", f"{connected} of {n} ({connect_s:.1f} s)")
    bench.row("fan-out", f"votes cast during ({a.fanout_rate}/s)", len(votes))
    bench.row("fan-out", "commit->delivery p50 ms", r["fanout_p50_ms"])
    bench.row("fan-out", "commit->delivery p99 ms", r["fanout_p99_ms"])
    bench.row("fan-out", "commit->delivery max ms", r["fanout_max_ms"])
    bench.row("fan-out", "deliveries missed", missed)
    bench.row("fan-out", "server RSS MB (watchers connected)", memory)
