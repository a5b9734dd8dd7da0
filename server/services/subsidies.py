"""The property-management choice a community's assembly made, and the district's subsidy report
(docs/district.md).

The seed plan pays, per household, 100 yuan when the assembly chose a state-owned, street or 社区
property company and 30 yuan for any other company, to the street for the preparatory group's costs;
civil servants and public-institution staff may not receive it.  The choice is recorded only with its
source: a passed matter (category 4, 选聘或解聘物业) of a published result.
"""
from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg

from server.auth.staff import StaffPrincipal
from server.ballot import campaign as rules
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import campaigns as repo
from server.repositories import locks
from server.services import audit
from server.services.campaigns import board_scope

MODES = {"property_company": "选聘物业服务企业", "self_managed": "自主管理"}
EMPLOYMENTS = rules.EMPLOYMENTS
MANAGEMENT_CATEGORY = 4


def _choice(value: Any, allowed: dict[str, str], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationFailed(f"{name} 只能是 {', '.join(allowed)} 之一", fields={name: "、".join(allowed.values())})
    return str(value)


def _passed(result_json: str, matter_id: str) -> bool:
    doc = json.loads(result_json)
    return any(m.get("id") == matter_id and m.get("outcome") == "passed" for m in doc.get("matters", []))


async def record_management(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    mode = _choice(data.get("mode"), MODES, "mode")
    company = contract_type = None
    if mode == "property_company":
        company = data.get("company")
        if not isinstance(company, str) or not 1 <= len(company.strip()) <= 200:
            raise ValidationFailed("请填写物业服务企业名称", fields={"company": "必填"})
        company = company.strip()
        contract_type = _choice(data.get("contract_type"), rules.CONTRACT_NAMES, "contract_type")
    meeting_id, matter_id = data.get("meeting_id"), data.get("matter_id")
    if not isinstance(meeting_id, str) or not isinstance(matter_id, str):
        raise ValidationFailed("请指明作出该决定的会议和议题", fields={"meeting_id": "必填", "matter_id": "必填"})
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "management", community_id)
        source = await repo.matter_with_result(conn, community_id, meeting_id[:64], matter_id[:32])
        if source is None:
            raise NotFound("没有这个议题", code="matter_not_found")
        if source["category"] != MANAGEMENT_CATEGORY:
            raise Conflict("物业管理方式须由“选聘或解聘物业服务企业”类议题（第 4 类）决定",
                           code="not_a_management_matter")
        if source["result_status"] not in ("preliminary", "final") or not _passed(source["result_json"], matter_id):
            raise Conflict("该议题尚未在已公布的表决结果中通过", code="matter_not_passed")
        row = await repo.insert_management_choice(
            conn, community_id=community_id, choice_no=await repo.next_choice_no(conn, community_id), mode=mode,
            company=company, contract_type=contract_type, decided_on=source["published_on"],
            meeting_id=meeting_id, matter_id=matter_id, actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="management.record",
                           detail={"mode": mode, "contract_type": contract_type, "meeting_id": meeting_id,
                                   "matter_id": matter_id})
    return _row(row)


def _row(row: asyncpg.Record) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}


async def management_history(pool: asyncpg.Pool, community_id: str) -> list[dict]:
    async with pool.acquire() as conn:
        return [_row(r) for r in await repo.management_choices(conn, community_id)]


async def add_recipient(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    name = data.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 50:
        raise ValidationFailed("请填写姓名", fields={"name": "必填"})
    duty = data.get("duty") or ""
    if not isinstance(duty, str) or len(duty) > 50:
        raise ValidationFailed("职责不超过 50 字", fields={"duty": "不超过 50 字"})
    employment = _choice(data.get("employment"), EMPLOYMENTS, "employment")
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "subsidy-recipient", community_id)
        number = await repo.insert_recipient(conn, community_id=community_id, name=name.strip(), duty=duty,
                                             employment=employment, actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="subsidy.recipient",
                           detail={"recipient_no": number, "employment": employment})
    return {"community_id": community_id, "recipient_no": number, "name": name.strip(), "duty": duty,
            "employment": employment, "payable": employment not in rules.NOT_PAYABLE}


async def subsidy_report(pool: asyncpg.Pool, principal: StaffPrincipal, campaign_id: str, *,
                         street_id: str | None = None, today: date | None = None) -> dict:
    """Per community: households, contract, rate and amount (fen) once eligible (committee formed and a
    property company chosen), and its recipients with those who may not be paid marked; per street and in all."""
    async with pool.acquire() as conn:
        if await repo.get_campaign(conn, campaign_id) is None:
            raise NotFound("没有这个工作计划", code="campaign_not_found")
        street_filter, shequ_filter = await board_scope(conn, principal, street_id)
        rows = await repo.campaign_facts(conn, campaign_id, street_id=street_filter, shequ_ids=shequ_filter)
        people = await repo.recipients(conn, [r["community_id"] for r in rows])
    by_community: dict[str, list[dict]] = {}
    for p in people:
        by_community.setdefault(p["community_id"], []).append(
            {"recipient_no": p["recipient_no"], "name": p["name"], "duty": p["duty"], "employment": p["employment"],
             "payable": p["employment"] not in rules.NOT_PAYABLE,
             "reason": rules.NOT_PAYABLE.get(p["employment"], "")})
    communities: list[dict] = []
    streets: dict[str, dict] = {}
    for r in rows:
        eligible = (r["committee_formed_on"] is not None and r["management_mode"] == "property_company")
        amount = rules.subsidy_fen(r["households"], r["contract_type"]) if eligible else 0
        recipients = by_community.get(r["community_id"], [])
        communities.append({
            "community_id": r["community_id"], "name": r["name"], "street_id": r["street_id"],
            "street_name": r["street_name"], "shequ_id": r["shequ_id"], "households": r["households"],
            "management_mode": r["management_mode"], "company": r["company"], "contract_type": r["contract_type"],
            "contract_name": rules.CONTRACT_NAMES.get(r["contract_type"] or "", ""),
            "yuan_per_household": rules.SUBSIDY_YUAN.get(r["contract_type"] or "", 0) if eligible else 0,
            "eligible": eligible, "amount_fen": amount, "recipients": recipients,
            "payable_recipients": sum(p["payable"] for p in recipients)})
        s = streets.setdefault(r["street_id"], {"street_id": r["street_id"], "street_name": r["street_name"],
                                                "communities": 0, "eligible": 0, "households": 0, "amount_fen": 0})
        s["communities"] += 1
        s["eligible"] += eligible
        s["households"] += r["households"] if eligible else 0
        s["amount_fen"] += amount
    return {"campaign_id": campaign_id, "communities": communities, "streets": list(streets.values()),
            "total_fen": sum(c["amount_fen"] for c in communities),
            "eligible": sum(c["eligible"] for c in communities)}
