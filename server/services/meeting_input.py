"""What staff send to draft a meeting, checked without I/O.

Rules, matters, candidates, ids and the voting window are read from JSON here and
either returned in the stored shape or refused with a :class:`ValidationFailed`
naming the field (in Chinese).  The meeting service (``server.services.meetings``)
and the runoff service call these before they open a transaction.
"""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from server.ballot.matter_templates import MATTER_TEMPLATES, template_problem
from server.ballot.rules import threshold_for_category
from server.ballot.tally import RULE_DEFAULTS, RULE_KEYS, RuleProblem, Rules
from server.ballot.weights import Electorate, scope_problem
from server.errors import Conflict, ValidationFailed, missing_field
from server.services.input_dates import iso_datetime

MATTER_BODIES = ("committee", "supervisory", "other")
MAX_SCOPE_BUILDINGS = 200   # as the database allows (migration 0071)
MAX_BUILDING_NAME = 64      # as a register's building names

# China has kept UTC+8 all year since 1991: a fixed offset names Beijing time without a tz database.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
MAX_EXTENSIONS = 10          # extension notices one meeting's rules may allow
MAX_EXTENSION_DAYS = 365     # days all of them may add together, at most
REASON_MAX_LENGTH = 500      # a void or extension reason

_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_MEETING_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def default_alternates(seats: int) -> int:
    """40 % of the seats, rounded half up, in integers: floor(0.4 * seats + 0.5)."""
    return (4 * seats + 5) // 10


def iso(moment: date | datetime | None) -> str | None:
    """ISO 8601 text of a date or time, None for none."""
    return moment.isoformat() if moment is not None else None


def beijing_time(moment: datetime) -> str:
    """A legal time as owners read it: ``2026-12-08 20:00（北京时间）`` (seconds only when not zero)."""
    local = moment.astimezone(BEIJING)
    pattern = "%Y-%m-%d %H:%M" if local.second == 0 and local.microsecond == 0 else "%Y-%m-%d %H:%M:%S"
    return local.strftime(pattern) + "（北京时间）"


def check_meeting_id(value: Any) -> str:
    if not isinstance(value, str) or not _MEETING_ID.match(value):
        raise ValidationFailed("会议编号应为 1–64 位字母、数字、_ 或 -", fields={"meeting_id": "格式不正确"})
    return value


def text_field(data: dict, name: str, *, where: str, required: bool = True, max_length: int = 200,
               default: str = "") -> str:
    """A text field as given (not stripped); ``where`` starts each message (e.g. "第 2 个议题的")."""
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
        moment = iso_datetime(value, name)
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
    given = {c["candidate_id"] for c in raw if isinstance(c, dict) and isinstance(c.get("candidate_id"), str)}
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
        name = text_field(item, "name", where=label, max_length=100)
        unit_label = text_field(item, "unit_label", where=label, required=False, max_length=100)
        if (name, unit_label) in seen_people:
            raise ValidationFailed(f"候选人 {name}（{unit_label or '未填房号'}）重复", code="duplicate_candidate",
                                   fields={"name": "重复"})
        seen_people.add((name, unit_label))
        party_member = item.get("party_member", False)
        if not isinstance(party_member, bool):
            raise ValidationFailed(f"{label}party_member 应为 true 或 false", fields={"party_member": "布尔值"})
        out.append({"candidate_id": candidate_id, "name": name, "unit_label": unit_label,
                    "party_member": party_member,
                    "statement": text_field(item, "statement", where=label, required=False, max_length=2000)})
    return out


