"""Elections from nomination to a committee on file (docs/elections.md).

- Nominations: an owner nominates themself with a ballot token of any meeting of
  their community; the preparatory group nominates any owner of the register.
  The group qualifies or refuses (with a reason).  Only qualified nominations
  can be attached as candidates to a DRAFT election matter of the same body.
- Formation: when a meeting closes (a close hook listed in server.app) or on request, each
  committee / supervisory election matter gets a ``committee`` row: formed or
  not with the reason, members and alternates in vote order, from the result
  (the stored signed result when there is one, else ``counting.compute_result``;
  both come from the same engine).  A runoff matter's result is merged into the
  committee of the election it continues.
- Runoffs: a new draft meeting holding the tied candidates (or, for empty
  seats, no candidates yet) for exactly the places the tie or shortage left.
- After the vote: first meeting (chair, vice-chairs), filing, seal, term,
  members leaving and alternates promoted in vote order; every step is an audit
  entry and a published ``committee_event``.
- Deadlines for a community or a whole street.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
from datetime import date
from typing import Any

import asyncpg

from server.auth.ballot import BallotPrincipal, ensure_session_live
from server.ballot import elections as rules
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import elections as repo
from server.repositories import locks
from server.repositories import meetings as meetings_repo
from server.services import audit, counting, meeting_input
from server.services import meetings as meetings_service
from server.services.effects import Effects

log = logging.getLogger("evote.elections")

BODIES = ("committee", "supervisory")
SEAL_STATES = {"none": "未刻制", "applied": "已申请刻制", "made": "已刻制"}
STATUS_NAMES = {"pending": "待资格审查", "qualified": "资格审查通过", "refused": "资格审查未通过"}
DEADLINE_NAMES = {"first_meeting": "业主委员会首次会议（选举产生之日起 3 日内）",
                  "filing": "向区住房和城乡建设局备案（选举产生之日起 30 日内）",
                  "first_assembly": "首次业主大会会议（筹备组成立之日起 60 日内）",
                  "term_end": "任期届满"}
FIRST_MEETING_DAYS, FILING_DAYS, FIRST_ASSEMBLY_DAYS = 3, 30, 60
_MEETING_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# ---------------------------------------------------------------- input helpers

def _text(data: dict, name: str, *, required: bool = False, max_length: int = 200, label: str = "") -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip() and not required):
        if required:
            raise ValidationFailed(f"请填写{label or name}", fields={name: "必填"})
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{label or name}应为文字", fields={name: "应为文字"})
    if len(value) > max_length:
        raise ValidationFailed(f"{label or name}过长（最多 {max_length} 字）", fields={name: f"最多 {max_length} 字"})
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValidationFailed(f"{label or name}含有无效字符", fields={name: "无效字符"})
    return value.strip()


def _body(data: dict) -> str:
    body = data.get("body")
    if body not in BODIES:
        raise ValidationFailed("请选择参选业主委员会（committee）或监事会（supervisory）", fields={"body": "无效"})
    return body


def _bool(data: dict, name: str, label: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValidationFailed(f"{label}应为 true 或 false", fields={name: "布尔值"})
    return value


def parse_date(value: Any, name: str, label: str, *, required: bool = True) -> date | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"请填写{label}（如 2026-05-01）", fields={name: "日期"})
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确（如 2026-05-01）", fields={name: "日期"}) from None


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


# ---------------------------------------------------------------- nominations

def nomination_document(row: asyncpg.Record) -> dict:
    return {"nomination_id": row["nomination_id"], "body": row["body"],
            "body_name": rules.BODY_NAMES[row["body"]], "owner_id": row["owner_id"], "name": row["name"],
            "unit_label": row["unit_label"], "party_member": row["party_member"], "statement": row["statement"],
            "source": row["source"], "nominated_by": row["nominated_by"], "nominated_at": _iso(row["nominated_at"]),
            "status": row["status"], "status_name": STATUS_NAMES[row["status"]], "reason": row["reason"],
            "decided_by": row["decided_by"], "decided_at": _iso(row["decided_at"])}


async def _nominate(conn: asyncpg.Connection, *, community_id: str, owner_id: str, data: dict, source: str,
                    actor: str) -> dict:
    body = _body(data)
    owner = await repo.owner_profile(conn, community_id, owner_id)
    if owner is None:
        raise NotFound("业主登记册中没有该业主", code="owner_not_found", fields={"owner_id": owner_id[:64]})
    # The name comes from the register, never from the request: nobody stands under another name.
    name = owner["name"] or owner_id
    unit_label = _text(data, "unit_label", max_length=100, label="房号") or "、".join(owner["units"])[:100]
    party_member = _bool(data, "party_member", "是否党员")
    statement = _text(data, "statement", max_length=2000, label="参选承诺")
    await repo.lock_nominations(conn, community_id)
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
    owner_id = _text(data, "owner_id", required=True, max_length=64, label="业主编号")
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
        sources = {r["candidate_id"]: r["owner_id"] for r in await repo.candidate_sources(conn, community_id, meeting_id)
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


# ---------------------------------------------------------------- results and formation

async def _result(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    stored = await conn.fetchval(
        "SELECT result_json FROM meeting_result WHERE community_id = $1 AND meeting_id = $2",
        community_id, meeting_id)
    if stored is not None:
        return json.loads(stored)
    return await counting.compute_result(conn, community_id, meeting_id)


async def _closed_election(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           matter_id: str) -> tuple[dict, asyncpg.Record, dict]:
    """(meeting, matter row, result of the matter) of a closed meeting's election matter."""
    meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    matter = next((m for m in await meetings_repo.list_matters(conn, community_id, meeting_id)
                   if m["matter_id"] == matter_id), None)
    if matter is None or matter["kind"] != "election":
        raise NotFound("找不到该选举事项", code="matter_not_found")
    if meeting["state"] not in ("closed", "published"):
        raise Conflict("会议投票尚未结束", code="meeting_not_closed", fields={"state": meeting["state"]})
    result = await _result(conn, community_id, meeting_id)
    matter_result = next(m for m in result["matters"] if m["id"] == matter_id)
    return meeting, matter, matter_result


