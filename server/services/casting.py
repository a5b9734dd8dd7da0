"""Electronic vote casting (what an owner may read of their ballot: server/services/owner_ballot.py).

The hot path (:func:`cast_votes`) stores a ballot with ONE statement, committed on its
own (one round trip to the database, no BEGIN/COMMIT; repositories/casting.py), shared
with the other ballots of the meeting that arrive while earlier statements are being
committed (group commit, server/services/group_commit.py: at most one ballot per voter
in a statement, each ballot its own outcome, a statement that fails on one ballot's
data run again ballot by ballot).  The statement locks the meeting row ``FOR SHARE`` (a
close waits for votes in flight, and a vote after the close sees it), reads the
server's receive time ``clock_timestamp()`` (the legal vote time, Civil Code art. 137),
checks each token's session, finds earlier submissions of each voter for the matters
(and for the idempotency key), and, only for the ballots all of that allows, inserts
every submission and choice, the receipts computed in the statement around its
receive time.  The answer comes after the commit: durable before acknowledged.
Refusals are decided here from the ballot's row, with the same conditions.

The database decides races: ``UNIQUE (community_id, meeting_id, voter_id,
matter_id, channel, revision)`` with revision 0 refuses a second submission
when revision is not allowed; with revision allowed, two concurrent revisions
compute the same next number and the loser retries once (alone).  Matter definitions are
immutable after the notice (enforced by the database), so they are cached in
process memory per meeting, with the voters of each matter scoped to some
buildings (the frozen electorate's subjects with a counted unit there, as the
core's ``Electorate.for_scope`` finds them for the count): an owner sees and may
vote on only the matters whose scope includes them.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from server.auth.ballot import BallotPrincipal
from server.ballot.receipts import (
    BALLOT_RECEIPT_ALPHABET,
    BALLOT_RECEIPT_CHARS,
    BALLOT_RECEIPT_LABEL,
    SALT_BYTES,
    canonical_around_cast_at,
    canonical_submission,
    format_ballot_receipt,
    format_cast_at,
    new_salt,
    receipt_code,
    receipt_for,
)
from server.ballot.tally import CHOICES
from server.errors import Conflict, NotFound, Unauthorized, ValidationFailed
from server.repositories import ballot_receipts as ballot_receipts_repo
from server.repositories import casting as casting_repo
from server.repositories import meetings as repo
from server.services import counting, transfers
from server.services import meetings as meetings_service
from server.services.effects import IN_DOUBT, Effects
from server.services.group_commit import GroupCommit

CHANNEL = "electronic"
# A lost database connection, after which a transaction may or may not have committed.
CONNECTION_LOST = (ConnectionError, asyncpg.exceptions.PostgresConnectionError, asyncpg.InterfaceError,
                   asyncpg.exceptions.InternalClientError, asyncpg.exceptions.AdminShutdownError,
                   asyncpg.exceptions.CrashShutdownError)
# What a shared statement fails with because of one ballot's data or a race with another process (a
# unique, foreign or check key; a deadlock or serialization failure): each of its ballots runs again alone.
FAILED_ON_DATA = (asyncpg.exceptions.IntegrityConstraintViolationError, asyncpg.exceptions.TransactionRollbackError,
                  asyncpg.exceptions.DataError)
MAX_IDEMPOTENCY_KEY = 128


@dataclass(frozen=True, slots=True)
class MatterDefinition:
    matter_id: str
    kind: str
    seats: int
    candidate_ids: frozenset[str]
    scope: tuple[str, ...] = ()   # building names; empty: the whole community


@dataclass(frozen=True, slots=True)
class MeetingDefinition:
    """What cannot change after the notice: matters, candidates, rules, title, who votes on a scoped matter."""

    community_id: str
    meeting_id: str
    title: str
    rules: dict
    show_live_results: bool
    matters: dict[str, MatterDefinition]   # in meeting order
    documents: tuple[dict, ...]            # matter documents (with candidates) for owners
    # scoped matter id -> the voter ids of its electorate; None before the notice (no electorate yet)
    scope_voters: Mapping[str, frozenset[str]] | None = None

    @property
    def allow_revision(self) -> bool:
        return bool(self.rules.get("allow_revision"))

    def in_scope(self, matter_id: str, voter_id: str) -> bool:
        """Whether ``voter_id`` votes on the matter: every voter on an unscoped one, else the scope's voters."""
        if self.scope_voters is None:
            return True
        voters = self.scope_voters.get(matter_id)
        return voters is None or voter_id in voters

    def matter_ids_for(self, voter_id: str) -> list[str]:
        """The matters ``voter_id`` votes on, in meeting order."""
        return [matter_id for matter_id in self.matters if self.in_scope(matter_id, voter_id)]

    def matter_name(self, matter_id: str) -> str:
        """How a message names a matter to owners: its title in quotes (never only its id)."""
        for doc in self.documents:
            if doc["matter_id"] == matter_id:
                return f"“{doc['title']}”"
        return f"议题 {matter_id}"

    def matter_names(self, matter_ids: Iterable[str]) -> str:
        return "、".join(self.matter_name(m) for m in matter_ids)

    def documents_for(self, voter_id: str) -> list[dict]:
        """The matter documents of the matters ``voter_id`` votes on, in meeting order."""
        return [doc for doc in self.documents if self.in_scope(doc["matter_id"], voter_id)]


