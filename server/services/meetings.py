"""Meetings: drafting, the notice freeze, opening and closing.

Lifecycle ``draft -> noticed -> open -> closed -> published`` (or ``voided`` from the first
three, server.services.voting_window); every transition
is one guarded ``UPDATE ... WHERE state = <from>`` plus a ``meeting_transition``
row and an audit entry in the same transaction, so two workers (or a worker and
an organiser) never make the same transition twice.  The database refuses any
change to the matters, candidates, electorate, rules or totals of a noticed
meeting (migration 0010), whatever code path tries.

What staff send is checked first, without I/O, by ``server.services.meeting_input``.
Transitions take an :class:`~server.services.effects.Effects`: after the
transaction commits they announce the new state to live views, and a close runs
the close hooks the application listed at set-up (signing the result, forming
the committee).  A failing hook is logged and does not undo the close.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta

import asyncpg

from server.ballot.amounts import format_area
from server.ballot.matter_templates import CATEGORY_NAMES, templates_document
from server.ballot.rules import THRESHOLD_NAMES, threshold_for_category
from server.ballot.weights import RegisterInvalid, compute_electorate
from server.errors import Conflict, NotFound, ValidationFailed
from server.repositories import clock
from server.repositories import communities as community_repo
from server.repositories import elections as election_repo
from server.repositories import meetings as repo
from server.repositories import personal_data as personal_data_repo
from server.repositories import register as register_repo
from server.repositories import window as window_repo
from server.services import attachments, audit, register_posting
from server.services.counting import electorate_records
from server.services.effects import Effects
from server.services.meeting_input import (
    assign_matter_ids,
    beijing_time,
    check_candidates,
    check_extension_limits,
    check_matter,
    check_meeting_id,
    check_rules,
    check_window,
    iso,
    parse_time,
    refuse_bad_scopes,
    scope_document,
    text_field,
)

log = logging.getLogger("evote.meetings")

# 《业主大会和业主委员会指导规则》: the notice is published at least 15 days before the meeting.
NOTICE_DAYS = 15
NOTICE_RULE = "《业主大会和业主委员会指导规则》/ 议事规则：会议通知须在会议召开 15 日前公告"

STATES = ("draft", "noticed", "open", "closed", "published", "voided")
STATE_NAMES = {"draft": "草稿", "noticed": "已公告", "open": "投票中", "closed": "已结束", "published": "已公布",
               "voided": "已作废"}


# ---------------------------------------------------------------- documents

def matter_document(matter: asyncpg.Record | dict, candidates: list) -> dict:
    threshold = threshold_for_category(matter["category"])
    doc = {"matter_id": matter["matter_id"], "position": matter["position"], "kind": matter["kind"],
           "title": matter["title"], "description": matter["description"], "category": matter["category"],
           "category_name": CATEGORY_NAMES[matter["category"]], "threshold": threshold,
           "threshold_name": THRESHOLD_NAMES[threshold], "scope": scope_document(matter.get("scope") or ())}
    if matter["kind"] == "election":
        doc.update(seats=matter["seats"], alternates=matter["alternates"], body=matter["body"],
                   candidates=[{"candidate_id": c["candidate_id"], "position": c["position"], "name": c["name"],
                                "unit_label": c["unit_label"], "party_member": c["party_member"],
                                "statement": c["statement"]} for c in candidates])
    return doc


def extension_document(row: asyncpg.Record | dict) -> dict:
    """One extension notice (延期公告) of a meeting."""
    return {"number": row["number"], "previous_closes_at": iso(row["previous_closes_at"]),
            "closes_at": iso(row["closes_at"]), "reason": row["reason"], "actor": row["actor"],
            "published_at": iso(row["published_at"])}


def meeting_document(meeting: dict, matters: list | None = None, candidates: list | None = None,
                     extensions: list | None = None) -> dict:
    doc = {
        "community_id": meeting["community_id"], "meeting_id": meeting["meeting_id"], "title": meeting["title"],
        "state": meeting["state"], "state_name": STATE_NAMES[meeting["state"]], "rules": meeting["rules"],
        "show_live_results": meeting["show_live_results"],
        "opens_at": iso(meeting["opens_at"]), "closes_at": iso(meeting["closes_at"]),
        "register_version": meeting["register_version"],
        "totals": None if meeting["total_area"] is None else
        {"area": format_area(meeting["total_area"], meeting["area_places"]), "persons": meeting["total_persons"]},
        "area_places": meeting.get("area_places"),
        "noticed_at": iso(meeting["noticed_at"]), "opened_at": iso(meeting["opened_at"]),
        "closed_at": iso(meeting["closed_at"]), "published_at": iso(meeting["published_at"]),
        "created_by": meeting["created_by"], "created_at": iso(meeting["created_at"]),
        "max_extensions": meeting["max_extensions"], "max_extension_days": meeting["max_extension_days"],
        "voided_at": iso(meeting["voided_at"]), "void_reason": meeting["void_reason"],
    }
    if extensions is not None:
        doc["extensions"] = [extension_document(e) for e in extensions]
    if "matter_count" in meeting:
        doc["matter_count"] = meeting["matter_count"]
    if matters is not None:
        by_matter: dict[str, list] = {}
        for c in candidates or []:
            by_matter.setdefault(c["matter_id"], []).append(c)
        doc["matters"] = [matter_document(m, by_matter.get(m["matter_id"], [])) for m in matters]
    return doc


def matter_templates() -> dict:
    """The matter templates (art. 278 item, kind, threshold in words): server.ballot.matter_templates."""
    return templates_document()


async def load_document(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    meeting = await repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    doc = meeting_document(meeting, await repo.list_matters(conn, community_id, meeting_id),
                           await repo.list_candidates(conn, community_id, meeting_id),
                           await window_repo.list_extensions(conn, community_id, meeting_id))
    doc["attachments"] = await attachments.notice_detail(conn, community_id, meeting_id)
    return doc


async def get_meeting(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    async with pool.acquire() as conn:
        return await load_document(conn, community_id, meeting_id)


async def list_meetings(pool: asyncpg.Pool, community_id: str) -> list[dict]:
    """The community's meetings, newest first, without their matters (with ``matter_count``)."""
    async with pool.acquire() as conn:
        rows = await repo.list_meetings(conn, community_id)
    return [meeting_document(r) for r in rows]


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
    meeting_id = check_meeting_id(data.get("meeting_id") or f"m-{secrets.token_hex(4)}")
    title = text_field(data, "title", where="会议的")
    rules = check_rules(data.get("rules"), community_default_parking=community["count_parking_area"])
    show_live = data.get("show_live_results", False)
    if not isinstance(show_live, bool):
        raise ValidationFailed("show_live_results 应为 true 或 false", fields={"show_live_results": "布尔值"})
    opens_at, closes_at = parse_time(data.get("opens_at"), "opens_at"), parse_time(data.get("closes_at"), "closes_at")
    check_window(opens_at, closes_at)
    limits = check_extension_limits(data)
    raw_matters = data.get("matters", [])
    if not isinstance(raw_matters, list) or len(raw_matters) > 100:
        raise ValidationFailed("matters 应为列表（最多 100 个议题）", fields={"matters": "列表"})
    ids = assign_matter_ids(raw_matters, set())
    matters = [check_matter(raw, index=i, matter_id=mid) for i, (raw, mid) in enumerate(zip(raw_matters, ids), 1)]
    async with pool.acquire() as conn, conn.transaction():
        try:
            await repo.insert_meeting(conn, community_id=community_id, meeting_id=meeting_id, title=title,
                                      rules=rules, show_live_results=show_live, opens_at=opens_at,
                                      closes_at=closes_at, created_by=actor, **limits)
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
                           detail={"meeting_id": meeting_id, "title": title, "rules": rules, **limits,
                                   "matters": [m["matter_id"] for m in matters],
                                   # the drafts owners vote on, frozen from now on (migration 0085)
                                   "attachments": await attachments.notice_detail(conn, community_id, meeting_id)})
        return await load_document(conn, community_id, meeting_id)


