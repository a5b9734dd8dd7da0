"""District campaigns (docs/district.md): the plan as data, its communities, and the boards.

A campaign has batches (due date, share of its communities, "at least one per 社区") and special
areas with their own date.  Its communities are imported from CSV/xlsx (created with their street and
社区 when new).  The board derives each community's stage from recorded facts
(``server.ballot.campaign``) in one query and answers for the caller's scope: a district admin sees
all, a street admin their street, a 社区 admin their 社区.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from server.auth.staff import StaffPrincipal
from server.ballot import campaign as rules
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.repositories import campaigns as repo
from server.repositories import communities as community_repo
from server.repositories import elections as elections_repo
from server.services import audit, prep_groups
from server.services.input_dates import iso_date
from server.services.register_files import RegisterFileError, read_table

BOARD_ROLES = frozenset({"district_admin", "street_admin", "shequ_admin"})
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_COMMUNITIES = 5000

# Columns of the communities file: Chinese headers or their codes.
COLUMNS = {
    "community_id": ("小区编号", "community_id"),
    "name": ("小区名称", "name"),
    "street_id": ("街道编号", "street_id"),
    "street_name": ("街道名称", "street_name"),
    "shequ_id": ("社区编号", "shequ_id"),
    "shequ_name": ("社区名称", "shequ_name"),
    "households": ("户数", "households"),
    "batch": ("批次", "batch"),
    "area": ("片区", "area"),
}


def _date(value: Any, name: str) -> date:
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} 应为日期（如 2022-03-30）", fields={name: "日期"})
    try:
        return iso_date(value, name)     # 2000–2100, as every date staff send (422 value_out_of_range)
    except ValueError:
        raise ValidationFailed(f"{name} 不是有效日期", fields={name: value[:40]}) from None


def _text(data: dict, name: str, label: str, *, max_length: int = 100, pattern: re.Pattern | None = None) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ValidationFailed(f"请填写{label}（不超过 {max_length} 字）", fields={name: "必填"})
    if pattern is not None and not pattern.match(value):
        raise ValidationFailed(f"{label}只能用字母、数字、_ 或 -", fields={name: value[:40]})
    return value.strip()


def parse_plan(data: dict) -> dict:
    """The campaign document checked: id, name, district, start, batches (shares ≤ 100 % in all) and areas."""
    if not isinstance(data, dict):
        raise ValidationFailed("请提交计划内容")
    plan = {"campaign_id": _text(data, "campaign_id", "计划编号", max_length=64, pattern=ID),
            "name": _text(data, "name", "计划名称", max_length=200),
            "district_id": _text(data, "district_id", "区编号", max_length=64, pattern=ID),
            "starts_on": _date(data.get("starts_on"), "starts_on")}
    raw_batches = data.get("batches")
    if not isinstance(raw_batches, list) or not 1 <= len(raw_batches) <= 20:
        raise ValidationFailed("请列出 1–20 个批次", fields={"batches": "列表"})
    batches: list[rules.Batch] = []
    total, previous_due = 0, _date(data.get("starts_on"), "starts_on")
    for i, b in enumerate(raw_batches, start=1):
        if not isinstance(b, dict):
            raise ValidationFailed(f"第 {i} 批格式不正确", fields={"batches": str(i)})
        due = _date(b.get("due_on"), f"batches[{i}].due_on")
        share = b.get("share_percent")
        if not isinstance(share, int) or isinstance(share, bool) or not 1 <= share <= 100:
            raise ValidationFailed(f"第 {i} 批的比例应为 1–100 的整数", fields={f"batches[{i}].share_percent": "1–100"})
        if due < previous_due:
            raise ValidationFailed(f"第 {i} 批的完成日期早于上一批或计划开始日期",
                                   fields={f"batches[{i}].due_on": due.isoformat()})
        total += share
        previous_due = due
        batches.append(rules.Batch(i, str(b.get("name") or f"第{i}批")[:100], due, share,
                                   bool(b.get("one_per_shequ", False))))
    if total > 100:
        raise ValidationFailed(f"各批次比例合计 {total}%，超过 100%", code="shares_over_100",
                               fields={"batches": f"{total}%"})
    areas = []
    raw_areas = data.get("areas") or []
    if not isinstance(raw_areas, list) or len(raw_areas) > 100:
        raise ValidationFailed("片区应为列表（最多 100 个）", fields={"areas": "对象列表"})
    for a in raw_areas:
        if not isinstance(a, dict):
            raise ValidationFailed("片区格式不正确", fields={"areas": "对象列表"})
        areas.append((_text(a, "area_id", "片区编号", max_length=64, pattern=ID), _text(a, "name", "片区名称"),
                      _date(a.get("due_on"), "areas.due_on")))
    if len({a[0] for a in areas}) != len(areas):
        raise ValidationFailed("片区编号重复", fields={"areas": "重复"})
    return plan | {"batches": batches, "areas": areas}


async def create_campaign(pool: asyncpg.Pool, *, actor: str, data: dict) -> dict:
    plan = parse_plan(data)
    async with pool.acquire() as conn, conn.transaction():
        try:
            await repo.insert_campaign(conn, campaign_id=plan["campaign_id"], district_id=plan["district_id"],
                                       name=plan["name"], starts_on=plan["starts_on"], actor=actor)
        except asyncpg.UniqueViolationError:
            raise Conflict("该计划编号已存在", code="campaign_exists") from None
        except asyncpg.ForeignKeyViolationError:
            raise ValidationFailed("区不存在", code="unknown_district", fields={"district_id": "不存在"}) from None
        await repo.insert_batches(conn, plan["campaign_id"], [
            (b.batch_no, b.name, b.due_on, b.share_percent, b.one_per_shequ) for b in plan["batches"]])
        await repo.insert_areas(conn, plan["campaign_id"], plan["areas"])
        await audit.append(conn, community_id=None, actor=actor, action="campaign.create",
                           detail={"campaign_id": plan["campaign_id"], "batches": len(plan["batches"]),
                                   "areas": len(plan["areas"])})
    return await get_campaign(pool, plan["campaign_id"])


async def get_campaign(pool: asyncpg.Pool, campaign_id: str) -> dict:
    async with pool.acquire() as conn:
        row = await repo.get_campaign(conn, campaign_id)
        if row is None:
            raise NotFound("没有这个工作计划", code="campaign_not_found")
        batches = await repo.batches(conn, campaign_id)
        areas = await repo.areas(conn, campaign_id)
    return {**_jsonable(dict(row)), "batches": [_jsonable(dict(b)) for b in batches],
            "areas": [_jsonable(dict(a)) for a in areas]}


async def list_campaigns(pool: asyncpg.Pool) -> list[dict]:
    async with pool.acquire() as conn:
        return [_jsonable(dict(r)) for r in await repo.list_campaigns(conn)]


def _jsonable(row: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


# --- the communities file ---

@dataclass(frozen=True)
class CommunityRow:
    line: int
    community_id: str
    name: str
    street_id: str
    street_name: str
    shequ_id: str | None
    shequ_name: str | None
    households: int
    batch_no: int | None
    area_id: str | None


def _column_map(header: list[str]) -> dict[str, str]:
    found = {}
    for key, names in COLUMNS.items():
        for h in header:
            if h and h.strip() in names:
                found[key] = h
    return found


def parse_communities(data: bytes, filename: str, batch_nos: set[int], area_ids: set[str]) -> list[CommunityRow]:
    """Every row checked; all problems listed by line (the first 200) in one 422, nothing written."""
    try:
        table = read_table(data, filename)
    except RegisterFileError as exc:
        raise ValidationFailed(exc.message, code=exc.code) from None
    columns = _column_map(table.header)
    needed = ("community_id", "name", "street_id", "households")
    absent = [COLUMNS[k][0] for k in needed if k not in columns]
    if absent:
        raise ValidationFailed(f"缺少列：{'、'.join(absent)}", code="missing_columns",
                               fields={"columns": "、".join(absent)})
    if len(table.records) > MAX_COMMUNITIES:
        raise ValidationFailed(f"小区超过 {MAX_COMMUNITIES} 个", code="too_many_rows")
    rows, problems, seen = [], [], set()

    def cell(record: dict, key: str) -> str:
        return (record.get(columns[key]) or "").strip() if key in columns else ""

    for line, record in table.records:
        where = []
        community_id, name, street_id = cell(record, "community_id"), cell(record, "name"), cell(record, "street_id")
        shequ_id = cell(record, "shequ_id") or None
        if not ID.match(community_id):
            where.append("小区编号只能用字母、数字、_ 或 -")
        elif community_id in seen:
            where.append("小区编号重复")
        seen.add(community_id)
        if not name or len(name) > 100:
            where.append("小区名称必填（不超过 100 字）")
        if not ID.match(street_id):
            where.append("街道编号只能用字母、数字、_ 或 -")
        if shequ_id is not None and not ID.match(shequ_id):
            where.append("社区编号只能用字母、数字、_ 或 -")
        households_text = cell(record, "households")
        households = int(households_text) if households_text.isdigit() else -1
        if not 0 <= households <= 100000:
            where.append("户数应为 0–100000 的整数")
        batch_text, area = cell(record, "batch").removeprefix("第").removesuffix("批"), cell(record, "area") or None
        batch_no = int(batch_text) if batch_text.isdigit() else None
        if batch_text and batch_no not in batch_nos:
            where.append(f"没有第 {batch_text} 批")
        if area is not None and area not in area_ids:
            where.append(f"没有片区 {area}")
        if batch_no is not None and area is not None:
            where.append("片区内的小区按片区日期完成，不再分批")
        if where:
            problems.append({"line": line, "message": "；".join(where)})
            continue
        rows.append(CommunityRow(line, community_id, name, street_id, cell(record, "street_name") or street_id,
                                 shequ_id, cell(record, "shequ_name") or shequ_id, households, batch_no, area))
    if problems:
        raise ValidationFailed(f"共有 {len(problems)} 行有问题，未导入任何内容", code="invalid_rows",
                               fields={"problems": problems[:200], "problem_count": len(problems)})
    return rows


async def import_communities(pool: asyncpg.Pool, *, actor: str, campaign_id: str, data: bytes,
                             filename: str) -> dict:
    async with pool.acquire() as conn:
        campaign = await repo.get_campaign(conn, campaign_id)
        if campaign is None:
            raise NotFound("没有这个工作计划", code="campaign_not_found")
        batch_nos = {b["batch_no"] for b in await repo.batches(conn, campaign_id)}
        area_ids = {a["area_id"] for a in await repo.areas(conn, campaign_id)}
    rows = parse_communities(data, filename, batch_nos, area_ids)
    created = 0
    async with pool.acquire() as conn, conn.transaction():
        for street in {(r.street_id, r.street_name) for r in rows}:
            await community_repo.upsert_street(conn, street[0], campaign["district_id"], street[1])
        for shequ_id, street_id, shequ_name in {(r.shequ_id, r.street_id, r.shequ_name or r.shequ_id)
                                                 for r in rows if r.shequ_id}:
            existing = await repo.get_shequ(conn, shequ_id)
            if existing is not None and existing["street_id"] != street_id:
                raise ValidationFailed(f"社区 {shequ_id} 属于另一个街道（{existing['street_id']}）",
                                       code="shequ_street_mismatch", fields={"shequ_id": shequ_id})
            await repo.upsert_shequ(conn, shequ_id, street_id, shequ_name)
        for r in rows:
            if await repo.insert_community_if_missing(conn, community_id=r.community_id, name=r.name,
                                                      street_id=r.street_id, shequ_id=r.shequ_id):
                created += 1
                continue
            existing = await community_repo.get_community(conn, r.community_id)
            if existing is not None and existing["street_id"] != r.street_id:
                raise ValidationFailed(f"第 {r.line} 行：小区 {r.community_id} 已登记在另一个街道（{existing['street_id']}）",
                                       code="community_street_mismatch", fields={"line": str(r.line)})
            await repo.set_community_shequ(conn, r.community_id, r.shequ_id)
        await repo.upsert_campaign_communities(conn, campaign_id, [
            (r.community_id, r.batch_no, r.area_id, r.households) for r in rows])
        await audit.append(conn, community_id=None, actor=actor, action="campaign.import_communities",
                           detail={"campaign_id": campaign_id, "rows": len(rows), "created": created})
    return {"campaign_id": campaign_id, "communities": len(rows), "created": created}


# --- the board ---

async def board_scope(conn: asyncpg.Connection, principal: StaffPrincipal,
                      street_id: str | None) -> tuple[str | None, list[str] | None]:
    """(street filter, 社区 filter) for the caller: a street admin sees its street only, a 社区 admin its 社区."""
    if principal.role not in BOARD_ROLES:
        raise Forbidden("您的角色不能查看工作进度", code="role_forbidden")
    if principal.role == "street_admin":
        if street_id not in (None, principal.street_id):
            raise Forbidden("街道管理员只能查看本街道", code="street_forbidden")
        return principal.street_id, None
    if principal.role == "shequ_admin":
        return None, await repo.staff_shequs(conn, principal.staff_id)
    return street_id, None


def member_of(row: asyncpg.Record, today: date) -> rules.Member:
    """The community's stage from its facts as they stood on ``today`` (a fact dated later is not yet)."""
    def by(day: date | None) -> date | None:
        return day if day is not None and day <= today else None

    voted_on, noticed_on = by(row["voted_on"]), by(row["first_noticed_on"])
    # open on that day: open now, or closed only later; either way noticed by then
    open_then = bool(row["voting_open"]) or (row["voted_on"] is not None and voted_on is None)
    facts = rules.Facts(prep_group_formed_on=by(row["prep_group_formed_on"]),
                        register_posted_on=by(row["register_posted_on"]),
                        first_noticed_on=noticed_on, voting_open=noticed_on is not None and open_then,
                        voted_on=voted_on, committee_formed_on=by(row["committee_formed_on"]),
                        filed_on=by(row["filed_on"]), sealed=row["sealed"] and by(row["filed_on"]) is not None,
                        management_on=by(row["management_on"]))
    return rules.Member(row["community_id"], row["name"], row["street_id"], row["shequ_id"], rules.stage_of(facts),
                        facts.committee_formed_on, row["batch_no"], row["area_id"], row["area_due_on"])


