"""`evote demo` step: an OPEN demo meeting (演示) on the demo community.

Resolutions of categories 2, 5, 6, 7 and 9 and a committee election (5 seats,
7 candidates).  The candidates go the real way (services, as the API does):
seven owners of the demo register are nominated by the preparatory group,
qualified, and attached to the election as candidates (names from the
register, statements below); only then is the notice published (it refuses
unvetted committee candidates).  The 15-day notice rule is real, so this DEMO
DATA backdates the notice by 16 days with one SQL statement after publishing
it; production has no such path.  Idempotent: an existing demo meeting is left
as it is, and owners already nominated for the committee are reused.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from server.devtools.fixtures import backdate_notice
from server.repositories import meetings as repo
from server.repositories import register as register_repo
from server.services import meetings as meetings_service
from server.services import nominations as nominations_service
from server.services.effects import Effects

DEMO_MEETING = "demo-2026-01"
ACTOR = "demo"

# Profiles of the seven demo nominees (party membership, statement); names and units come from the register.
DEMO_PROFILES = [
    (True, "退休工程师，熟悉电梯和消防设施维护"),
    (False, "社区志愿者，愿意为邻里跑腿办事"),
    (True, "会计师，可协助管理维修资金账目"),
    (False, "教师，重视小区环境和儿童安全"),
    (False, "律师，熟悉物业合同和业主权益"),
    (True, "在小区居住十年，了解历史遗留问题"),
    (False, "个体经营者，时间灵活，愿意多值班"),
]

DEMO_MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "category": 2, "title": "表决通过《管理规约》（修订稿）",
     "description": "修订稿已于公告栏张贴，主要修改了停车和装修管理条款。"},
    {"matter_id": "M2", "kind": "resolution", "category": 5, "title": "使用维修资金更换 3 号楼电梯",
     "description": "预算 48 万元，从 3 号楼维修资金分户账中列支。"},
    {"matter_id": "M3", "kind": "resolution", "category": 6, "title": "续筹维修资金（每平方米 20 元）"},
    {"matter_id": "M4", "kind": "resolution", "category": 7, "title": "改建小区南门及增设无障碍坡道"},
    {"matter_id": "M5", "kind": "resolution", "category": 9, "title": "同意设立业主大会银行账户"},
    {"matter_id": "E1", "kind": "election", "category": 3, "body": "committee", "seats": 5,
     "title": "选举第一届业主委员会委员", "candidates": []},
]


async def _qualified_demo_nominees(pool: asyncpg.Pool, community_id: str) -> list[int]:
    """Seven owners of the register (holders of a dwelling, in owner order) nominated by the preparatory
    group and qualified, through the election services; live nominations of earlier runs are reused."""
    async with pool.acquire() as conn:
        version = await register_repo.latest_version(conn, community_id)
        assert version is not None, "the demo community has a register"
        rows = await register_repo.register_rows(conn, community_id, version)
    owners = list(dict.fromkeys(r.owner_id for r in rows
                                if r.holder == "owner" and r.representative and r.kind == "dwelling"))
    live = {n["owner_id"]: n for n in await nominations_service.list_nominations(pool, community_id, body="committee")
            if n["status"] in ("pending", "qualified")}
    ids: list[int] = []
    for owner_id, (party_member, statement) in zip(owners, DEMO_PROFILES):
        nomination = live.get(owner_id) or await nominations_service.staff_nominate(
            pool, community_id, {"body": "committee", "owner_id": owner_id, "party_member": party_member,
                                 "statement": statement}, ACTOR)
        if nomination["status"] == "pending":
            nomination = await nominations_service.decide_nomination(pool, community_id, nomination["nomination_id"],
                                                                   qualified=True, reason="", actor=ACTOR)
        ids.append(nomination["nomination_id"])
    return ids


async def demo_meeting_step(pool: asyncpg.Pool, settings, info: dict) -> None:
    community_id = info["community_id"]
    async with pool.acquire() as conn:
        existing = await repo.get_meeting(conn, community_id, DEMO_MEETING)
    if existing is None:
        opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
        await meetings_service.create_meeting(pool, community_id=community_id, actor=ACTOR, data={
            "meeting_id": DEMO_MEETING, "title": "首次业主大会（演示）", "matters": DEMO_MATTERS,
            "rules": {"allow_revision": False}, "show_live_results": True,
            "opens_at": opens_at.isoformat(), "closes_at": (opens_at + timedelta(days=7)).isoformat()})
        nomination_ids = await _qualified_demo_nominees(pool, community_id)
        await nominations_service.attach_nominees(pool, community_id, DEMO_MEETING, "E1", nomination_ids, ACTOR)
        await meetings_service.publish_notice(pool, Effects(settings), community_id=community_id,
                                              meeting_id=DEMO_MEETING, actor=ACTOR)
        # DEMO DATA ONLY: pretend the notice went out 16 days ago so voting can start now.
        await backdate_notice(pool, community_id, DEMO_MEETING, opened_ago=timedelta(0))
        await meetings_service.open_meeting(pool, Effects(settings), community_id=community_id,
                                            meeting_id=DEMO_MEETING, actor=ACTOR)
    info["meeting_id"] = DEMO_MEETING
    info.setdefault("links", []).append(
        ("meeting:", f"{settings.public_url}/api/admin/communities/{community_id}/meetings/{DEMO_MEETING}"))