def scope_text(scope: Iterable[str]) -> str:
    """The buildings of a scope as owners read them: 3栋、5栋 → "3、5"."""
    return "、".join(scope)


def refuse_out_of_scope(definition: MeetingDefinition, voter_id: str, matter_ids: Iterable[str]) -> None:
    """422 ``matter_out_of_scope`` when a matter is scoped to buildings where ``voter_id`` has no counted unit.

    A ballot from outside a matter's scope is bad input (bundle-format.md): it is refused, never stored.
    """
    outside = [m for m in matter_ids if not definition.in_scope(m, voter_id)]
    if outside:
        scopes = "；".join(f"{definition.matter_name(m)}只由 {scope_text(definition.matters[m].scope)} 楼栋的业主表决"
                          for m in outside)
        raise ValidationFailed(f"{scopes}，您在这些楼栋没有计入表决的房屋，不能对该事项投票",
                               code="matter_out_of_scope", fields={"matters": outside})


_CACHE_SIZE = 1024
_definitions: OrderedDict[tuple[str, str], MeetingDefinition] = OrderedDict()


async def meeting_definition(conn_or_pool, community_id: str, meeting_id: str) -> MeetingDefinition:
    """The frozen definition of a noticed meeting (cached); drafts are read every time."""
    key = (community_id, meeting_id)
    cached = _definitions.get(key)
    if cached is not None:
        _definitions.move_to_end(key)
        return cached
    if isinstance(conn_or_pool, asyncpg.Pool):
        async with conn_or_pool.acquire() as conn:
            return await meeting_definition(conn, community_id, meeting_id)
    conn = conn_or_pool
    meeting = await repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    matters = await repo.list_matters(conn, community_id, meeting_id)
    candidates = await repo.list_candidates(conn, community_id, meeting_id)
    by_matter: dict[str, list] = {}
    for c in candidates:
        by_matter.setdefault(c["matter_id"], []).append(c)
    scope_voters: dict[str, frozenset[str]] | None = None
    if meeting["state"] != "draft":
        scope_voters = {}
        if any(m["scope"] for m in matters):
            # The electorate is frozen with the notice: who votes on each scoped matter is read once,
            # with the core's own rule (Electorate.for_scope), as the count weighs them.
            electorate = await counting.load_electorate(conn, community_id, meeting_id, meeting["total_area"],
                                                        meeting["total_persons"])
            scope_voters = {m["matter_id"]: frozenset(electorate.for_scope(tuple(m["scope"])).areas)
                            for m in matters if m["scope"]}
    definition = MeetingDefinition(
        community_id=community_id, meeting_id=meeting_id, title=meeting["title"], rules=meeting["rules"],
        show_live_results=meeting["show_live_results"],
        matters={m["matter_id"]: MatterDefinition(m["matter_id"], m["kind"], m["seats"] or 0,
                                                   frozenset(c["candidate_id"] for c in by_matter.get(m["matter_id"], [])),
                                                   tuple(m["scope"]))
                 for m in matters},
        documents=tuple(meetings_service.matter_document(m, by_matter.get(m["matter_id"], [])) for m in matters),
        scope_voters=scope_voters)
    if meeting["state"] != "draft":
        _definitions[key] = definition
        if len(_definitions) > _CACHE_SIZE:
            _definitions.popitem(last=False)
    return definition