async def board(pool: asyncpg.Pool, principal: StaffPrincipal, campaign_id: str, *, street_id: str | None = None,
                today: date | None = None) -> dict:
    async with pool.acquire() as conn:
        campaign = await repo.get_campaign(conn, campaign_id)
        if campaign is None:
            raise NotFound("没有这个工作计划", code="campaign_not_found")
        street_filter, shequ_filter = await board_scope(conn, principal, street_id)
        async with conn.transaction():
            await prep_groups.settle(conn)       # groups whose posting ended are formed before counting
        today = today or await elections_repo.today_in_china(conn)
        batch_rows = await repo.batches(conn, campaign_id)
        rows = await repo.campaign_facts(conn, campaign_id, street_id=street_filter, shequ_ids=shequ_filter)
        shequ_rows = await repo.shequs_of_campaign(conn, campaign_id)
    batches = [rules.Batch(b["batch_no"], b["name"], b["due_on"], b["share_percent"], b["one_per_shequ"])
               for b in batch_rows]
    members = [member_of(r, today) for r in rows]
    by_id = {r["community_id"]: r for r in rows}
    shequs = [s["shequ_id"] for s in shequ_rows
              if (street_filter is None or s["street_id"] == street_filter)
              and (shequ_filter is None or s["shequ_id"] in shequ_filter)]
    shequ_names = {s["shequ_id"]: s["name"] for s in shequ_rows}
    stage_counts = {key: 0 for key in rules.STAGE_KEYS}
    for m in members:
        stage_counts[m.stage] += 1
    progress = rules.batch_progress(members, batches, today, shequs)
    by_no = {b.batch_no: b for b in batches}
    streets: dict[str, dict] = {}
    for m in members:
        s = streets.setdefault(m.street_id or "", {"street_id": m.street_id,
                                                   "street_name": by_id[m.community_id]["street_name"],
                                                   "communities": 0, "done": 0,
                                                   "stages": {key: 0 for key in rules.STAGE_KEYS}})
        s["communities"] += 1
        s["done"] += rules.is_done(m.stage)
        s["stages"][m.stage] += 1
    return {
        "campaign_id": campaign_id, "name": campaign["name"], "today": today.isoformat(),
        "scope": {"street_id": street_filter, "shequ_ids": shequ_filter},
        "communities": len(members), "done": sum(rules.is_done(m.stage) for m in members),
        "stages": [{"stage": key, "name": rules.stage_name(key), "count": stage_counts[key]}
                   for key in rules.STAGE_KEYS],
        "batches": [{"batch_no": p.batch.batch_no, "name": p.batch.name, "due_on": p.batch.due_on.isoformat(),
                     "share_percent": p.batch.share_percent, "cumulative_percent": p.cumulative_percent,
                     "target": p.target, "done_by_due": p.done_by_due, "done_now": p.done_now, "state": p.state,
                     "one_per_shequ": p.batch.one_per_shequ,
                     "shequ_without": [{"shequ_id": s, "name": shequ_names.get(s, s)} for s in p.shequ_without]}
                    for p in progress],
        "overdue": [{"community_id": m.community_id, "name": m.name, "street_id": m.street_id,
                     "shequ_id": m.shequ_id, "stage": m.stage, "stage_name": rules.stage_name(m.stage),
                     "missing": rules.missing(m.stage), "due_on": due.isoformat(),
                     "days_late": (today - due).days}
                    for m, due in rules.overdue(members, batches, today)],
        "streets": list(streets.values()),
        "rows": [{"community_id": m.community_id, "name": m.name, "street_id": m.street_id,
                  "street_name": by_id[m.community_id]["street_name"], "shequ_id": m.shequ_id,
                  "shequ_name": by_id[m.community_id]["shequ_name"], "batch_no": m.batch_no, "area_id": m.area_id,
                  "stage": m.stage, "stage_name": rules.stage_name(m.stage), "missing": rules.missing(m.stage),
                  "done_on": m.done_on.isoformat() if m.done_on else None,
                  "due_on": (d.isoformat() if (d := rules.due_on_for(m, by_no)) else None)}
                 for m in members],
    }
