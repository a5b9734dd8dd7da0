#!/usr/bin/env python3
"""Fault test: votes and live streams while PostgreSQL restarts and Redis is killed.

    python scripts/faulttest.py                 # the CI run (about a minute on 2 cores)
    python scripts/faulttest.py --json out.json # also write the figures and findings to a file

It starts everything it needs and stops it again, whatever happens:

- its OWN PostgreSQL cluster (initdb from /usr/lib/postgresql/*/bin into a temporary directory,
  run as the ``postgres`` user when started as root) on a free port, and its OWN redis-server on
  another free port;
- the bench meeting of scripts/bench (a generated register, 3 resolutions, one ballot token per
  voting subject), then ``evote serve --workers 2`` against them (votes land on both workers, so
  live updates cross between them through Redis);
- a watcher in a separate process (scripts/live_watch.py): public SSE turnout streams and owners'
  WebSockets, every event written with its arrival time.

Then many simulated owners vote at ``--rate`` votes a second (each owner one ballot of three
matters, its idempotency key kept across retries: a 503, a timeout or a dropped connection is
retried until acknowledged), through: plain load; a fast restart of PostgreSQL; an immediate
stop (crash-like) with an outage of ``--outage`` seconds; Redis killed (SIGKILL) for
``--outage`` seconds and restarted on the same port.

Checks (the exit status is 1 when one fails; the findings are printed):

- every acknowledged ballot is stored exactly once (one submission per voter and matter, the
  acknowledged ballot id, the choice sent), and nothing is stored that was not acknowledged
  (owners who never voted included);
- every watcher connection received its events in order (sequence numbers increasing within a
  stream), and ends on the turnout of the acknowledged owners;
- events kept arriving: after each outage, each watcher connection got an event again.

Figures (printed, and the last line is one JSON object): votes acknowledged, retries, the
longest gap between two events at a watcher during plain load and outside the outages, and per
outage the time from the service being back (``pg_ctl start`` returned, Redis answering) to the
first acknowledged vote and to each watcher's next event.  Timings are reported, never asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402
from common import (  # noqa: E402
    COMMUNITY,
    MEETING,
    Bench,
    ballot_body,
    create_open_meeting,
    electorate_voters,
    log,
    register_for_subjects,
    start_server,
    stop_server,
)
from fault_services import Postgres, Redis, leftovers, process_tree  # noqa: E402
from ingest import issue_tokens  # noqa: E402

from server.auth.tokens import TokenKeys, load_or_create_private_key  # noqa: E402
from server.db.pool import create_pool, migrate  # noqa: E402
from server.services.effects import Effects  # noqa: E402
from server.settings import load_settings  # noqa: E402

# Votes acknowledged from a fault until this long after the service is back count as "around" it.
RECOVERY_WINDOW_S = 2.0


# --------------------------------------------------------------------------
# Simulated owners
# --------------------------------------------------------------------------


class Owners:
    """Owners voting at a steady rate; each retries its ballot (same idempotency key) until acknowledged."""

    def __init__(self, base_url: str, tokens: list[str], rate: float) -> None:
        self.base_url, self.tokens, self.rate = base_url, tokens, rate
        self.acked: dict[int, dict[str, str]] = {}      # owner index -> matter -> acknowledged ballot id
        self.ack_times: list[float] = []
        self.attempts = 0
        self.retries = 0
        self.statuses: dict[str, int] = {}
        self.refused: dict[int, str] = {}               # a definite 4xx refusal (never expected)
        self.replayed_after: dict[str, int] = {}        # answers to attempts that were stored after all
        self.started: list[int] = []
        self.stop_new = asyncio.Event()
        self.deadline = float("inf")
        self.tasks: set[asyncio.Task] = set()

    def _count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1

    async def vote(self, session: aiohttp.ClientSession, i: int) -> None:
        body = ballot_body(i)
        headers = {"Authorization": f"Bearer {self.tokens[i]}"}
        history: list[str] = []
        while time.time() < self.deadline:
            self.attempts += 1
            try:
                async with session.post(f"{self.base_url}/api/ballot/votes", json=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    self._count(str(resp.status))
                    if resp.status == 200:  # a replay: an earlier attempt was stored, its answer lost
                        for earlier in history:
                            self.replayed_after[earlier] = self.replayed_after.get(earlier, 0) + 1
                    history.append(str(resp.status))
                    if resp.status in (200, 201):
                        data = await resp.json()
                        self.acked[i] = {r["matter_id"]: r["ballot_id"] for r in data["receipts"]}
                        self.ack_times.append(time.time())
                        return
                    if resp.status != 503:
                        self.refused[i] = f"{resp.status} {(await resp.text())[:200]}"
                        return
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                self._count(type(exc).__name__)
                history.append(type(exc).__name__)
            self.retries += 1
            await asyncio.sleep(0.25)

    async def run(self, session: aiohttp.ClientSession, first: int, last: int) -> None:
        interval = 1.0 / self.rate
        next_at = time.perf_counter()
        for i in range(first, last):
            if self.stop_new.is_set():
                break
            self.started.append(i)
            task = asyncio.create_task(self.vote(session, i))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


# --------------------------------------------------------------------------
# What the watcher saw
# --------------------------------------------------------------------------


def read_events(path: Path) -> dict[int, list[dict]]:
    streams: dict[int, list[dict]] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                streams.setdefault(item["c"], []).append(item)
    return streams


def max_gap(times: list[float], start: float, end: float) -> float | None:
    """The longest interval without an event within [start, end]."""
    points = [start, *(t for t in times if start < t < end), end]
    return round(max(b - a for a, b in itertools.pairwise(points)), 3) if end > start else None


def delivery_delays(events: list[dict], acks: list[float]) -> list[float | None]:
    """For the i-th acknowledged owner (acks sorted), how long after that acknowledgement this stream
    first showed a turnout of at least i voters (0 when it already did); None if it never did."""
    delays: list[float | None] = []
    j, best = 0, 0
    for i, acked_at in enumerate(acks, start=1):
        while best < i and j < len(events):
            best = max(best, events[j]["persons"] or 0)
            j += 1
        if best < i:
            delays.append(None)
        else:
            delays.append(max(0.0, events[j - 1]["t"] - acked_at))
    return delays


def _worst(values: list[float]) -> float | None:
    return round(max(values), 3) if values else None


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def analyse(streams: dict[int, list[dict]], marks: dict[str, float], outages: list[dict], acks: list[float],
            findings: list[str]) -> dict[str, Any]:
    """Order and completeness per stream (findings), and the figures: gaps and delivery delays."""
    figures: dict[str, Any] = {"connections": len(streams)}
    gaps_load, lost = [], 0
    in_load, in_outage, elsewhere = [], {o["name"]: [] for o in outages}, []
    for c, items in sorted(streams.items()):
        events = [e for e in items if "seq" in e]
        lost += sum(1 for e in items if str(e.get("note", "")).startswith("lost"))
        if not events:
            findings.append(f"watcher connection {c} received no event")
            continue
        last: dict[str, int] = {}
        for e in events:
            if e["seq"] <= last.get(e["epoch"], 0):
                findings.append(f"watcher connection {c}: event {e['epoch']}.{e['seq']} after "
                                f"{e['epoch']}.{last[e['epoch']]} (out of order)")
            last[e["epoch"]] = e["seq"]
        by_epoch: dict[str, list[int]] = {}
        for e in events:
            by_epoch.setdefault(e["epoch"], []).append(e["persons"])
        if any(b < a for persons in by_epoch.values() for a, b in itertools.pairwise(persons)):
            findings.append(f"watcher connection {c}: turnout went down within one stream")
        if events[-1]["persons"] != len(acks):
            findings.append(f"watcher connection {c} ended on {events[-1]['persons']} voters, not the "
                            f"{len(acks)} acknowledged")
        gaps_load.append(max_gap([e["t"] for e in events], marks["load_from"], marks["load_until"]))
        delays = delivery_delays(events, acks)
        missed = sum(1 for d in delays if d is None)
        if missed:
            findings.append(f"watcher connection {c} never showed {missed} acknowledged votes")
        for acked_at, delay in zip(acks, delays, strict=True):
            if delay is None:
                continue
            if marks["load_from"] <= acked_at <= marks["load_until"]:
                in_load.append(delay)
            # around a database fault, the votes acknowledged once it is back (one acknowledged just
            # before it went down cannot be shown before it is back); around Redis, those during it too
            hit = [o["name"] for o in outages
                   if (o["down_at"] if o["votes_during"] else o["up_at"]) <= acked_at <= o["up_at"] + RECOVERY_WINDOW_S]
            for name in hit:
                in_outage[name].append(delay)
            if not any(o["down_at"] - 1.0 <= acked_at <= o["up_at"] + RECOVERY_WINDOW_S for o in outages):
                elsewhere.append(delay)  # a vote acknowledged as a fault began waits for its end
        for outage in outages:
            after = [e["t"] for e in events if e["t"] > outage["up_at"]]
            if not after:
                findings.append(f"watcher connection {c}: no event after {outage['name']}")
                continue
            outage.setdefault("next_event", []).append(after[0] - outage["up_at"])
    figures["max_gap_plain_load_s"] = _worst([g for g in gaps_load if g is not None])
    figures["delivery_plain_load_p50_s"] = _p(in_load, 0.5)
    figures["delivery_plain_load_max_s"] = _worst(in_load)
    figures["delivery_outside_outages_max_s"] = _worst(elsewhere)
    figures["streams_lost_and_reopened"] = lost
    for outage in outages:
        outage["delivery_max_s"] = _worst(in_outage[outage["name"]])
    return figures


async def check_database(url: str, owners: Owners, voters: list[str], findings: list[str]) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            """SELECT s.voter_id, s.matter_id, s.ballot_id::text AS ballot_id, c.choice
                 FROM submission s JOIN submission_choice c USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2""", COMMUNITY, MEETING)
    finally:
        await conn.close()
    index = {v: i for i, v in enumerate(voters)}
    stored: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for r in rows:
        stored.setdefault((index[r["voter_id"]], r["matter_id"]), []).append((r["ballot_id"], r["choice"]))
    for (i, matter), found in stored.items():
        if i not in owners.acked:
            findings.append(f"stored but never acknowledged: owner {i} matter {matter}")
        elif len(found) != 1:
            findings.append(f"owner {i} matter {matter} stored {len(found)} times")
    for i, receipts in owners.acked.items():
        sent = {v["matter_id"]: v["choice"] for v in ballot_body(i)["votes"]}
        for matter, ballot_id in receipts.items():
            found = stored.get((i, matter), [])
            if [b for b, _ in found] != [ballot_id]:
                findings.append(f"acknowledged ballot {ballot_id} (owner {i} {matter}) stored as {found}")
            elif found[0][1] != sent[matter]:
                findings.append(f"owner {i} {matter}: stored {found[0][1]}, sent {sent[matter]}")
        if set(receipts) != set(sent):
            findings.append(f"owner {i}: acknowledged matters {sorted(receipts)}")
    for i, why in owners.refused.items():
        findings.append(f"owner {i} refused: {why}")
    never = len(voters) - len(owners.started)
    return {"submissions_stored": len(rows), "owners_never_voting": never,
            "owners_unacknowledged": len(owners.started) - len(owners.acked)}


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------


async def wait_for_events(path: Path, connections: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        streams = read_events(path)
        if sum(1 for items in streams.values() if any("seq" in e for e in items)) >= connections:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"the watcher did not receive a snapshot on every connection within {timeout} s")


async def poll_turnout(session: aiohttp.ClientSession, base_url: str, stop: asyncio.Event,
                       figures: dict[str, Any]) -> None:
    """A client reading the public turnout (JSON) every 0.1 s, as a page reloaded by many people; after
    an error or a 503 it waits 0.5 s."""
    url = f"{base_url}/api/public/meetings/{COMMUNITY}/{MEETING}/turnout"
    while not stop.is_set():
        pause = 0.5
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                await resp.read()
                if resp.status == 200:
                    figures["turnout_reads"] += 1
                    pause = 0.1
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            pass
        await asyncio.sleep(pause)


async def storm(session: aiohttp.ClientSession, base_url: str, count: int, figures: dict[str, Any]) -> None:
    """``count`` public turnout streams opened at once (as after a network blip), each closed after
    its first document."""
    url = f"{base_url}/api/public/meetings/{COMMUNITY}/{MEETING}/turnout"

    async def one() -> bool:
        try:
            async with session.get(url, headers={"Accept": "text/event-stream"},
                                   timeout=aiohttp.ClientTimeout(total=60)) as resp:
                async for line in resp.content:
                    if line.startswith(b"data: "):
                        return True
        except (aiohttp.ClientError, ConnectionError, TimeoutError):
            pass
        return False

    started = time.time()
    done = await asyncio.gather(*(one() for _ in range(count)))
    figures["storm_connects"] = sum(done)
    figures["storm_s"] = round(time.time() - started, 2)


async def outage(name: str, down, up, owners: Owners, hold: float, *, votes_during: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {"name": name, "down_at": time.time(), "votes_during": votes_during}
    await asyncio.to_thread(down)
    await asyncio.sleep(hold)
    await asyncio.to_thread(up)
    record["up_at"] = time.time()
    log(f"{name}: down {record['up_at'] - record['down_at']:.2f} s")
    return record


async def scenario(args: argparse.Namespace, base: Path, pg: Postgres, redis: Redis, procs: dict) -> dict[str, Any]:
    findings: list[str] = []
    t_setup = time.time()
    admin = await asyncpg.connect(pg.admin_url)
    await admin.execute("CREATE DATABASE evote")
    await admin.close()
    settings = load_settings()
    pool = await create_pool(pg.url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        data_dir = base / "data"
        keys = TokenKeys(private_key=load_or_create_private_key(data_dir / "keys" / "token_key.pem"),
                         issuer=settings.token_issuer)
        bench = Bench(args=SimpleNamespace(workers=args.workers, log_level="WARNING", redis_url=redis.url,
                                           pool_max=None),
                      db_url=pg.url, data_dir=data_dir, work_dir=base, pool=pool, keys=keys,
                      effects=Effects(settings))
        await create_open_meeting(bench, COMMUNITY, MEETING, register_for_subjects(args.voters, seed=17))
        bench.voters = await electorate_voters(pool, COMMUNITY, MEETING)
        await issue_tokens(bench)
    finally:
        await pool.close()
    voters, tokens = bench.voters, bench.tokens
    log(f"set up: {len(voters)} voting subjects ({time.time() - t_setup:.1f} s)")

    start_server(bench)
    procs["server"] = bench
    procs["server_pids"] = process_tree(bench.server_pid)
    events_path = base / "events.jsonl"
    watch_tokens = tokens[-args.ws:] if args.ws else []   # owners near the end, who vote last or never
    procs["watcher"] = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
        [sys.executable, str(ROOT / "scripts" / "live_watch.py"), "--out", str(events_path),
         "--url", f"{bench.base_url}/api/public/meetings/{COMMUNITY}/{MEETING}/turnout",
         "--connections", str(args.sse), "--ws-url", f"{bench.base_url.replace('http', 'ws')}/api/ballot/live/ws",
         *(x for t in watch_tokens for x in ("--token", t))], cwd=ROOT)
    await wait_for_events(events_path, args.sse + args.ws)

    owners = Owners(bench.base_url, tokens, args.rate)
    voting = len(voters) - max(args.ws, len(voters) // 10)   # the last tenth never votes
    marks: dict[str, float] = {}
    figures: dict[str, Any] = {"turnout_reads": 0}
    outages: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        marks["load_from"] = time.time()
        load = asyncio.create_task(owners.run(session, 0, voting))
        pollers = [asyncio.create_task(poll_turnout(session, bench.base_url, owners.stop_new, figures))
                   for _ in range(args.pollers)]
        await asyncio.sleep(args.phase / 2)
        if args.storm:
            await storm(session, bench.base_url, args.storm, figures)
        await asyncio.sleep(max(0.0, marks["load_from"] + args.phase - time.time()))
        marks["load_until"] = time.time()
        outages.append(await outage("PostgreSQL fast restart", lambda: pg.stop("fast"), pg.start, owners, 0))
        await asyncio.sleep(args.phase)
        outages.append(await outage("PostgreSQL immediate stop", lambda: pg.stop("immediate"), pg.start, owners,
                                    args.outage))
        await asyncio.sleep(args.phase)
        outages.append(await outage("Redis killed", redis.kill, redis.start, owners, args.outage, votes_during=True))
        await asyncio.sleep(args.phase)
        owners.stop_new.set()
        marks["votes_until"] = time.time()
        await load
        await asyncio.gather(*pollers)
        owners.deadline = time.time() + 30
        if owners.tasks:
            await asyncio.wait(set(owners.tasks), timeout=35)
    for o in outages:
        acks = [t for t in owners.ack_times if t > o["up_at"]]
        o["first_ack_after_s"] = round(acks[0] - o["up_at"], 3) if acks else None
    await asyncio.sleep(args.settle)   # the last votes reach every stream (the safety net is 10 s)
    procs["watcher"].send_signal(signal.SIGTERM)
    procs["watcher"].wait(timeout=10)

    figures.update(analyse(read_events(events_path), marks, outages, sorted(owners.ack_times), findings))
    (base / "run.json").write_text(json.dumps({"acks": sorted(owners.ack_times), "outages": outages,
                                               "marks": marks}))
    figures.update(await check_database(pg.url, owners, voters, findings))
    figures.update({"voters": len(voters), "owners_voting": len(owners.started), "acknowledged": len(owners.acked),
                    "attempts": owners.attempts, "retries": owners.retries, "answers": owners.statuses,
                    "stored_though_answered": owners.replayed_after,
                    "rate_per_s": args.rate, "workers": args.workers})
    for o in outages:
        figures[o["name"]] = {"down_s": round(o["up_at"] - o["down_at"], 3), "first_ack_after_s": o["first_ack_after_s"],
                              "next_event_max_s": _worst(o.get("next_event", [])),
                              "delivery_max_s": o["delivery_max_s"]}
    return {"ok": not findings, "findings": findings, **figures}


def cleanup(procs: dict, pg: Postgres | None, redis: Redis | None) -> None:
    watcher = procs.get("watcher")
    if watcher is not None and watcher.poll() is None:
        watcher.kill()
        watcher.wait()
    if procs.get("server") is not None:
        stop_server(procs["server"])
    if redis is not None:
        redis.kill()
    if pg is not None and pg.running():
        with contextlib.suppress(Exception):
            pg.stop("immediate")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--voters", type=int, default=1500, help="voting subjects (the last tenth never votes)")
    p.add_argument("--rate", type=float, default=25.0, help="new owners voting per second")
    p.add_argument("--phase", type=float, default=6.0, help="seconds of voting before and after each fault")
    p.add_argument("--outage", type=float, default=3.0, help="seconds PostgreSQL (immediate) and Redis stay down")
    p.add_argument("--settle", type=float, default=2.0, help="seconds for the last events to arrive")
    p.add_argument("--workers", type=int, default=2, help="evote serve --workers")
    p.add_argument("--sse", type=int, default=4, help="watcher SSE connections (public turnout)")
    p.add_argument("--ws", type=int, default=2, help="watcher owners' WebSockets")
    p.add_argument("--pollers", type=int, default=0,
                   help="clients reading the public turnout JSON in a loop during the run")
    p.add_argument("--storm", type=int, default=0,
                   help="public turnout streams opened at once in the middle of the plain load")
    p.add_argument("--json", default=None, help="also write the result object to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, events)")
    args = p.parse_args(argv)

    base = Path(tempfile.mkdtemp(prefix="evote-faults-"))
    os.chmod(base, 0o755)
    procs: dict[str, Any] = {}
    pg = redis = None
    started = time.time()
    result: dict[str, Any] = {"ok": False, "findings": ["the run did not finish"]}

    def interrupted(signum, frame):
        raise KeyboardInterrupt  # unwinds through the cleanup below

    signal.signal(signal.SIGTERM, interrupted)
    try:
        pg = Postgres(base)
        pg.init()
        pg.start()
        redis = Redis(base)
        redis.start()
        result = asyncio.run(scenario(args, base, pg, redis, procs))
    finally:
        cleanup(procs, pg, redis)
        left = leftovers(base, procs.get("server_pids", []))
        if left:
            result["ok"] = False
            result["findings"].append(f"processes left behind: {left}")
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    result["run_s"] = round(time.time() - started, 1)
    for key, value in result.items():
        if key not in ("findings", "ok"):
            print(f"  {key:<32} {value}")
    for finding in result["findings"][:50]:
        print(f"FAILED: {finding}")
    line = json.dumps(result, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(line + "\n", encoding="utf-8")
    print(line, flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
