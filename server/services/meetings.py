"""Meetings: drafting, the notice freeze, opening and closing.

Lifecycle ``draft -> noticed -> open -> closed -> published``; every transition
is one guarded ``UPDATE ... WHERE state = <from>`` plus a ``meeting_transition``
row and an audit entry in the same transaction, so two workers (or a worker and
an organiser) never make the same transition twice.  The database refuses any
change to the matters, candidates, electorate, rules or totals of a noticed
meeting (migration 0010), whatever code path tries.

Transitions take an :class:`~server.services.effects.Effects`: after the
transaction commits they announce the new state to live views, and a close runs
the close hooks the application listed at set-up (signing the result, forming
the committee).  A failing hook is logged and does not undo the close.
"""
from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from server.ballot.amounts import format_area
from server.ballot.rules import THRESHOLD_NAMES, threshold_for_category
from server.ballot.tally import RULE_DEFAULTS, RULE_KEYS, RuleProblem, Rules
from server.ballot.weights import RegisterInvalid, compute_electorate
from server.errors import Conflict, NotFound, ValidationFailed, missing_field
from server.repositories import communities as community_repo
from server.repositories import elections as election_repo
from server.repositories import meetings as repo
from server.repositories import register as register_repo
from server.services import audit
from server.services.effects import Effects

log = logging.getLogger("evote.meetings")

# 《业主大会和业主委员会指导规则》: the notice is published at least 15 days before the meeting.
NOTICE_DAYS = 15
NOTICE_RULE = "《业主大会和业主委员会指导规则》/ 议事规则：会议通知须在会议召开 15 日前公告"

STATES = ("draft", "noticed", "open", "closed", "published")
STATE_NAMES = {"draft": "草稿", "noticed": "已公告", "open": "投票中", "closed": "已结束", "published": "已公布"}
# Civil Code art. 278, items 1–9 (shown to owners next to each matter).
CATEGORY_NAMES = {
    1: "制定和修改业主大会议事规则",
    2: "制定和修改管理规约",
    3: "选举业主委员会或者更换业主委员会成员",
    4: "选聘和解聘物业服务企业或者其他管理人",
    5: "使用建筑物及其附属设施的维修资金",
    6: "筹集建筑物及其附属设施的维修资金",
    7: "改建、重建建筑物及其附属设施",
    8: "改变共有部分的用途或者利用共有部分从事经营活动",
    9: "有关共有和共同管理权利的其他重大事项",
}
BODIES = ("committee", "supervisory", "other")


_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MEETING_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def default_alternates(seats: int) -> int:
    """40 % of the seats, rounded half up, in integers: floor(0.4 * seats + 0.5)."""
    return (4 * seats + 5) // 10


# ---------------------------------------------------------------- input validation (no I/O)

def _text(data: dict, name: str, *, where: str, required: bool = True, max_length: int = 200,
          default: str = "") -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise missing_field(name, where=where)
        return default
    if not isinstance(value, str) or (required and not value.strip()):
        raise ValidationFailed(f"{where}{name} 应为非空文字", fields={name: "应为文字"})
    if len(value) > max_length:
        raise ValidationFailed(f"{where}{name} 过长（最多 {max_length} 字）", fields={name: f"最多 {max_length} 字"})
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValidationFailed(f"{where}{name} 含有无效字符", fields={name: "无效字符"})
    return value


def _int(data: dict, name: str, *, where: str, default: int | None = None) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(f"{where}{name} 应为整数", fields={name: "应为整数"})
    return value


def parse_time(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} 应为带时区的时间（如 2026-04-01T09:00:00+08:00）", fields={name: "时间格式"})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{name} 应为带时区的时间（如 2026-04-01T09:00:00+08:00）",
                               fields={name: "时间格式"}) from None
    if moment.tzinfo is None:
        raise ValidationFailed(f"{name} 须注明时区（如 +08:00）", fields={name: "缺少时区"})
    return moment