async def update_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, data: dict,
                         actor: str) -> dict:
    unknown = sorted(set(data) - {"title", "rules", "show_live_results", "opens_at", "closes_at", "max_extensions",
                                  "max_extension_days"})
    if unknown:
        raise ValidationFailed(f"不能修改：{', '.join(unknown)}", fields={k: "不可修改" for k in unknown})
    async with pool.acquire() as conn, conn.transaction():
        meeting = await _locked_draft(conn, community_id, meeting_id)
        changes: dict = {}
        if "title" in data:
            changes["title"] = text_field(data, "title", where="会议的")
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
        if "max_extensions" in data or "max_extension_days" in data:
            changes.update(check_extension_limits(data, base={k: meeting[k] for k in ("max_extensions",
                                                                                        "max_extension_days")}))
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


MATTER_EDITABLE = ("title", "description", "category", "seats", "alternates", "body", "scope")
# Sent with a change, checked against the category (server.ballot.matter_templates), not stored.
MATTER_CHECKED = ("template", "threshold")


async def update_matter(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, matter_id: str, data: dict,
                        actor: str) -> dict:
    """Change a draft matter's title, description, category, seats, alternates, body or scope.

    The result is checked again with :func:`check_matter` (committee 5–11 odd, supervisory 3–5).
    When ``seats`` changes and ``alternates`` is not given, alternates become the default 40 %.
    The kind (resolution / election) and the id cannot change; candidates have their own routes.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("请求内容应为对象")
    kind = data.get("kind")
    unknown = sorted(set(data) - set(MATTER_EDITABLE) - {"kind", *MATTER_CHECKED})
    if unknown:
        raise ValidationFailed(f"不能修改：{', '.join(unknown)}", fields={k: "不可修改" for k in unknown})
    if not set(data) & {*MATTER_EDITABLE, "kind"}:
        raise ValidationFailed("没有要修改的内容", fields={"matter": "至少修改一项"})
    async with pool.acquire() as conn, conn.transaction():
        await _locked_draft(conn, community_id, meeting_id)
        matters = await repo.list_matters(conn, community_id, meeting_id)
        found = next(((i, m) for i, m in enumerate(matters, start=1) if m["matter_id"] == matter_id), None)
        if found is None:
            raise NotFound("找不到该议题", code="matter_not_found")
        index, current = found
        if kind is not None and kind != current["kind"]:
            raise ValidationFailed("议题类型（决议或选举）不能修改，请删除后重新添加", code="kind_unchangeable",
                                   fields={"kind": "不可修改"})
        merged = {"kind": current["kind"], "title": current["title"], "description": current["description"],
                  "category": current["category"], "scope": scope_document(current["scope"])}
        if current["kind"] == "election" and await election_repo.get_runoff(conn, community_id, meeting_id,
                                                                            matter_id) is not None:
            fixed = sorted(set(data) & {"seats", "alternates", "body", "scope"})
            if fixed:
                raise Conflict("另行选举的席位、机构和表决范围由原选举决定，不能修改", code="runoff_places_fixed",
                               fields={k: "不可修改" for k in fixed})
            # Its places come from the runoff plan (maybe fewer than 5): check only the text and category.
            text = {k: v for k, v in data.items() if k in ("title", "description", "category", *MATTER_CHECKED)}
            checked = check_matter(merged | text | {"kind": "resolution"}, index=index, matter_id=matter_id)
            matter = {**checked, "kind": "election", "seats": current["seats"], "alternates": current["alternates"],
                      "body": current["body"]}
        else:
            if current["kind"] == "election":
                merged.update(seats=current["seats"], body=current["body"])
                if "seats" not in data or "alternates" in data:
                    merged["alternates"] = current["alternates"]   # else check_matter gives the default 40 %
            merged.update({k: v for k, v in data.items() if k in MATTER_EDITABLE or k in MATTER_CHECKED})
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
        await register_posting.check_notice_allowed(conn, community_id)
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
        if meeting["closes_at"] is None:
            # Voting runs for the whole noticed period: the notice states when it ends.
            raise Conflict("请先设定投票结束时间（closes_at）：通知须载明投票期", code="closes_at_missing",
                           fields={"closes_at": "必填"})
        now = await clock.now(conn)
        earliest = now + timedelta(days=NOTICE_DAYS)
        if meeting["opens_at"] < earliest:
            raise Conflict(f"投票开始时间过早。{NOTICE_RULE}；按今天发布通知，最早可于 "
                           f"{beijing_time(earliest.replace(second=0, microsecond=0) + timedelta(minutes=1))} 开始投票",
                           code="notice_period_not_met",
                           fields={"opens_at": "至少在通知发布 15 日后", "earliest": earliest.isoformat()})
        version = await register_repo.latest_version(conn, community_id)
        if version is None:
            raise Conflict("该小区还没有导入业主登记册，不能发布通知", code="register_missing")
        if await personal_data_repo.purged_version(conn, community_id, version):
            raise Conflict("该登记册的个人信息已按保存期限清除，请先导入新的业主登记册", code="register_purged")
        rows = await register_repo.register_rows(conn, community_id, version)
        try:
            electorate = compute_electorate(rows, meeting["rules"]["count_parking_area"])
        except RegisterInvalid as exc:
            if any(p.code == "empty_electorate" for p in exc.problems):
                raise Conflict("登记册中没有任何有表决权的业主，不能发布通知", code="electorate_empty") from None
            raise Conflict(f"登记册有问题：{exc}", code="register_invalid") from None
        refuse_bad_scopes(matters, electorate, {row.building for row in rows})
        await refuse_unvetted_candidates(conn, community_id, meeting_id)
        # One row per voting subject (owner set): representative, counted units, area per building.
        await repo.copy_electorate(conn, electorate_records(community_id, meeting_id, electorate,
                                                            {r.unit_id: r.building for r in rows}))
        await repo.mark_noticed(conn, community_id, meeting_id, register_version=version,
                                total_area=electorate.total_area, total_persons=electorate.total_persons,
                                area_places=electorate.places)
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id, from_state="draft",
                                     to_state="noticed", actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.notice",
                           detail={"meeting_id": meeting_id, "register_version": version,
                                   "total_area": format_area(electorate.total_area, electorate.places),
                                   "total_persons": electorate.total_persons, "area_places": electorate.places,
                                   "matters": [m["matter_id"] for m in matters],
                                   # the drafts owners vote on, frozen from now on (migration 0085)
                                   "attachments": await attachments.notice_detail(conn, community_id, meeting_id)})
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
                           f"{beijing_time(earliest)} 开始",
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
    """open -> closed by hand at or after the noticed close time (the scheduler does it too, whichever
    comes first); then the close is announced and the close hooks run.

    Voting runs for the whole noticed period (voting-rules.md): before ``closes_at`` the close is
    refused (409 ``voting_period_not_over``); the meeting may only be voided, or extended.
    """
    doc = await _close_meeting(pool, community_id=community_id, meeting_id=meeting_id, actor=actor)
    await effects.meeting_closed(pool, community_id, meeting_id)
    return doc


async def _close_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        # The row lock waits for votes in flight (they hold the row FOR SHARE) and for an extension
        # in flight; the guarded UPDATE then closes only an open meeting whose close time has come.
        meeting = await repo.get_meeting(conn, community_id, meeting_id, lock="update")
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        closed_at = await repo.close_by_hand(conn, community_id, meeting_id)
        if closed_at is None:
            if meeting["state"] == "open":
                raise early_close_refused(meeting["closes_at"])
            raise Conflict(f"会议当前为“{STATE_NAMES[meeting['state']]}”，不能结束投票", code="wrong_state",
                           fields={"state": meeting["state"]})
        await repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id, from_state="open",
                                     to_state="closed", actor=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.close",
                           detail={"meeting_id": meeting_id})
        return await load_document(conn, community_id, meeting_id)


def early_close_refused(closes_at: datetime | None) -> Conflict:
    """The refusal of a close before the noticed close time, naming that time in Beijing time."""
    if closes_at is None:
        return Conflict("会议没有设定投票结束时间，不能结束投票", code="voting_period_not_over",
                        fields={"closes_at": None})
    return Conflict(f"投票期尚未结束：按公告，投票于 {beijing_time(closes_at)} 结束，届时自动结束。"
                    "投票期内不能提前结束；如确需终止，只能宣布会议作废并说明理由",
                    code="voting_period_not_over", fields={"closes_at": closes_at.isoformat()})


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
