"""The register's public posting (业主名册公示) before the notice (docs/district.md).

For a set period the latest register version is shown: to the public per building (units, areas and
their source, no names), and to each owner their own record once they confirm a unit with the last four
characters of their phone or ID number (5 failures lock that unit's lookup for 15 minutes).  Owners file
corrections; staff accept one by naming the register version that fixes it (imported as usual, the diff
between the posted and the new version is kept) or refuse it with a reason.  While a posting runs or a
correction is open, a meeting's notice is refused, unless the community turned the rule off.
"""
from __future__ import annotations

import json
from typing import Any

import asyncpg

from server.ballot import identity
from server.ballot.amounts import format_area
from server.ballot.masking import mask_name
from server.ballot.prep_group import MIN_POSTING_DAYS
from server.errors import ApiError, Conflict, NotFound, ValidationFailed
from server.repositories import locks
from server.repositories import postings as repo
from server.services import audit, personal_data
from server.services.meeting_input import beijing_time
from server.settings import Settings

LOOKUP_LIMIT, LOOKUP_LOCK_MINUTES = 5, 15
AREA_SOURCES = {"registry": "不动产登记", "survey": "实测", "contract": "合同"}
KINDS = {"dwelling": "住宅", "commercial": "商业", "parking": "车位"}


def _jsonable(row: Any) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in dict(row).items()}


def _posting(row: asyncpg.Record) -> dict:
    return {"posting_no": row["posting_no"], "version": row["version"], "starts_at": row["starts_at"].isoformat(),
            "ends_at": row["ends_at"].isoformat(), "running": row["running"]}


def posting_days(data: dict) -> int:
    """A posting's length in days: 7 (the least the rules allow) to 60; 7 when not given."""
    days = data.get("days", MIN_POSTING_DAYS)
    if not isinstance(days, int) or isinstance(days, bool) or not MIN_POSTING_DAYS <= days <= 60:
        raise ValidationFailed(f"公示期应为 {MIN_POSTING_DAYS}–60 日", code="posting_too_short",
                               fields={"days": f"不少于 {MIN_POSTING_DAYS} 日"})
    return days


async def start_posting(pool: asyncpg.Pool, *, actor: str, community_id: str, data: dict) -> dict:
    days = posting_days(data)
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "register_posting", community_id)
        version = await repo.latest_version(conn, community_id)
        if version is None:
            raise Conflict("请先导入业主名册", code="register_missing")
        current = await repo.current_posting(conn, community_id)
        if current is not None and current["running"]:
            raise Conflict("业主名册正在公示中", code="posting_running")
        row = await repo.insert_posting(conn, community_id, version, days, actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="register.posting",
                           detail={"posting_no": row["posting_no"], "version": version, "days": days})
    return await public_list(pool, community_id)


async def public_list(pool: asyncpg.Pool, community_id: str) -> dict:
    async with pool.acquire() as conn:
        posting = await repo.current_posting(conn, community_id)
        if posting is None:
            raise NotFound("本小区尚未公示业主名册", code="posting_not_found")
        units = await repo.posted_units(conn, community_id, posting["version"])
        name = await repo.community_name(conn, community_id)
    buildings: dict[str, dict] = {}
    for u in units:
        b = buildings.setdefault(u["building"], {"building": u["building"], "units": [], "area": 0})
        b["units"].append({"unit_id": u["unit_id"], "kind": KINDS[u["kind"]], "area": format_area(u["area"]),
                           "area_source": AREA_SOURCES[u["area_source"]]})
        b["area"] += u["area"]
    return {"community_id": community_id, "community_name": name or community_id, **_posting(posting),
            "buildings": [b | {"count": len(b["units"]), "area": format_area(b["area"])} for b in buildings.values()]}


async def _confirmed_owner(pool: asyncpg.Pool, settings: Settings, community_id: str, version: int,
                           unit_id: Any, last4: Any) -> asyncpg.Record:
    """The owner of ``unit_id`` whose phone or ID number ends in ``last4``; throttled per unit (the count of
    failures is committed before the refusal is raised)."""
    async with pool.acquire() as conn, conn.transaction():
        match = await _match_owner(conn, settings, community_id, version, unit_id, last4)
    if match is None:
        raise ApiError("房号与手机号或身份证号后四位不符", code="identity_mismatch", status=403)
    return match