def check_rules(raw: Any, *, community_default_parking: bool, base: dict | None = None) -> dict:
    """bundle-format.md ``rules`` with every key filled in (count_parking_area from the community)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ValidationFailed("rules 应为对象", fields={"rules": "应为对象"})
    unknown = sorted(set(raw) - set(RULE_KEYS))
    if unknown:
        raise ValidationFailed(f"rules 中有未知项：{', '.join(unknown)}", fields={"rules": f"未知项 {unknown}"})
    rules = dict(base or {**RULE_DEFAULTS, "count_parking_area": community_default_parking})
    rules.update(raw)
    try:
        return Rules.from_json(rules).to_json()
    except RuleProblem as exc:
        raise ValidationFailed(f"rules 有误：{exc}", fields={"rules": str(exc)}) from None


def check_candidates(raw: Any, *, where: str, taken: set[str] | None = None) -> list[dict]:
    if not isinstance(raw, list):
        raise ValidationFailed(f"{where}candidates 应为列表", fields={"candidates": "应为列表"})
    if len(raw) > 200:
        raise ValidationFailed(f"{where}候选人过多", fields={"candidates": "最多 200 人"})
    taken = set(taken or ())
    given = {c.get("candidate_id") for c in raw if isinstance(c, dict) and c.get("candidate_id")}
    out: list[dict] = []
    seen_people: set[tuple[str, str]] = set()
    counter = 0
    for index, item in enumerate(raw):
        label = f"{where}第 {index + 1} 位候选人的"
        if not isinstance(item, dict):
            raise ValidationFailed(f"{label}内容应为对象", fields={"candidates": "应为对象"})
        candidate_id = item.get("candidate_id")
        if candidate_id is None:
            counter += 1
            while f"C{counter}" in taken or f"C{counter}" in given:
                counter += 1
            candidate_id = f"C{counter}"
        if not isinstance(candidate_id, str) or not _ID.match(candidate_id):
            raise ValidationFailed(f"{label}编号应为 1–32 位字母、数字、_ 或 -", fields={"candidate_id": "格式不正确"})
        if candidate_id in taken:
            raise ValidationFailed(f"候选人编号 {candidate_id} 重复", code="duplicate_candidate",
                                   fields={"candidate_id": "重复"})
        taken.add(candidate_id)
        name = _text(item, "name", where=label, max_length=100)
        unit_label = _text(item, "unit_label", where=label, required=False, max_length=100)
        if (name, unit_label) in seen_people:
            raise ValidationFailed(f"候选人 {name}（{unit_label or '未填房号'}）重复", code="duplicate_candidate",
                                   fields={"name": "重复"})
        seen_people.add((name, unit_label))
        party_member = item.get("party_member", False)
        if not isinstance(party_member, bool):
            raise ValidationFailed(f"{label}party_member 应为 true 或 false", fields={"party_member": "布尔值"})
        out.append({"candidate_id": candidate_id, "name": name, "unit_label": unit_label,
                    "party_member": party_member,
                    "statement": _text(item, "statement", where=label, required=False, max_length=2000)})
    return out


def check_matter(raw: Any, *, index: int, matter_id: str) -> dict:
    """One matter from JSON; ``matter_id`` is the id to use (given or assigned)."""
    where = f"第 {index} 个议题的"
    if not isinstance(raw, dict):
        raise ValidationFailed(f"{where}内容应为对象", fields={"matters": "应为对象"})
    kind = raw.get("kind", "resolution")
    if kind not in ("resolution", "election"):
        raise ValidationFailed(f"{where}kind 应为 resolution（决议）或 election（选举）", fields={"kind": "无效"})
    matter = {"matter_id": matter_id, "kind": kind, "title": _text(raw, "title", where=where),
              "description": _text(raw, "description", where=where, required=False, max_length=5000)}
    category = _int(raw, "category", where=where, default=3 if kind == "election" else None)
    try:
        threshold_for_category(category)
    except ValueError:
        raise ValidationFailed(f"{where}类别应为《民法典》第二百七十八条第 1–9 项", code="bad_category",
                               fields={"category": "1–9"}) from None
    matter["category"] = category
    if kind == "resolution":
        extra = [k for k in ("seats", "alternates", "body", "candidates") if raw.get(k) is not None]
        if extra:
            raise ValidationFailed(f"{where}决议事项不应有 {', '.join(extra)}", fields={extra[0]: "决议无此项"})
        return matter
    body = raw.get("body", "other")
    if body not in BODIES:
        raise ValidationFailed(f"{where}body 应为 committee（业主委员会）、supervisory（监事会）或 other",
                               fields={"body": "无效"})
    seats = _int(raw, "seats", where=where)
    if seats < 1:
        raise ValidationFailed(f"{where}应选人数至少为 1", code="bad_seats", fields={"seats": "至少 1"})
    if body == "committee" and not (5 <= seats <= 11 and seats % 2 == 1):
        raise ValidationFailed("业主委员会委员应为 5 至 11 人的单数", code="bad_seats", fields={"seats": "5–11 单数"})
    if body == "supervisory" and not 3 <= seats <= 5:
        raise ValidationFailed("监事会成员应为 3 至 5 人", code="bad_seats", fields={"seats": "3–5"})
    alternates = _int(raw, "alternates", where=where, default=default_alternates(seats))
    if alternates < 0:
        raise ValidationFailed(f"{where}候补人数不能为负", fields={"alternates": "不能为负"})
    matter.update(seats=seats, alternates=alternates, body=body,
                  candidates=check_candidates(raw.get("candidates", []), where=where))
    return matter


def assign_matter_ids(raw_matters: list, taken: set[str]) -> list[str]:
    """Ids for a list of raw matters: the given ones, else M1, M2 … (resolutions) / E1 … (elections)."""
    given = {m.get("matter_id") for m in raw_matters if isinstance(m, dict) and m.get("matter_id") is not None}
    ids: list[str] = []
    used = set(taken)
    for index, raw in enumerate(raw_matters, start=1):
        matter_id = raw.get("matter_id") if isinstance(raw, dict) else None
        if matter_id is None:
            prefix = "E" if isinstance(raw, dict) and raw.get("kind") == "election" else "M"
            n = 1
            while f"{prefix}{n}" in used or f"{prefix}{n}" in given:
                n += 1
            matter_id = f"{prefix}{n}"
        if not isinstance(matter_id, str) or not _ID.match(matter_id):
            raise ValidationFailed(f"第 {index} 个议题的编号应为 1–32 位字母、数字、_ 或 -",
                                   fields={"matter_id": "格式不正确"})
        if matter_id in used:
            raise ValidationFailed(f"议题编号 {matter_id} 重复", code="duplicate_matter", fields={"matter_id": "重复"})
        used.add(matter_id)
        ids.append(matter_id)
    return ids


def check_window(opens_at: datetime | None, closes_at: datetime | None) -> None:
    if opens_at and closes_at and closes_at <= opens_at:
        raise ValidationFailed("投票结束时间应晚于开始时间", code="bad_window", fields={"closes_at": "应晚于 opens_at"})


# ---------------------------------------------------------------- documents

def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def matter_document(matter: asyncpg.Record | dict, candidates: list) -> dict:
    threshold = threshold_for_category(matter["category"])
    doc = {"matter_id": matter["matter_id"], "position": matter["position"], "kind": matter["kind"],
           "title": matter["title"], "description": matter["description"], "category": matter["category"],
           "category_name": CATEGORY_NAMES[matter["category"]], "threshold": threshold,
           "threshold_name": THRESHOLD_NAMES[threshold]}
    if matter["kind"] == "election":
        doc.update(seats=matter["seats"], alternates=matter["alternates"], body=matter["body"],
                   candidates=[{"candidate_id": c["candidate_id"], "position": c["position"], "name": c["name"],
                                "unit_label": c["unit_label"], "party_member": c["party_member"],
                                "statement": c["statement"]} for c in candidates])
    return doc


def meeting_document(meeting: dict, matters: list | None = None, candidates: list | None = None) -> dict:
    doc = {
        "community_id": meeting["community_id"], "meeting_id": meeting["meeting_id"], "title": meeting["title"],
        "state": meeting["state"], "state_name": STATE_NAMES[meeting["state"]], "rules": meeting["rules"],
        "show_live_results": meeting["show_live_results"],
        "opens_at": _iso(meeting["opens_at"]), "closes_at": _iso(meeting["closes_at"]),
        "register_version": meeting["register_version"],
        "totals": None if meeting["total_area"] is None else
        {"area": format_area(meeting["total_area"]), "persons": meeting["total_persons"]},
        "noticed_at": _iso(meeting["noticed_at"]), "opened_at": _iso(meeting["opened_at"]),
        "closed_at": _iso(meeting["closed_at"]), "published_at": _iso(meeting["published_at"]),
        "created_by": meeting["created_by"], "created_at": _iso(meeting["created_at"]),
    }
    if "matter_count" in meeting:
        doc["matter_count"] = meeting["matter_count"]
    if matters is not None:
        by_matter: dict[str, list] = {}
        for c in candidates or []:
            by_matter.setdefault(c["matter_id"], []).append(c)
        doc["matters"] = [matter_document(m, by_matter.get(m["matter_id"], [])) for m in matters]
    return doc


async def load_document(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    meeting = await repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    return meeting_document(meeting, await repo.list_matters(conn, community_id, meeting_id),
                            await repo.list_candidates(conn, community_id, meeting_id))


# ---------------------------------------------------------------- drafting

async def _locked_draft(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    meeting = await repo.get_meeting(conn, community_id, meeting_id, lock="update")
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    if meeting["state"] != "draft":
        raise Conflict("会议通知已发布，议题、候选人和规则不能再修改", code="meeting_not_draft",
                       fields={"state": meeting["state"]})
    return meeting


async def create_meeting(pool: asyncpg.Pool, *, community_id: str, data: dict, actor: str) -> dict:
    async with pool.acquire() as conn:
        community = await community_repo.get_community(conn, community_id)
    if community is None:
        raise NotFound("小区不存在", code="community_not_found")
    meeting_id = data.get("meeting_id") or f"m-{secrets.token_hex(4)}"
    if not isinstance(meeting_id, str) or not _MEETING_ID.match(meeting_id):
        raise ValidationFailed("会议编号应为 1–64 位字母、数字、_ 或 -", fields={"meeting_id": "格式不正确"})
    title = _text(data, "title", where="会议的")
    rules = check_rules(data.get("rules"), community_default_parking=community["count_parking_area"])
    show_live = data.get("show_live_results", False)
    if not isinstance(show_live, bool):
        raise ValidationFailed("show_live_results 应为 true 或 false", fields={"show_live_results": "布尔值"})
    opens_at, closes_at = parse_time(data.get("opens_at"), "opens_at"), parse_time(data.get("closes_at"), "closes_at")
    check_window(opens_at, closes_at)
    raw_matters = data.get("matters", [])
    if not isinstance(raw_matters, list) or len(raw_matters) > 100:
        raise ValidationFailed("matters 应为列表（最多 100 个议题）", fields={"matters": "列表"})
    ids = assign_matter_ids(raw_matters, set())
    matters = [check_matter(raw, index=i, matter_id=mid) for i, (raw, mid) in enumerate(zip(raw_matters, ids), 1)]
    async with pool.acquire() as conn, conn.transaction():
        try:
            await repo.insert_meeting(conn, community_id=community_id, meeting_id=meeting_id, title=title,
                                      rules=rules, show_live_results=show_live, opens_at=opens_at,
                                      closes_at=closes_at, created_by=actor)
        except asyncpg.UniqueViolationError:
            raise Conflict("该会议编号已存在", code="meeting_exists") from None
        for position, matter in enumerate(matters, start=1):
            await repo.insert_matter(conn, community_id, meeting_id, matter, position)
            if matter["kind"] == "election" and matter["candidates"]:
                await repo.insert_candidates(conn, community_id, meeting_id, matter["matter_id"],
                                             matter["candidates"], 1)
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id, from_state=None,
                                     to_state="draft", actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.create",
                           detail={"meeting_id": meeting_id, "title": title, "rules": rules,
                                   "matters": [m["matter_id"] for m in matters]})
        return await load_document(conn, community_id, meeting_id)


async def update_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, data: dict,
                         actor: str) -> dict:
    unknown = sorted(set(data) - {"title", "rules", "show_live_results", "opens_at", "closes_at"})
    if unknown:
        raise ValidationFailed(f"不能修改：{', '.join(unknown)}", fields={k: "不可修改" for k in unknown})
    async with pool.acquire() as conn, conn.transaction():
        meeting = await _locked_draft(conn, community_id, meeting_id)
        changes: dict = {}
        if "title" in data:
            changes["title"] = _text(data, "title", where="会议的")
        if "rules" in data:
            changes["rules"] = check_rules(data["rules"], community_default_parking=False, base=meeting["rules"])
        if "show_live_results" in data:
            if not isinstance(data["show_live_results"], bool):
                raise ValidationFailed("show_live_results 应为 true 或 false", fields={"show_live_results": "布尔值"})
            changes["show_live_results"] = data["show_live_results"]
        for name in ("opens_at", "closes_at"):
            if name in data:
                changes[name] = parse_time(data[name], name)
        check_window(changes.get("opens_at", meeting["opens_at"]), changes.get("closes_at", meeting["closes_at"]))
        await repo.update_draft(conn, community_id, meeting_id, changes)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.update",
                           detail={"meeting_id": meeting_id, "changes": changes})
        return await load_document(conn, community_id, meeting_id)


async def add_matter(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, data: dict, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        taken = {m["matter_id"] for m in await repo.list_matters(conn, community_id, meeting_id)}
        [matter_id] = assign_matter_ids([data], taken)
        matter = check_matter(data, index=len(taken) + 1, matter_id=matter_id)
        position = await repo.next_matter_position(conn, community_id, meeting_id)
        await repo.insert_matter(conn, community_id, meeting_id, matter, position)
        if matter["kind"] == "election" and matter["candidates"]:
            await repo.insert_candidates(conn, community_id, meeting_id, matter_id, matter["candidates"], 1)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.matter.add",
                           detail={"meeting_id": meeting_id, "matter": matter})
        doc = await load_document(conn, community_id, meeting_id)
    return next(m for m in doc["matters"] if m["matter_id"] == matter_id)


MATTER_EDITABLE = ("title", "description", "category", "seats", "alternates", "body")


async def update_matter(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, matter_id: str, data: dict,
                        actor: str) -> dict:
    """Change a draft matter's title, description, category, seats, alternates or body.

    The result is checked again with :func:`check_matter` (committee 5–11 odd, supervisory 3–5).
    When ``seats`` changes and ``alternates`` is not given, alternates become the default 40 %.
    The kind (resolution / election) and the id cannot change; candidates have their own routes.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("请求内容应为对象")
    kind = data.get("kind")
    unknown = sorted(set(data) - set(MATTER_EDITABLE) - {"kind"})
    if unknown:
        raise ValidationFailed(f"不能修改：{', '.join(unknown)}", fields={k: "不可修改" for k in unknown})
    if not set(data) & {*MATTER_EDITABLE, "kind"}:
        raise ValidationFailed("没有要修改的内容", fields={"matter": "至少修改一项"})
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        matters = await repo.list_matters(conn, community_id, meeting_id)
        index, current = next(((i, m) for i, m in enumerate(matters, start=1) if m["matter_id"] == matter_id),
                              (None, None))
        if current is None:
            raise NotFound("找不到该议题", code="matter_not_found")
        if kind is not None and kind != current["kind"]:
            raise ValidationFailed("议题类型（决议或选举）不能修改，请删除后重新添加", code="kind_unchangeable",
                                   fields={"kind": "不可修改"})
        merged = {"kind": current["kind"], "title": current["title"], "description": current["description"],
                  "category": current["category"]}
        if current["kind"] == "election" and await election_repo.get_runoff(conn, community_id, meeting_id,
                                                                            matter_id) is not None:
            fixed = sorted(set(data) & {"seats", "alternates", "body"})
            if fixed:
                raise Conflict("另行选举的席位和机构由原选举结果决定，不能修改", code="runoff_places_fixed",
                               fields={k: "不可修改" for k in fixed})
            # Its places come from the runoff plan (maybe fewer than 5): check only the text and category.
            text = {k: v for k, v in data.items() if k in ("title", "description", "category")}
            checked = check_matter(merged | text | {"kind": "resolution"}, index=index, matter_id=matter_id)
            matter = {**checked, "kind": "election", "seats": current["seats"], "alternates": current["alternates"],
                      "body": current["body"]}
        else:
            if current["kind"] == "election":
                merged.update(seats=current["seats"], body=current["body"])
                if "seats" not in data or "alternates" in data:
                    merged["alternates"] = current["alternates"]   # else check_matter gives the default 40 %
            merged.update({k: v for k, v in data.items() if k in MATTER_EDITABLE})
            matter = check_matter(merged, index=index, matter_id=matter_id)
        changes = {k: [current[k], matter.get(k)] for k in MATTER_EDITABLE if current[k] != matter.get(k)}
        if changes:
            await repo.update_matter(conn, community_id, meeting_id, matter)
            await audit.append(conn, community_id=community_id, actor=actor, action="meeting.matter.update",
                               detail={"meeting_id": meeting_id, "matter_id": matter_id, "changes": changes})
        doc = await load_document(conn, community_id, meeting_id)
    return next(m for m in doc["matters"] if m["matter_id"] == matter_id)