# ---------------------------------------------------------------- parsing a ballot (no I/O)

@dataclass(frozen=True, slots=True)
class Vote:
    matter_id: str
    choices: tuple[tuple[str, str], ...]   # (candidate id or '', choice), sorted


def parse_votes(definition: MeetingDefinition, raw: Any, *, allow_overvote: bool = False) -> list[Vote]:
    """Check the ``votes`` list against the meeting's matters; raises ValidationFailed (422).

    The choices are yes / no / abstain: an electronic ballot is never invalid.  An election
    ballot with no candidate marked (``"marks": {}``) takes part and supports nobody: it is
    recorded as an abstention on every candidate, as the owner's page says ("不选任何人视为对本项弃权").
    ``allow_overvote``: accept more yes marks than seats (paper ballots: an over-marked sheet, which
    the count treats as invalid).
    """
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("请至少对一个议题投票", code="empty_votes", fields={"votes": "不能为空"})
    if len(raw) > len(definition.matters):
        raise ValidationFailed("投票的议题数超过了会议的议题数", code="duplicate_matter", fields={"votes": "过多"})
    votes: list[Vote] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("matter_id"), str):
            raise ValidationFailed("每一票都要写明议题编号 matter_id", code="bad_vote", fields={"votes": "缺少 matter_id"})
        matter_id = item["matter_id"]
        matter = definition.matters.get(matter_id)
        if matter is None:
            raise ValidationFailed(f"本次会议没有议题 {matter_id[:40]}", code="unknown_matter",
                                   fields={"matter_id": matter_id[:40]})
        if matter_id in seen:
            raise ValidationFailed(f"{definition.matter_name(matter_id)}在一次提交中出现了两次", code="duplicate_matter",
                                   fields={"matter_id": matter_id})
        seen.add(matter_id)
        if matter.kind == "resolution":
            choice = item.get("choice")
            if choice not in CHOICES or "marks" in item:
                raise ValidationFailed(f"{definition.matter_name(matter_id)}请选择 同意、反对 或 弃权", code="bad_choice",
                                       fields={"matter_id": matter_id, "choice": "yes / no / abstain"})
            votes.append(Vote(matter_id, (("", choice),)))
            continue
        marks = item.get("marks")
        if not isinstance(marks, dict) or "choice" in item:
            raise ValidationFailed(f"选举事项{definition.matter_name(matter_id)}请对候选人作出选择", code="empty_marks",
                                   fields={"matter_id": matter_id, "marks": "候选人编号 → yes / no / abstain"})
        if not marks:
            marks = {candidate_id: "abstain" for candidate_id in matter.candidate_ids}
        for candidate_id, choice in marks.items():
            if candidate_id not in matter.candidate_ids:
                raise ValidationFailed(f"选举事项{definition.matter_name(matter_id)}没有候选人 {str(candidate_id)[:40]}",
                                       code="unknown_candidate",
                                       fields={"matter_id": matter_id, "candidate_id": str(candidate_id)[:40]})
            if choice not in CHOICES:
                raise ValidationFailed(f"候选人 {candidate_id} 请选择 同意、反对 或 弃权", code="bad_choice",
                                       fields={"matter_id": matter_id, "candidate_id": candidate_id})
        supported = sum(1 for choice in marks.values() if choice == "yes")
        if supported > matter.seats and not allow_overvote:
            raise ValidationFailed(f"选举事项{definition.matter_name(matter_id)}最多只能选 {matter.seats} 人，"
                                   f"您选了 {supported} 人",
                                   code="too_many_marks",
                                   fields={"matter_id": matter_id, "seats": matter.seats, "marked": supported})
        votes.append(Vote(matter_id, tuple(sorted(marks.items()))))
    return votes


