#!/usr/bin/env python3
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
   single-row INSERT into an equivalent votes table (the yardstick of the target) and a
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

The table goes to stdout; the LAST line is one JSON object (the headline keys first).
Exit status 1 if a correctness check fails (errors, a lost acknowledged vote,
a failed verify); timings never fail the run.  The bench installs nothing: it
only checks that wrk and pgbench exist and says what it does without them.

Modules: common.py (the run's state, the bench meeting, the server process), ingest.py (1 and
pgbench), fanout.py (2), batch.py (3); this file parses the arguments and reports.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from batch import batch  # noqa: E402
from common import Bench, log, start_server, stop_server  # noqa: E402
from fanout import fanout  # noqa: E402
from ingest import ingest, ingest_other_workers, pgbench, prepare_ingest  # noqa: E402

from server.auth.tokens import TokenKeys, load_or_create_private_key  # noqa: E402
from server.db.pool import create_pool, migrate, resolve_database_url  # noqa: E402
from server.services.effects import Effects  # noqa: E402
from server.settings import load_settings  # noqa: E402


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def machine_note() -> dict:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_avg_1m": round(load[0], 2), "python": sys.version.split()[0]}


HEADLINE_KEYS = ["votes_per_s", "requests_per_s", "server_cpu_ms_per_ballot", "p50_ms", "p99_ms", "errors", "lost",
                 "pgbench_tps", "pgbench_3row_tps", "ratio_vs_pgbench", "ratio_fair", "ceiling_ratio_vs_pgbench",
                 "db_cpu_ms_per_ballot", "cpu_ms_per_ballot_all", "ballots_per_commit", "votes_per_s_2w",
                 "acknowledged_votes", "acknowledged_missing", "fanout_p50_ms", "fanout_p99_ms", "watchers", "rss_mb",
                 "import_50k_s", "tally_50k_s", "verify_50k_s"]


def print_table(bench: Bench) -> None:
    width = max(len(what) for _, what, _ in bench.table) + 2
    section = None
    for sec, what, value in bench.table:
        if sec != section:
            print(f"\n== {sec}")
            section = sec
        print(f"  {what:<{width}} {value}")
    print()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def create_database(server_url: str, name: str, db_set: list[str]) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        for setting in db_set:
            key, _, value = setting.partition("=")
            if not re.fullmatch(r"[a-z_.]+", key):
                raise SystemExit(f"--db-set {setting!r}: expected name=value")
            await admin.execute(f'ALTER DATABASE "{name}" SET {key} = {quote_literal(value)}')
    finally:
        await admin.close()


async def drop_database(server_url: str, name: str) -> None:
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_jobs(bench: Bench) -> None:
    args = bench.args
    if not args.skip_ingest or args.watchers:
        await prepare_ingest(bench)
        if not args.skip_ingest and args.compare_workers and args.compare_workers != args.workers:
            # First the other worker count on its share of the voters (votes_per_s_2w), then the main
            # server, whose run completes the rush the fan-out follows.
            start_server(bench, args.compare_workers)
            try:
                await ingest_other_workers(bench)
            finally:
                stop_server(bench)
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


def report(bench: Bench) -> int:
    """The table, the failures, and the JSON line last; the exit status."""
    bench.results["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    bench.results["quick"] = bench.args.quick
    bench.results["failures"] = bench.failures
    bench.results["ok"] = not bench.failures
    print_table(bench)
    for failure in bench.failures:
        print(f"FAILED: {failure}")
    out = {k: bench.results.get(k) for k in HEADLINE_KEYS}
    out.update({k: v for k, v in bench.results.items() if k not in out})
    print(json.dumps(out, ensure_ascii=False), flush=True)
    return 0 if not bench.failures else 1


async def main_async(args: argparse.Namespace) -> int:
    settings = load_settings()
    # --database-url, else EVOTE_DATABASE_URL, else the embedded server (kept alive by `embedded`)
    server_url, embedded = await asyncio.to_thread(
        resolve_database_url, settings.replace(database_url=args.database_url or settings.database_url))
    name = f"evote_bench_{secrets.token_hex(4)}"
    await create_database(server_url, name, args.db_set)
    work_dir = Path(tempfile.mkdtemp(prefix="evote-bench-"))
    data_dir = work_dir / "data"
    db_url = with_database(server_url, name)
    pool = None
    log(f"database {name}; work directory {work_dir}; load average {os.getloadavg()[0]:.2f}")
    try:
        pool = await create_pool(db_url, min_size=1, max_size=4)
        async with pool.acquire() as conn:
            await migrate(conn)
        keys = TokenKeys(private_key=load_or_create_private_key(data_dir / "keys" / "token_key.pem"),
                         issuer=settings.token_issuer)
        bench = Bench(args=args, db_url=db_url, data_dir=data_dir, work_dir=work_dir, pool=pool, keys=keys,
                      effects=Effects(settings))
        bench.reserve = min(args.fanout_votes, args.voters // 4) if args.watchers else 0
        bench.results.update(machine_note())
        await run_jobs(bench)
    finally:
        if pool is not None:
            await pool.close()
        if not args.keep:
            await drop_database(server_url, name)
            shutil.rmtree(work_dir, ignore_errors=True)
        del embedded
    return report(bench)


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
    p.add_argument("--compare-workers", type=int, default=2,
                   help="also run 2/5 of the voters against a server with this many workers first "
                        "(votes_per_s_2w; 0 or equal to --workers: no such run)")
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