def check_matter(raw: Any, *, index: int, matter_id: str) -> dict:
    """One matter from JSON; ``matter_id`` is the id to use (given or assigned)."""
    where = f"第 {index} 个议题的"
    if not isinstance(raw, dict):
        raise ValidationFailed(f"{where}内容应为对象", fields={"matters": "应为对象"})
    template = template_defaults(raw)
    kind = raw.get("kind", template.get("kind", "resolution"))
    if kind not in ("resolution", "election"):
        raise ValidationFailed(f"{where}kind 应为 resolution（决议）或 election（选举）", fields={"kind": "无效"})
    matter = {"matter_id": matter_id, "kind": kind, "title": text_field(raw, "title", where=where),
              "description": text_field(raw, "description", where=where, required=False, max_length=5000)}
    category = _int(raw, "category", where=where,
                    default=template.get("category", 3 if kind == "election" else None))
    try:
        threshold_for_category(category)
    except ValueError:
        raise ValidationFailed(f"{where}类别应为《民法典》第二百七十八条第 1–9 项", code="bad_category",
                               fields={"category": "1–9"}) from None
    problem = template_problem({"kind": kind, "category": category, "template": raw.get("template"),
                                "threshold": raw.get("threshold")})
    if problem:
        code, name, message = problem
        raise ValidationFailed(f"{where}{message}", code=code, fields={name: "与事项类别不符"})
    matter["category"] = category
    matter["scope"] = check_scope(raw.get("scope"), where=where)
    if kind == "resolution":
        extra = [k for k in ("seats", "alternates", "body", "candidates") if raw.get(k) is not None]
        if extra:
            raise ValidationFailed(f"{where}决议事项不应有 {', '.join(extra)}", fields={extra[0]: "决议无此项"})
        return matter
    body = raw.get("body", template.get("body", "other"))
    if body not in MATTER_BODIES:
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


def template_defaults(raw: dict) -> dict:
    """What a matter's ``template`` (a key of GET /api/admin/matter-templates) fills in when not sent."""
    key = raw.get("template")
    if key is None:
        return {}
    found = next((t for t in MATTER_TEMPLATES if t.key == key), None)
    if found is None:
        raise ValidationFailed(f"事项模板 {key!r} 不存在；可用模板见 GET /api/admin/matter-templates",
                               code="unknown_template", fields={"template": "不存在"})
    return {"kind": found.kind, "category": found.category, **({"body": found.body} if found.body else {})}


def check_scope(raw: Any, *, where: str = "") -> list[str]:
    """A matter's ``scope`` as sent, ``{"buildings": ["3", "5"]}``: the building names; ``[]`` for none.

    Absent or null: the whole community.  The names are checked against the register only at
    the notice (:func:`refuse_bad_scopes`), when the register version is frozen.
    """
    if raw is None:
        return []
    if not isinstance(raw, dict) or set(raw) != {"buildings"} or not isinstance(raw["buildings"], list):
        raise ValidationFailed(f"{where}scope 应为 {{\"buildings\": [楼栋名称, …]}}；全体业主表决的议题不填 scope",
                               code="bad_scope", fields={"scope": "{\"buildings\": [...]}"})
    buildings = raw["buildings"]
    if not buildings:
        raise ValidationFailed(f"{where}表决范围至少要有一栋楼；全体业主表决的议题不填 scope", code="bad_scope",
                               fields={"scope": "至少一栋楼"})
    if len(buildings) > MAX_SCOPE_BUILDINGS:
        raise ValidationFailed(f"{where}表决范围最多 {MAX_SCOPE_BUILDINGS} 栋楼", code="bad_scope",
                               fields={"scope": f"最多 {MAX_SCOPE_BUILDINGS} 栋"})
    seen: set[str] = set()
    for building in buildings:
        if (not isinstance(building, str) or not building.strip() or len(building) > MAX_BUILDING_NAME
                or "\x00" in building):
            raise ValidationFailed(f"{where}表决范围中的楼栋名称应为 1–{MAX_BUILDING_NAME} 个字的文字",
                                   code="bad_scope", fields={"scope": "楼栋名称"})
        if building in seen:
            raise ValidationFailed(f"{where}表决范围中楼栋“{building}”重复", code="bad_scope",
                                   fields={"scope": f"{building} 重复"})
        seen.add(building)
    return list(buildings)


