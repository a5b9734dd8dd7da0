"""What the benchmark jobs share: the run's state (``Bench``), the bench meeting, the server process.

Imported by scripts/bench/bench.py after it has put the repository root on ``sys.path``.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from server.auth.tokens import TokenKeys
from server.devtools.demo_data import generate_register_rows, register_csv
from server.devtools.fixtures import backdate_notice
from server.repositories import communities as community_repo
from server.services import meetings as meetings_service
from server.services import register as register_service
from server.services.effects import Effects

ROOT = Path(__file__).resolve().parents[2]
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


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _process_tree(pid: int) -> list[int]:
    """A process and its children (the workers of `evote serve --workers N`)."""
    try:
        return [pid, *(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    except OSError:
        return [pid]


def rss_mb(pid: int) -> float:
    """VmRSS of a process and its children."""
    total = 0
    for p in _process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children so far (to compare runs on a busy machine)."""
    total = 0
    for p in _process_tree(pid):
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


@dataclass
class Bench:
    """One run: its arguments, database, work directory, the server under test, and what it found."""
    args: argparse.Namespace
    db_url: str
    data_dir: Path
    work_dir: Path
    pool: asyncpg.Pool
    keys: TokenKeys
    effects: Effects          # for the services the bench calls directly (no app, nobody listens)
    voters: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    table: list[tuple[str, str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    server: subprocess.Popen | None = None
    base_url: str = ""
    reserve: int = 0          # voters kept back from the ingest for the fan-out votes
    workers: int = 1          # workers of the server running now

    def row(self, section: str, what: str, value: object) -> None:
        self.table.append((section, what, "—" if value is None else str(value)))

    @property
    def server_pid(self) -> int:
        assert self.server is not None, "the server is not running"
        return self.server.pid


async def create_community(pool: asyncpg.Pool, community_id: str, name: str) -> None:
    async with pool.acquire() as conn:
        await community_repo.upsert_district(conn, "bench-district", "基准区")
        await community_repo.upsert_street(conn, "bench-street", "bench-district", "基准街道")
        await community_repo.insert_community(conn, community_id=community_id, name=name,
                                              street_id="bench-street", count_parking_area=False,
                                              prep_group_formed_on=None)


async def create_open_meeting(bench: Bench, community_id: str, meeting_id: str, rows: list[dict]) -> int:
    """Import ``rows`` as the community's register and open a 3-matter meeting on it; returns subjects."""
    pool = bench.pool
    await create_community(pool, community_id, "基准测试小区")
    imported = await register_service.import_register(pool, community_id=community_id, data=register_csv(rows),
                                                      filename="bench.csv", actor=ACTOR,
                                                      settings=bench.effects.settings.replace(data_dir=bench.data_dir))
    opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
    await meetings_service.create_meeting(pool, community_id=community_id, actor=ACTOR, data={
        "meeting_id": meeting_id, "title": "基准测试业主大会", "matters": MATTERS, "rules": {},
        "show_live_results": False, "opens_at": opens_at.isoformat(),
        "closes_at": (opens_at + timedelta(days=7)).isoformat()})
    await meetings_service.publish_notice(pool, bench.effects, community_id=community_id, meeting_id=meeting_id,
                                          actor=ACTOR)
    # BENCH DATA ONLY (as the tests do): pretend the notice went out 16 days ago.  The window opens two
    # hours back, so that the ballots batch.cast_in_bulk dates an hour ago fall inside it.
    await backdate_notice(pool, community_id, meeting_id, opened_ago=timedelta(hours=2))
    await meetings_service.open_meeting(pool, bench.effects, community_id=community_id, meeting_id=meeting_id,
                                        actor=ACTOR)
    return imported.total_persons


async def electorate_voters(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> list[str]:
    """The meeting's voting subjects, in voter_id order."""
    async with pool.acquire() as conn:
        return [r["voter_id"] for r in await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id",
            community_id, meeting_id)]


def start_server(bench: Bench, workers: int | None = None) -> None:
    """`evote serve --workers W` on a free port over the bench database; returns once it accepts."""
    a = bench.args
    workers = a.workers if workers is None else workers
    bench.workers = workers
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
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--workers", str(workers)],
                              env=env, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
    bench.server = server
    bench.base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"evote serve exited ({server.returncode}); see {bench.work_dir}/server.log")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
            # every worker binds the port; give the others a moment to finish starting
            time.sleep(1.0 if workers > 1 else 0.2)
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