def check_idempotency_key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(f"idempotency_key 应为 1–{MAX_IDEMPOTENCY_KEY} 个字符", code="bad_idempotency_key",
                               fields={"idempotency_key": "格式不正确"})
    return value


# ---------------------------------------------------------------- casting

@dataclass(frozen=True)
class CastResult:
    created: bool                 # False: an idempotent replay of an earlier request
    received_at: datetime
    receipts: list[dict]
    ballot_receipt: str | None = None   # the ballot's short receipt, XXXXX-XXXXX (owner's own ballots)

    def as_dict(self) -> dict:
        doc = {"received_at": format_cast_at(self.received_at), "receipts": self.receipts}
        if self.ballot_receipt is not None:
            doc["ballot_receipt"] = self.ballot_receipt
        return doc


def submissions_event(receipts: list[dict]) -> dict:
    """The live-view event of newly counted submissions (every channel): live views read exactly
    these ballots by id instead of re-scanning recent submissions."""
    return {"type": "submissions", "matters": [r["matter_id"] for r in receipts], "count": len(receipts),
            "ballot_ids": [r["ballot_id"] for r in receipts]}


async def announce_submissions(effects: Effects, community_id: str, meeting_id: str, receipts: list[dict]) -> None:
    """After the commit: tell live views which ballots were added (nothing when none were)."""
    if receipts:
        await effects.meeting_event(community_id, meeting_id, submissions_event(receipts))


def replay_receipts(by_matter: dict[str, dict], votes: list[Vote]) -> CastResult:
    """The earlier answer to a retried request (same idempotency key), if it was for the same matters."""
    if set(by_matter) != {v.matter_id for v in votes}:
        raise Conflict("该提交编号已用于另一次投票，请刷新页面后重新提交", code="idempotency_key_reused",
                       fields={"matters": sorted(by_matter)})
    receipts = [by_matter[v.matter_id] for v in votes]
    return CastResult(False, datetime.fromisoformat(receipts[0]["received_at"]), receipts)


def _replay(previous: list[str], votes: list[Vote]) -> CastResult:
    """A retry with the same idempotency key: the earlier receipts when it asks for the same
    choices; a 409 ``idempotency_key_reused`` when the body changed (the old vote is not replayed
    as if it were the new one)."""
    by_matter = {}
    earlier_choices = {}
    for item in previous:
        matter_id, ballot_id, receipt, received_at, choices = item.split(" ", 4)
        by_matter[matter_id] = {"matter_id": matter_id, "ballot_id": ballot_id, "receipt": receipt,
                                "received_at": received_at}
        earlier_choices[matter_id] = sorted((c, v) for c, v in json.loads(choices))
    for vote in votes:
        if vote.matter_id in earlier_choices and earlier_choices[vote.matter_id] != sorted(vote.choices):
            raise Conflict("该提交编号已用于另一次投票，请刷新页面后重新提交", code="idempotency_key_reused",
                           fields={"matters": sorted(by_matter)})
    return replay_receipts(by_matter, votes)


def build_rows(community_id: str, meeting_id: str, voter_id: str, channel: str, now: datetime,
               votes: list[Vote]) -> tuple[list[tuple], list[tuple], list[dict]]:
    """Submission rows (ballot_id, matter, salt, receipt), choice rows (ballot_id, candidate, choice) and
    the receipts to acknowledge, for ``votes`` received at ``now`` (every channel builds them here)."""
    rows: list[tuple] = []
    choices: list[tuple] = []
    receipts: list[dict] = []
    for vote in votes:
        ballot_id = uuid.uuid4()
        salt = new_salt()
        receipt = receipt_for(canonical_submission(
            community_id=community_id, meeting_id=meeting_id, ballot_id=str(ballot_id), voter_id=voter_id,
            matter_id=vote.matter_id, channel=channel, cast_at=now, choices=vote.choices), salt)
        rows.append((ballot_id, vote.matter_id, salt, receipt))
        choices.extend((ballot_id, candidate_id, choice) for candidate_id, choice in vote.choices)
        receipts.append({"matter_id": vote.matter_id, "ballot_id": str(ballot_id), "receipt": receipt_code(receipt),
                         "received_at": format_cast_at(now)})
    return rows, choices, receipts