def scope_document(scope: list[str] | tuple[str, ...]) -> dict | None:
    """How a matter's scope is shown (as it is sent): ``{"buildings": [...]}``, or None for the whole community."""
    return {"buildings": list(scope)} if scope else None


def refuse_bad_scopes(matters: list, electorate: Electorate, register_buildings: set[str]) -> None:
    """At the notice: every scoped matter names buildings of the frozen register that have voters.

    ``matters`` are matter rows (``matter_id``, ``scope``); ``register_buildings`` every building of
    the register version being frozen, counted or not.  Raises :class:`Conflict`
    ``scope_not_in_register`` (a building the register does not have) or ``scope_without_voters``
    (the buildings hold no counted unit, so nobody could vote).
    """
    for matter in matters:
        scope = list(matter["scope"] or ())
        problem = scope_problem(scope, electorate, register_buildings)
        if problem is None:
            continue
        unknown = [b for b in scope if b not in register_buildings]
        if unknown:
            raise Conflict(f"议题 {matter['matter_id']} 的表决范围中，楼栋“{'、'.join(unknown)}”不在本次冻结的业主登记册中，"
                           "请核对楼栋名称（须与登记册一致）后再发布通知", code="scope_not_in_register",
                           fields={"matter_id": matter["matter_id"], "buildings": unknown})
        raise Conflict(f"议题 {matter['matter_id']} 的表决范围（{'、'.join(scope)}）内没有有表决权的业主，不能发布通知",
                       code="scope_without_voters", fields={"matter_id": matter["matter_id"], "buildings": scope})


def assign_matter_ids(raw_matters: list, taken: set[str]) -> list[str]:
    """Ids for a list of raw matters: the given ones, else M1, M2 … (resolutions) / E1 … (elections)."""
    # only texts: an id of another type (a list, an object) is refused below with the matter's index
    given = {m["matter_id"] for m in raw_matters if isinstance(m, dict) and isinstance(m.get("matter_id"), str)}
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


def check_extension_limits(data: dict, *, base: dict | None = None) -> dict:
    """``max_extensions`` (how many extension notices the rules allow, 0 = none) and
    ``max_extension_days`` (the days all of them may add together), the given values over ``base``.

    Both or neither: a count without days (or days without a count) could never be used.
    """
    limits = {"max_extensions": 0, "max_extension_days": 0, **(base or {})}
    for name, top in (("max_extensions", MAX_EXTENSIONS), ("max_extension_days", MAX_EXTENSION_DAYS)):
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise ValidationFailed(f"{name} 应为 0 至 {top} 的整数", code="bad_extension_limits",
                                   fields={name: f"0–{top}"})
        limits[name] = value
    if (limits["max_extensions"] == 0) != (limits["max_extension_days"] == 0):
        raise ValidationFailed("允许延期时须同时设定延期次数（max_extensions）和延期总天数（max_extension_days）；"
                               "不允许延期时两者都为 0", code="bad_extension_limits",
                               fields={"max_extensions": "与 max_extension_days 同为 0 或同大于 0"})
    return {"max_extensions": limits["max_extensions"], "max_extension_days": limits["max_extension_days"]}


def check_reason(data: Any, *, label: str) -> str:
    """The ``reason`` of a void or an extension: required, not blank, at most 500 characters."""
    value = data.get("reason") if isinstance(data, dict) else None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise missing_field("reason", label=label)
    if not isinstance(value, str):
        raise ValidationFailed(f"{label}应为文字", fields={"reason": "应为文字"})
    if len(value) > REASON_MAX_LENGTH:
        raise ValidationFailed(f"{label}过长（最多 {REASON_MAX_LENGTH} 字）", code="reason_too_long",
                               fields={"reason": f"最多 {REASON_MAX_LENGTH} 字"})
    if "\x00" in value:  # PostgreSQL text cannot hold NUL
        raise ValidationFailed(f"{label}含有无效字符", fields={"reason": "无效字符"})
    return value.strip()