async def _match_owner(conn: asyncpg.Connection, settings: Settings, community_id: str, version: int,
                       unit_id: Any, last4: Any) -> asyncpg.Record | None:
    if not isinstance(unit_id, str) or not 1 <= len(unit_id) <= 64:
        raise ValidationFailed("请填写房号", fields={"unit_id": "必填"})
    if not isinstance(last4, str) or len(last4.strip()) != 4:
        raise ValidationFailed("请填写手机号或身份证号后四位", fields={"last4": "4 位"})
    owners = await repo.unit_owners(conn, community_id, version, unit_id)
    if not owners:
        raise NotFound("公示的名册中没有这个房号", code="unit_not_found")
    state = await repo.throttle(conn, community_id, unit_id)
    if state["locked"]:
        raise ApiError("核对失败次数过多，请 15 分钟后再试", code="lookup_locked", status=429)
    keys = await personal_data.load_identity_keys(settings)
    match = next((o for o in owners if identity.identity_matches_digests(
        keys.hmac_key, last4, community_id=community_id, owner_id=o["owner_id"], phone_hmac=o["phone_hmac"],
        id_hmac=o["id_hmac"])), None)
    await repo.record_lookup(conn, community_id, unit_id, ok=match is not None, limit=LOOKUP_LIMIT,
                             lock_minutes=LOOKUP_LOCK_MINUTES)
    return match


async def owner_record(pool: asyncpg.Pool, settings: Settings, *, community_id: str, data: dict) -> dict:
    """The owner's own record on the posted register (units, areas and their source, co-owners masked)."""
    async with pool.acquire() as conn:
        posting = await repo.current_posting(conn, community_id)
    if posting is None:
        raise NotFound("本小区尚未公示业主名册", code="posting_not_found")
    owner = await _confirmed_owner(pool, settings, community_id, posting["version"], data.get("unit_id"),
                                   data.get("last4"))
    async with pool.acquire() as conn:
        units = await repo.owner_units(conn, community_id, posting["version"], owner["owner_id"])
        filed = await repo.corrections(conn, community_id, owner_id=owner["owner_id"])
    return {"community_id": community_id, **_posting(posting), "name": owner["name"],
            "units": [{"unit_id": u["unit_id"], "building": u["building"], "kind": KINDS[u["kind"]],
                       "area": format_area(u["area"]), "area_source": AREA_SOURCES[u["area_source"]],
                       "co_owners": [mask_name(n) for n in u["co_owners"]]} for u in units],
            "corrections": [{"correction_no": c["correction_no"], "unit_id": c["unit_id"], "text": c["text"],
                             "status": c["status"], "reason": c["reason"]} for c in filed]}


async def file_correction(pool: asyncpg.Pool, settings: Settings, *, community_id: str, data: dict) -> dict:
    text = data.get("text")
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 2000:
        raise ValidationFailed("请写明需要更正的内容（不超过 2000 字）", fields={"text": "必填"})
    async with pool.acquire() as conn:
        posting = await repo.current_posting(conn, community_id)
    if posting is None or not posting["running"]:
        raise Conflict("业主名册不在公示期，不能提交更正", code="posting_not_running")
    owner = await _confirmed_owner(pool, settings, community_id, posting["version"], data.get("unit_id"),
                                   data.get("last4"))
    async with pool.acquire() as conn, conn.transaction():
        number = await repo.insert_correction(conn, community_id, posting["posting_no"], data["unit_id"],
                                              owner["owner_id"], text.strip())
        await audit.append(conn, community_id=community_id, actor=f"owner:{owner['owner_id']}",
                           action="register.correction",
                           detail={"posting_no": posting["posting_no"], "correction_no": number})
    return {"posting_no": posting["posting_no"], "correction_no": number, "status": "open",
            "message": "更正申请已提交，工作人员核实后会更新名册或说明理由"}


async def list_corrections(pool: asyncpg.Pool, community_id: str) -> dict:
    async with pool.acquire() as conn:
        posting = await repo.current_posting(conn, community_id)
        rows = await repo.corrections(conn, community_id)
        blockers = await repo.notice_blockers(conn, community_id)
    return {"community_id": community_id, "posting": _posting(posting) if posting else None,
            "posting_required": blockers["required"] if blockers else True,
            "corrections": [_jsonable(r) | {"diff": json.loads(r["diff"]) if r["diff"] else None} for r in rows]}


