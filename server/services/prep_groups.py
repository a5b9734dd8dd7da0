"""The preparatory group (筹备组) and the temporary management committee (docs/district.md).

A group is drafted with its members (refused, naming the rule, when the composition is unlawful),
posted for at least 7 days on the community's public page and board (PDF), open to objections from
owners and the public; the street resolves each with a reason.  An upheld objection rejects the
group (a new one is drafted).  The group is formed when its posting has ended and no objection is
open, on the later of the two dates: ``settle`` records it (and the community's formation date, from
which the 60-day deadline for the first assembly runs) whenever the group or a board is read.
"""
from __future__ import annotations

from typing import Any

import asyncpg

from server.ballot.campaign import EMPLOYMENTS
from server.ballot.masking import mask_name
from server.ballot.prep_group import SIDES, GroupMember, composition_problems
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import communities as community_repo
from server.repositories import locks
from server.repositories import prep_groups as repo
from server.services import audit
from server.services.register_posting import posting_days

RESOLVERS = frozenset({"district_admin", "street_admin"})
TEMPORARY_SIDES = {"street": "街道办事处", "residents_committee": "社区居委会", "owner": "业主代表"}


def _jsonable(row: Any) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}


def _text(value: Any, name: str, label: str, max_length: int, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > max_length:
        raise ValidationFailed(f"请填写{label}（不超过 {max_length} 字）", fields={name: "必填"})
    return value.strip()


def parse_members(raw: Any) -> list[tuple]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= 51:
        raise ValidationFailed("请列出筹备组成员", fields={"members": "列表"})
    out = []
    for i, m in enumerate(raw, start=1):
        if not isinstance(m, dict):
            raise ValidationFailed(f"第 {i} 位成员格式不正确", fields={"members": str(i)})
        side = m.get("side")
        if not isinstance(side, str) or side not in SIDES:
            raise ValidationFailed(f"第 {i} 位成员的身份应为：{'、'.join(SIDES.values())}",
                                   fields={f"members[{i}].side": "、".join(SIDES)})
        employment = m.get("employment", "other")
        if not isinstance(employment, str) or employment not in EMPLOYMENTS:
            raise ValidationFailed(f"第 {i} 位成员的单位性质不正确", fields={f"members[{i}].employment": "、".join(EMPLOYMENTS)})
        out.append((_text(m.get("name"), f"members[{i}].name", "姓名", 50),
                    side, _text(m.get("unit_label"), f"members[{i}].unit_label", "房号", 64, required=False),
                    bool(m.get("party_member", False)), bool(m.get("leader", False)), employment))
    return out


def check_composition(members: list[tuple]) -> None:
    problems = composition_problems([GroupMember(m[0], m[1], m[4]) for m in members])
    if problems:
        raise ValidationFailed("；".join(p.message for p in problems), code=problems[0].code,
                               fields={"rules": [p.code for p in problems]})


async def settle(conn: asyncpg.Connection, community_id: str | None = None) -> None:
    """Record the groups whose posting ended without open objection as formed (audited), and end the
    temporary committees superseded by an elected committee."""
    for row in await repo.settle_formed(conn, community_id):
        await audit.append(conn, community_id=row["community_id"], actor="system", action="prep_group.formed",
                           detail={"group_no": row["group_no"], "formed_on": row["formed_on"].isoformat()})
    await repo.end_temporaries_superseded(conn, community_id)


async def draft_group(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    """A new draft (or the current draft's members replaced); the composition is checked now and at posting."""
    members = parse_members(data.get("members"))
    check_composition(members)
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "prep_group", community_id)
        if await community_repo.get_community(conn, community_id) is None:
            raise NotFound("小区不存在", code="community_not_found")
        await settle(conn, community_id)
        current = await repo.current_group(conn, community_id, for_update=True)
        if current is not None and current["state"] != "draft":
            raise Conflict("筹备组名单已公示" + ("并已成立" if current["state"] == "formed" else "，公示期间不能修改"),
                           code="prep_group_posted")
        group_no = current["group_no"] if current is not None else await repo.insert_group(conn, community_id, actor)
        await repo.replace_members(conn, community_id, group_no, members)
        await audit.append(conn, community_id=community_id, actor=actor, action="prep_group.draft",
                           detail={"group_no": group_no, "members": len(members)})
    return await get_group(pool, community_id)


async def post_group(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    days = posting_days(data)
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "prep_group", community_id)
        current = await repo.current_group(conn, community_id, for_update=True)
        if current is None or current["state"] != "draft":
            raise Conflict("没有待公示的筹备组名单", code="no_draft_group")
        members = await repo.members(conn, community_id, current["group_no"])
        check_composition([(m["name"], m["side"], m["unit_label"], m["party_member"], m["leader"], m["employment"])
                           for m in members])
        await repo.post_group(conn, community_id, current["group_no"], days)
        await audit.append(conn, community_id=community_id, actor=actor, action="prep_group.post",
                           detail={"group_no": current["group_no"], "days": days})
    return await get_group(pool, community_id)


async def get_group(pool: asyncpg.Pool, community_id: str, *, public: bool = False) -> dict:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await settle(conn, community_id)
        group = await repo.current_group(conn, community_id) or await repo.last_group(conn, community_id)
        if group is None or (public and group["state"] == "draft"):
            raise NotFound("本小区尚未公示筹备组名单", code="prep_group_not_found")
        members = await repo.members(conn, community_id, group["group_no"])
        objections = await repo.objections(conn, community_id, group["group_no"])
        community = await community_repo.get_community(conn, community_id)
    doc = _jsonable(group) | {"community_name": community["name"] if community else community_id}
    doc["members"] = [{**_jsonable(m), "side_name": SIDES[m["side"]]} for m in members]
    if public:
        # the public list: names as posted on the board, no employment, objections without who filed them
        doc["members"] = [{k: m[k] for k in ("member_no", "name", "side", "side_name", "unit_label", "party_member",
                                             "leader")} for m in doc["members"]]
        doc["objections"] = [{"objection_no": o["objection_no"], "filed_at": o["filed_at"].isoformat(),
                              "outcome": o["outcome"], "reason": o["reason"]} for o in objections]
        doc.pop("created_by", None)
    else:
        doc["objections"] = [_jsonable(o) for o in objections]
    doc["open_objections"] = sum(1 for o in objections if o["outcome"] is None)
    return doc


async def object_to_group(pool: asyncpg.Pool, *, community_id: str, filed_by: str, text: Any) -> dict:
    body = _text(text, "text", "异议内容", 2000)
    async with pool.acquire() as conn, conn.transaction():
        await settle(conn, community_id)
        group = await repo.current_group(conn, community_id, for_update=True)
        if group is None or group["state"] != "posted":
            raise Conflict("筹备组名单不在公示期，不能提出异议", code="not_posted")
        number = await repo.insert_objection(conn, community_id, group["group_no"], filed_by, body)
        await audit.append(conn, community_id=community_id, actor=filed_by, action="prep_group.objection",
                           detail={"group_no": group["group_no"], "objection_no": number})
    return {"community_id": community_id, "group_no": group["group_no"], "objection_no": number,
            "message": "异议已提交，街道办事处将协调处理并答复"}


async def resolve_objection(pool: asyncpg.Pool, *, actor: str, community_id: str, objection_no: int,
                            data: dict) -> dict:
    outcome = data.get("outcome")
    if outcome not in ("upheld", "dismissed"):
        raise ValidationFailed("处理结果应为 upheld（异议成立）或 dismissed（异议不成立）", fields={"outcome": "upheld/dismissed"})
    reason = _text(data.get("reason"), "reason", "处理理由", 1000)
    async with pool.acquire() as conn, conn.transaction():
        group = await repo.current_group(conn, community_id, for_update=True)
        if group is None:
            raise NotFound("没有公示中的筹备组", code="prep_group_not_found")
        row = await repo.resolve_objection(conn, community_id, group["group_no"], objection_no, outcome=outcome,
                                           reason=reason, actor=actor)
        if row is None:
            raise Conflict("没有这条待处理的异议", code="objection_not_open")
        if outcome == "upheld":
            await repo.reject_group(conn, community_id, group["group_no"])
        await audit.append(conn, community_id=community_id, actor=actor, action="prep_group.objection_resolved",
                           detail={"group_no": group["group_no"], "objection_no": objection_no, "outcome": outcome})
        await settle(conn, community_id)
    return _jsonable(row) | {"group_state": "rejected" if outcome == "upheld" else group["state"]}


# --- 临时物业管理委员会 ---

async def create_temporary(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    raw = data.get("members")
    if not isinstance(raw, list) or not 3 <= len(raw) <= 21:
        raise ValidationFailed("临时物业管理委员会应有 3–21 名成员", fields={"members": "3–21"})
    members = []
    for i, m in enumerate(raw, start=1):
        if not isinstance(m, dict) or not isinstance(m.get("side"), str) or m["side"] not in TEMPORARY_SIDES:
            raise ValidationFailed(f"第 {i} 位成员的身份应为：{'、'.join(TEMPORARY_SIDES.values())}",
                                   fields={f"members[{i}].side": "、".join(TEMPORARY_SIDES)})
        members.append((_text(m.get("name"), f"members[{i}].name", "姓名", 50), m["side"],
                        _text(m.get("unit_label"), f"members[{i}].unit_label", "房号", 64, required=False)))
    if not {"street", "residents_committee", "owner"} <= {m[1] for m in members}:
        raise ValidationFailed("临时物业管理委员会由街道、社区及业主代表组成，三方都应有成员",
                               code="temporary_committee_sides")
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "temporary_committee", community_id)
        await settle(conn, community_id)
        if await repo.active_temporary(conn, community_id) is not None:
            raise Conflict("本小区已有临时物业管理委员会", code="temporary_committee_exists")
        standing = await repo.committee_standing(conn, community_id)
        if standing is not None and not standing["lapsed"]:
            raise Conflict("本小区业主委员会在任期内，不能成立临时物业管理委员会", code="committee_in_office")
        reason = "term_lapsed" if standing is not None else "no_committee"
        row = await repo.insert_temporary(conn, community_id, reason, actor)
        await repo.insert_temporary_members(conn, community_id, row["tc_no"], members)
        await audit.append(conn, community_id=community_id, actor=actor, action="temporary_committee.create",
                           detail={"tc_no": row["tc_no"], "reason": reason, "members": len(members)})
    return await temporary_committees(pool, community_id)


async def temporary_committees(pool: asyncpg.Pool, community_id: str) -> dict:
    async with pool.acquire() as conn:
        async with conn.transaction():
            await settle(conn, community_id)
        out = []
        for t in await repo.temporaries(conn, community_id):
            members = await repo.temporary_members(conn, community_id, t["tc_no"])
            meetings = await repo.convened_meetings(conn, community_id, t["tc_no"])
            out.append(_jsonable(t) | {
                "reason_name": "尚未选举业主委员会" if t["reason"] == "no_committee" else "业主委员会任期届满未换届",
                "members": [_jsonable(m) | {"side_name": TEMPORARY_SIDES[m["side"]],
                                            "masked_name": mask_name(m["name"])} for m in members],
                "meetings": [_jsonable(m) for m in meetings]})
    return {"community_id": community_id, "temporary_committees": out,
            "active": next((t["tc_no"] for t in out if t["ended_on"] is None), None)}


async def convene(pool: asyncpg.Pool, *, actor: str, community_id: str, meeting_id: str) -> dict:
    """The active temporary committee convenes a draft meeting in its own name (shown on its notice)."""
    async with pool.acquire() as conn, conn.transaction():
        await settle(conn, community_id)
        active = await repo.active_temporary(conn, community_id)
        if active is None:
            raise Conflict("本小区没有在任的临时物业管理委员会", code="no_temporary_committee")
        state = await repo.meeting_state(conn, community_id, meeting_id)
        if state is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        if state != "draft":
            raise Conflict("会议公告已发布，召集人不能再改", code="meeting_not_draft")
        await repo.set_convener(conn, community_id, meeting_id, active["tc_no"])
        await audit.append(conn, community_id=community_id, actor=actor, action="temporary_committee.convene",
                           detail={"tc_no": active["tc_no"], "meeting_id": meeting_id})
    return {"community_id": community_id, "meeting_id": meeting_id, "convener": "temporary_committee",
            "tc_no": active["tc_no"], "convener_name": "临时物业管理委员会"}