def refuse_outside_window(row: asyncpg.Record) -> None:
    state, now = row["state"], row["now"]
    if state == "voided":
        raise Conflict("本次会议已宣布作废，不能投票", code="meeting_voided")
    if state in ("draft", "noticed") or (state == "open" and row["opens_at"] and now < row["opens_at"]):
        raise Conflict("投票尚未开始，请在投票开始后再来", code="voting_not_started",
                       fields={"opens_at": row["opens_at"].isoformat() if row["opens_at"] else None})
    if state != "open" or (row["closes_at"] is not None and now >= row["closes_at"]):
        raise Conflict("投票已经结束，不能再投票", code="voting_closed",
                       fields={"closes_at": row["closes_at"].isoformat() if row["closes_at"] else None})


def prepare_ballot(cid: str, mid: str, voter: str, votes: list[Vote], *, jti: str,
                   idempotency_key: str | None) -> casting_repo.BallotRows:
    """What the statement needs to store one electronic ballot, made before it runs (no I/O): new ballot
    ids and salts on every attempt, the canonical forms around the time the statement will read."""
    p = casting_repo.BallotRows(jti, voter, idempotency_key, [], [], [], [], [], [], [], [])
    # one read of the system's random source for the whole ballot: per matter 16 bytes of a version 4
    # uuid (exactly what uuid.uuid4() makes) and a receipt salt (what receipts.new_salt makes)
    random = os.urandom((16 + SALT_BYTES) * len(votes))
    for i, vote in enumerate(votes):
        offset = i * (16 + SALT_BYTES)
        ballot_id = uuid.UUID(bytes=random[offset:offset + 16], version=4)
        head, tail = canonical_around_cast_at(community_id=cid, meeting_id=mid, ballot_id=str(ballot_id),
                                              voter_id=voter, matter_id=vote.matter_id, channel=CHANNEL,
                                              choices=vote.choices)
        p.matter_ids.append(vote.matter_id)
        p.ballot_ids.append(ballot_id)
        p.salts.append(random[offset + 16:offset + 16 + SALT_BYTES])
        p.heads.append(head)
        p.tails.append(tail)
        for candidate_id, choice in vote.choices:
            p.choice_ballots.append(ballot_id)
            p.choice_candidates.append(candidate_id)
            p.choice_values.append(choice)
    return p


@dataclass(frozen=True, slots=True)
class CastJob:
    """One request's electronic ballot, waiting for the statement that stores it (group commit)."""
    pool: asyncpg.Pool
    effects: Effects
    definition: MeetingDefinition
    principal: BallotPrincipal
    votes: list[Vote]
    idempotency_key: str | None


async def _store(conn: asyncpg.Connection, jobs: list[CastJob]) -> list[tuple[casting_repo.BallotRows,
                                                                               asyncpg.Record | None]]:
    """Run the statement for ballots of one meeting (at most one per voter); each with its row."""
    first = jobs[0].principal
    ballots = [prepare_ballot(first.community_id, first.meeting_id, job.principal.voter_id, job.votes,
                              jti=job.principal.jti, idempotency_key=job.idempotency_key) for job in jobs]
    rows = await casting_repo.cast_ballots(conn, first.community_id, first.meeting_id,
                                           allow_revision=jobs[0].definition.allow_revision, ballots=ballots,
                                           short_label=BALLOT_RECEIPT_LABEL, short_alphabet=BALLOT_RECEIPT_ALPHABET,
                                           short_chars=BALLOT_RECEIPT_CHARS)
    if not rows:
        return [(ballot, None) for ballot in ballots]
    return list(zip(ballots, rows, strict=True))