async def remove_matter(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, matter_id: str,
                        actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        if not await repo.delete_matter(conn, community_id, meeting_id, matter_id):
            raise NotFound("找不到该议题", code="matter_not_found")
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.matter.remove",
                           detail={"meeting_id": meeting_id, "matter_id": matter_id})


async def add_candidates(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, matter_id: str,
                         data: dict, actor: str) -> dict:
    """Add one candidate (the body is a candidate) or several (``{"candidates": [...]}``)."""
    raw = data.get("candidates", [data])
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        matter = next((m for m in await repo.list_matters(conn, community_id, meeting_id)
                       if m["matter_id"] == matter_id), None)
        if matter is None:
            raise NotFound("找不到该议题", code="matter_not_found")
        if matter["kind"] != "election":
            raise ValidationFailed("只有选举事项才有候选人", code="not_an_election")
        existing = [c for c in await repo.list_candidates(conn, community_id, meeting_id)
                    if c["matter_id"] == matter_id]
        candidates = check_candidates(raw, where="", taken={c["candidate_id"] for c in existing})
        people = {(c["name"], c["unit_label"]) for c in existing}
        for c in candidates:
            if (c["name"], c["unit_label"]) in people:
                raise ValidationFailed(f"候选人 {c['name']} 已在名单中", code="duplicate_candidate",
                                       fields={"name": "重复"})
        position = await repo.next_candidate_position(conn, community_id, meeting_id, matter_id)
        await repo.insert_candidates(conn, community_id, meeting_id, matter_id, candidates, position)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.candidate.add",
                           detail={"meeting_id": meeting_id, "matter_id": matter_id, "candidates": candidates})
        doc = await load_document(conn, community_id, meeting_id)
    return next(m for m in doc["matters"] if m["matter_id"] == matter_id)