def register_diff(before: list[asyncpg.Record], after: list[asyncpg.Record]) -> dict:
    """Units added, removed, and changed (area, source, kind, building, owners) between two versions."""
    old, new = {u["unit_id"]: u for u in before}, {u["unit_id"]: u for u in after}
    changed = []
    for unit_id in sorted(old.keys() & new.keys()):
        fields = {k: {"from": _show(k, old[unit_id][k]), "to": _show(k, new[unit_id][k])}
                  for k in ("building", "kind", "area", "area_source", "owners") if old[unit_id][k] != new[unit_id][k]}
        if fields:
            changed.append({"unit_id": unit_id, "changes": fields})
    return {"added": sorted(new.keys() - old.keys()), "removed": sorted(old.keys() - new.keys()), "changed": changed}


def _show(key: str, value: Any) -> Any:
    return format_area(value) if key == "area" else list(value) if key == "owners" else value


async def resolve_correction(pool: asyncpg.Pool, *, actor: str, community_id: str, posting_no: int,
                             correction_no: int, data: dict) -> dict:
    decision = data.get("decision")
    if decision not in ("accept", "refuse"):
        raise ValidationFailed("decision 应为 accept（更正）或 refuse（不予更正）", fields={"decision": "accept/refuse"})
    reason = data.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 1000):
        raise ValidationFailed("理由不超过 1000 字", fields={"reason": "不超过 1000 字"})
    reason = (reason or "").strip() or None
    if decision == "refuse" and reason is None:
        raise ValidationFailed("不予更正须说明理由", code="reason_required", fields={"reason": "必填"})
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "register_posting", community_id)
        posting = next((p for p in [await repo.current_posting(conn, community_id)] if p is not None
                        and p["posting_no"] == posting_no), None)
        if posting is None:
            raise NotFound("没有这次公示", code="posting_not_found")
        new_version = diff = None
        if decision == "accept":
            new_version = data.get("version")
            latest = await repo.latest_version(conn, community_id)
            if not isinstance(new_version, int) or isinstance(new_version, bool) or new_version <= posting["version"] \
                    or latest is None or new_version > latest:
                raise Conflict("请先导入更正后的业主名册，再指明其版本号（须晚于公示的版本）",
                               code="corrected_version_missing", fields={"version": f"{posting['version']} 之后"})
            diff = register_diff(await repo.version_units(conn, community_id, posting["version"]),
                                 await repo.version_units(conn, community_id, new_version))
        row = await repo.resolve_correction(conn, community_id, posting_no, correction_no,
                                            status="accepted" if decision == "accept" else "refused", reason=reason,
                                            new_version=new_version, diff_json=json.dumps(diff) if diff else None,
                                            actor=actor)
        if row is None:
            raise Conflict("没有这条待处理的更正申请", code="correction_not_open")
        await audit.append(conn, community_id=community_id, actor=actor, action="register.correction_resolved",
                           detail={"posting_no": posting_no, "correction_no": correction_no, "decision": decision,
                                   "new_version": new_version})
    return _jsonable(row) | {"diff": diff}


async def set_required(pool: asyncpg.Pool, *, actor: str, community_id: str, required: Any) -> dict:
    if not isinstance(required, bool):
        raise ValidationFailed("required 应为 true 或 false", fields={"required": "布尔值"})
    async with pool.acquire() as conn, conn.transaction():
        await repo.set_posting_required(conn, community_id, required)
        await audit.append(conn, community_id=community_id, actor=actor, action="register.posting_rule",
                           detail={"required": required})
    return {"community_id": community_id, "posting_required": required}


async def check_notice_allowed(conn: asyncpg.Connection, community_id: str) -> None:
    """Refuse a notice while the register's posting runs or a correction is open (when the rule is on)."""
    row = await repo.notice_blockers(conn, community_id)
    if row is None or not row["required"]:
        return
    if row["running_until"] is not None:
        raise Conflict(f"业主名册正在公示（至 {beijing_time(row['running_until'])}），公示期满后才能发布会议公告",
                       code="register_posting_running")
    if row["open_corrections"]:
        raise Conflict(f"还有 {row['open_corrections']} 条业主名册更正申请未处理，处理后才能发布会议公告",
                       code="register_corrections_open", fields={"open_corrections": str(row["open_corrections"])})
