"""Job 1 of the benchmark: vote ingest through `evote serve`, and pgbench on the same server.

``prepare_ingest`` makes the bench meeting and one ballot token per voter; ``ingest`` posts one
ballot per voter with wrk (votes.lua) or, without wrk, an aiohttp client, and checks that every
acknowledged ballot is in the database; ``pgbench`` measures the durable single-row and 3-row
INSERT rates the vote rate is compared with.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
from common import (
    COMMUNITY,
    MEETING,
    Bench,
    ballot_body,
    cpu_seconds,
    create_open_meeting,
    electorate_voters,
    log,
    percentile,
    register_for_subjects,
    rounded,
)

from server.auth.tokens import BALLOT_AUDIENCE, BALLOT_TYP

LUA = Path(__file__).resolve().parent / "votes.lua"


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
    subjects = await create_open_meeting(bench, COMMUNITY, MEETING, rows)
    bench.voters = await electorate_voters(bench.pool, COMMUNITY, MEETING)
    random.Random(5).shuffle(bench.voters)
    await issue_tokens(bench)
    bench.results["voting_subjects"] = subjects
    log(f"ingest community ready: {len(rows)} units, {subjects} voting subjects, {len(bench.tokens)} tokens "
        f"({time.perf_counter() - t0:.1f} s)")


def run_wrk(bench: Bench, first: int, last: int, duration: int) -> dict:
    """Post the ballots of voters [first, last) with wrk, for up to ``duration`` seconds; returns figures
    and acknowledged ballot ids."""
    a = bench.args
    threads = max(1, min(a.wrk_threads, a.connections))
    tokens_file = bench.work_dir / "tokens.tsv"
    prefix = bench.work_dir / "wrk"
    cmd = ["wrk", "-t", str(threads), "-c", str(a.connections), "-d", f"{duration}s", "--timeout", "10s",
           "-s", str(LUA), bench.base_url, "--", str(tokens_file), str(threads), str(prefix)]
    # votes.lua assigns line i to thread i % threads; lines are numbered from `first`, so renumber.
    tokens_file.write_text("".join(f"{i - first}\t{bench.tokens[i]}\n" for i in range(first, last)))
    wrk = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wrk sleeps the whole -d even when every thread is out of voters; votes.lua writes "done" then, and
    # SIGINT makes wrk stop at once and print its summary.
    deadline = time.monotonic() + duration + 30
    while wrk.poll() is None and time.monotonic() < deadline:
        time.sleep(0.25)
        status_files = [Path(f"{prefix}.{t}.status") for t in range(threads)]
        if all(f.exists() and "done\n" in f.read_text() for f in status_files):
            wrk.send_signal(signal.SIGINT)
            break
    stdout, stderr = wrk.communicate(timeout=60)
    summary = next((json.loads(line.split(" ", 1)[1]) for line in stdout.splitlines()
                    if line.startswith("BENCH-JSON ")), None)
    if wrk.returncode != 0 or summary is None:
        raise SystemExit(f"wrk failed ({wrk.returncode}):\n{stdout}\n{stderr}")
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


async def run_async_client(bench: Bench, first: int, last: int, duration: int) -> dict:
    """The same load with aiohttp (when wrk is missing): CONNECTIONS workers, each voter once."""
    a = bench.args
    queue = list(range(first, last))
    queue.reverse()
    latencies: list[float] = []
    acked: list[str] = []
    errors: list[str] = []
    deadline = time.perf_counter() + duration

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


async def check_acknowledged(bench: Bench, acked: list[str]) -> tuple[int, int, int]:
    """(acknowledged ballots found in the database, submissions in the database, transactions that
    stored the acknowledged ballots).  The last is counted from the rows' ``xmin`` (the id of the
    transaction that wrote them): with group commit, ballots that arrive together share a statement
    and its commit."""
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
        commits = await conn.fetchval(
            """SELECT count(DISTINCT s.xmin::text) FROM submission s
                WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.ballot_id = any($3::uuid[])""",
            COMMUNITY, MEETING, acked)
    return found, stored, commits


async def timed_run(bench: Bench, first: int, last: int) -> dict:
    """Voters [first, last) against the running server: a short warm-up (not counted), then the timed
    run; figures, with the server's process CPU over the timed window (every worker's)."""
    a = bench.args
    use_wrk = shutil.which("wrk") is not None and not a.async_client
    if not use_wrk and not a.async_client:
        log("wrk not found: using the aiohttp load generator (install wrk for the reference figures)")
    # A short warm-up on a few voters (connections, prepared statements, caches), not counted.
    warm = min(200, (last - first) // 10)
    if warm:
        w = (run_wrk(bench, first, first + warm, 5) if use_wrk
             else await run_async_client(bench, first, first + warm, 5))
        if w["errors"]:
            bench.failures.append(f"warm-up errors: {w['errors']} {w['error_samples']}")
        first += warm
    if not a.cold:
        # A fresh database: the plans of the first votes (the pre-check, and the foreign-key checks
        # PostgreSQL caches per connection) were made for an empty submission table, and pick an index
        # that scans every submission of the meeting.  Autovacuum analyzes within a minute of the first
        # votes (autovacuum_naptime); do it now, as it would have, so the run measures the steady state.
        # --cold measures the first minute instead (docs/performance.md).  The ballots' short receipts
        # too: the check of each receipt item's code against ballot_receipt was planned for an empty table.
        async with bench.pool.acquire() as conn:
            await conn.execute(f"ANALYZE {VOTE_TABLES}")
    log(f"ingest: {last - first} voters, {a.connections} connections, {bench.workers} worker(s), up to "
        f"{a.duration} s ({'wrk' if use_wrk else 'aiohttp'})")
    cpu_before = cpu_seconds(bench.server_pid)
    db_before = await backend_cpu(bench)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with AutoAnalyze(bench.db_url, None if a.cold else AUTOANALYZE_S):
        r = (run_wrk(bench, first, last, a.duration) if use_wrk
             else await run_async_client(bench, first, last, a.duration))
    r["server_cpu"] = cpu_seconds(bench.server_pid) - cpu_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    r["loadgen_cpu"] = ((children.ru_utime + children.ru_stime - children_before.ru_utime - children_before.ru_stime)
                        if use_wrk else None)
    db_after = await backend_cpu(bench)
    r["db_cpu"] = (None if db_before is None or db_after is None
                   else sum(seconds - db_before.get(pid, 0.0) for pid, seconds in db_after.items()))
    found, r["stored"], r["commits"] = await check_acknowledged(bench, r["acked"])
    r["missing"] = len(r["acked"]) - found
    if r["errors"]:
        bench.failures.append(f"ingest errors ({bench.workers} worker(s)): {r['errors']} (e.g. {r['error_samples']})")
    if r["missing"]:
        bench.failures.append(f"{r['missing']} acknowledged votes are not in the database")
    return r


VOTE_TABLES = "submission, submission_choice, ballot_receipt, ballot_receipt_item"
# How often the vote tables are analyzed during a timed run (see AutoAnalyze).
AUTOANALYZE_S = 15.0


class AutoAnalyze:
    """ANALYZE the vote tables every ``interval`` seconds while a run goes, in a thread of its own (wrk
    blocks this one), as autovacuum does on a database that keeps it on: during a rush every table
    passes autovacuum's threshold (50 rows + 10 % changed) between two of its visits.  This machine's
    PostgreSQL runs with autovacuum off; without it, the plans of the checks PostgreSQL caches per
    connection stay those made for the small tables of the first minute (a sequential scan of a
    two-page table is cheaper than its index) and read the whole table for every ballot as it grows.
    ``interval`` None: nothing (--cold)."""

    def __init__(self, dsn: str, interval: float | None) -> None:
        self.dsn, self.interval = dsn, interval
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.runs = 0

    def __enter__(self) -> AutoAnalyze:
        if self.interval:
            self.thread = threading.Thread(target=lambda: asyncio.run(self._loop()), daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=60)

    async def _loop(self) -> None:
        assert self.interval is not None
        conn = await asyncpg.connect(self.dsn)
        try:
            while not await asyncio.to_thread(self.stop.wait, self.interval):
                await conn.execute(f"ANALYZE {VOTE_TABLES}")
                self.runs += 1
        finally:
            await conn.close()


async def backend_cpu(bench: Bench) -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend connected to the bench database (the server's
    pool), read from /proc; None when the database runs elsewhere.  A backend that connects during the
    run counts whole; one that exits during it is lost (the pool keeps its connections)."""
    async with bench.pool.acquire() as conn:
        pids = [r["pid"] for r in await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    return _local_cpu(pids)


def _local_cpu(pids: list[int]) -> dict[int, float] | None:
    if not pids or not all(Path(f"/proc/{pid}/stat").exists() for pid in pids):
        return None
    return {pid: cpu_seconds(pid) for pid in pids}


def ingest_split(bench: Bench) -> tuple[int, int, int]:
    """(first, split, last): voters [split, last) go to the run with --compare-workers, [first, split)
    to the main run; the reserve at the end is kept for the fan-out."""
    first, last = 0, len(bench.tokens) - bench.reserve
    other = bench.args.compare_workers
    if not other or other == bench.args.workers:
        return first, last, last
    return first, first + (last - first) * 3 // 5, last


async def ingest_other_workers(bench: Bench) -> None:
    """The run with ``--compare-workers`` (default 2) on its share of the voters: ``votes_per_s_2w``."""
    _, split, last = ingest_split(bench)
    if split == last:
        return
    r = await timed_run(bench, split, last)
    key = f"votes_per_s_{bench.workers}w"
    votes_per_s = len(r["acked"]) / r["seconds"]
    bench.results.update({
        key: round(votes_per_s, 1), f"p99_ms_{bench.workers}w": rounded(r["p99_ms"]),
        f"errors_{bench.workers}w": r["errors"], f"lost_{bench.workers}w": r["missing"],
        f"server_cpu_ms_per_ballot_{bench.workers}w": round(r["server_cpu"] * 1000 / max(1, r["requests_ok"]), 3),
        f"ballots_per_commit_{bench.workers}w": round(r["requests_ok"] / max(1, r["commits"]), 1),
    })
    bench.row("ingest", f"votes/s with {bench.workers} workers ({last - split} voters)", bench.results[key])
    bench.row("ingest", f"p99 ms with {bench.workers} workers", bench.results[f"p99_ms_{bench.workers}w"])


async def ingest(bench: Bench) -> None:
    a = bench.args
    first, split, _ = ingest_split(bench)
    r = await timed_run(bench, first, split)
    requests_per_s = r["requests_ok"] / r["seconds"]
    votes_per_s = len(r["acked"]) / r["seconds"]
    server_cpu = r["server_cpu"]
    bench.results.update({
        "load_generator": r["tool"], "connections": a.connections, "workers": a.workers,
        "requests": r["requests_ok"], "requests_per_s": round(requests_per_s, 1),
        "votes_per_s": round(votes_per_s, 1), "p50_ms": rounded(r["p50_ms"]), "p99_ms": rounded(r["p99_ms"]),
        "errors": r["errors"],
        "acknowledged_votes": len(r["acked"]), "acknowledged_missing": r["missing"], "lost": r["missing"],
        # process CPU (user + system) of the server over the timed window, per ballot (one request)
        "server_cpu_ms_per_ballot": round(server_cpu * 1000 / max(1, r["requests_ok"]), 3),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / max(1, r["requests_ok"]), 2),
        "server_cpu_share": round(server_cpu / r["seconds"], 2),
        # ballots stored per commit (group commit: ballots that arrive together share one statement)
        "ballots_per_commit": round(r["requests_ok"] / max(1, r["commits"]), 1),
    })
    # Where the machine's CPU goes per ballot (the server, PostgreSQL's backends for it, the load
    # generator), and the rate those costs allow when the machine's cores do nothing else: the
    # ceiling of this machine for this path, whatever the scheduling.
    parts = {"server": server_cpu, "db": r["db_cpu"], "loadgen": r["loadgen_cpu"]}
    for name, seconds in parts.items():
        bench.results[f"{name}_cpu_ms_per_ballot"] = (None if seconds is None
                                                      else round(seconds * 1000 / max(1, r["requests_ok"]), 3))
    if None not in parts.values():
        total_ms = sum(parts.values()) * 1000 / max(1, r["requests_ok"])
        bench.results["cpu_ms_per_ballot_all"] = round(total_ms, 3)
        bench.results["ceiling_ballots_per_s"] = round((os.cpu_count() or 1) * 1000 / total_ms)
        bench.results["votes_per_ballot"] = round(len(r["acked"]) / max(1, r["requests_ok"]), 3)
    for what, key in [("load generator", "load_generator"), ("connections / workers", None),
                      ("requests (ballots of 3 matters)", "requests"), ("requests/s", "requests_per_s"),
                      ("votes/s (submissions)", "votes_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms"),
                      ("errors", "errors"), ("acknowledged votes", "acknowledged_votes"),
                      ("acknowledged but missing", "acknowledged_missing"),
                      ("server CPU ms per ballot", "server_cpu_ms_per_ballot"),
                      ("server CPU (cores busy)", "server_cpu_share"),
                      ("ballots per commit (group commit)", "ballots_per_commit"),
                      ("PostgreSQL CPU ms per ballot", "db_cpu_ms_per_ballot"),
                      ("load generator CPU ms per ballot", "loadgen_cpu_ms_per_ballot"),
                      ("all CPU ms per ballot", "cpu_ms_per_ballot_all"),
                      ("ceiling ballots/s (all cores, these costs)", "ceiling_ballots_per_s")]:
        value = f"{a.connections} / {a.workers}" if key is None else bench.results.get(key)
        bench.row("ingest", what, value)
    bench.row("ingest", "submissions stored (incl. warm-up)", r["stored"])


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
    if r.get("ceiling_ballots_per_s"):
        # the ratio this machine's cores would allow at the measured CPU per ballot
        r["ceiling_ratio_vs_pgbench"] = round(r["ceiling_ballots_per_s"] * r["votes_per_ballot"] / figures["one"], 3)
    r["ratio_fair"] = round(r["requests_per_s"] / figures["three"], 3)
    bench.row("pgbench", "synchronous_commit / fsync", f"{sync} / {fsync}")
    bench.row("pgbench", f"1-row INSERT tps ({a.connections} clients)", r["pgbench_tps"])
    bench.row("pgbench", f"3-row INSERT tps ({a.connections} clients)", r["pgbench_3row_tps"])
    bench.row("pgbench", "ratio votes/s : 1-row tps (target)", r["ratio_vs_pgbench"])
    bench.row("pgbench", "ratio requests/s : 3-row tps (fair)", r["ratio_fair"])
    bench.row("pgbench", "ratio the cores allow at this CPU per ballot", r.get("ceiling_ratio_vs_pgbench"))