async def remove_candidate(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, matter_id: str,
                           candidate_id: str, actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        if not await repo.delete_candidate(conn, community_id, meeting_id, matter_id, candidate_id):
            raise NotFound("找不到该候选人", code="candidate_not_found")
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.candidate.remove",
                           detail={"meeting_id": meeting_id, "matter_id": matter_id, "candidate_id": candidate_id})


# ---------------------------------------------------------------- transitions

async def refuse_unvetted_candidates(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> None:
    """Only qualified candidates reach a committee or supervisory-board ballot.

    The preparatory group checks candidates (《业主大会和业主委员会指导规则》); a candidate typed
    straight into such a matter, with no qualified nomination behind it, stops the notice.
    """
    unvetted = await election_repo.unvetted_candidates(conn, community_id, meeting_id)
    if unvetted:
        by_matter: dict[str, list[str]] = {}
        for r in unvetted:
            by_matter.setdefault(r["matter_title"], []).append(r["name"])
        listed = "；".join(f"{title}：{'、'.join(names[:20])}{f' 等 {len(names)} 人' if len(names) > 20 else ''}"
                          for title, names in by_matter.items())
        raise Conflict(f"以下候选人未经资格审查，不能列入选票（{listed}）。"
                       f"请先提名并通过资格审查，再从提名中添加候选人", code="candidates_not_qualified",
                       fields={"candidates": [{"matter_id": r["matter_id"], "candidate_id": r["candidate_id"],
                                               "name": r["name"]} for r in unvetted]})


async def publish_notice(pool: asyncpg.Pool, effects: Effects, *, community_id: str, meeting_id: str,
                         actor: str) -> dict:
    """draft -> noticed: freeze the latest register version, the electorate, the totals and the matters."""
    doc = await _publish_notice(pool, community_id=community_id, meeting_id=meeting_id, actor=actor)
    await effects.state_changed(community_id, meeting_id, "noticed")
    return doc


async def _publish_notice(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        meeting = await _locked_draft(conn, community_id, meeting_id)
        matters = await repo.list_matters(conn, community_id, meeting_id)
        if not matters:
            raise Conflict("会议还没有任何议题，不能发布通知", code="no_matters")
        with_candidates = {c["matter_id"] for c in await repo.list_candidates(conn, community_id, meeting_id)}
        empty = [m["matter_id"] for m in matters if m["kind"] == "election" and m["matter_id"] not in with_candidates]
        if empty:
            raise Conflict(f"选举事项 {', '.join(empty)} 还没有候选人", code="election_without_candidates",
                           fields={"matters": empty})
        if meeting["opens_at"] is None:
            raise Conflict("请先设定投票开始时间（opens_at）", code="opens_at_missing", fields={"opens_at": "必填"})
        now = await conn.fetchval("SELECT clock_timestamp()")
        earliest = now + timedelta(days=NOTICE_DAYS)
        if meeting["opens_at"] < earliest:
            raise Conflict(f"投票开始时间过早。{NOTICE_RULE}；按今天发布通知，最早可于 "
                           f"{earliest.isoformat(timespec='minutes')} 开始投票",
                           code="notice_period_not_met",
                           fields={"opens_at": "至少在通知发布 15 日后", "earliest": earliest.isoformat()})
        version = await register_repo.latest_version(conn, community_id)
        if version is None:
            raise Conflict("该小区还没有导入业主登记册，不能发布通知", code="register_missing")
        rows = await register_repo.register_rows(conn, community_id, version)
        try:
            electorate = compute_electorate(rows, meeting["rules"]["count_parking_area"])
        except RegisterInvalid as exc:
            if any(p.code == "empty_electorate" for p in exc.problems):
                raise Conflict("登记册中没有任何有表决权的业主，不能发布通知", code="electorate_empty") from None
            raise Conflict(f"登记册有问题：{exc}", code="register_invalid") from None
        await refuse_unvetted_candidates(conn, community_id, meeting_id)
        await repo.copy_electorate(conn, [
            (community_id, meeting_id, s.owner_id, s.area, s.buildings[0], list(s.units))
            for s in electorate.subjects.values()])
        await repo.mark_noticed(conn, community_id, meeting_id, register_version=version,
                                total_area=electorate.total_area, total_persons=electorate.total_persons)
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id, from_state="draft",
                                     to_state="noticed", actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.notice",
                           detail={"meeting_id": meeting_id, "register_version": version,
                                   "total_area": format_area(electorate.total_area),
                                   "total_persons": electorate.total_persons,
                                   "matters": [m["matter_id"] for m in matters]})
        return await load_document(conn, community_id, meeting_id)


async def open_meeting(pool: asyncpg.Pool, effects: Effects, *, community_id: str, meeting_id: str,
                       actor: str) -> dict:
    """noticed -> open by hand, refused before the 15-day notice period has passed."""
    doc = await _open_meeting(pool, community_id=community_id, meeting_id=meeting_id, actor=actor)
    await effects.state_changed(community_id, meeting_id, "open")
    return doc


async def _open_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        meeting = await repo.get_meeting(conn, community_id, meeting_id, lock="update")
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        if meeting["state"] != "noticed":
            raise Conflict(f"会议当前为“{STATE_NAMES[meeting['state']]}”，不能开始投票", code="wrong_state",
                           fields={"state": meeting["state"]})
        opened = await repo.open_by_hand(conn, community_id, meeting_id, NOTICE_DAYS)
        if opened is None:
            earliest = meeting["noticed_at"] + timedelta(days=NOTICE_DAYS)
            raise Conflict(f"通知发布未满 15 日，不能开始投票。{NOTICE_RULE}；最早可于 "
                           f"{earliest.isoformat(timespec='minutes')} 开始",
                           code="notice_period_not_met", fields={"earliest": earliest.isoformat()})
        note = ""
        if meeting["opens_at"] and opened["opens_at"] < meeting["opens_at"]:
            note = f"opened by hand before the announced time {meeting['opens_at'].isoformat()}"
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id,
                                     from_state="noticed", to_state="open", actor=actor, note=note)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.open",
                           detail={"meeting_id": meeting_id, "note": note})
        return await load_document(conn, community_id, meeting_id)


