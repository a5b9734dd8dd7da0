"""A committee after its election: the record, its steps and its public page (docs/elections.md).

First meeting (chair, vice-chairs), filing, seal, term, members leaving and
alternates promoted in vote order; every step is an audit entry and a
``committee_event`` shown on the public page.  The record itself is made by
``server.services.formation``.
"""
from __future__ import annotations

import json
from typing import Any

import asyncpg

from server.ballot import elections as rules
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import communities as community_repo
from server.repositories import elections as repo
from server.services import audit
from server.services.election_input import BODIES, parse_date, read_text
from server.services.meeting_input import iso

SEAL_STATES = {"none": "未刻制", "applied": "已申请刻制", "made": "已刻制"}


async def record_event(conn: asyncpg.Connection, committee: dict, kind: str, summary: str, detail: dict,
                       actor: str) -> None:
    """One step in the committee's own log and in the audit chain (the caller holds the committee row lock)."""
    await repo.append_event(conn, community_id=committee["community_id"], committee_id=committee["committee_id"],
                            kind=kind, summary=summary, detail=detail, actor=actor)
    await audit.append(conn, community_id=committee["community_id"], actor=actor, action=f"committee.{kind}",
                       detail={"committee_id": committee["committee_id"], **detail})


def member_document(m: asyncpg.Record, *, public: bool = False) -> dict:
    doc = {"member_no": m["member_no"], "candidate_id": m["candidate_id"], "name": m["name"],
           "unit_label": m["unit_label"], "party_member": m["party_member"], "role": m["role"],
           "office": m["office"], "status": m["status"], "left_on": iso(m["left_on"]),
           "leave_reason": m["leave_reason"], "promoted_on": iso(m["promoted_on"])}
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
        "reason": committee["reason"], "notes": committee["notes"], "elected_on": iso(committee["elected_on"]),
        "pending_runoff": committee["pending_runoff"],
        "members": [member_document(m, public=public) for m in seated],
        "alternates": [member_document(m, public=public) for m in waiting],
        "former": [member_document(m, public=public) for m in members if m["status"] == "left"],
        "vacant_seats": max(0, committee["seats"] - len(seated)),
        "chair": next((m["name"] for m in seated if m["office"] == "chair"), None),
        "vice_chairs": [m["name"] for m in seated if m["office"] == "vice_chair"],
        "first_meeting_on": iso(committee["first_meeting_on"]),
        "filing": None if committee["filing_date"] is None else
        {"date": iso(committee["filing_date"]), "reference": committee["filing_ref"]},
        "seal_status": committee["seal_status"], "seal_status_name": SEAL_STATES[committee["seal_status"]],
        "term": None if committee["term_start"] is None else
        {"start": iso(committee["term_start"]), "end": iso(committee["term_end"])},
        "party_share": share.as_json(),
        "events": [{"seq": e["seq"], "at": iso(e["at"]), "kind": e["kind"], "summary": e["summary"]}
                   | ({} if public else {"actor": e["actor"], "detail": json.loads(e["detail"])})
                   for e in events],
    }
    return doc


