"""Reading and checking meeting.json: format, meeting, voting window, rules and matters.

Every problem raises :class:`~server.record.format.BundleError` naming the line
where the offending value starts (or, for a missing key, where the enclosing
object starts).  A matter's ``scope`` is checked here for its form; whether its
buildings are in the register, and whether anybody votes there, is checked by
:func:`check_scopes` once register.csv is read.
"""
from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.ballot.attachments import ATTACHMENT_KEYS, MEDIA_TYPES
from server.ballot.rules import threshold_for_category
from server.ballot.tally import KINDS, RESOLUTION, Matter, RuleProblem, Rules
from server.ballot.weights import Electorate, scope_problem
from server.record.format import (
    BUNDLE_FORMAT,
    EXTENSION_KEYS,
    MEETING_FILE,
    REGISTER_FILE,
    WINDOW_KEYS,
    BundleError,
    parse_moment,
)
from server.record.jsonlines import JsonArray, JsonObject, is_int, json_type, load_json, plain

__all__ = ["MeetingFile", "ScopeLines", "check_scopes", "read_meeting"]

_SHA256 = re.compile("^[0-9a-f]{64}$")

# The version before this one counted persons by the representative flag; say so when it is met.
_RETIRED_FORMATS = {"evote-bundle/1": "第 1 版按代表投票人计人数，已停用"}


@dataclass(frozen=True)
class ScopeLines:
    """Where a matter's scope is written: the ``scope`` value and each building name."""

    line: int
    buildings: tuple[int, ...]


@dataclass(frozen=True)
class MeetingFile:
    """A checked meeting.json."""

    document: dict[str, Any]  # as plain JSON data
    meeting_id: str
    rules: Rules
    matters: tuple[Matter, ...]
    scope_lines: Mapping[str, ScopeLines]  # by matter id, scoped matters only