async def _outcome(job: CastJob, ballot: casting_repo.BallotRows, row: asyncpg.Record | None) -> CastResult:
    """What the statement's row says of one ballot: its receipts, a replay's earlier ones, or its refusal."""
    definition, votes = job.definition, job.votes
    cid, mid, voter = job.principal.community_id, job.principal.meeting_id, job.principal.voter_id
    if row is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    if not row["session_live"]:
        raise Unauthorized("该选票凭证已失效，请重新扫码登录", code="ballot_session_revoked")
    if row["previous"]:
        replay = _replay(row["previous"], votes)
        async with job.pool.acquire() as conn:
            codes = await ballot_receipts_repo.codes_of_ballots(
                conn, cid, mid, [uuid.UUID(r["ballot_id"]) for r in replay.receipts])
        found = set(codes.values())
        return replace(replay, ballot_receipt=format_ballot_receipt(found.pop()) if len(found) == 1 else None)
    refuse_outside_window(row)
    if row["voted"] and not definition.allow_revision:
        voted = sorted(set(row["voted"]))
        # refusal path only: say so when a proxy (书面委托) voted
        async with job.pool.acquire() as conn:
            by_proxy = await casting_repo.matters_voted_by_proxy(conn, cid, mid, voter, voted)
        if by_proxy:
            raise Conflict(f"您委托的代理人已代您对{definition.matter_names(by_proxy)}投票，委托已行使，不能再投",
                           code="voted_by_proxy", fields={"matters": list(by_proxy)})
        raise Conflict(f"您已对{definition.matter_names(voted)}投过票，每个事项只能投一次", code="already_voted",
                       fields={"matters": voted})
    stored = dict(item.split(" ", 1) for item in row["stored"])
    if len(stored) != len(votes) or row["short_code"] is None:
        # The statement's conditions and the refusals above are the same; this cannot happen.
        raise RuntimeError(f"vote of {cid}/{mid} neither stored nor refused")
    now: datetime = row["now"]
    received_at = format_cast_at(now)
    # The ballot's short receipt was written by the same statement (derived there from the receipts as
    # receipts.ballot_receipt_code derives it); a clash with another ballot's code (50 bits: rare) is a
    # unique violation, and the ballot runs again alone with new receipts and a new code.
    return CastResult(True, now, [{"matter_id": matter_id, "ballot_id": str(ballot_id), "receipt": stored[matter_id],
                                   "received_at": received_at}
                                  for matter_id, ballot_id in zip(ballot.matter_ids, ballot.ballot_ids)],
                      format_ballot_receipt(row["short_code"]))


async def _cast_batch(key: Any, jobs: list[CastJob]) -> list[CastResult | BaseException]:
    """Ballots of one meeting, one per voter, stored by one statement (one commit); each its own outcome."""
    async with jobs[0].pool.acquire() as conn:
        stored = await _store(conn, jobs)
    outcomes: list[CastResult | BaseException] = []
    for job, (ballot, row) in zip(jobs, stored, strict=True):
        try:
            outcomes.append(await _outcome(job, ballot, row))
        except Exception as exc:     # this ballot's refusal (or fault): its answer only
            outcomes.append(exc)
    return outcomes


async def _cast_alone(job: CastJob) -> CastResult:
    """One ballot in a statement of its own, with the races of the unique key resolved by one retry."""
    try:
        try:
            return await _attempt_alone(job)
        except asyncpg.UniqueViolationError:
            # A concurrent request of the same voter won the unique key.  Run again: the pre-check
            # now sees it (already voted / the same idempotency key / the next revision number).
            pass
        try:
            return await _attempt_alone(job)
        except asyncpg.UniqueViolationError:
            raise Conflict("您的另一次提交正在处理，请稍后刷新查看投票状态",
                           code="concurrent_submission") from None
    except asyncpg.ForeignKeyViolationError:
        raise Unauthorized("您不在本次会议的表决名单中", code="not_in_electorate") from None
    except asyncpg.CheckViolationError as exc:
        # a vote that stands from before the subject changed hands (server/services/transfers.py)
        if (refusal := transfers.vote_refusal(exc, job.definition.matter_name)) is None:
            raise
        raise refusal from None


