"""Group commit of electronic ballots: ballots that arrive while earlier ones commit share one
statement, each keeps its own outcome, and a failure of one never fails the others.

The first tests drive server.services.group_commit with plain functions (the mechanics); the others
run the real app against the real database (a rush, a statement that fails on one ballot, a
connection lost mid-batch)."""
from __future__ import annotations

import asyncio
import random
import uuid

import asyncpg
import jwt
import pytest

from server.ballot.receipts import (
    BALLOT_RECEIPT_ALPHABET,
    BALLOT_RECEIPT_CHARS,
    BALLOT_RECEIPT_LABEL,
    ballot_receipt_code,
    canonical_submission,
    normalize_ballot_receipt,
    receipt_for,
)
from server.repositories import casting as casting_repo
from server.services import casting
from server.services.group_commit import GroupCommit
from tests.helpers_meetings import ballot_token, cast, open_meeting

# ---------------------------------------------------------------- the mechanics, without a database


class Recorder:
    """run_batch / run_alone that record what ran; a job is (member, name)."""

    def __init__(self, *, hold: asyncio.Event | None = None, refuse: set[str] = frozenset(),
                 statement_fails_on: set[str] = frozenset(), connection_lost: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.alone: list[str] = []
        self.in_flight: list[set[str]] = []      # members of each batch while it runs
        self.overlaps: list[tuple[str, ...]] = []
        self.hold = hold
        self.refuse = refuse
        self.statement_fails_on = statement_fails_on
        self.connection_lost = connection_lost

    async def run_batch(self, key, jobs):
        members = {member for member, _ in jobs}
        for other in self.in_flight:
            if other & members:
                self.overlaps.append(tuple(sorted(other & members)))
        self.in_flight.append(members)
        try:
            self.batches.append([name for _, name in jobs])
            if self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(random.random() / 1000)
            if self.connection_lost:
                raise ConnectionResetError("the database went away")
            if any(name in self.statement_fails_on for _, name in jobs):
                raise ValueError("the statement failed on one job's data")
            return [PermissionError(name) if name in self.refuse else f"stored {name}" for _, name in jobs]
        finally:
            self.in_flight.remove(members)

    async def run_alone(self, job):
        _, name = job
        self.alone.append(name)
        if name in self.statement_fails_on or name in self.refuse:
            raise PermissionError(name)
        return f"alone {name}"

    def group(self, **kw) -> GroupCommit:
        self.announced: list[list[str]] = []

        async def after(key, done):
            assert key == "meeting"
            self.announced.append([outcome for _, outcome in done])

        return GroupCommit(run_batch=self.run_batch, run_alone=self.run_alone, key_of=lambda job: "meeting",
                           member_of=lambda job: job[0], retry_alone=lambda exc: isinstance(exc, ValueError),
                           after=after, **kw)


async def _settled(tasks):
    return await asyncio.gather(*tasks, return_exceptions=True)


async def _one_then_together(rec: Recorder, group: GroupCommit, members: str) -> list:
    """Job "z" alone in the one lane (held), then one job per member queued together; the outcomes of
    all, "z" first, once the hold is released."""
    blocker = asyncio.create_task(group.submit(("z", "z")))
    await asyncio.sleep(0.01)
    tasks = [asyncio.create_task(group.submit((m, m))) for m in members]
    await asyncio.sleep(0.01)
    assert rec.hold is not None
    rec.hold.set()
    return await _settled([blocker, *tasks])


async def test_jobs_arriving_while_a_batch_commits_share_the_next_statement():
    hold = asyncio.Event()
    rec = Recorder(hold=hold)
    group = rec.group(lanes=1)
    first = asyncio.create_task(group.submit(("a", "a")))
    await asyncio.sleep(0.01)
    assert rec.batches == [["a"]]                 # no waiting when it is quiet: it started at once
    rest = [asyncio.create_task(group.submit((m, m))) for m in "bcdef"]
    await asyncio.sleep(0.01)
    assert rec.batches == [["a"]]                 # the lane is busy: they wait together
    hold.set()
    assert await _settled([first, *rest]) == [f"stored {m}" for m in "abcdef"]
    assert rec.batches == [["a"], ["b", "c", "d", "e", "f"]]
    assert (group.stats.batches, group.stats.jobs, group.stats.largest) == (2, 6, 5)


async def test_a_batch_never_holds_a_member_twice_nor_one_that_is_in_flight():
    hold = asyncio.Event()
    rec = Recorder(hold=hold)
    group = rec.group(lanes=2, max_batch=3)
    jobs = [("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("a", "a3"), ("d", "d1"), ("e", "e1")]
    tasks = [asyncio.create_task(group.submit(job)) for job in jobs]
    await asyncio.sleep(0.01)
    hold.set()
    assert await _settled(tasks) == [f"stored {name}" for _, name in jobs]
    for batch in rec.batches:
        assert len(batch) <= 3
        members = [name[0] for name in batch]
        assert len(members) == len(set(members)), rec.batches
    assert rec.overlaps == []
    # a member's jobs run in the order they came
    assert [name for batch in rec.batches for name in batch if name[0] == "a"] == ["a1", "a2", "a3"]


async def test_a_refusal_in_a_batch_is_only_that_jobs_answer():
    rec = Recorder(hold=asyncio.Event(), refuse={"b"})
    group = rec.group(lanes=1)
    results = await _one_then_together(rec, group, "abc")
    assert results[0] == "stored z" and results[1] == "stored a" and results[3] == "stored c"
    assert isinstance(results[2], PermissionError)
    assert rec.batches == [["z"], ["a", "b", "c"]] and rec.alone == []
    # one announcement per statement, of the jobs it stored
    assert rec.announced == [["stored z"], ["stored a", "stored c"]]


async def test_a_statement_failing_on_one_job_runs_each_again_alone():
    rec = Recorder(hold=asyncio.Event(), statement_fails_on={"b"})
    group = rec.group(lanes=1)
    results = await _one_then_together(rec, group, "abcd")
    assert results[0] == "stored z"
    assert results[1] == "alone a" and results[3] == "alone c" and results[4] == "alone d"
    assert isinstance(results[2], PermissionError)
    assert sorted(rec.alone) == ["a", "b", "c", "d"] and group.stats.alone_after_failure == 4
    assert rec.announced == [["stored z"], ["alone a", "alone c", "alone d"]]


async def test_a_lost_connection_is_every_jobs_answer_and_nothing_is_run_again():
    rec = Recorder(hold=asyncio.Event(), connection_lost=True)
    group = rec.group(lanes=1)
    tasks = [asyncio.create_task(group.submit((m, m))) for m in "abc"]
    await asyncio.sleep(0.01)
    rec.hold.set()
    results = await _settled(tasks)
    assert all(isinstance(r, ConnectionResetError) for r in results)
    assert rec.alone == [] and rec.announced == []


async def test_a_cancelled_request_leaves_the_others_alone():
    rec = Recorder(hold=asyncio.Event())
    group = rec.group(lanes=1)
    blocker = asyncio.create_task(group.submit(("z", "z")))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(group.submit(("a", "a")))
    kept = asyncio.create_task(group.submit(("b", "b")))
    await asyncio.sleep(0.01)
    gone.cancel()
    rec.hold.set()
    assert await _settled([blocker, kept]) == ["stored z", "stored b"]
    assert rec.batches == [["z"], ["b"]]          # the cancelled request's ballot never ran


@pytest.mark.parametrize("seed", range(20))
async def test_random_arrivals_each_get_exactly_their_own_outcome(seed):
    rnd = random.Random(seed)
    rec = Recorder(refuse={f"j{i}" for i in range(0, 200, 17)}, statement_fails_on={f"j{i}" for i in range(5, 200, 41)})
    group = rec.group(lanes=rnd.randint(1, 4), max_batch=rnd.randint(1, 16))
    tasks = []
    for i in range(200):
        tasks.append(asyncio.create_task(group.submit((f"m{rnd.randint(0, 30)}", f"j{i}"))))
        if rnd.random() < 0.3:
            await asyncio.sleep(rnd.random() / 1000)
    results = await _settled(tasks)
    for i, result in enumerate(results):
        name = f"j{i}"
        if name in rec.refuse or name in rec.statement_fails_on:
            assert isinstance(result, PermissionError) and result.args == (name,)
        else:
            assert result in (f"stored {name}", f"alone {name}")
    assert rec.overlaps == []
    assert all(len(b) <= group.max_batch for b in rec.batches)
    assert sum(len(b) for b in rec.batches) == group.stats.jobs == 200
    assert group._queues == {}                    # nothing left behind


# ---------------------------------------------------------------- the real app and database

@pytest.fixture
def one_lane(settings):
    """The app with one statement in flight per meeting, so that ballots queue and share statements."""
    return settings.replace(cast_group_lanes=1)


@pytest.fixture
async def lane_client(aiohttp_client, one_lane):
    from server.app import create_app
    return await aiohttp_client(create_app(one_lane))


async def _submissions(db_pool, m) -> list[asyncpg.Record]:
    async with db_pool.acquire() as conn:
        return await conn.fetch(
            """SELECT s.voter_id, s.ballot_id, s.matter_id, s.received_at, s.salt, s.receipt,
                      array_agg(c.candidate_id ORDER BY c.candidate_id) AS cands,
                      array_agg(c.choice ORDER BY c.candidate_id) AS choices
                 FROM submission s JOIN submission_choice c USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2
                GROUP BY s.community_id, s.meeting_id, s.ballot_id""", m.community_id, m.meeting_id)


async def _hold_a_vote(db_pool, m, token: str, voter: str):
    """A vote of ``voter`` written but not committed (the statement run inside an open transaction):
    another statement storing this voter waits for it.  Returns (connection, transaction)."""
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    conn = await db_pool.acquire()
    tx = conn.transaction()
    await tx.start()
    ballot = casting.prepare_ballot(m.community_id, m.meeting_id, voter, [casting.Vote("M1", (("", "no"),))],
                                    jti=jti, idempotency_key=None)
    row = await casting_repo.cast(conn, m.community_id, m.meeting_id, allow_revision=False, ballot=ballot,
                                  short_label=BALLOT_RECEIPT_LABEL, short_alphabet=BALLOT_RECEIPT_ALPHABET,
                                  short_chars=BALLOT_RECEIPT_CHARS)
    assert row is not None and row["stored"]
    return conn, tx


async def _waiting_on_a_lock(db_pool, m, n: int = 1) -> list[int]:
    """The backends whose statement waits for a lock (the held vote), once there are ``n``."""
    async with db_pool.acquire() as conn:
        for _ in range(200):
            pids = await conn.fetch(
                """SELECT pid FROM pg_stat_activity WHERE datname = current_database()
                     AND wait_event = 'transactionid' AND query LIKE '%WITH mt AS MATERIALIZED%'""")
            if len(pids) >= n:
                return [r["pid"] for r in pids]
            await asyncio.sleep(0.02)
    async with db_pool.acquire() as conn:
        seen = await conn.fetch("SELECT wait_event_type, wait_event, state, left(query, 60) AS q FROM pg_stat_activity "
                                "WHERE datname = current_database()")
    raise AssertionError(f"no statement waited for the held vote: {[dict(r) for r in seen]}")


async def test_a_rush_shares_statements_and_every_ballot_keeps_its_own_answer(lane_client, db_pool, staff_headers,
                                                                              imported_community):
    client = lane_client
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    voters = m.voter_ids[:24]
    tokens = {v: await ballot_token(db_pool, client, m.community_id, m.meeting_id, v) for v in voters}
    async with db_pool.acquire() as conn:            # one owner's code was reissued: a revoked session
        await conn.execute("UPDATE ballot_session SET revoked_at = now() WHERE community_id = $1 "
                           "AND meeting_id = $2 AND voter_id = $3", m.community_id, m.meeting_id, voters[0])
    group = casting.group_commit(64, 1)
    before = (group.stats.batches, group.stats.jobs, group.stats.largest)
    ballot = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "abstain"}]
    # every voter twice (two phones), and voters[1] a third time replaying its first request's key
    requests = [(v, f"{v}-{phone}") for phone in (1, 2) for v in voters] + [(voters[1], f"{voters[1]}-1")]
    random.Random(7).shuffle(requests)
    answers = await asyncio.gather(*(cast(client, tokens[v], ballot, idempotency_key=key) for v, key in requests))
    docs = [await a.json() for a in answers]
    by_voter: dict[str, list[int]] = {}
    for (voter, _), answer in zip(requests, answers, strict=True):
        by_voter.setdefault(voter, []).append(answer.status)
    assert by_voter[voters[0]] == [401, 401]
    for voter in voters[2:]:
        assert sorted(by_voter[voter]) == [201, 409], (voter, by_voter[voter])
    # voters[1]: the first of its requests is stored; the replay of key 1 answers its receipts when key 1
    # came first, and is refused like phone 2 when phone 2 came first
    assert sorted(by_voter[voters[1]]) in ([200, 201, 409], [201, 409, 409]), by_voter[voters[1]]
    stats = (group.stats.batches - before[0], group.stats.jobs - before[1])
    assert stats[1] == len(requests) and stats[0] < stats[1] and group.stats.largest > 1, (stats, group.stats)

    rows = await _submissions(db_pool, m)
    assert sorted((r["voter_id"], r["matter_id"]) for r in rows) == sorted(
        (v, mt) for v in voters[1:] for mt in ("M1", "M2"))
    by_ballot = {str(r["ballot_id"]): r for r in rows}
    stored_answers = [(voter, doc) for (voter, _), answer, doc in zip(requests, answers, docs, strict=True)
                      if answer.status == 201]
    assert len(stored_answers) == len(voters) - 1
    for voter, doc in stored_answers:
        for receipt in doc["receipts"]:
            row = by_ballot[receipt["ballot_id"]]
            canonical = canonical_submission(
                community_id=m.community_id, meeting_id=m.meeting_id, ballot_id=receipt["ballot_id"],
                voter_id=voter, matter_id=receipt["matter_id"], channel="electronic", cast_at=row["received_at"],
                choices=list(zip(row["cands"], row["choices"], strict=True)))
            assert receipt_for(canonical, bytes(row["salt"])).hex() == receipt["receipt"] == bytes(row["receipt"]).hex()
        receipts = [bytes.fromhex(r["receipt"]) for r in doc["receipts"]]
        assert normalize_ballot_receipt(doc["ballot_receipt"]) == ballot_receipt_code(receipts)
    for answer, doc in zip(answers, docs, strict=True):
        if answer.status == 409:
            assert doc["error"]["code"] == "already_voted"
        if answer.status == 200:      # the replay: the first request's receipts, stored
            assert all(r["ballot_id"] in by_ballot for r in doc["receipts"])


async def test_a_statement_failing_on_one_ballot_stores_the_others(lane_client, db_pool, staff_headers,
                                                                   imported_community):
    """Another worker's uncommitted vote for X: the shared statement holding X's ballot waits for it, then
    breaks the unique key when it commits.  Every ballot of that statement runs again alone: X is refused
    (already voted), the nine others are stored."""
    client = lane_client
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    blocker, x, *others = m.voter_ids[:11]
    tokens = {v: await ballot_token(db_pool, client, m.community_id, m.meeting_id, v)
              for v in (blocker, x, *others)}
    group = casting.group_commit(64, 1)
    alone_before, largest_before = group.stats.alone_after_failure, group.stats.largest
    held_blocker = await _hold_a_vote(db_pool, m, tokens[blocker], blocker)
    held_x = await _hold_a_vote(db_pool, m, tokens[x], x)
    try:
        ballot = [{"matter_id": "M1", "choice": "yes"}]
        # the blocker's ballot takes the one lane and waits; the others queue and form one statement
        first = asyncio.create_task(cast(client, tokens[blocker], ballot))
        await _waiting_on_a_lock(db_pool, m)
        rest = [asyncio.create_task(cast(client, tokens[v], ballot)) for v in (x, *others)]
        await asyncio.sleep(0.2)
        await held_blocker[1].commit()
        await _waiting_on_a_lock(db_pool, m)       # the shared statement now waits for X's held vote
        await held_x[1].commit()
        answers = [await t for t in (first, *rest)]
    finally:
        for conn, tx in (held_blocker, held_x):
            if conn.is_in_transaction():     # a failed assertion above left it open
                await tx.rollback()
            await db_pool.release(conn)
    statuses = [a.status for a in answers]
    assert statuses == [409, 409] + [201] * len(others), statuses
    assert [(await a.json())["error"]["code"] for a in answers[:2]] == ["already_voted", "already_voted"]
    assert group.stats.largest - largest_before >= 0 and group.stats.largest >= len(others) + 1
    assert group.stats.alone_after_failure - alone_before >= len(others) + 1
    rows = await _submissions(db_pool, m)
    assert sorted(r["voter_id"] for r in rows) == sorted([blocker, x, *others])
    assert {tuple(r["choices"]) for r in rows if r["voter_id"] in others} == {("yes",)}
    assert {tuple(r["choices"]) for r in rows if r["voter_id"] in (blocker, x)} == {("no",)}


async def test_a_shared_statement_that_loses_its_connection_answers_503_and_the_retries_store_once(
        lane_client, db_pool, staff_headers, imported_community):
    """The backend running a shared statement is terminated (as a database restart does): none of its
    ballots was acknowledged, each owner is told 503, and retrying with the same idempotency key stores
    each ballot exactly once."""
    client = lane_client
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    blocker, x, *others = m.voter_ids[:9]
    voters = [x, *others]
    tokens = {v: await ballot_token(db_pool, client, m.community_id, m.meeting_id, v) for v in (blocker, *voters)}
    keys = {v: uuid.uuid4().hex for v in voters}
    ballot = [{"matter_id": "M1", "choice": "yes"}]
    held_blocker = await _hold_a_vote(db_pool, m, tokens[blocker], blocker)
    held_x = await _hold_a_vote(db_pool, m, tokens[x], x)
    try:
        first = asyncio.create_task(cast(client, tokens[blocker], ballot))
        await _waiting_on_a_lock(db_pool, m)
        rest = [asyncio.create_task(cast(client, tokens[v], ballot, idempotency_key=keys[v])) for v in voters]
        await asyncio.sleep(0.2)
        await held_blocker[1].commit()
        assert (await first).status == 409
        [pid] = await _waiting_on_a_lock(db_pool, m)   # the shared statement of x and the others
        async with db_pool.acquire() as admin:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        answers = [await t for t in rest]
    finally:
        for conn, tx in (held_blocker, held_x):
            if conn.is_in_transaction():     # a failed assertion above left it open
                await tx.rollback()
            await db_pool.release(conn)
    assert [a.status for a in answers] == [503] * len(voters)
    assert {(await a.json())["error"]["code"] for a in answers} == {"unavailable"}
    async with db_pool.acquire() as c:
        assert await c.fetchval("SELECT count(*) FROM submission WHERE community_id = $1 AND meeting_id = $2 "
                                "AND voter_id = any($3::text[])", m.community_id, m.meeting_id, voters) == 0
    # the owners retry with the same keys: each ballot stored once, a second retry replays it
    again = await asyncio.gather(*(cast(client, tokens[v], ballot, idempotency_key=keys[v]) for v in voters))
    assert [a.status for a in again] == [201] * len(voters)
    replay = await cast(client, tokens[x], ballot, idempotency_key=keys[x])
    assert replay.status == 200 and (await replay.json())["receipts"] == (await again[0].json())["receipts"]
    rows = await _submissions(db_pool, m)
    assert sorted(r["voter_id"] for r in rows) == sorted([blocker, *voters])
