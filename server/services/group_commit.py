"""Group commit: the requests that arrive while earlier ones are being committed share one commit.

Every electronic ballot used to be one statement and one commit of its own, so during a rush each
waited for its own flush of the write-ahead log, and the disk's commit latency, not the server's
work, set the rate.  A :class:`GroupCommit` gathers the jobs waiting for the same key (a meeting) and
hands them to ``run_batch`` together, which stores them in one statement, one commit:

- **No waiting when it is quiet.**  A job starts a batch at once when fewer than ``lanes`` batches of
  its key are in flight; only while they all are do jobs queue, and the next batch takes up to
  ``max_batch`` of them.  So the batch size follows the load (1 when idle, more during a rush) and no
  timer adds latency.
- **One job per member in a batch, and in flight.**  ``member_of`` names what may appear once (a
  voter): a second job of a member waits for the first one's batch to finish, so the jobs of one
  statement never depend on each other, and two batches of this process never race for one member.
- **Each job its own outcome.**  ``run_batch`` returns one outcome per job (a value, or the exception
  that job is refused with); a refusal of one is just its own answer.
- **A failure of one never fails the others.**  When the whole statement fails (a unique key lost to
  another process, a deadlock, a constraint that one job breaks), ``fails_batch`` decides: an error of
  the database about the data makes every job of the batch run again **alone** (``run_alone``, which
  has its own retries and refusals), so only the job at fault is refused.  A lost connection is not
  retried: whether the statement committed is unknown, so every job of the batch gets that error (the
  owner sees 503 and retries with the same idempotency key, which answers the stored receipts).
- **Durable before acknowledged.**  A job's future is resolved only after ``run_batch`` returned, i.e.
  after the database has committed the statement.
- **One announcement per batch.**  ``after`` is given the jobs that succeeded, once their answers are
  out (casting tells live views of every ballot of the statement in one event).

The class knows nothing of ballots: server/services/casting.py supplies the functions.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

J = TypeVar("J")
R = TypeVar("R")


@dataclass
class _Queue(Generic[J, R]):
    waiting: deque[tuple[J, asyncio.Future[R]]] = field(default_factory=deque)
    running: int = 0                                           # batches of this key in flight
    members: set[Hashable] = field(default_factory=set)        # members whose job is in flight


@dataclass
class GroupCommitStats:
    """Counters of this process (tests and the benchmark read them)."""
    batches: int = 0
    jobs: int = 0
    largest: int = 0
    alone_after_failure: int = 0    # jobs run again alone after their batch's statement failed


class GroupCommit(Generic[J, R]):
    def __init__(self, *, run_batch: Callable[[Hashable, list[J]], Awaitable[Sequence[R | BaseException]]],
                 run_alone: Callable[[J], Awaitable[R]], key_of: Callable[[J], Hashable],
                 member_of: Callable[[J], Hashable], retry_alone: Callable[[BaseException], bool],
                 after: Callable[[Hashable, list[tuple[J, R]]], Awaitable[None]] | None = None,
                 max_batch: int = 64, lanes: int = 4) -> None:
        if max_batch < 1 or lanes < 1:
            raise ValueError("max_batch and lanes must be at least 1")
        self._run_batch = run_batch
        self._run_alone = run_alone
        self._key_of = key_of
        self._member_of = member_of
        self._retry_alone = retry_alone
        self._after = after
        self.max_batch = max_batch
        self.lanes = lanes
        self.stats = GroupCommitStats()
        self._queues: dict[Hashable, _Queue[J, R]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, job: J) -> R:
        """The job's outcome, once the batch it joined has been committed (or its exception)."""
        key = self._key_of(job)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        queue.waiting.append((job, future))
        self._start(key, queue)
        return await future

    def _start(self, key: Hashable, queue: _Queue[J, R]) -> None:
        if queue.running < self.lanes and queue.waiting:
            queue.running += 1
            task = asyncio.create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self, queue: _Queue[J, R]) -> list[tuple[J, asyncio.Future[R]]]:
        """Up to max_batch waiting jobs, oldest first, none of a member already in flight or taken."""
        batch: list[tuple[J, asyncio.Future[R]]] = []
        kept: deque[tuple[J, asyncio.Future[R]]] = deque()
        while queue.waiting and len(batch) < self.max_batch:
            job, future = queue.waiting.popleft()
            if future.done():          # its request was cancelled before the batch formed
                continue
            member = self._member_of(job)
            if member in queue.members:
                kept.append((job, future))
                continue
            queue.members.add(member)
            batch.append((job, future))
        kept.extend(queue.waiting)
        queue.waiting = kept
        return batch

    async def _drain(self, key: Hashable, queue: _Queue[J, R]) -> None:
        try:
            while batch := self._take(queue):
                try:
                    await self._commit(key, batch)
                finally:
                    for job, _ in batch:
                        queue.members.discard(self._member_of(job))
        finally:
            queue.running -= 1
            # Jobs held back while their member was in flight are taken by the lane that ran it, when
            # it loops; only when no lane is left does a new one start (or the queue go).
            if queue.running == 0:
                if queue.waiting:
                    self._start(key, queue)
                elif self._queues.get(key) is queue:
                    del self._queues[key]

    async def _commit(self, key: Hashable, batch: list[tuple[J, asyncio.Future[R]]]) -> None:
        jobs = [job for job, _ in batch]
        self.stats.batches += 1
        self.stats.jobs += len(jobs)
        self.stats.largest = max(self.stats.largest, len(jobs))
        try:
            outcomes = await self._run_batch(key, jobs)
            if len(outcomes) != len(jobs):
                raise RuntimeError(f"a batch of {len(jobs)} jobs gave {len(outcomes)} outcomes")
        except asyncio.CancelledError:
            # the server is stopping: whether the statement committed is unknown
            for _, future in batch:
                _settle_error(future, ConnectionAbortedError("the server stopped during the commit"))
            raise
        except Exception as exc:
            if self._retry_alone(exc):
                self.stats.alone_after_failure += len(jobs)
                alone = await asyncio.gather(*(self._alone(job, future) for job, future in batch))
                await self._announce(key, [(job, outcome) for (job, _), outcome in zip(batch, alone, strict=True)
                                           if not isinstance(outcome, _Failed)])
            else:
                for _, future in batch:
                    _settle_error(future, exc)
            return
        done: list[tuple[J, R]] = []
        for (job, future), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                _settle_error(future, outcome)
            else:
                done.append((job, outcome))
                if not future.done():
                    future.set_result(outcome)
        await self._announce(key, done)

    async def _alone(self, job: J, future: asyncio.Future[R]) -> R | _Failed:
        try:
            outcome = await self._run_alone(job)
        except Exception as exc:
            _settle_error(future, exc)
            return _Failed()
        if not future.done():
            future.set_result(outcome)
        return outcome

    async def _announce(self, key: Hashable, done: list[tuple[J, R]]) -> None:
        """``after`` with the jobs that succeeded, once every answer is out (it must not raise)."""
        if self._after is not None and done:
            await self._after(key, done)


class _Failed:
    """A job run alone that ended in an exception (already its answer)."""


def _settle_error(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