class _MeetingReader:
    """Checks meeting.json, reporting the line of the offending value."""

    def __init__(self) -> None:
        self.scope_lines: dict[str, ScopeLines] = {}

    def fail(self, line: int, message: str) -> BundleError:
        return BundleError(MEETING_FILE, line, message)

    def object(self, value: Any, line: int, what: str) -> JsonObject:
        if not isinstance(value, JsonObject):
            raise self.fail(line, f"{what} 应为 JSON 对象，实为{json_type(value)}")
        return value

    def array(self, value: Any, line: int, what: str) -> JsonArray:
        if not isinstance(value, JsonArray):
            raise self.fail(line, f"{what} 应为数组，实为{json_type(value)}")
        return value

    # ``owner`` names the object in messages ("meeting", "事项 E1"); "" for the top level.
    def required(self, obj: JsonObject, key: str, owner: str) -> Any:
        if key not in obj:
            raise self.fail(obj.line, f"{owner + ' ' if owner else ''}缺少 {key!r}")
        return obj[key]

    def text(self, obj: JsonObject, key: str, owner: str, *, non_empty: bool = True) -> str:
        value = self.required(obj, key, owner)
        field = f"{owner} 的 {key}" if owner else key
        if not isinstance(value, str):
            raise self.fail(obj.line_of(key), f"{field} 应为字符串，实为{json_type(value)}")
        if non_empty and value == "":
            raise self.fail(obj.line_of(key), f"{field} 不能为空")
        return value

    def moment(self, obj: JsonObject, key: str, owner: str) -> datetime:
        text = self.text(obj, key, owner)
        try:
            return parse_moment(text)
        except ValueError as exc:
            raise self.fail(obj.line_of(key), f"{owner} 的 {key}：{exc}") from None

    def read(self, text: str) -> MeetingFile:
        document = self.object(load_json(MEETING_FILE, text), 1, MEETING_FILE)
        format_name = self.required(document, "format", "")
        if format_name != BUNDLE_FORMAT:
            retired = _RETIRED_FORMATS.get(format_name) if isinstance(format_name, str) else None
            why = f"（{retired}）" if retired else ""
            raise self.fail(
                document.line_of("format"), f"format 应为 {BUNDLE_FORMAT!r}，实为 {format_name!r}{why}"
            )
        if "community" in document:
            self.object(document["community"], document.line_of("community"), "community")
        meeting = self.object(self.required(document, "meeting", ""), document.line_of("meeting"), "meeting")
        meeting_id = self.text(meeting, "id", "meeting")
        if "title" in meeting:
            self.text(meeting, "title", "meeting", non_empty=False)
        self.window(meeting)
        self.attachments(meeting)
        rules = self.rules(document)
        matters = self.matters(document)
        return MeetingFile(plain(document), meeting_id, rules, matters, dict(self.scope_lines))

    def window(self, meeting: JsonObject) -> None:
        """``window`` and ``extensions`` of the ``meeting`` object, when present: their form only."""
        if "window" in meeting:
            owner = "meeting 的 window"
            window = self.object(meeting["window"], meeting.line_of("window"), owner)
            opens_at, closes_at = (self.moment(window, key, owner) for key in WINDOW_KEYS)
            if closes_at <= opens_at:
                raise self.fail(window.line_of("closes_at"), f"{owner}：closes_at 应晚于 opens_at")
        if "extensions" in meeting:
            extensions = self.array(meeting["extensions"], meeting.line_of("extensions"), "meeting 的 extensions")
            for number, (item, line) in enumerate(zip(extensions, extensions.item_lines), start=1):
                owner = f"meeting 的第 {number} 次延期（extensions）"
                extension = self.object(item, line, owner)
                for key in EXTENSION_KEYS:
                    if key == "reason":
                        self.text(extension, key, owner, non_empty=False)
                    else:
                        self.moment(extension, key, owner)

    def attachments(self, meeting: JsonObject) -> None:
        """``attachments`` of the ``meeting`` object, when present: each entry's form (the files
        themselves are checked by ``evote verify`` when the record carries them)."""
        if "attachments" not in meeting:
            return
        items = self.array(meeting["attachments"], meeting.line_of("attachments"), "meeting 的 attachments")
        seen: set[int] = set()
        for number, (item, line) in enumerate(zip(items, items.item_lines), start=1):
            owner = f"meeting 的第 {number} 个附件（attachments）"
            entry = self.object(item, line, owner)
            for key in ATTACHMENT_KEYS:
                self.required(entry, key, owner)
            attachment_id, size = entry["attachment_id"], entry["size"]
            if not is_int(attachment_id) or attachment_id < 1 or attachment_id in seen:
                raise self.fail(entry.line_of("attachment_id"), f"{owner}：attachment_id 应为不重复的正整数")
            seen.add(attachment_id)
            for key in ("title", "filename"):
                self.text(entry, key, owner)
            if entry["media_type"] not in MEDIA_TYPES:
                raise self.fail(entry.line_of("media_type"),
                                f"{owner}：media_type 应为 {' 或 '.join(MEDIA_TYPES)}，实为 {entry['media_type']!r}")
            if not is_int(size) or size < 1:
                raise self.fail(entry.line_of("size"), f"{owner}：size 应为正整数（字节）")
            sha256 = entry["sha256"]
            if not isinstance(sha256, str) or not _SHA256.match(sha256):
                raise self.fail(entry.line_of("sha256"), f"{owner}：sha256 应为 64 位小写十六进制")

    def rules(self, document: JsonObject) -> Rules:
        if "rules" not in document:
            return Rules()
        rules = self.object(document["rules"], document.line_of("rules"), "rules")
        # Unknown keys are refused (elsewhere they are ignored): a rule this counter
        # does not implement would make its count silently wrong.
        try:
            return Rules.from_json(rules, refuse_unknown=True)
        except RuleProblem as exc:
            raise self.fail(rules.line_of(exc.key), str(exc)) from None

    def matters(self, document: JsonObject) -> tuple[Matter, ...]:
        line = document.line_of("matters")
        matters = self.array(self.required(document, "matters", ""), line, "matters")
        if not matters:
            raise self.fail(line, "matters 为空：会议至少要有一个表决事项")
        result: list[Matter] = []
        seen: dict[str, int] = {}
        for item, item_line in zip(matters, matters.item_lines):
            matter = self.matter(self.object(item, item_line, "matters 的每一项"))
            if matter.id in seen:
                raise self.fail(item.line_of("id"), f"事项 id {matter.id!r} 重复（第 {seen[matter.id]} 行已使用）")
            seen[matter.id] = item.line_of("id")
            result.append(matter)
        return tuple(result)

    def matter(self, item: JsonObject) -> Matter:
        matter_id = self.text(item, "id", "事项")
        owner = f"事项 {matter_id}"
        where = f"{owner} 的 "  # prefix of a field of this matter
        title = self.text(item, "title", owner, non_empty=False)
        kind = self.required(item, "kind", owner)
        if kind not in KINDS:
            raise self.fail(item.line_of("kind"), f"{where}kind {kind!r} 无效，应为 resolution 或 election")
        category = self.required(item, "category", owner)
        try:
            threshold_for_category(category)  # the one definition of a valid category
        except ValueError:
            raise self.fail(
                item.line_of("category"),
                f"{where}category {category!r} 无效，应为《民法典》第二百七十八条的事项序号 1–9 之一（整数）",
            ) from None
        scope = self.scope(item, matter_id, where)
        if kind == RESOLUTION:
            for key in ("seats", "alternates", "candidates"):
                if key in item:
                    raise self.fail(item.line_of(key), f"{where}{key}：表决事项（resolution）没有席位或候选人")
            return Matter(matter_id, title, kind, category, scope=scope)

        seats = self.required(item, "seats", owner)
        if not is_int(seats) or seats < 1:
            raise self.fail(item.line_of("seats"), f"{where}seats {seats!r} 无效，选举事项至少要有 1 个席位")
        alternates = item.get("alternates", 0)
        if not is_int(alternates) or alternates < 0:
            raise self.fail(item.line_of("alternates"), f"{where}alternates {alternates!r} 应为非负整数")
        line = item.line_of("candidates")
        candidates = self.array(self.required(item, "candidates", owner), line, f"{where}candidates")
        if not candidates:
            raise self.fail(line, f"{where}candidates 为空：选举事项至少要有一名候选人")
        pairs: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for candidate, candidate_line in zip(candidates, candidates.item_lines):
            candidate = self.object(candidate, candidate_line, f"{where}candidates 的每一项")
            candidate_id = self.text(candidate, "id", f"{owner} 的候选人")
            name = self.text(candidate, "name", f"{owner} 的候选人 {candidate_id}", non_empty=False)
            if candidate_id in seen:
                raise self.fail(
                    candidate.line_of("id"),
                    f"{where}候选人 id {candidate_id!r} 重复（第 {seen[candidate_id]} 行已使用）",
                )
            seen[candidate_id] = candidate.line_of("id")
            pairs.append((candidate_id, name))
        return Matter(matter_id, title, kind, category, seats, alternates, tuple(pairs), scope)

    def scope(self, item: JsonObject, matter_id: str, where: str) -> tuple[str, ...]:
        """The buildings of ``{"buildings": [...]}`` (none: the whole community), their form checked."""
        if "scope" not in item:
            return ()
        line = item.line_of("scope")
        scope = self.object(item["scope"], line, f"{where}scope")
        for key in scope:
            if key != "buildings":
                # A narrower scope this counter does not know (a stairwell, say) would be counted too widely.
                raise self.fail(scope.line_of(key), f"{where}scope 中有未知的键 {key!r}；范围只能用 buildings（楼栋）划定")
        buildings = self.array(
            self.required(scope, "buildings", f"{where}scope"), scope.line_of("buildings"), f"{where}scope.buildings"
        )
        if not buildings:
            raise self.fail(
                scope.line_of("buildings"),
                f"{where}scope.buildings 为空：范围至少要列出一栋楼（全体业主表决的事项不写 scope）",
            )
        seen: dict[str, int] = {}
        for building, building_line in zip(buildings, buildings.item_lines):
            if not isinstance(building, str):
                raise self.fail(building_line, f"{where}scope 中的楼栋应为字符串，实为{json_type(building)}")
            if building == "":
                raise self.fail(building_line, f"{where}scope 中的楼栋名称不能为空")
            if building in seen:
                raise self.fail(
                    building_line, f"{where}scope 中楼栋 {building!r} 重复（第 {seen[building]} 行已列出）"
                )
            seen[building] = building_line
        self.scope_lines[matter_id] = ScopeLines(line, tuple(buildings.item_lines))
        return tuple(buildings)


def read_meeting(text: str) -> MeetingFile:
    """Check and read meeting.json's text."""
    return _MeetingReader().read(text)


def check_scopes(meeting: MeetingFile, electorate: Electorate, register_buildings: Collection[str]) -> None:
    """Each scoped matter names buildings of register.csv, and somebody votes there.

    ``register_buildings`` is every building of the register, counted or not.
    """
    for matter in meeting.matters:
        if not matter.scope:
            continue
        lines = meeting.scope_lines[matter.id]
        for building, line in zip(matter.scope, lines.buildings):
            if building not in register_buildings:
                raise BundleError(
                    MEETING_FILE, line, f"事项 {matter.id} 的 scope 中楼栋 {building!r} 不在 {REGISTER_FILE} 中"
                )
        problem = scope_problem(matter.scope, electorate, register_buildings)
        if problem:
            raise BundleError(MEETING_FILE, lines.line, f"事项 {matter.id} 的{problem}")
