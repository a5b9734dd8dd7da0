"""Test helpers for the live views: ballots, and an independent full recount.

:class:`Voting` casts electronic votes through the real casting endpoint
(POST /api/ballot/votes, via tests.helpers_meetings).  Paper ballots (and
spoiled or blank election ballots, which the endpoint refuses) are inserted
with SQL by :func:`cast` (salt and receipt are random test bytes) and announced
exactly as the casting handler does, through
``server.live.events.publish_meeting_event``.  ``recount`` reads every committed
submission with its own SQL and runs the pure engine's ``tally`` over them: a
reference independent of server.live (the frozen electorate, matters and rules
come from the counting service's loaders).
"""
from __future__ import annotations

import asyncio
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

from server.ballot.tally import Submission, tally
from server.ballot.weights import Electorate
from server.live.events import publish_meeting_event
from server.services import counting


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
    """``tally()`` over every committed submission, read independently of server.live.

    The meeting's rules, matters and frozen electorate come from the counting service's loaders
    (the record as frozen at notice); the submissions are read here with their own SQL and
    selected and counted by the pure engine.
    """
    async with db_pool.acquire() as conn:
        inputs = await counting.load_counted_inputs(conn, community_id, meeting_id)
        subs = await conn.fetch(
            """SELECT ballot_id, voter_id, matter_id, channel, received_at FROM submission
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
        choices = await conn.fetch(
            """SELECT ballot_id, candidate_id, choice FROM submission_choice
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    by_ballot: dict = {}
    for c in choices:
        by_ballot.setdefault(c["ballot_id"], []).append((c["candidate_id"], c["choice"]))
    # A submission is its choice rows (bundle-format.md): one without any is not a ballot.
    submissions = [Submission(str(s["ballot_id"]), s["voter_id"], s["matter_id"], s["channel"], s["received_at"],
                              tuple(sorted(by_ballot[s["ballot_id"]]))) for s in subs if s["ballot_id"] in by_ballot]
    return tally(meeting_id, inputs.rules, inputs.matters, inputs.electorate, submissions)


async def frozen_electorate(db_pool, community_id: str, meeting_id: str) -> Electorate:
    """The meeting's electorate as frozen at notice (subjects with their buildings)."""
    async with db_pool.acquire() as conn:
        return (await counting.load_counted_inputs(conn, community_id, meeting_id)).electorate


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


async def wait_for_js(page, expression: str, *, timeout: float = 30_000) -> None:
    """Wait until ``expression`` is true in the page, polling with page.evaluate.

    Playwright's wait_for_function builds its predicate with eval, which the pages' Content
    Security Policy forbids (script-src 'self'); page.evaluate goes through the debugging protocol,
    which the policy does not govern, so the pages are tested under their real policy.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout / 1000
    while not await page.evaluate(expression):
        if loop.time() > deadline:
            raise AssertionError(f"not true after {timeout / 1000:.1f} s: {expression}")
        await asyncio.sleep(0.05)
