"""Test helpers for the live views: an open meeting, ballots, and an independent full recount.

:class:`Voting` casts electronic votes through the real casting endpoint
(POST /api/ballot/votes, via tests.helpers_meetings).  There is no paper-ballot
entry endpoint yet, so paper ballots (and spoiled election ballots, which the
endpoint refuses) are inserted with SQL by :func:`cast` (0003 schema; salt and
receipt are random test bytes) and announced exactly as the casting handler
does, through ``server.live.events.publish_meeting_event``.  ``recount`` reads every
committed submission with its own SQL and runs the pure engine's ``tally`` over
them: a reference independent of both server.live and server.services.counting.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from server.ballot.tally import ELECTION, Matter, Rules, Submission, tally
from server.ballot.weights import Electorate, compute_electorate, parse_register_record
from server.live.events import publish_meeting_event
from server.repositories import meetings as meetings_repo
from server.services.counting import electorate_records


def electorate_of(rows: Sequence[dict], count_parking_area: bool = False) -> Electorate:
    parsed = []
    for index, record in enumerate(rows):
        row, problems = parse_register_record(record, index)
        assert row is not None, problems
        parsed.append(row)
    return compute_electorate(parsed, count_parking_area)


DEFAULT_MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
    {"matter_id": "M2", "kind": "resolution", "title": "筹集维修资金", "category": 6},
    {"matter_id": "E1", "kind": "election", "title": "选举业主委员会委员", "category": 3, "seats": 5,
     "alternates": 2, "candidates": [(f"C{i}", f"候选人{i}") for i in range(1, 8)]},
]


async def make_open_meeting(db_pool, community_id: str, rows: Sequence[dict], *, matters=None, rules: dict | None = None,
                            show_live_results: bool = False, state: str = "open") -> tuple[str, Electorate]:
    """A meeting in ``state`` (noticed/open) with a frozen electorate, built with SQL."""
    matters = DEFAULT_MATTERS if matters is None else matters
    full_rules = {"count_parking_area": False, "allow_revision": False,
                  "duplicate_policy": "electronic_prevails", "rank_by": "persons_then_area"} | (rules or {})
    electorate = electorate_of(rows, full_rules["count_parking_area"])
    meeting_id = f"m-{uuid.uuid4().hex[:8]}"
    async with db_pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval("SELECT max(version) FROM register_version WHERE community_id = $1",
                                      community_id)
        await conn.execute(
            """INSERT INTO meeting (community_id, meeting_id, title, rules, show_live_results, opens_at, closes_at)
               VALUES ($1, $2, '测试业主大会', $3::jsonb, $4, now() - interval '1 hour', now() + interval '7 days')""",
            community_id, meeting_id, json.dumps(full_rules), show_live_results)
        for position, m in enumerate(matters, 1):
            election = m["kind"] == ELECTION
            await conn.execute(
                """INSERT INTO matter (community_id, meeting_id, matter_id, position, kind, title, category,
                                       seats, alternates, body)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
                community_id, meeting_id, m["matter_id"], position, m["kind"], m["title"], m["category"],
                m.get("seats") if election else None, m.get("alternates") if election else None,
                "other" if election else None)
            for cpos, (cid, name) in enumerate(m.get("candidates", ()), 1):
                await conn.execute(
                    """INSERT INTO candidate (community_id, meeting_id, matter_id, candidate_id, position, name)
                       VALUES ($1, $2, $3, $4, $5, $6)""", community_id, meeting_id, m["matter_id"], cid, cpos, name)
        await meetings_repo.copy_electorate(conn, electorate_records(
            community_id, meeting_id, electorate, {r["unit_id"]: r["building"] for r in rows}))
        await conn.execute(
            """UPDATE meeting SET state = 'noticed', register_version = $3, total_area = $4, total_persons = $5,
                                  area_places = $6, noticed_at = now() - interval '16 days'
                WHERE community_id = $1 AND meeting_id = $2""",
            community_id, meeting_id, version, electorate.total_area, electorate.total_persons, electorate.places)
        if state == "open":
            await conn.execute("""UPDATE meeting SET state = 'open', opened_at = now()
                                   WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    return meeting_id, electorate


async def insert_submission(db_pool, community_id: str, meeting_id: str, voter_id: str, matter_id: str,
                            choices: Sequence[tuple[str, str]], *, channel: str = "electronic",
                            revision: int = 0) -> str:
    ballot_id = uuid.uuid4()
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO submission (community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
                                       salt, receipt)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
            secrets.token_bytes(16), secrets.token_bytes(32))
        await conn.executemany(
            """INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, choice)
               VALUES ($1, $2, $3, $4, $5)""",
            [(community_id, meeting_id, ballot_id, candidate, choice) for candidate, choice in choices])
    return str(ballot_id)


async def cast(app, db_pool, community_id: str, meeting_id: str, voter_id: str, matter_id: str,
               choices: Sequence[tuple[str, str]], **kwargs) -> str:
    """Insert a submission and announce it the way the casting service does (after commit)."""
    ballot_id = await insert_submission(db_pool, community_id, meeting_id, voter_id, matter_id, choices, **kwargs)
    await publish_meeting_event(app, community_id, meeting_id, {"type": "ballot", "matter_id": matter_id})
    return ballot_id


async def recount(db_pool, community_id: str, meeting_id: str) -> dict:
    """``tally()`` over every committed submission, read independently of server.live."""
    async with db_pool.acquire() as conn:
        meeting = await conn.fetchrow("SELECT rules FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                                      community_id, meeting_id)
        matter_rows = await conn.fetch(
            """SELECT matter_id, kind, title, category, seats, alternates FROM matter
                WHERE community_id = $1 AND meeting_id = $2 ORDER BY position""", community_id, meeting_id)
        candidates = await conn.fetch(
            """SELECT matter_id, candidate_id, name FROM candidate
                WHERE community_id = $1 AND meeting_id = $2 ORDER BY position""", community_id, meeting_id)
        voters = await conn.fetch("SELECT voter_id, area FROM electorate WHERE community_id = $1 AND meeting_id = $2",
                                  community_id, meeting_id)
        subs = await conn.fetch(
            """SELECT ballot_id, voter_id, matter_id, channel, received_at FROM submission
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
        choices = await conn.fetch(
            """SELECT ballot_id, candidate_id, choice FROM submission_choice
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    rules = Rules(**json.loads(meeting["rules"]))
    matters = []
    for r in matter_rows:
        if r["kind"] == ELECTION:
            cands = tuple((c["candidate_id"], c["name"]) for c in candidates if c["matter_id"] == r["matter_id"])
            matters.append(Matter(r["matter_id"], r["title"], ELECTION, r["category"], r["seats"], r["alternates"],
                                  cands))
        else:
            matters.append(Matter(r["matter_id"], r["title"], r["kind"], r["category"]))
    from server.ballot.weights import Subject

    subjects = {v["voter_id"]: Subject(v["voter_id"], v["area"], (), ()) for v in voters}
    electorate = Electorate(subjects, sum(v["area"] for v in voters), len(voters), {})
    by_ballot: dict = {}
    for c in choices:
        by_ballot.setdefault(c["ballot_id"], []).append((c["candidate_id"], c["choice"]))
    # A submission is its choice rows (bundle-format.md): one without any is not a ballot.
    submissions = [Submission(str(s["ballot_id"]), s["voter_id"], s["matter_id"], s["channel"], s["received_at"],
                              tuple(sorted(by_ballot[s["ballot_id"]]))) for s in subs if s["ballot_id"] in by_ballot]
    return tally(meeting_id, rules, matters, electorate, submissions)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_for(predicate, *, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``predicate`` (sync or async) until it returns a truthy value; returns it, or fails."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def chromium_path() -> str | None:
    path = os.environ.get("EVOTE_CHROMIUM", "/usr/bin/chromium")
    return path if os.path.exists(path) else None


class Voting:
    """Votes in one open meeting (a tests.helpers_meetings.MeetingFixture), through the API."""

    def __init__(self, client, db_pool, fixture) -> None:
        self.client, self.db_pool, self.m = client, db_pool, fixture
        self.community_id, self.meeting_id = fixture.community_id, fixture.meeting_id
        self.tokens: dict[str, str] = {}
        self.areas: dict[str, int] = {}

    async def load(self) -> Voting:
        async with self.db_pool.acquire() as conn:
            rows = await conn.fetch("SELECT voter_id, area FROM electorate WHERE community_id = $1 AND meeting_id = $2",
                                    self.community_id, self.meeting_id)
        self.areas = {r["voter_id"]: r["area"] for r in rows}
        return self

    @property
    def voters(self) -> list[str]:
        return sorted(self.areas)

    async def token(self, voter_id: str) -> str:
        from tests.helpers_meetings import ballot_token

        if voter_id not in self.tokens:
            self.tokens[voter_id] = await ballot_token(self.db_pool, self.client, self.community_id,
                                                       self.meeting_id, voter_id)
        return self.tokens[voter_id]

    async def vote(self, voter_id: str, votes: list, *, expect: int = 201):
        """Electronic votes through POST /api/ballot/votes."""
        from tests.helpers_meetings import cast as api_cast

        resp = await api_cast(self.client, await self.token(voter_id), votes)
        assert resp.status == expect, await resp.text()
        return resp

    async def paper(self, voter_id: str, matter_id: str, choices, *, revision: int = 0) -> str:
        return await cast(self.client.server.app, self.db_pool, self.community_id, self.meeting_id, voter_id,
                          matter_id, choices, channel="paper", revision=revision)


# --------------------------------------------------------------------------
# Processes for the multi-worker tests: our own redis-server and `evote serve` workers
# --------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


class RedisProcess:
    """A throwaway redis-server on a free port in a temp dir; stop() and start() again on the same port."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = shutil.which("redis-server")
        self.workdir, self.port = workdir, port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class ServeProcess:
    """One `evote serve` worker process on its own port."""

    def __init__(self, *, database_url: str, data_dir: Path, redis_url: str | None, log_path: Path,
                 extra_env: dict | None = None) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EVOTE_")}
        env.update({
            "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(data_dir), "EVOTE_PORT": str(self.port),
            "EVOTE_HOST": "127.0.0.1", "EVOTE_LOG_JSON": "false", "EVOTE_LOG_LEVEL": "INFO",
            # Prove the fan-out: no safety-net polling during the test.
            "EVOTE_LIVE_POLL_S": "3600", "EVOTE_LIVE_DEBOUNCE_S": "0.05", "EVOTE_LIVE_HEARTBEAT_S": "1",
        })
        if redis_url:
            env["EVOTE_REDIS_URL"] = redis_url
        env.update(extra_env or {})
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
                                     env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def ready(self, session, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"evote serve exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                async with session.get(self.base + "/healthz") as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if loop.time() > deadline:
                raise RuntimeError(f"evote serve not ready: {self.log_path.read_text(errors='replace')[-2000:]}")
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
