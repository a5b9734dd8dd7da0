#!/usr/bin/env python3
"""evote benchmarks in one run: vote ingest vs pgbench, live fan-out, the 50,000 batch paths.

    python scripts/bench/bench.py            # full sizes (several minutes on 2 cores)
    python scripts/bench/bench.py --quick    # small sizes, correctness only (CI)

What it does (docs/performance.md explains the method and the figures):

1. Ingest.  A fresh database ``evote_bench_*`` on the PostgreSQL named by
   EVOTE_DATABASE_URL (or --database-url; the embedded server if neither), a
   community whose register yields VOTERS voting subjects, an open meeting of 3
   resolutions and one pre-issued ballot token per
   voter.  ``evote serve --workers W`` runs against it; wrk (or, without wrk, an
   aiohttp client) posts one ballot per voter (all 3 matters in one request) over
   CONNECTIONS connections.  Reports requests/s, votes/s (submissions), p50/p99,
   errors, then checks that every acknowledged ballot id is in the database.
   pgbench runs on the same server with the same number of clients: a durable
   single-row INSERT into an equivalent votes table (the issue's yardstick) and a
   3-row INSERT transaction (one commit per ballot, like a request).
2. Fan-out.  WATCHERS streams (half SSE on the public turnout stream, half
   owners' WebSockets) while votes are cast one after another at a steady pace;
   for each vote and watcher, the delay from the vote's legal receive time (the
   database clock inside the committing transaction, so an upper bound of
   commit->delivery) to the moment the watcher sees the turnout count include it.
   Server RSS with the watchers connected.
3. Batch.  Import of a 50,000-unit register (the service `evote register
   import` uses); a meeting with 50,000 voting subjects, 3 matters and ballots of
   three quarters of them, closed; `evote export` (signs the record), `evote
   tally` and `evote verify` of the exported record, each timed as a CLI process.

The table goes to stdout; the LAST line is one JSON object (keys in the issue).
Exit status 1 if a correctness check fails (errors, a lost acknowledged vote,
a failed verify); timings never fail the run.  The bench installs nothing: it
only checks that wrk and pgbench exist and says what it does without them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import asyncpg  # noqa: E402

from server.auth.tokens import BALLOT_AUDIENCE, BALLOT_TYP, TokenKeys, load_or_create_private_key  # noqa: E402
from server.ballot.receipts import canonical_submission, new_salt, receipt_for  # noqa: E402
from server.db.pool import create_pool, migrate, resolve_database_url  # noqa: E402
from server.devtools.demo_data import generate_register_rows, register_csv  # noqa: E402
from server.repositories import communities as community_repo  # noqa: E402
from server.services import meetings as meetings_service  # noqa: E402
from server.services import register as register_service  # noqa: E402
from server.services.effects import Effects  # noqa: E402
from server.settings import load_settings  # noqa: E402

HERE = Path(__file__).resolve().parent
LUA = HERE / "votes.lua"
COMMUNITY = "bench"
MEETING = "bench-2026"
ACTOR = "bench"
# Three resolutions (an election needs vetted nominations first, which is not what is measured here).
MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
    {"matter_id": "M2", "kind": "resolution", "title": "筹集电梯维修资金", "category": 6},
    {"matter_id": "M3", "kind": "resolution", "title": "使用维修资金更换 3 号楼电梯", "category": 5},
]
CHOICES = ["yes", "yes", "yes", "no", "abstain"]
TURNOUT_PERSONS = re.compile(rb'"turnout": \{"area": "[0-9.]+", "persons": (\d+)')
TURNOUT_PERSONS_TEXT = re.compile(r'"turnout": \{"area": "[0-9.]+", "persons": (\d+)')


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ballot_body(index: int) -> dict:
    """The ballot of voter number ``index`` (same choices as votes.lua)."""
    c1, c2, c3 = CHOICES[index % 5], CHOICES[(index + 2) % 5], CHOICES[(index + 4) % 5]
    return {"idempotency_key": f"b{index}", "votes": [
        {"matter_id": "M1", "choice": c1}, {"matter_id": "M2", "choice": c2}, {"matter_id": "M3", "choice": c3}]}


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """VmRSS of a process and its children (the workers of `evote serve --workers N`)."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (to compare runs on a busy machine)."""
    pids = [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


def register_for_subjects(subjects: int, seed: int) -> list[dict]:
    """A generated register (demo_data) whose electorate has at least ``subjects`` voting subjects.

    A voting subject is an owner id that represents a counted (non-parking) unit; the
    generator draws the same random sequence for the first N units whatever N is, so the
    count grows with N and a binary search finds the smallest register that is big enough.
    """
    def count(rows: list[dict]) -> int:
        return len({r["owner_id"] for r in rows if r["representative"] == "1" and r["kind"] != "parking"})

    lo, hi = subjects, subjects * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if count(generate_register_rows(mid, seed=seed)) >= subjects:
            hi = mid
        else:
            lo = mid + 1
    return generate_register_rows(lo, seed=seed)


# --------------------------------------------------------------------------------- setup


@dataclass
class Bench:
    args: argparse.Namespace
    server_url: str
    db_name: str
    db_url: str
    data_dir: Path
    work_dir: Path
    pool: asyncpg.Pool | None = None
    keys: TokenKeys | None = None
    voters: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    results: dict = field(default_factory=dict)
    table: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    server: subprocess.Popen | None = None
    base_url: str = ""
    reserve: int = 0          # voters kept back from the ingest for the fan-out votes

    def row(self, section: str, what: str, value) -> None:
        self.table.append((section, what, "—" if value is None else str(value)))


async def create_open_meeting(pool: asyncpg.Pool, community_id: str, meeting_id: str, rows: list[dict]) -> int:
    """Import ``rows`` as the community's register and open a 3-matter meeting on it; returns subjects."""
    async with pool.acquire() as conn:
        await community_repo.upsert_district(conn, "bench-district", "基准区")
        await community_repo.upsert_street(conn, "bench-street", "bench-district", "基准街道")
        await community_repo.insert_community(conn, community_id=community_id, name="基准测试小区",
                                              street_id="bench-street", count_parking_area=False,
                                              prep_group_formed_on=None)
    imported = await register_service.import_register(pool, community_id=community_id, data=register_csv(rows),
                                                      filename="bench.csv", actor=ACTOR)
    opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
    await meetings_service.create_meeting(pool, community_id=community_id, actor=ACTOR, data={
        "meeting_id": meeting_id, "title": "基准测试业主大会", "matters": MATTERS, "rules": {},
        "show_live_results": False, "opens_at": opens_at.isoformat(),
        "closes_at": (opens_at + timedelta(days=7)).isoformat()})
    await meetings_service.publish_notice(pool, Effects(load_settings()), community_id=community_id, meeting_id=meeting_id, actor=ACTOR)
    async with pool.acquire() as conn:
        # BENCH DATA ONLY (as the test helpers do): pretend the notice went out 16 days ago.
        await conn.execute(
            """UPDATE meeting SET noticed_at = noticed_at - interval '16 days',
                                  opens_at = clock_timestamp() - interval '2 hours',
                                  closes_at = clock_timestamp() + interval '7 days'
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    await meetings_service.open_meeting(pool, Effects(load_settings()), community_id=community_id, meeting_id=meeting_id, actor=ACTOR)
    return imported.total_persons


async def issue_tokens(bench: Bench) -> None:
    """One ballot token per voter, with its session row (what sign-in does), in bulk."""
    expires = datetime.now(UTC) + timedelta(days=30)
    sessions = []
    bench.tokens = []
    for voter in bench.voters:
        token, claims = bench.keys.issue(typ=BALLOT_TYP, audience=BALLOT_AUDIENCE, subject=voter,
                                         expires_at=int(expires.timestamp()),
                                         claims={"cid": COMMUNITY, "mid": MEETING})
        bench.tokens.append(token)
        sessions.append((COMMUNITY, MEETING, claims["jti"], voter, expires))
    async with bench.pool.acquire() as conn:
        await conn.copy_records_to_table("ballot_session", records=sessions,
                                         columns=["community_id", "meeting_id", "jti", "voter_id", "expires_at"])
        # Sign-ins arrive one by one over minutes in real life, and autovacuum analyzes the table; a bulk
        # COPY has no statistics, and the vote pre-check's generic plan then scans every session of the
        # meeting by the voter index (5.7 ms a vote at 20,000 sessions instead of 0.04 ms).
        await conn.execute("ANALYZE ballot_session, electorate")


async def prepare_ingest(bench: Bench) -> None:
    a = bench.args
    t0 = time.perf_counter()
    rows = register_for_subjects(a.voters, seed=11)
    subjects = await create_open_meeting(bench.pool, COMMUNITY, MEETING, rows)
    async with bench.pool.acquire() as conn:
        bench.voters = [r["voter_id"] for r in await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id",
            COMMUNITY, MEETING)]
    random.Random(5).shuffle(bench.voters)
    await issue_tokens(bench)
    bench.results["voting_subjects"] = subjects
    log(f"ingest community ready: {len(rows)} units, {subjects} voting subjects, {len(bench.tokens)} tokens "
        f"({time.perf_counter() - t0:.1f} s)")


def start_server(bench: Bench) -> None:
    a = bench.args
    port = free_port()
    env = dict(os.environ, EVOTE_DATABASE_URL=bench.db_url, EVOTE_DATA_DIR=str(bench.data_dir),
               EVOTE_PORT=str(port), EVOTE_HOST="127.0.0.1", EVOTE_LOG_LEVEL=a.log_level,
               EVOTE_SCHEDULER_INTERVAL_S="60")
    if a.redis_url:
        env["EVOTE_REDIS_URL"] = a.redis_url
    else:
        env.pop("EVOTE_REDIS_URL", None)
    if a.pool_max:
        env["EVOTE_DB_POOL_MAX"] = str(a.pool_max)
    log_file = open(bench.work_dir / "server.log", "wb")
    bench.server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--workers", str(a.workers)],
                                    env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    bench.base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if bench.server.poll() is not None:
            raise SystemExit(f"evote serve exited ({bench.server.returncode}); see {bench.work_dir}/server.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            # every worker binds the port; give the others a moment to finish starting
            time.sleep(1.0 if a.workers > 1 else 0.2)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("evote serve did not start within 60 s")


def stop_server(bench: Bench) -> None:
    if bench.server is not None and bench.server.poll() is None:
        bench.server.terminate()
        try:
            bench.server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bench.server.kill()
            bench.server.wait()
    bench.server = None


# --------------------------------------------------------------------------------- 1. ingest


def run_wrk(bench: Bench, first: int, last: int) -> dict:
    """Post the ballots of voters [first, last) with wrk; returns figures and acknowledged ballot ids."""
    a = bench.args
    threads = max(1, min(a.wrk_threads, a.connections))
    tokens_file = bench.work_dir / "tokens.tsv"
    prefix = bench.work_dir / "wrk"
    cmd = ["wrk", "-t", str(threads), "-c", str(a.connections), "-d", f"{a.duration}s", "--timeout", "10s",
           "-s", str(LUA), bench.base_url, "--", str(tokens_file), str(threads), str(prefix)]
    # votes.lua assigns line i to thread i % threads; lines are numbered from `first`, so renumber.
    tokens_file.write_text("".join(f"{i - first}\t{bench.tokens[i]}\n" for i in range(first, last)))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wrk sleeps the whole -d even when every thread is out of voters; votes.lua writes "done" then, and
    # SIGINT makes wrk stop at once and print its summary.
    deadline = time.monotonic() + a.duration + 30
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.25)
        status_files = [Path(f"{prefix}.{t}.status") for t in range(threads)]
        if all(f.exists() and "done\n" in f.read_text() for f in status_files):
            proc.send_signal(signal.SIGINT)
            break
    stdout, stderr = proc.communicate(timeout=60)
    proc = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    summary = next((json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                    if line.startswith("BENCH-JSON ")), None)
    if proc.returncode != 0 or summary is None:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    acked, requests_ok, bad, starts, ends = [], 0, [], [], []
    for t in range(threads):
        for line in Path(f"{prefix}.{t}.acked").read_text().splitlines():
            if line.startswith("#\t"):
                requests_ok += 1
                ends.append(float(line[2:]))
            elif line:
                acked.append(line)
        for line in Path(f"{prefix}.{t}.status").read_text().splitlines():
            if line.startswith("start\t"):
                starts.append(float(line[6:]))
            elif line and line != "done":
                bad.append(line)
    socket_errors = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    # wrk sleeps the whole -d even when every thread ran out of voters: time first request -> last answer.
    seconds = (max(ends) - min(starts)) if ends and starts else summary["duration_us"] / 1e6
    return {"tool": "wrk", "seconds": seconds, "requests_ok": requests_ok, "acked": acked,
            "errors": len(bad) + socket_errors, "error_samples": bad[:5],
            "p50_ms": summary["p50_us"] / 1000, "p99_ms": summary["p99_us"] / 1000}


async def run_async_client(bench: Bench, first: int, last: int) -> dict:
    """The same load with aiohttp (when wrk is missing): CONNECTIONS workers, each voter once."""
    a = bench.args
    queue = list(range(first, last))
    queue.reverse()
    latencies: list[float] = []
    acked: list[str] = []
    errors: list[str] = []
    deadline = time.perf_counter() + a.duration

    async def worker(session: aiohttp.ClientSession) -> None:
        while queue and time.perf_counter() < deadline:
            i = queue.pop()
            started = time.perf_counter()
            try:
                async with session.post(f"{bench.base_url}/api/ballot/votes", json=ballot_body(i),
                                        headers={"Authorization": f"Bearer {bench.tokens[i]}"}) as resp:
                    body = await resp.read()
                    latencies.append((time.perf_counter() - started) * 1000)
                    if resp.status == 201:
                        acked.extend(r["ballot_id"] for r in json.loads(body)["receipts"])
                    else:
                        errors.append(f"{resp.status}\t{body[:200]!r}")
            except (TimeoutError, aiohttp.ClientError) as exc:
                errors.append(f"client error {exc!r}")

    connector = aiohttp.TCPConnector(limit=0)
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(worker(session) for _ in range(a.connections)))
    seconds = time.perf_counter() - started
    return {"tool": "aiohttp", "seconds": seconds, "requests_ok": len(latencies) - len(errors), "acked": acked,
            "errors": len(errors), "error_samples": errors[:5],
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


async def check_acknowledged(bench: Bench, acked: list[str]) -> tuple[int, int]:
    """(acknowledged ballots found in the database, submissions in the database)."""
    async with bench.pool.acquire() as conn:
        await conn.execute("ANALYZE submission, submission_choice")
        found = await conn.fetchval(
            """SELECT count(*) FROM unnest($3::uuid[]) AS a(ballot_id)
                WHERE EXISTS (SELECT 1 FROM submission s
                               WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.ballot_id = a.ballot_id)
                  AND EXISTS (SELECT 1 FROM submission_choice c
                               WHERE c.community_id = $1 AND c.meeting_id = $2 AND c.ballot_id = a.ballot_id)""",
            COMMUNITY, MEETING, acked)
        stored = await conn.fetchval("SELECT count(*) FROM submission WHERE community_id = $1 AND meeting_id = $2",
                                     COMMUNITY, MEETING)
    return found, stored


async def ingest(bench: Bench) -> None:
    a = bench.args
    first, last = 0, len(bench.tokens) - bench.reserve
    use_wrk = shutil.which("wrk") is not None and not a.async_client
    if not use_wrk and not a.async_client:
        log("wrk not found: using the aiohttp load generator (install wrk for the reference figures)")
    # A short warm-up on a few voters (connections, prepared statements, caches), not counted.
    warm = min(200, (last - first) // 10)
    if warm:
        saved = a.duration
        a.duration = 5
        w = run_wrk(bench, first, first + warm) if use_wrk else await run_async_client(bench, first, first + warm)
        a.duration = saved
        if w["errors"]:
            bench.failures.append(f"warm-up errors: {w['errors']} {w['error_samples']}")
        first += warm
    if not a.cold:
        # A fresh database: the plans of the first votes (the pre-check, and the foreign-key checks
        # PostgreSQL caches per connection) were made for an empty submission table, and pick an index
        # that scans every submission of the meeting.  Autovacuum analyzes within a minute of the first
        # votes (autovacuum_naptime); do it now, as it would have, so the run measures the steady state.
        # --cold measures the first minute instead (docs/performance.md).
        async with bench.pool.acquire() as conn:
            await conn.execute("ANALYZE submission, submission_choice")
    log(f"ingest: {last - first} voters, {a.connections} connections, up to {a.duration} s "
        f"({'wrk' if use_wrk else 'aiohttp'})")
    cpu_before = cpu_seconds(bench.server.pid)
    r = run_wrk(bench, first, last) if use_wrk else await run_async_client(bench, first, last)
    server_cpu = cpu_seconds(bench.server.pid) - cpu_before
    requests_per_s = r["requests_ok"] / r["seconds"]
    votes_per_s = len(r["acked"]) / r["seconds"]
    found, stored = await check_acknowledged(bench, r["acked"])
    missing = len(r["acked"]) - found
    bench.results.update({
        "load_generator": r["tool"], "connections": a.connections, "workers": a.workers,
        "requests": r["requests_ok"], "requests_per_s": round(requests_per_s, 1),
        "votes_per_s": round(votes_per_s, 1), "p50_ms": round(r["p50_ms"], 1) if r["p50_ms"] is not None else None,
        "p99_ms": round(r["p99_ms"], 1) if r["p99_ms"] is not None else None, "errors": r["errors"],
        "acknowledged_votes": len(r["acked"]), "acknowledged_missing": missing,
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, r["requests_ok"]), 2),
        "server_cpu_share": round(server_cpu / r["seconds"], 2),
    })
    if r["errors"]:
        bench.failures.append(f"ingest errors: {r['errors']} (e.g. {r['error_samples']})")
    if missing:
        bench.failures.append(f"{missing} acknowledged votes are not in the database")
    for what, key in [("load generator", "load_generator"), ("connections / workers", None),
                      ("requests (ballots of 3 matters)", "requests"), ("requests/s", "requests_per_s"),
                      ("votes/s (submissions)", "votes_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
                      ("errors", "errors"), ("acknowledged votes", "acknowledged_votes"),
                      ("acknowledged but missing", "acknowledged_missing"),
                      ("server CPU ms per request", "server_cpu_ms_per_request"),
                      ("server CPU (cores busy)", "server_cpu_share")]:
        value = f"{a.connections} / {a.workers}" if key is None else bench.results[key]
        bench.row("ingest", what, value)
    bench.row("ingest", "submissions stored (incl. warm-up)", stored)


PGBENCH_TABLE = """
DROP TABLE IF EXISTS bench_vote;
DROP SEQUENCE IF EXISTS bench_vote_seq;
CREATE SEQUENCE bench_vote_seq;
-- The width and keys of a vote: who, which meeting and matter, the choice, the legal time.
CREATE TABLE bench_vote (
    community_id text NOT NULL,
    meeting_id   text NOT NULL,
    voter_id     text NOT NULL,
    matter_id    text NOT NULL,
    choice       text NOT NULL CHECK (choice IN ('yes', 'no', 'abstain')),
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (community_id, meeting_id, voter_id, matter_id)
);
"""
PGBENCH_ONE = ("INSERT INTO bench_vote (community_id, meeting_id, voter_id, matter_id, choice, received_at) "
               "VALUES ('bench', 'bench-2026', 'V' || nextval('bench_vote_seq'), 'M1', 'yes', clock_timestamp());\n")
PGBENCH_THREE = ("INSERT INTO bench_vote (community_id, meeting_id, voter_id, matter_id, choice, received_at) "
                 "SELECT 'bench', 'bench-2026', v.id, m.id, 'yes', clock_timestamp() "
                 "FROM (SELECT 'V' || nextval('bench_vote_seq') AS id) v, "
                 "unnest(ARRAY['M1', 'M2', 'M3']) AS m(id);\n")


def pgbench_path() -> str | None:
    return shutil.which("pgbench") or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"), reverse=True)), None)


async def pgbench(bench: Bench) -> None:
    a = bench.args
    exe = pgbench_path()
    if exe is None:
        log("pgbench not found (apt-get install postgresql-client): the comparison is skipped")
        bench.results.update({"pgbench_tps": None, "pgbench_3row_tps": None, "ratio_vs_pgbench": None,
                              "ratio_fair": None})
        bench.row("pgbench", "pgbench", "missing: skipped")
        return
    async with bench.pool.acquire() as conn:
        await conn.execute(PGBENCH_TABLE)
        sync = await conn.fetchval("SHOW synchronous_commit")
        fsync = await conn.fetchval("SHOW fsync")
    figures = {}
    for name, script in (("one", PGBENCH_ONE), ("three", PGBENCH_THREE)):
        path = bench.work_dir / f"pgbench_{name}.sql"
        path.write_text(script)
        cmd = [exe, "-n", "-M", "prepared", "-c", str(a.connections), "-j", str(min(2, a.connections)),
               "-T", str(a.pgbench_seconds), "-f", str(path), bench.db_url]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=a.pgbench_seconds + 120)
        match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", proc.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", proc.stdout)
        if proc.returncode != 0 or match is None:
            raise SystemExit(f"pgbench failed:\n{proc.stdout}\n{proc.stderr}")
        figures[name] = float(match.group(1))
        if failed and int(failed.group(1)):
            bench.failures.append(f"pgbench ({name}) had {failed.group(1)} failed transactions")
    r = bench.results
    r["pgbench_tps"] = round(figures["one"], 1)
    r["pgbench_3row_tps"] = round(figures["three"], 1)
    r["ratio_vs_pgbench"] = round(r["votes_per_s"] / figures["one"], 3)
    r["ratio_fair"] = round(r["requests_per_s"] / figures["three"], 3)
    bench.row("pgbench", "synchronous_commit / fsync", f"{sync} / {fsync}")
    bench.row("pgbench", f"1-row INSERT tps ({a.connections} clients)", r["pgbench_tps"])
    bench.row("pgbench", f"3-row INSERT tps ({a.connections} clients)", r["pgbench_3row_tps"])
    bench.row("pgbench", "ratio votes/s : 1-row tps (issue)", r["ratio_vs_pgbench"])
    bench.row("pgbench", "ratio requests/s : 3-row tps (fair)", r["ratio_fair"])


# --------------------------------------------------------------------------------- 2. fan-out


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
        memory = rss_mb(bench.server.pid)
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
        memory = max(memory, rss_mb(bench.server.pid))
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
              "fanout_votes": len(votes), "fanout_p50_ms": round(percentile(latencies, 50), 1) if latencies else None,
              "fanout_p99_ms": round(percentile(latencies, 99), 1) if latencies else None,
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


# --------------------------------------------------------------------------------- 3. batch paths


async def import_register_timed(bench: Bench, units: int) -> float:
    """Import a generated register of ``units`` units (what `evote register import` runs); seconds."""
    community_id = "bench-import"
    async with bench.pool.acquire() as conn:
        await community_repo.upsert_district(conn, "bench-district", "基准区")
        await community_repo.upsert_street(conn, "bench-street", "bench-district", "基准街道")
        await community_repo.insert_community(conn, community_id=community_id, name="导入测试小区",
                                              street_id="bench-street", count_parking_area=False,
                                              prep_group_formed_on=None)
    data = register_csv(generate_register_rows(units, seed=1))
    t0 = time.perf_counter()
    result = await register_service.import_register(bench.pool, community_id=community_id, data=data,
                                                    filename="bench.csv", actor=ACTOR)
    seconds = time.perf_counter() - t0
    if result.units != units:
        bench.failures.append(f"import: {result.units} units imported of {units}")
    return seconds


async def cast_in_bulk(pool: asyncpg.Pool, community_id: str, meeting_id: str, voters: list[str]) -> int:
    """Electronic ballots (3 matters each) for ``voters``, written with COPY, receipts computed as casting does."""
    submissions, choices = [], []
    start = datetime.now(UTC) - timedelta(hours=1)
    for n, voter in enumerate(voters):
        cast_at = start + timedelta(microseconds=n * 50)
        for matter_id, offset in (("M1", 0), ("M2", 2), ("M3", 4)):
            marks = (("", CHOICES[(n + offset) % 5]),)
            ballot_id = uuid.uuid4()
            salt = new_salt()
            receipt = receipt_for(canonical_submission(
                community_id=community_id, meeting_id=meeting_id, ballot_id=str(ballot_id), voter_id=voter,
                matter_id=matter_id, channel="electronic", cast_at=cast_at, choices=marks), salt)
            submissions.append((community_id, meeting_id, ballot_id, voter, matter_id, "electronic", 0, cast_at,
                                salt, receipt))
            choices += [(community_id, meeting_id, ballot_id, cand, choice) for cand, choice in marks]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("submission", records=submissions, columns=[
            "community_id", "meeting_id", "ballot_id", "voter_id", "matter_id", "channel", "revision",
            "received_at", "salt", "receipt"])
        # Without statistics the foreign-key check of every choice row is planned as a scan of the
        # meeting's submissions (quadratic: the COPY did not finish in 60 s); analyze first.
        await conn.execute("ANALYZE submission")
        await conn.copy_records_to_table("submission_choice", records=choices, columns=[
            "community_id", "meeting_id", "ballot_id", "candidate_id", "choice"])
    return len(submissions)


def run_cli(bench: Bench, *argv: str) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, EVOTE_DATABASE_URL=bench.db_url, EVOTE_DATA_DIR=str(bench.data_dir),
               EVOTE_LOG_LEVEL="WARNING")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "server.cli", *argv], env=env, cwd=ROOT, capture_output=True,
                          timeout=1800)
    return time.perf_counter() - t0, proc


async def batch(bench: Bench) -> None:
    a = bench.args
    seconds = await import_register_timed(bench, a.import_units)
    bench.results["import_50k_s"] = round(seconds, 2)
    bench.row("batch", f"register import, {a.import_units} units", f"{seconds:.2f} s")
    log(f"import of {a.import_units} units: {seconds:.2f} s")

    community_id, meeting_id = "bench-record", "record-2026"
    rows = register_for_subjects(a.record_subjects, seed=3)
    subjects = await create_open_meeting(bench.pool, community_id, meeting_id, rows)
    async with bench.pool.acquire() as conn:
        voters = [r["voter_id"] for r in await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id",
            community_id, meeting_id)]
    random.Random(9).shuffle(voters)
    voting = voters[: len(voters) * 3 // 4]
    count = await cast_in_bulk(bench.pool, community_id, meeting_id, voting)
    await meetings_service.close_meeting(bench.pool, Effects(load_settings()), community_id=community_id, meeting_id=meeting_id, actor=ACTOR)
    log(f"record meeting: {subjects} voting subjects, {count} submissions; exporting")
    bench.row("batch", "record: voting subjects / submissions", f"{subjects} / {count}")

    out = bench.work_dir / "record"
    seconds, proc = run_cli(bench, "export", meeting_id, "--community", community_id, "--out", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote export failed: {proc.stderr.decode()[-500:]}")
        return
    bench.results["export_50k_s"] = round(seconds, 2)
    bench.row("batch", "evote export (signs the record)", f"{seconds:.2f} s")

    seconds, proc = run_cli(bench, "tally", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote tally failed: {proc.stderr.decode()[-500:]}")
    else:
        published = json.loads((out / "result.json").read_text(encoding="utf-8"))
        if json.loads(proc.stdout) != published:
            bench.failures.append("evote tally differs from the exported result.json")
    bench.results["tally_50k_s"] = round(seconds, 2)
    bench.row("batch", "evote tally of the record", f"{seconds:.2f} s")

    seconds, proc = run_cli(bench, "verify", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote verify failed: {(proc.stdout + proc.stderr).decode()[-500:]}")
    bench.results["verify_50k_s"] = round(seconds, 2)
    bench.results["record_subjects"] = subjects
    bench.row("batch", "evote verify of the record", f"{seconds:.2f} s")


# --------------------------------------------------------------------------------- main


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def machine_note() -> dict:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_avg_1m": round(load[0], 2), "python": sys.version.split()[0]}


def print_table(bench: Bench) -> None:
    width = max(len(what) for _, what, _ in bench.table) + 2
    section = None
    for sec, what, value in bench.table:
        if sec != section:
            print(f"\n== {sec}")
            section = sec
        print(f"  {what:<{width}} {value}")
    print()


async def main_async(args: argparse.Namespace) -> int:
    settings = load_settings()
    server_url = args.database_url or settings.database_url
    embedded = None
    if not server_url:
        server_url, embedded = await asyncio.to_thread(resolve_database_url, settings)
    name = f"evote_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        for setting in args.db_set:
            key, _, value = setting.partition("=")
            if not re.fullmatch(r"[a-z_.]+", key):
                raise SystemExit(f"--db-set {setting!r}: expected name=value")
            await admin.execute(f'ALTER DATABASE "{name}" SET {key} = {quote_literal(value)}')
    finally:
        await admin.close()
    work_dir = Path(tempfile.mkdtemp(prefix="evote-bench-"))
    bench = Bench(args=args, server_url=server_url, db_name=name, db_url=with_database(server_url, name),
                  data_dir=work_dir / "data", work_dir=work_dir)
    bench.reserve = min(args.fanout_votes, args.voters // 4) if args.watchers else 0
    bench.results.update(machine_note())
    log(f"database {name}; work directory {work_dir}; load average {bench.results['load_avg_1m']}")
    try:
        bench.pool = await create_pool(bench.db_url, min_size=1, max_size=4)
        async with bench.pool.acquire() as conn:
            await migrate(conn)
        bench.keys = TokenKeys(private_key=load_or_create_private_key(bench.data_dir / "keys" / "token_key.pem"),
                               issuer=settings.token_issuer)
        if not args.skip_ingest or args.watchers:
            await prepare_ingest(bench)
            start_server(bench)
            try:
                if not args.skip_ingest:
                    await ingest(bench)
                if args.watchers:
                    await fanout(bench)
            finally:
                stop_server(bench)
            if not args.skip_ingest and not args.skip_pgbench:
                await pgbench(bench)
        if not args.skip_batch:
            await batch(bench)
    finally:
        if bench.pool is not None:
            await bench.pool.close()
        if not args.keep:
            admin = await asyncpg.connect(server_url)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
            shutil.rmtree(work_dir, ignore_errors=True)
        del embedded
    bench.results["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    bench.results["quick"] = args.quick
    bench.results["failures"] = bench.failures
    bench.results["ok"] = not bench.failures
    print_table(bench)
    for failure in bench.failures:
        print(f"FAILED: {failure}")
    keys = ["votes_per_s", "requests_per_s", "p50_ms", "p99_ms", "errors", "pgbench_tps", "pgbench_3row_tps",
            "ratio_vs_pgbench", "ratio_fair", "acknowledged_votes", "acknowledged_missing", "fanout_p50_ms",
            "fanout_p99_ms", "watchers", "rss_mb", "import_50k_s", "tally_50k_s", "verify_50k_s"]
    out = {k: bench.results.get(k) for k in keys}
    out.update({k: v for k, v in bench.results.items() if k not in out})
    print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0 if not bench.failures else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="small sizes for CI (300 voters, 50 watchers, 2,000 units); checks correctness only")
    p.add_argument("--database-url", default=None,
                   help="PostgreSQL server to use (default EVOTE_DATABASE_URL, else the embedded server); "
                        "a database evote_bench_* is created on it and dropped at the end")
    p.add_argument("--redis-url", default=os.environ.get("EVOTE_REDIS_URL") or None,
                   help="Redis for the server (default EVOTE_REDIS_URL; needed when --workers > 1 for live views)")
    p.add_argument("--voters", type=int, default=20_000, help="voting subjects of the ingest meeting")
    p.add_argument("--connections", type=int, default=32, help="load generator connections = pgbench clients")
    p.add_argument("--workers", type=int, default=1, help="evote serve --workers")
    p.add_argument("--pool-max", type=int, default=None, help="EVOTE_DB_POOL_MAX for the server")
    p.add_argument("--duration", type=int, default=30, help="longest ingest run in seconds (stops when voters run out)")
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument("--async-client", action="store_true", help="use the aiohttp load generator even if wrk exists")
    p.add_argument("--pgbench-seconds", type=int, default=15)
    p.add_argument("--watchers", type=int, default=2000, help="live watchers (0 skips the fan-out test)")
    p.add_argument("--fanout-votes", type=int, default=200, help="votes cast while the watchers listen")
    p.add_argument("--fanout-rate", type=float, default=20.0, help="votes per second during the fan-out test")
    p.add_argument("--settle", type=float, default=2.0, help="seconds to wait for the last deliveries")
    p.add_argument("--import-units", type=int, default=50_000)
    p.add_argument("--record-subjects", type=int, default=50_000)
    p.add_argument("--log-level", default="INFO", help="EVOTE_LOG_LEVEL of the server (default INFO, as deployed)")
    p.add_argument("--cold", action="store_true",
                   help="do not ANALYZE the vote tables after the warm-up (the first minute of a brand-new database)")
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--skip-pgbench", action="store_true")
    p.add_argument("--skip-batch", action="store_true")
    p.add_argument("--db-set", action="append", default=[], metavar="NAME=VALUE",
                   help="ALTER DATABASE ... SET for diagnosis, e.g. session_preload_libraries=auto_explain")
    p.add_argument("--keep", action="store_true", help="keep the database and work directory")
    args = p.parse_args(argv)
    if args.quick:
        for name, value in (("voters", 300), ("watchers", 50), ("import_units", 2000), ("record_subjects", 2000),
                            ("fanout_votes", 20), ("connections", 8), ("pgbench_seconds", 3), ("duration", 20)):
            if getattr(args, name) == p.get_default(name):
                setattr(args, name, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(soft, min(hard, args.watchers * 2 + 1024))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