def _formation(meeting: dict, matter: asyncpg.Record, matter_result: dict) -> rules.Formation:
    return rules.decide_formation(matter_result, seats=matter["seats"], alternates=matter["alternates"],
                                  rank_by=meeting["rules"]["rank_by"], body=matter["body"] or "other")


async def election_outcomes(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    """Every election matter of a noticed-or-later meeting: the engine's result and the formation.

    Before the close this is the live count (what the result would be now)."""
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        result = await _result(conn, community_id, meeting_id) if meeting["state"] in ("closed", "published") \
            else await counting.compute_result(conn, community_id, meeting_id)
        matters = {m["matter_id"]: m for m in await meetings_repo.list_matters(conn, community_id, meeting_id)}
    out = []
    for matter_result in result["matters"]:
        matter = matters[matter_result["id"]]
        if matter["kind"] != "election":
            continue
        formation = _formation(meeting, matter, matter_result)
        out.append({"matter_id": matter["matter_id"], "title": matter["title"], "body": matter["body"],
                    "seats": matter["seats"], "alternates": matter["alternates"], "result": matter_result,
                    "formation": formation.as_json()})
    return {"meeting_id": meeting_id, "state": meeting["state"], "final": meeting["state"] in ("closed", "published"),
            "elections": out}


async def _profiles(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> dict[str, dict]:
    owners = {r["candidate_id"]: r["owner_id"] for r in await repo.candidate_sources(conn, community_id, meeting_id)
              if r["matter_id"] == matter_id}
    return {c["candidate_id"]: {"name": c["name"], "unit_label": c["unit_label"], "party_member": c["party_member"],
                                "statement": c["statement"], "owner_id": owners.get(c["candidate_id"])}
            for c in await meetings_repo.list_candidates(conn, community_id, meeting_id) if c["matter_id"] == matter_id}


async def _add_members(conn: asyncpg.Connection, committee: dict, entries: list[tuple[str, str, str, str, dict]]) -> None:
    """entries: (candidate_id, role, meeting_id, matter_id, profile), appended in vote order."""
    existing = await repo.list_members(conn, committee["community_id"], committee["committee_id"])
    next_no = max((m["member_no"] for m in existing), default=0) + 1
    rows = []
    for offset, (candidate_id, role, meeting_id, matter_id, p) in enumerate(entries):
        rows.append({"community_id": committee["community_id"], "committee_id": committee["committee_id"],
                     "member_no": next_no + offset, "candidate_id": candidate_id, "meeting_id": meeting_id,
                     "matter_id": matter_id, "owner_id": p["owner_id"], "name": p["name"],
                     "unit_label": p["unit_label"], "party_member": p["party_member"], "role": role})
    await repo.insert_members(conn, rows)


def _names(profiles: dict, ids) -> str:
    return "、".join(profiles[c]["name"] for c in ids) or "无"


async def _event(conn, committee: dict, kind: str, summary: str, detail: dict, actor: str) -> None:
    await repo.append_event(conn, community_id=committee["community_id"], committee_id=committee["committee_id"],
                            kind=kind, summary=summary, detail=detail, actor=actor)
    await audit.append(conn, community_id=committee["community_id"], actor=actor, action=f"committee.{kind}",
                       detail={"committee_id": committee["committee_id"], **detail})


async def _root_of(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> tuple[str, str]:
    seen = set()
    while (link := await repo.get_runoff(conn, community_id, meeting_id, matter_id)) is not None:
        if (meeting_id, matter_id) in seen:  # cannot happen (origin must be closed before); be safe
            break
        seen.add((meeting_id, matter_id))
        meeting_id, matter_id = link["origin_meeting_id"], link["origin_matter_id"]
    return meeting_id, matter_id


async def _form_root(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                     actor: str) -> dict:
    committee = await repo.committee_for_matter(conn, community_id, meeting_id, matter_id, lock=True)
    if committee is not None:
        return committee
    meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
    if matter["body"] not in BODIES:
        raise Conflict("该选举事项不是业主委员会或监事会选举", code="not_a_body_election")
    formation = _formation(meeting, matter, matter_result)
    elected_on = await repo.closed_on(conn, community_id, meeting_id) if formation.formed else None
    committee = await repo.insert_committee(
        conn, community_id=community_id, body=matter["body"], meeting_id=meeting_id, matter_id=matter_id,
        seats=matter["seats"], alternate_places=matter["alternates"], formed=formation.formed,
        reason=formation.reason, notes=list(formation.notes),
        pending_runoff=formation.runoff.as_json() if formation.runoff else None, elected_on=elected_on,
        created_by=actor)
    profiles = await _profiles(conn, community_id, meeting_id, matter_id)
    await _add_members(conn, committee, [(c, "member", meeting_id, matter_id, profiles[c]) for c in formation.elected]
                       + [(c, "alternate", meeting_id, matter_id, profiles[c]) for c in formation.alternates])
    body_name = rules.BODY_NAMES[matter["body"]]
    if formation.formed:
        summary = (f"{body_name}选举产生：委员 {_names(profiles, formation.elected)}；"
                   f"候补委员 {_names(profiles, formation.alternates)}")
    else:
        summary = f"{body_name}未能组成：{formation.reason}"
    if formation.notes:
        summary += "。" + "；".join(formation.notes)
    await _event(conn, committee, "election", summary,
                 {"meeting_id": meeting_id, "matter_id": matter_id, "formation": formation.as_json()}, actor)
    return committee


async def _merge_runoff(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                        actor: str) -> dict:
    """Apply a closed runoff matter's result to the committee of the election it continues (once)."""
    link = await repo.get_runoff(conn, community_id, meeting_id, matter_id)
    root_meeting, root_matter = await _root_of(conn, community_id, meeting_id, matter_id)
    committee = await _form_root(conn, community_id, root_meeting, root_matter, actor)
    committee = await repo.get_committee(conn, community_id, committee["committee_id"], lock=True)
    events = await repo.list_events(conn, community_id, committee["committee_id"])
    if any(e["kind"] == "runoff_result" and json.loads(e["detail"]) .get("meeting_id") == meeting_id
           and json.loads(e["detail"]).get("matter_id") == matter_id for e in events):
        return committee
    meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
    plan_json = link["plan"]
    plan = rules.RunoffPlan(plan_json["kind"], plan_json["first_place"], plan_json["seat_places"],
                            plan_json["alternate_places"], tuple(plan_json["candidates"]),
                            tuple(tuple(g) for g in plan_json["continuation"]))
    formation = _formation(meeting, matter, matter_result)
    profiles = await _profiles(conn, community_id, meeting_id, matter_id)
    members = await repo.list_members(conn, community_id, committee["committee_id"])
    have_alternates = sum(1 for m in members if m["role"] == "alternate")
    if not formation.quorum_met:
        changes = {"reason": "另行选举" + formation.reason} if not committee["formed"] else {}
        await repo.update_committee(conn, community_id, committee["committee_id"], changes)
        await _event(conn, committee, "runoff_result", "另行选举未达参与表决法定比例，需重新另行选举",
                     {"meeting_id": meeting_id, "matter_id": matter_id, "formation": formation.as_json()}, actor)
        return await repo.get_committee(conn, community_id, committee["committee_id"])
    tied = formation.runoff.candidates if formation.runoff and formation.runoff.kind == "tie" else ()
    merge = rules.merge_runoff(plan, formation.elected_groups, tied,
                               alternate_places_left=committee["alternate_places"] - have_alternates)
    # Continuation candidates are ranked in an earlier election of the chain: take their
    # profile from the nearest matter that lists them.
    chain = [(meeting_id, matter_id)]
    while (up := await repo.get_runoff(conn, community_id, *chain[-1])) is not None:
        chain.append((up["origin_meeting_id"], up["origin_matter_id"]))
    where: dict[str, tuple[str, str, dict]] = {}
    for m_id, t_id in reversed(chain):
        for cid, p in (await _profiles(conn, community_id, m_id, t_id)).items():
            where[cid] = (m_id, t_id, p)
    entries = [(c, "member", meeting_id, matter_id, profiles[c]) for c in merge.members]
    entries += [(c, "alternate", meeting_id, matter_id, profiles[c]) for c in merge.alternates]
    entries += [(c, "alternate", where[c][0], where[c][1], where[c][2]) for c in merge.continued]
    await _add_members(conn, committee, entries)
    all_profiles = {c: v[2] for c, v in where.items()}
    members = await repo.list_members(conn, community_id, committee["committee_id"])
    seated = sum(1 for m in members if m["role"] == "member")
    body_name = rules.BODY_NAMES[committee["body"]]
    changes: dict[str, Any] = {"pending_runoff": None}
    if seated >= committee["seats"]:
        if not committee["formed"]:
            changes.update(formed=True, reason="", elected_on=await repo.closed_on(conn, community_id, meeting_id))
        if merge.still_tied:
            changes["notes"] = committee["notes"] + ["候补委员出现票数完全相同，需另行选举"]
    else:
        short = committee["seats"] - seated
        if merge.still_tied:
            reason = f"另行选举后仍有票数完全相同（候选人 {'、'.join(merge.still_tied)}），尚缺 {short} 席，需再次另行选举"
        else:
            reason = f"当选人数不足 {committee['seats']} 人（当选 {seated} 人），需另行选举补足 {short} 席"
        changes.update(reason=reason)
    if formation.runoff is not None and merge.still_tied:
        changes["pending_runoff"] = formation.runoff.as_json()
    await repo.update_committee(conn, community_id, committee["committee_id"], changes)
    summary = (f"另行选举结果：新增委员 {_names(all_profiles, merge.members)}；"
               f"新增候补委员 {_names(all_profiles, merge.alternates + merge.continued)}")
    if changes.get("formed"):
        summary += f"。{body_name}已组成"
    elif changes.get("reason"):
        summary += f"。{changes['reason']}"
    await _event(conn, committee, "runoff_result", summary,
                 {"meeting_id": meeting_id, "matter_id": matter_id, "members": list(merge.members),
                  "alternates": list(merge.alternates + merge.continued), "still_tied": list(merge.still_tied)}, actor)
    return await repo.get_committee(conn, community_id, committee["committee_id"])


async def form_committee(pool: asyncpg.Pool, community_id: str, meeting_id: str, matter_id: str, *,
                         actor: str) -> dict:
    """The committee record of a closed election (idempotent); a runoff is merged into its root."""
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "formation", community_id)
        if await repo.get_runoff(conn, community_id, meeting_id, matter_id) is not None:
            committee = await _merge_runoff(conn, community_id, meeting_id, matter_id, actor)
        else:
            committee = await _form_root(conn, community_id, meeting_id, matter_id, actor)
        return await committee_document(conn, community_id, committee["committee_id"])


async def on_meeting_closed(pool: asyncpg.Pool, effects: Effects, community_id: str, meeting_id: str) -> None:
    """Close hook (listed in server.app): form (or update) the committee of every committee / supervisory election."""
    async with pool.acquire() as conn:
        matters = [m["matter_id"] for m in await meetings_repo.list_matters(conn, community_id, meeting_id)
                   if m["kind"] == "election" and m["body"] in BODIES]
    for matter_id in matters:
        await form_committee(pool, community_id, meeting_id, matter_id, actor="system")


# ---------------------------------------------------------------- runoffs

async def create_runoff(pool: asyncpg.Pool, community_id: str, meeting_id: str, matter_id: str, data: dict,
                        actor: str) -> dict:
    """A new draft meeting with one election matter for the places a tie or a shortage left."""
    opens_at = meeting_input.parse_time(data.get("opens_at"), "opens_at")
    closes_at = meeting_input.parse_time(data.get("closes_at"), "closes_at")
    meeting_input.check_window(opens_at, closes_at)
    new_id = data.get("meeting_id")
    if new_id is not None and (not isinstance(new_id, str) or not _MEETING_ID.match(new_id)):
        raise ValidationFailed("会议编号应为 1–64 位字母、数字、_ 或 -", fields={"meeting_id": "格式不正确"})
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "formation", community_id)
        meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
        if await repo.runoff_of(conn, community_id, meeting_id, matter_id) is not None:
            raise Conflict("该选举事项已创建另行选举", code="runoff_exists")
        formation = _formation(meeting, matter, matter_result)
        parent = await repo.get_runoff(conn, community_id, meeting_id, matter_id)
        plan = formation.runoff
        if not formation.quorum_met and parent is not None:
            plan_json = parent["plan"]  # the runoff itself failed for lack of quorum: hold it again
            plan = rules.RunoffPlan(plan_json["kind"], plan_json["first_place"], plan_json["seat_places"],
                                    plan_json["alternate_places"], tuple(plan_json["candidates"]),
                                    tuple(tuple(g) for g in plan_json["continuation"]))
        elif not formation.quorum_met:
            raise Conflict("该选举未达参与表决法定比例，不能另行选举，需重新召集会议选举", code="no_quorum_no_runoff")
        elif plan is None:
            raise Conflict("该选举的席位已全部产生，无需另行选举", code="runoff_not_needed")
        elif parent is not None:
            parent_plan = parent["plan"]
            # A runoff of a runoff keeps what its parent filled, and the parent's unused continuation.
            continuation = plan.continuation + tuple(tuple(g) for g in parent_plan["continuation"])
            if parent_plan["seat_places"] == 0:
                plan = dataclasses.replace(plan, seat_places=0,
                                           alternate_places=plan.seat_places + plan.alternate_places,
                                           continuation=continuation)
            else:
                plan = dataclasses.replace(plan, continuation=continuation)
        count = await conn.fetchval(
            "SELECT count(*) FROM election_runoff WHERE community_id = $1 AND origin_meeting_id = $2",
            community_id, meeting_id)
        new_id = new_id or f"{meeting_id[:56]}-R{count + 1}"
        title = _text(data, "title", max_length=200, label="会议名称") or f"{meeting['title'][:180]}（另行选举）"
        try:
            await meetings_repo.insert_meeting(conn, community_id=community_id, meeting_id=new_id, title=title,
                                               rules=meeting["rules"], show_live_results=meeting["show_live_results"],
                                               opens_at=opens_at, closes_at=closes_at, created_by=actor)
        except asyncpg.UniqueViolationError:
            raise Conflict("该会议编号已存在", code="meeting_exists") from None
        await meetings_repo.insert_transition(conn, community_id=community_id, meeting_id=new_id, from_state=None,
                                              to_state="draft", actor=actor,
                                              note=f"runoff of {meeting_id}/{matter_id}")
        new_matter = {"matter_id": matter_id, "kind": "election",
                      "title": f"另行选举：{matter['title']}"[:200],
                      "description": f"{matter['title']} 的另行选举（第 {plan.first_place} 位起）",
                      "category": matter["category"], "seats": plan.matter_seats,
                      "alternates": plan.matter_alternates, "body": matter["body"]}
        await meetings_repo.insert_matter(conn, community_id, new_id, new_matter, 1)
        if plan.candidates:
            old = {c["candidate_id"]: c for c in await meetings_repo.list_candidates(conn, community_id, meeting_id)
                   if c["matter_id"] == matter_id}
            await meetings_repo.insert_candidates(conn, community_id, new_id, matter_id, [
                {"candidate_id": cid, "name": old[cid]["name"], "unit_label": old[cid]["unit_label"],
                 "party_member": old[cid]["party_member"], "statement": old[cid]["statement"]}
                for cid in plan.candidates], 1)
            sources = [r for r in await repo.candidate_sources(conn, community_id, meeting_id)
                       if r["matter_id"] == matter_id and r["candidate_id"] in set(plan.candidates)]
            await repo.insert_candidate_sources(conn, [
                (community_id, new_id, matter_id, r["candidate_id"], r["nomination_id"], r["owner_id"])
                for r in sources])
        await repo.insert_runoff(conn, community_id=community_id, meeting_id=new_id, matter_id=matter_id,
                                 origin_meeting_id=meeting_id, origin_matter_id=matter_id, plan=plan.as_json(),
                                 created_by=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="election.runoff.create",
                           detail={"meeting_id": new_id, "matter_id": matter_id, "origin_meeting_id": meeting_id,
                                   "plan": plan.as_json()})
        doc = await meetings_service.load_document(conn, community_id, new_id)
    return doc | {"runoff": plan.as_json(), "origin": {"meeting_id": meeting_id, "matter_id": matter_id}}


# ---------------------------------------------------------------- after the vote

def member_document(m: asyncpg.Record, *, public: bool = False) -> dict:
    doc = {"member_no": m["member_no"], "candidate_id": m["candidate_id"], "name": m["name"],
           "unit_label": m["unit_label"], "party_member": m["party_member"], "role": m["role"],
           "office": m["office"], "status": m["status"], "left_on": _iso(m["left_on"]),
           "leave_reason": m["leave_reason"], "promoted_on": _iso(m["promoted_on"])}
    if not public:
        doc |= {"owner_id": m["owner_id"], "meeting_id": m["meeting_id"], "matter_id": m["matter_id"]}
    return doc


async def committee_document(conn: asyncpg.Connection, community_id: str, committee_id: int, *,
                             public: bool = False) -> dict:
    committee = await repo.get_committee(conn, community_id, committee_id)
    if committee is None:
        raise NotFound("找不到该委员会记录", code="committee_not_found")
    members = await repo.list_members(conn, community_id, committee_id)
    events = await repo.list_events(conn, community_id, committee_id)
    active = [m for m in members if m["status"] == "active"]
    seated = [m for m in active if m["role"] == "member"]
    waiting = [m for m in active if m["role"] == "alternate"]
    share = rules.party_share([m["party_member"] for m in seated])
    doc = {
        "committee_id": committee_id, "body": committee["body"], "body_name": rules.BODY_NAMES[committee["body"]],
        "meeting_id": committee["meeting_id"], "matter_id": committee["matter_id"], "seats": committee["seats"],
        "alternate_places": committee["alternate_places"], "formed": committee["formed"],
        "reason": committee["reason"], "notes": committee["notes"], "elected_on": _iso(committee["elected_on"]),
        "pending_runoff": committee["pending_runoff"],
        "members": [member_document(m, public=public) for m in seated],
        "alternates": [member_document(m, public=public) for m in waiting],
        "former": [member_document(m, public=public) for m in members if m["status"] == "left"],
        "vacant_seats": max(0, committee["seats"] - len(seated)),
        "chair": next((m["name"] for m in seated if m["office"] == "chair"), None),
        "vice_chairs": [m["name"] for m in seated if m["office"] == "vice_chair"],
        "first_meeting_on": _iso(committee["first_meeting_on"]),
        "filing": None if committee["filing_date"] is None else
        {"date": _iso(committee["filing_date"]), "reference": committee["filing_ref"]},
        "seal_status": committee["seal_status"], "seal_status_name": SEAL_STATES[committee["seal_status"]],
        "term": None if committee["term_start"] is None else
        {"start": _iso(committee["term_start"]), "end": _iso(committee["term_end"])},
        "party_share": share.as_json(),
        "events": [{"seq": e["seq"], "at": _iso(e["at"]), "kind": e["kind"], "summary": e["summary"]}
                   | ({} if public else {"actor": e["actor"], "detail": json.loads(e["detail"])})
                   for e in events],
    }
    return doc


async def _locked_committee(conn: asyncpg.Connection, community_id: str, committee_id: int) -> dict:
    committee = await repo.get_committee(conn, community_id, committee_id, lock=True)
    if committee is None:
        raise NotFound("找不到该委员会记录", code="committee_not_found")
    return committee


def _require_formed(committee: dict) -> None:
    if not committee["formed"]:
        raise Conflict(f"{rules.BODY_NAMES[committee['body']]}尚未组成：{committee['reason']}", code="not_formed")


async def record_first_meeting(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict,
                               actor: str) -> dict:
    held_on = parse_date(data.get("held_on"), "held_on", "首次会议日期")
    chair = data.get("chair")
    vice = data.get("vice_chairs", [])
    if isinstance(chair, bool) or not isinstance(chair, int):
        raise ValidationFailed("请选择主任（委员编号 member_no）", fields={"chair": "member_no"})
    if not isinstance(vice, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in vice) or len(vice) > 4:
        raise ValidationFailed("副主任应为委员编号列表（最多 4 人）", fields={"vice_chairs": "member_no 列表"})
    if chair in vice or len(set(vice)) != len(vice):
        raise ValidationFailed("主任、副主任不能重复", fields={"vice_chairs": "重复"})
    async with pool.acquire() as conn, conn.transaction():
        committee = await _locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        if held_on < committee["elected_on"]:
            raise ValidationFailed("首次会议日期不能早于选举产生之日", fields={"held_on": "过早"})
        members = {m["member_no"]: m for m in await repo.list_members(conn, community_id, committee_id)
                   if m["status"] == "active" and m["role"] == "member"}
        for no in (chair, *vice):
            if no not in members:
                raise ValidationFailed(f"编号 {no} 不是现任委员，主任、副主任须从委员中产生", code="not_a_member",
                                       fields={"member_no": no})
        await repo.set_offices(conn, community_id, committee_id, chair, vice)
        await repo.update_committee(conn, community_id, committee_id, {"first_meeting_on": held_on})
        summary = (f"{held_on.isoformat()} 召开首次会议，选举 {members[chair]['name']} 为主任"
                   + (f"，{'、'.join(members[v]['name'] for v in vice)} 为副主任" if vice else ""))
        await _event(conn, committee, "first_meeting", summary,
                     {"held_on": held_on, "chair": chair, "vice_chairs": vice}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_filing(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    filed_on = parse_date(data.get("filing_date"), "filing_date", "备案日期")
    reference = _text(data, "filing_ref", required=True, max_length=100, label="备案文号")
    async with pool.acquire() as conn, conn.transaction():
        committee = await _locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        if committee["first_meeting_on"] is None:
            raise Conflict("请先登记首次会议（主任、副主任）再登记备案", code="first_meeting_missing")
        if filed_on < committee["elected_on"]:
            raise ValidationFailed("备案日期不能早于选举产生之日", fields={"filing_date": "过早"})
        await repo.update_committee(conn, community_id, committee_id, {"filing_date": filed_on, "filing_ref": reference})
        await _event(conn, committee, "filing", f"{filed_on.isoformat()} 已向区住房和城乡建设局备案，备案文号 {reference}",
                     {"filing_date": filed_on, "filing_ref": reference}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_seal(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    status = data.get("seal_status")
    if status not in SEAL_STATES:
        raise ValidationFailed("seal_status 应为 none、applied 或 made", fields={"seal_status": "无效"})
    async with pool.acquire() as conn, conn.transaction():
        committee = await _locked_committee(conn, community_id, committee_id)
        if status != "none" and committee["filing_date"] is None:
            raise Conflict("备案后才能刻制印章", code="filing_missing")
        await repo.update_committee(conn, community_id, committee_id, {"seal_status": status})
        await _event(conn, committee, "seal", f"印章状态：{SEAL_STATES[status]}", {"seal_status": status}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_term(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    start = parse_date(data.get("term_start"), "term_start", "任期开始日期")
    end = parse_date(data.get("term_end"), "term_end", "任期结束日期")
    problem = rules.check_term(start, end)
    if problem:
        raise ValidationFailed(problem, code="bad_term", fields={"term_end": "3–5 年"})
    async with pool.acquire() as conn, conn.transaction():
        committee = await _locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        await repo.update_committee(conn, community_id, committee_id, {"term_start": start, "term_end": end})
        await _event(conn, committee, "term", f"任期 {start.isoformat()} 至 {end.isoformat()}",
                     {"term_start": start, "term_end": end}, actor)
        return await committee_document(conn, community_id, committee_id)


async def member_leaves(pool: asyncpg.Pool, community_id: str, committee_id: int, member_no: int, data: dict,
                        actor: str) -> dict:
    """A member leaves; the first waiting alternate in vote order takes the seat the same day."""
    left_on = parse_date(data.get("left_on"), "left_on", "离任日期")
    reason = _text(data, "reason", required=True, max_length=200, label="离任原因")
    async with pool.acquire() as conn, conn.transaction():
        committee = await _locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        members = await repo.list_members(conn, community_id, committee_id)
        leaving = next((m for m in members if m["member_no"] == member_no), None)
        if leaving is None or leaving["status"] != "active":
            raise NotFound("找不到该现任委员或候补委员", code="member_not_found")
        await repo.member_leaves(conn, community_id, committee_id, member_no, left_on, reason)
        if leaving["role"] == "alternate":
            await _event(conn, committee, "alternate_left", f"候补委员 {leaving['name']} 于 {left_on.isoformat()} 退出（{reason}）",
                         {"member_no": member_no, "left_on": left_on, "reason": reason}, actor)
            return await committee_document(conn, community_id, committee_id)
        waiting = tuple(m["member_no"] for m in members if m["role"] == "alternate" and m["status"] == "active")
        promotion = rules.promote(waiting)
        office = {"chair": "（原任主任）", "vice_chair": "（原任副主任）"}.get(leaving["office"], "")
        if promotion.promoted is None:
            summary = (f"委员 {leaving['name']}{office} 于 {left_on.isoformat()} 离任（{reason}）；"
                       f"已无候补委员可递补，需另行选举补选")
        else:
            await repo.promote_member(conn, community_id, committee_id, promotion.promoted, left_on)
            name = next(m["name"] for m in members if m["member_no"] == promotion.promoted)
            summary = (f"委员 {leaving['name']}{office} 于 {left_on.isoformat()} 离任（{reason}）；"
                       f"按得票顺序由候补委员 {name} 递补为委员")
        await _event(conn, committee, "member_left", summary,
                     {"member_no": member_no, "left_on": left_on, "reason": reason, "office": leaving["office"],
                      "promoted": promotion.promoted}, actor)
        return await committee_document(conn, community_id, committee_id)


async def get_committee(pool: asyncpg.Pool, community_id: str, committee_id: int) -> dict:
    async with pool.acquire() as conn:
        return await committee_document(conn, community_id, committee_id)


async def list_committees(pool: asyncpg.Pool, community_id: str) -> list[dict]:
    async with pool.acquire() as conn:
        rows = await repo.list_committees(conn, [community_id])
        return [await committee_document(conn, community_id, r["committee_id"]) for r in rows]


def _current(committees: list[dict], body: str) -> dict | None:
    """The latest formed body, else the latest attempt."""
    of_body = [c for c in committees if c["body"] == body]
    formed = [c for c in of_body if c["formed"]]
    return (formed or of_body or [None])[-1]


async def public_committee(pool: asyncpg.Pool, community_id: str) -> dict:
    async with pool.acquire() as conn:
        name = await conn.fetchval("SELECT name FROM community WHERE community_id = $1", community_id)
        if name is None:
            raise NotFound("小区不存在", code="community_not_found")
        rows = await repo.list_committees(conn, [community_id])
        out: dict[str, Any] = {"community_id": community_id, "community_name": name}
        for body in BODIES:
            current = _current(rows, body)
            out[body] = None if current is None else await committee_document(
                conn, community_id, current["committee_id"], public=True)
    return out


# ---------------------------------------------------------------- deadlines

def _deadline(kind: str, due: date, today: date, done_on: date | None, window: int) -> dict:
    return {"kind": kind, "name": DEADLINE_NAMES[kind], "due": due.isoformat(),
            "done_on": _iso(done_on), "done_late": done_on is not None and done_on > due,
            "state": rules.deadline_state(due, today, done_on=done_on, due_soon_days=window)}


def deadlines_for(community: asyncpg.Record, committees: list[dict], today: date, window: int) -> dict:
    from datetime import timedelta

    items = []
    if community["prep_group_formed_on"] is not None:
        items.append(_deadline("first_assembly", community["prep_group_formed_on"] + timedelta(days=FIRST_ASSEMBLY_DAYS),
                               today, community["first_assembly_on"], window))
    for c in committees:
        if not c["formed"]:
            continue
        owner = {"committee_id": c["committee_id"], "body": c["body"], "body_name": rules.BODY_NAMES[c["body"]]}
        if c["body"] == "committee":
            items.append(owner | _deadline("first_meeting", c["elected_on"] + timedelta(days=FIRST_MEETING_DAYS),
                                           today, c["first_meeting_on"], 1))
            items.append(owner | _deadline("filing", c["elected_on"] + timedelta(days=FILING_DAYS), today,
                                           c["filing_date"], window))
        if c["term_end"] is not None:
            items.append(owner | _deadline("term_end", c["term_end"], today, None, window))
    return {"community_id": community["community_id"], "community_name": community["name"], "deadlines": items}


async def deadlines(pool: asyncpg.Pool, community_ids: list[str], *, today: date | None, window: int) -> dict:
    async with pool.acquire() as conn:
        today = today or await repo.today_in_china(conn)
        communities = await repo.community_deadline_rows(conn, community_ids)
        committees = await repo.list_committees(conn, community_ids)
    by_community: dict[str, list[dict]] = {}
    for c in committees:
        by_community.setdefault(c["community_id"], []).append(c)
    out = [deadlines_for(row, by_community.get(row["community_id"], []), today, window) for row in communities]
    counts = {state: 0 for state in rules.DEADLINE_STATES}
    for community in out:
        for item in community["deadlines"]:
            counts[item["state"]] += 1
    return {"today": today.isoformat(), "due_soon_days": window, "counts": counts, "communities": out}


async def street_community_ids(pool: asyncpg.Pool, street_id: str) -> list[str]:
    async with pool.acquire() as conn:
        return [r["community_id"] for r in await repo.communities_of_street(conn, street_id)]