async def locked_committee(conn: asyncpg.Connection, community_id: str, committee_id: int) -> dict:
    """The committee row FOR UPDATE, or 404."""
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
        committee = await locked_committee(conn, community_id, committee_id)
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
        await record_event(conn, committee, "first_meeting", summary,
                     {"held_on": held_on, "chair": chair, "vice_chairs": vice}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_filing(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    filed_on = parse_date(data.get("filing_date"), "filing_date", "备案日期")
    reference = read_text(data, "filing_ref", required=True, max_length=100, label="备案文号")
    async with pool.acquire() as conn, conn.transaction():
        committee = await locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        if committee["first_meeting_on"] is None:
            raise Conflict("请先登记首次会议（主任、副主任）再登记备案", code="first_meeting_missing")
        if filed_on < committee["elected_on"]:
            raise ValidationFailed("备案日期不能早于选举产生之日", fields={"filing_date": "过早"})
        await repo.update_committee(conn, community_id, committee_id,
                                    {"filing_date": filed_on, "filing_ref": reference})
        await record_event(conn, committee, "filing", f"{filed_on.isoformat()} 已向区住房和城乡建设局备案，备案文号 {reference}",
                     {"filing_date": filed_on, "filing_ref": reference}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_seal(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    status = data.get("seal_status")
    if not isinstance(status, str) or status not in SEAL_STATES:
        raise ValidationFailed("seal_status 应为 none、applied 或 made", fields={"seal_status": "无效"})
    async with pool.acquire() as conn, conn.transaction():
        committee = await locked_committee(conn, community_id, committee_id)
        if status != "none" and committee["filing_date"] is None:
            raise Conflict("备案后才能刻制印章", code="filing_missing")
        await repo.update_committee(conn, community_id, committee_id, {"seal_status": status})
        await record_event(conn, committee, "seal", f"印章状态：{SEAL_STATES[status]}", {"seal_status": status}, actor)
        return await committee_document(conn, community_id, committee_id)


async def record_term(pool: asyncpg.Pool, community_id: str, committee_id: int, data: dict, actor: str) -> dict:
    start = parse_date(data.get("term_start"), "term_start", "任期开始日期")
    end = parse_date(data.get("term_end"), "term_end", "任期结束日期")
    problem = rules.check_term(start, end)
    if problem:
        raise ValidationFailed(problem, code="bad_term", fields={"term_end": "3–5 年"})
    async with pool.acquire() as conn, conn.transaction():
        committee = await locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        await repo.update_committee(conn, community_id, committee_id, {"term_start": start, "term_end": end})
        await record_event(conn, committee, "term", f"任期 {start.isoformat()} 至 {end.isoformat()}",
                     {"term_start": start, "term_end": end}, actor)
        return await committee_document(conn, community_id, committee_id)


async def member_leaves(pool: asyncpg.Pool, community_id: str, committee_id: int, member_no: int, data: dict,
                        actor: str) -> dict:
    """A member leaves; the first waiting alternate in vote order takes the seat the same day."""
    left_on = parse_date(data.get("left_on"), "left_on", "离任日期")
    reason = read_text(data, "reason", required=True, max_length=200, label="离任原因")
    async with pool.acquire() as conn, conn.transaction():
        committee = await locked_committee(conn, community_id, committee_id)
        _require_formed(committee)
        members = await repo.list_members(conn, community_id, committee_id)
        leaving = next((m for m in members if m["member_no"] == member_no), None)
        if leaving is None or leaving["status"] != "active":
            raise NotFound("找不到该现任委员或候补委员", code="member_not_found")
        await repo.member_leaves(conn, community_id, committee_id, member_no, left_on, reason)
        if leaving["role"] == "alternate":
            await record_event(conn, committee, "alternate_left",
                               f"候补委员 {leaving['name']} 于 {left_on.isoformat()} 退出（{reason}）",
                         {"member_no": member_no, "left_on": left_on, "reason": reason}, actor)
            return await committee_document(conn, community_id, committee_id)
        waiting = tuple(m["member_no"] for m in members if m["role"] == "alternate" and m["status"] == "active")
        # The core ranks opaque ids: member numbers go in as text and come back as numbers.
        promotion = rules.promote(tuple(str(no) for no in waiting))
        promoted = None if promotion.promoted is None else int(promotion.promoted)
        office = {"chair": "（原任主任）", "vice_chair": "（原任副主任）"}.get(leaving["office"], "")
        if promoted is None:
            summary = (f"委员 {leaving['name']}{office} 于 {left_on.isoformat()} 离任（{reason}）；"
                       f"已无候补委员可递补，需另行选举补选")
        else:
            await repo.promote_member(conn, community_id, committee_id, promoted, left_on)
            name = next(m["name"] for m in members if m["member_no"] == promoted)
            summary = (f"委员 {leaving['name']}{office} 于 {left_on.isoformat()} 离任（{reason}）；"
                       f"按得票顺序由候补委员 {name} 递补为委员")
        await record_event(conn, committee, "member_left", summary,
                     {"member_no": member_no, "left_on": left_on, "reason": reason, "office": leaving["office"],
                      "promoted": promoted}, actor)
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
    if formed:
        return formed[-1]
    return of_body[-1] if of_body else None


async def public_committee(pool: asyncpg.Pool, community_id: str) -> dict:
    async with pool.acquire() as conn:
        community = await community_repo.get_community(conn, community_id)
        if community is None:
            raise NotFound("小区不存在", code="community_not_found")
        rows = await repo.list_committees(conn, [community_id])
        out: dict[str, Any] = {"community_id": community_id, "community_name": community["name"]}
        for body in BODIES:
            current = _current(rows, body)
            out[body] = None if current is None else await committee_document(
                conn, community_id, current["committee_id"], public=True)
    return out