async def _attempt_alone(job: CastJob) -> CastResult:
    async with job.pool.acquire() as conn:
        [(ballot, row)] = await _store(conn, [job])
    return await _outcome(job, ballot, row)


def _statement_failed_on_data(exc: BaseException) -> bool:
    """A batch's statement failed because of what one of its ballots met (a unique key, a foreign key, a
    check, a deadlock with another process): run each ballot again alone.  Not a lost connection (the
    statement may have committed)."""
    return isinstance(exc, FAILED_ON_DATA) and not isinstance(exc, CONNECTION_LOST)


async def _announce_batch(key: Any, done: list[tuple[CastJob, CastResult]]) -> None:
    """After a statement: one event naming every ballot it stored (live views read exactly those)."""
    receipts = [r for job, result in done if result.created for r in result.receipts]
    if receipts:
        job = done[0][0]
        await announce_submissions(job.effects, job.principal.community_id, job.principal.meeting_id, receipts)


_group_commits: dict[tuple[int, int], GroupCommit[CastJob, CastResult]] = {}


def group_commit(max_batch: int, lanes: int) -> GroupCommit[CastJob, CastResult]:
    """This process's group commit of electronic ballots (one per setting; one meeting per batch)."""
    found = _group_commits.get((max_batch, lanes))
    if found is None:
        found = _group_commits[(max_batch, lanes)] = GroupCommit(
            run_batch=_cast_batch, run_alone=_cast_alone, retry_alone=_statement_failed_on_data, after=_announce_batch,
            key_of=lambda job: (id(job.pool), job.principal.community_id, job.principal.meeting_id),
            member_of=lambda job: job.principal.voter_id, max_batch=max_batch, lanes=lanes)
    return found


async def cast_votes(pool: asyncpg.Pool, effects: Effects, principal: BallotPrincipal, *, votes_raw: Any,
                     idempotency_key: str | None) -> CastResult:
    """Record one request's votes, all or nothing; acknowledged (and announced) only after the commit."""
    definition = await meeting_definition(pool, principal.community_id, principal.meeting_id)
    votes = parse_votes(definition, votes_raw)
    refuse_out_of_scope(definition, principal.voter_id, [v.matter_id for v in votes])
    try:
        result = await _cast(pool, effects, definition, principal, votes, idempotency_key,
                             max_batch=effects.settings.cast_group_max, lanes=effects.settings.cast_group_lanes)
    except CONNECTION_LOST:
        # The connection died, perhaps during the commit: the votes may be stored though the owner is
        # told 503.  Live views are asked to look for rows they were not told of (an event naming no
        # ballots makes them scan, retried until the database answers), so such a vote reaches the
        # streams when the database is back, not at the next safety-net poll.
        await effects.meeting_event(principal.community_id, principal.meeting_id, {"type": IN_DOUBT})
        raise
    # Stored ballots were announced by their statement (one event for all of its ballots).  A replay is
    # announced too: the request that stored these ballots may have lost its database connection after
    # the commit (a 503 to the owner, nothing announced), and live views would only find them at their
    # next safety-net scan (up to 10 s).  Views skip ballots they have counted.
    if not result.created:
        await announce_submissions(effects, principal.community_id, principal.meeting_id, result.receipts)
    return result


async def _cast(pool: asyncpg.Pool, effects: Effects, definition: MeetingDefinition, principal: BallotPrincipal,
                votes: list[Vote], idempotency_key: str | None, *, max_batch: int = 64, lanes: int = 4) -> CastResult:
    """The ballot through the group commit: stored with the others that arrive while earlier batches
    commit (server/services/group_commit.py)."""
    job = CastJob(pool, effects, definition, principal, votes, idempotency_key)
    return await group_commit(max_batch, lanes).submit(job)
