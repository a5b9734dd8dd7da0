"""Nominations and the candidates they become (docs/elections.md).

An owner nominates themself with a ballot token of any meeting of their
community; the preparatory group nominates any owner of the register.  The
group qualifies or refuses (with a reason).  Only qualified nominations can be
attached as candidates to a DRAFT election matter of the same body; owners see
the candidate profiles of their meeting and their own nominations.
"""
from __future__ import annotations

from typing import Any

import asyncpg

from server.auth.ballot import BallotPrincipal, ensure_session_live
from server.ballot import elections as rules
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import elections as repo
from server.repositories import locks
from server.repositories import meetings as meetings_repo
from server.services import audit
from server.services import meetings as meetings_service
from server.services.election_input import BODIES, read_body, read_flag, read_text
from server.services.meeting_input import iso

STATUS_NAMES = {"pending": "待资格审查", "qualified": "资格审查通过", "refused": "资格审查未通过"}


def nomination_document(row: asyncpg.Record) -> dict:
    return {"nomination_id": row["nomination_id"], "body": row["body"],
            "body_name": rules.BODY_NAMES[row["body"]], "owner_id": row["owner_id"], "name": row["name"],
            "unit_label": row["unit_label"], "party_member": row["party_member"], "statement": row["statement"],
            "source": row["source"], "nominated_by": row["nominated_by"], "nominated_at": iso(row["nominated_at"]),
            "status": row["status"], "status_name": STATUS_NAMES[row["status"]], "reason": row["reason"],
            "decided_by": row["decided_by"], "decided_at": iso(row["decided_at"])}


async def _nominate(conn: asyncpg.Connection, *, community_id: str, owner_id: str, data: dict, source: str,
                    actor: str) -> dict:
    body = read_body(data)
    owner = await repo.owner_profile(conn, community_id, owner_id)
    if owner is None:
        raise NotFound("业主登记册中没有该业主", code="owner_not_found", fields={"owner_id": owner_id[:64]})
    # The name comes from the register, never from the request: nobody stands under another name.
    name = owner["name"] or owner_id
    unit_label = read_text(data, "unit_label", max_length=100, label="房号") or "、".join(owner["units"])[:100]
    party_member = read_flag(data, "party_member", "是否党员")
    statement = read_text(data, "statement", max_length=2000, label="参选承诺")
    await locks.xact_lock(conn, "nomination", community_id)
    try:
        row = await repo.insert_nomination(
            conn, community_id=community_id, body=body, owner_id=owner_id, register_version=owner["version"],
            name=name, unit_label=unit_label, party_member=party_member, statement=statement, source=source,
            nominated_by=actor)
    except asyncpg.UniqueViolationError:
        raise Conflict(f"该业主已有{rules.BODY_NAMES[body]}的提名（待审查或已通过）", code="already_nominated") from None
    await audit.append(conn, community_id=community_id, actor=actor, action="election.nominate",
                       detail={"nomination_id": row["nomination_id"], "body": body, "owner_id": owner_id,
                               "source": source})
    return nomination_document(row)


async def self_nominate(pool: asyncpg.Pool, principal: BallotPrincipal, data: dict) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        await ensure_session_live(conn, principal)
        return await _nominate(conn, community_id=principal.community_id, owner_id=principal.voter_id, data=data,
                               source="self", actor=principal.actor)


async def staff_nominate(pool: asyncpg.Pool, community_id: str, data: dict, actor: str) -> dict:
    owner_id = read_text(data, "owner_id", required=True, max_length=64, label="业主编号")
    async with pool.acquire() as conn, conn.transaction():
        return await _nominate(conn, community_id=community_id, owner_id=owner_id, data=data, source="prep_group",
                               actor=actor)


async def decide_nomination(pool: asyncpg.Pool, community_id: str, nomination_id: int, *, qualified: bool,
                            reason: str, actor: str) -> dict:
    if not qualified and not reason.strip():
        raise ValidationFailed("资格审查不通过时须写明理由", code="reason_required", fields={"reason": "必填"})
    async with pool.acquire() as conn, conn.transaction():
        row = await repo.get_nomination(conn, community_id, nomination_id, lock=True)
        if row is None:
            raise NotFound("找不到该提名", code="nomination_not_found")
        if row["status"] != "pending":
            raise Conflict(f"该提名已审查（{STATUS_NAMES[row['status']]}）", code="already_decided")
        status = "qualified" if qualified else "refused"
        row = await repo.decide_nomination(conn, community_id, nomination_id, status=status, reason=reason.strip(),
                                           decided_by=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action=f"election.nomination.{status}",
                           detail={"nomination_id": nomination_id, "reason": reason.strip()})
        return nomination_document(row)


async def list_nominations(pool: asyncpg.Pool, community_id: str, *, status: str | None = None,
                           body: str | None = None, owner_id: str | None = None) -> list[dict]:
    if status is not None and status not in STATUS_NAMES:
        raise ValidationFailed("status 应为 pending、qualified 或 refused", fields={"status": "无效"})
    if body is not None and body not in BODIES:
        raise ValidationFailed("body 应为 committee 或 supervisory", fields={"body": "无效"})
    async with pool.acquire() as conn:
        rows = await repo.list_nominations(conn, community_id, status=status, body=body, owner_id=owner_id)
    return [nomination_document(r) for r in rows]