async def close_meeting(pool: asyncpg.Pool, effects: Effects, *, community_id: str, meeting_id: str,
                        actor: str) -> dict:
    """open -> closed by hand; then the close is announced and the close hooks run."""
    doc = await _close_meeting(pool, community_id=community_id, meeting_id=meeting_id, actor=actor)
    await effects.meeting_closed(pool, community_id, meeting_id)
    return doc


async def _close_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        meeting = await repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        # The guarded UPDATE waits for votes in flight (they hold the row FOR SHARE).
        closed_at = await repo.close_by_hand(conn, community_id, meeting_id)
        if closed_at is None:
            state = (await repo.get_meeting(conn, community_id, meeting_id))["state"]
            raise Conflict(f"会议当前为“{STATE_NAMES[state]}”，不能结束投票", code="wrong_state",
                           fields={"state": state})
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id, from_state="open",
                                     to_state="closed", actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.close",
                           detail={"meeting_id": meeting_id})
        return await load_document(conn, community_id, meeting_id)


async def record_scheduled(conn: asyncpg.Connection, rows: list, *, from_state: str, to_state: str,
                           actor: str) -> None:
    for row in rows:
        await repo.insert_transition(conn, community_id=row["community_id"], meeting_id=row["meeting_id"],
                                     from_state=from_state, to_state=to_state, actor=actor)
        await audit.append(conn, community_id=row["community_id"], actor=actor, action=f"meeting.{to_state}",
                           detail={"meeting_id": row["meeting_id"], "scheduled": True})


async def transitions(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> list[dict]:
    async with pool.acquire() as conn:
        if await repo.get_meeting(conn, community_id, meeting_id) is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        rows = await repo.list_transitions(conn, community_id, meeting_id)
    return [{"seq": r["seq"], "from": r["from_state"], "to": r["to_state"], "actor": r["actor"],
             "at": r["at"].isoformat(), "note": r["note"]} for r in rows]