async def attach_nominees(pool: asyncpg.Pool, community_id: str, meeting_id: str, matter_id: str,
                          nomination_ids: Any, actor: str) -> dict:
    """Qualified nominations of the matter's body become its candidates (ids N<nomination_id>)."""
    if not isinstance(nomination_ids, list) or not nomination_ids or len(nomination_ids) > 200 or \
            any(isinstance(n, bool) or not isinstance(n, int) for n in nomination_ids):
        raise ValidationFailed("nomination_ids 应为提名编号的列表", fields={"nomination_ids": "整数列表"})
    if len(set(nomination_ids)) != len(nomination_ids):
        raise ValidationFailed("提名编号重复", fields={"nomination_ids": "重复"})
    async with pool.acquire() as conn, conn.transaction():
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id, lock="update")
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        if meeting["state"] != "draft":
            raise Conflict("会议通知已发布，候选人不能再修改", code="meeting_not_draft", fields={"state": meeting["state"]})
        matter = next((m for m in await meetings_repo.list_matters(conn, community_id, meeting_id)
                       if m["matter_id"] == matter_id), None)
        if matter is None or matter["kind"] != "election":
            raise NotFound("找不到该选举事项", code="matter_not_found")
        existing = [c for c in await meetings_repo.list_candidates(conn, community_id, meeting_id)
                    if c["matter_id"] == matter_id]
        sources = {r["candidate_id"]: r["owner_id"]
                   for r in await repo.candidate_sources(conn, community_id, meeting_id)
                   if r["matter_id"] == matter_id}
        taken_ids = {c["candidate_id"] for c in existing}
        taken_owners = set(sources.values())
        candidates, source_rows = [], []
        for nomination_id in nomination_ids:
            row = await repo.get_nomination(conn, community_id, nomination_id, lock=True)
            if row is None:
                raise NotFound(f"找不到提名 {nomination_id}", code="nomination_not_found",
                               fields={"nomination_id": nomination_id})
            if row["status"] != "qualified":
                raise Conflict(f"{row['name']} 的提名{STATUS_NAMES[row['status']]}，只有资格审查通过的才能列为候选人",
                               code="nomination_not_qualified", fields={"nomination_id": nomination_id})
            if row["body"] != matter["body"]:
                raise Conflict(f"{row['name']} 被提名参选{rules.BODY_NAMES[row['body']]}，不能列入该选举事项",
                               code="wrong_body", fields={"nomination_id": nomination_id})
            candidate_id = f"N{nomination_id}"
            if candidate_id in taken_ids or row["owner_id"] in taken_owners:
                raise Conflict(f"{row['name']} 已是该事项的候选人", code="duplicate_candidate",
                               fields={"nomination_id": nomination_id})
            taken_ids.add(candidate_id)
            taken_owners.add(row["owner_id"])
            candidates.append({"candidate_id": candidate_id, "name": row["name"], "unit_label": row["unit_label"],
                               "party_member": row["party_member"], "statement": row["statement"]})
            source_rows.append((community_id, meeting_id, matter_id, candidate_id, nomination_id, row["owner_id"]))
        position = await meetings_repo.next_candidate_position(conn, community_id, meeting_id, matter_id)
        await meetings_repo.insert_candidates(conn, community_id, meeting_id, matter_id, candidates, position)
        await repo.insert_candidate_sources(conn, source_rows)
        await audit.append(conn, community_id=community_id, actor=actor, action="election.candidates.attach",
                           detail={"meeting_id": meeting_id, "matter_id": matter_id, "nomination_ids": nomination_ids})
        doc = await meetings_service.load_document(conn, community_id, meeting_id)
    return next(m for m in doc["matters"] if m["matter_id"] == matter_id)


async def candidate_check(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    """Candidates of committee / supervisory matters with no qualified nomination behind them
    (the same rule the notice enforces: ``meetings.refuse_unvetted_candidates``)."""
    async with pool.acquire() as conn:
        if await meetings_repo.get_meeting(conn, community_id, meeting_id) is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        rows = await repo.unvetted_candidates(conn, community_id, meeting_id)
    unvetted = [{"matter_id": r["matter_id"], "candidate_id": r["candidate_id"], "name": r["name"]} for r in rows]
    return {"meeting_id": meeting_id, "all_vetted": not unvetted, "unvetted": unvetted}


async def owner_candidates(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    """Candidate profiles of the token's meeting for owners (no owner ids, phones or ID numbers)."""
    async with pool.acquire() as conn:
        await ensure_session_live(conn, principal)
        matters = [m for m in await meetings_repo.list_matters(conn, principal.community_id, principal.meeting_id)
                   if m["kind"] == "election"]
        candidates = await meetings_repo.list_candidates(conn, principal.community_id, principal.meeting_id)
        mine = await repo.list_nominations(conn, principal.community_id, owner_id=principal.voter_id)
    return {
        "meeting_id": principal.meeting_id,
        "elections": [{"matter_id": m["matter_id"], "title": m["title"], "body": m["body"],
                       "body_name": rules.BODY_NAMES.get(m["body"] or "other", ""), "seats": m["seats"],
                       "alternates": m["alternates"],
                       "candidates": [{"candidate_id": c["candidate_id"], "name": c["name"],
                                       "unit_label": c["unit_label"], "party_member": c["party_member"],
                                       "statement": c["statement"]}
                                      for c in candidates if c["matter_id"] == m["matter_id"]]}
                      for m in matters],
        "my_nominations": [nomination_document(r) for r in mine],
    }
