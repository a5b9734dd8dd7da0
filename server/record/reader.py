"""Reading and checking a bundle: :func:`read_bundle` (a path) and :func:`parse_bundle` (its files).

Everything the format requires (docs/bundle-format.md) is checked, and the
first thing wrong raises :class:`~server.record.format.BundleError` naming the
file, the line and the problem; the pure core (server.ballot) then counts the
:class:`~server.record.format.Bundle`.  meeting.json is parsed by the standard
library's pure-Python JSON scanner with hooks that note where each value
starts, so a message can name the line of the offending value.
"""
from __future__ import annotations

import bisect
import csv
import io
import json
import json.decoder
import json.scanner
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from server.ballot.rules import threshold_for_category
from server.ballot.tally import CHANNELS, CHOICES, KINDS, RESOLUTION, Matter, RuleProblem, Rules, Submission
from server.ballot.weights import (
    REGISTER_COLUMNS,
    Electorate,
    RegisterRow,
    compute_electorate,
    parse_register_record,
    validate_register,
)
from server.record.archive import decode_text, read_files
from server.record.format import (
    BALLOT_COLUMNS,
    BALLOTS_FILE,
    BUNDLE_FILES,
    BUNDLE_FORMAT,
    MEETING_FILE,
    REGISTER_FILE,
    Bundle,
    BundleError,
)

__all__ = ["parse_bundle", "read_bundle"]


# --------------------------------------------------------------------------
# meeting.json: JSON with line numbers
# --------------------------------------------------------------------------

# The pure-Python parts of the json package used below are undocumented and
# absent from the type stubs; these are their CPython 3.11 signatures, JSONObject's
# as called here: object_hook None and object_pairs_hook ``list``, so it returns the pairs.
ScanOnce = Callable[[str, int], tuple[Any, int]]
_json_object: Callable[
    [tuple[str, int], bool, ScanOnce, None, type[list[Any]], dict[str, str] | None],
    tuple[list[tuple[str, Any]], int],
] = (
    json.decoder.JSONObject  # type: ignore[attr-defined]  # undocumented, not in the stubs
)
_json_array: Callable[[tuple[str, int], ScanOnce], tuple[list[Any], int]] = (
    json.decoder.JSONArray  # type: ignore[attr-defined]  # undocumented, not in the stubs
)
_py_make_scanner: Callable[[json.JSONDecoder], ScanOnce] = (
    json.scanner.py_make_scanner  # type: ignore[attr-defined]  # undocumented, not in the stubs
)


class _JsonObject(dict[str, Any]):
    """A JSON object that remembers its line and the line of each key's value."""

    line: int
    key_lines: dict[str, int]


class _JsonArray(list[Any]):
    """A JSON array that remembers its line and each item's line."""

    line: int
    item_lines: list[int]


class _LineTrackingDecoder(json.JSONDecoder):
    """json's pure-Python scanner with hooks that record where values start.

    The stdlib parses objects through ``parse_object(…, scan_once, …)`` and
    calls ``scan_once`` at the start of every member value; wrapping it per
    object gives each key's line without writing a JSON parser.  Duplicate
    keys, which ``json`` would silently collapse, are refused.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.parse_object = self._parse_object
        self.parse_array = self._parse_array
        self.scan_once = _py_make_scanner(self)

    def line_at(self, position: int) -> int:
        return bisect.bisect_left(self._newlines, position) + 1

    def _parse_object(
        self,
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: ScanOnce,
        object_hook: object,
        object_pairs_hook: object,
        memo: dict[str, str] | None = None,
    ) -> tuple[_JsonObject, int]:
        string, start = s_and_end
        value_starts: list[int] = []

        def tracking_scan(text: str, index: int) -> tuple[Any, int]:
            value_starts.append(index)
            return scan_once(text, index)

        pairs, end = _json_object(s_and_end, strict, tracking_scan, None, list, memo)
        result = _JsonObject()
        result.line = self.line_at(start - 1)
        result.key_lines = {}
        for (key, value), value_start in zip(pairs, value_starts):
            if key in result:
                raise BundleError(MEETING_FILE, self.line_at(value_start), f"键 {key!r} 重复")
            result[key] = value
            result.key_lines[key] = self.line_at(value_start)
        return result, end

    def _parse_array(self, s_and_end: tuple[str, int], scan_once: ScanOnce) -> tuple[_JsonArray, int]:
        string, start = s_and_end
        item_starts: list[int] = []

        def tracking_scan(text: str, index: int) -> tuple[Any, int]:
            item_starts.append(index)
            return scan_once(text, index)

        values, end = _json_array(s_and_end, tracking_scan)
        result = _JsonArray(values)
        result.line = self.line_at(start - 1)
        result.item_lines = [self.line_at(index) for index in item_starts[: len(values)]]
        return result, end


def _load_meeting_json(text: str) -> Any:
    try:
        return _LineTrackingDecoder(text).decode(text)
    except json.JSONDecodeError as exc:
        raise BundleError(MEETING_FILE, exc.lineno, f"不是有效的 JSON：{exc.msg}（第 {exc.colno} 列）") from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5000-digit number, absurd nesting
        raise BundleError(MEETING_FILE, 1, f"不是可用的 JSON：{exc}") from None


def _plain(value: Any) -> Any:
    """Strip the line-tracking types so callers get ordinary dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "数字"
    if isinstance(value, str):
        return "字符串"
    if isinstance(value, list):
        return "数组"
    return "对象"


class _MeetingReader:
    """Checks meeting.json, reporting the line of the offending value."""

    def fail(self, line: int, message: str) -> BundleError:
        return BundleError(MEETING_FILE, line, message)

    def line_of(self, obj: _JsonObject, key: str) -> int:
        return obj.key_lines.get(key, obj.line)

    def object(self, value: Any, line: int, what: str) -> _JsonObject:
        if not isinstance(value, _JsonObject):
            raise self.fail(line, f"{what} 应为 JSON 对象，实为{_json_type(value)}")
        return value

    # ``owner`` names the object in messages ("meeting", "事项 E1"); "" for the top level.
    def required(self, obj: _JsonObject, key: str, owner: str) -> Any:
        if key not in obj:
            raise self.fail(obj.line, f"{owner + ' ' if owner else ''}缺少 {key!r}")
        return obj[key]

    def text(self, obj: _JsonObject, key: str, owner: str, *, non_empty: bool = True) -> str:
        value = self.required(obj, key, owner)
        field = f"{owner} 的 {key}" if owner else key
        if not isinstance(value, str):
            raise self.fail(self.line_of(obj, key), f"{field} 应为字符串，实为{_json_type(value)}")
        if non_empty and value == "":
            raise self.fail(self.line_of(obj, key), f"{field} 不能为空")
        return value

    def read(self, text: str) -> tuple[dict[str, Any], str, Rules, tuple[Matter, ...]]:
        document = self.object(_load_meeting_json(text), 1, MEETING_FILE)
        format_name = self.required(document, "format", "")
        if format_name != BUNDLE_FORMAT:
            raise self.fail(
                self.line_of(document, "format"), f"format 应为 {BUNDLE_FORMAT!r}，实为 {format_name!r}"
            )
        if "community" in document:
            self.object(document["community"], self.line_of(document, "community"), "community")
        meeting = self.object(self.required(document, "meeting", ""), self.line_of(document, "meeting"), "meeting")
        meeting_id = self.text(meeting, "id", "meeting")
        if "title" in meeting:
            self.text(meeting, "title", "meeting", non_empty=False)
        rules = self.rules(document)
        matters = self.matters(document)
        return _plain(document), meeting_id, rules, matters

    def rules(self, document: _JsonObject) -> Rules:
        if "rules" not in document:
            return Rules()
        rules = self.object(document["rules"], self.line_of(document, "rules"), "rules")
        # Unknown keys are refused (elsewhere they are ignored): a rule this counter
        # does not implement would make its count silently wrong.
        try:
            return Rules.from_json(rules, refuse_unknown=True)
        except RuleProblem as exc:
            raise self.fail(self.line_of(rules, exc.key), str(exc)) from None

    def matters(self, document: _JsonObject) -> tuple[Matter, ...]:
        matters = self.required(document, "matters", "")
        line = self.line_of(document, "matters")
        if not isinstance(matters, _JsonArray):
            raise self.fail(line, f"matters 应为数组，实为{_json_type(matters)}")
        if not matters:
            raise self.fail(line, "matters 为空：会议至少要有一个表决事项")
        result: list[Matter] = []
        seen: dict[str, int] = {}
        for item, item_line in zip(matters, matters.item_lines):
            matter = self.matter(self.object(item, item_line, "matters 的每一项"))
            if matter.id in seen:
                raise self.fail(
                    self.line_of(item, "id"), f"事项 id {matter.id!r} 重复（第 {seen[matter.id]} 行已使用）"
                )
            seen[matter.id] = self.line_of(item, "id")
            result.append(matter)
        return tuple(result)

    def matter(self, item: _JsonObject) -> Matter:
        matter_id = self.text(item, "id", "事项")
        owner = f"事项 {matter_id}"
        where = f"{owner} 的 "  # prefix of a field of this matter
        title = self.text(item, "title", owner, non_empty=False)
        kind = self.required(item, "kind", owner)
        if kind not in KINDS:
            raise self.fail(self.line_of(item, "kind"), f"{where}kind {kind!r} 无效，应为 resolution 或 election")
        category = self.required(item, "category", owner)
        try:
            threshold_for_category(category)  # the one definition of a valid category
        except ValueError:
            raise self.fail(
                self.line_of(item, "category"),
                f"{where}category {category!r} 无效，应为《民法典》第二百七十八条的事项序号 1–9 之一（整数）",
            ) from None
        if kind == RESOLUTION:
            for key in ("seats", "alternates", "candidates"):
                if key in item:
                    raise self.fail(self.line_of(item, key), f"{where}{key}：表决事项（resolution）没有席位或候选人")
            return Matter(matter_id, title, kind, category)

        seats = self.required(item, "seats", owner)
        if not _is_int(seats) or seats < 1:
            raise self.fail(self.line_of(item, "seats"), f"{where}seats {seats!r} 无效，选举事项至少要有 1 个席位")
        alternates = item.get("alternates", 0)
        if not _is_int(alternates) or alternates < 0:
            raise self.fail(self.line_of(item, "alternates"), f"{where}alternates {alternates!r} 应为非负整数")
        candidates = self.required(item, "candidates", owner)
        line = self.line_of(item, "candidates")
        if not isinstance(candidates, _JsonArray):
            raise self.fail(line, f"{where}candidates 应为数组，实为{_json_type(candidates)}")
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
                    self.line_of(candidate, "id"),
                    f"{where}候选人 id {candidate_id!r} 重复（第 {seen[candidate_id]} 行已使用）",
                )
            seen[candidate_id] = self.line_of(candidate, "id")
            pairs.append((candidate_id, name))
        return Matter(matter_id, title, kind, category, seats, alternates, tuple(pairs))


# --------------------------------------------------------------------------
# CSV files
# --------------------------------------------------------------------------


def _csv_records(name: str, text: str, columns: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) for each data row; blank lines are skipped.

    The line number is where the record starts (a quoted field may span lines).
    Columns may come in any order; every column must be present exactly once and
    no other column is allowed, so nothing in the file goes uncounted unnoticed.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        while header == []:  # leading blank lines
            header = next(reader, None)
        if header is None:
            raise BundleError(name, 1, f"文件为空；第一行应为表头 {','.join(columns)}")
        header_line = reader.line_num
        for column in header:
            if header.count(column) > 1:
                raise BundleError(name, header_line, f"表头中列 {column!r} 重复")
            if column not in columns:
                raise BundleError(
                    name, header_line, f"表头中有未知的列 {column!r}；应为 {','.join(columns)}"
                )
        for column in columns:
            if column not in header:
                raise BundleError(name, header_line, f"缺少列 {column!r}；表头应为 {','.join(columns)}")
        previous_end = reader.line_num
        for fields in reader:
            start = previous_end + 1
            previous_end = reader.line_num
            if not fields:
                continue
            if len(fields) != len(header):
                raise BundleError(name, start, f"应有 {len(header)} 个字段，实有 {len(fields)} 个")
            yield start, dict(zip(header, fields))
    except csv.Error as exc:
        raise BundleError(name, reader.line_num, f"CSV 格式错误：{exc}") from None


def _read_register(text: str, rules: Rules) -> tuple[tuple[RegisterRow, ...], Electorate]:
    rows: list[RegisterRow] = []
    lines: list[int] = []
    for line, record in _csv_records(REGISTER_FILE, text, REGISTER_COLUMNS):
        row, problems = parse_register_record(record, len(rows))
        if row is None:
            raise BundleError(REGISTER_FILE, line, problems[0].message)
        rows.append(row)
        lines.append(line)
    problems = validate_register(rows, count_parking_area=rules.count_parking_area)
    if problems:
        first = problems[0]
        message = first.message
        if first.related_row is not None:
            message += f"（参见第 {lines[first.related_row]} 行）"
        raise BundleError(REGISTER_FILE, lines[first.row] if first.row is not None else 0, message)
    return tuple(rows), compute_electorate(rows, rules.count_parking_area)


@dataclass
class _BallotDraft:
    """A submission being assembled from its rows."""

    line: int
    ballot_id: str
    voter_id: str
    matter_id: str
    channel: str
    cast_at: datetime
    cast_at_text: str
    choices: list[tuple[str, str]]
    candidate_lines: dict[str, int]


def _parse_cast_at(text: str, line: int) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BundleError(
            BALLOTS_FILE, line, f"cast_at {text!r} 不是 ISO 8601 时间（如 2026-01-05T10:00:00+08:00）"
        ) from None
    if moment.utcoffset() is None:
        raise BundleError(BALLOTS_FILE, line, f"cast_at {text!r} 缺少 UTC 时差（如 +08:00 或 Z）")
    return moment


def _read_ballots(
    text: str, matters: Sequence[Matter], electorate: Electorate, register_rows: Sequence[RegisterRow]
) -> tuple[Submission, ...]:
    matter_by_id = {matter.id: matter for matter in matters}
    candidates_of = {matter.id: set(matter.candidate_ids) for matter in matters}
    registered_owners = {row.owner_id for row in register_rows}
    drafts: dict[str, _BallotDraft] = {}
    # (voter, matter, instant) → line: one voter's submissions for a matter need distinct times.
    cast_times: dict[tuple[str, str, datetime], tuple[int, str]] = {}

    def fail(line: int, message: str) -> BundleError:
        return BundleError(BALLOTS_FILE, line, message)

    for line, record in _csv_records(BALLOTS_FILE, text, BALLOT_COLUMNS):
        ballot_id, voter_id, matter_id = record["ballot_id"], record["voter_id"], record["matter_id"]
        candidate_id, choice, channel = record["candidate_id"], record["choice"], record["channel"]
        if ballot_id == "":
            raise fail(line, "ballot_id 不能为空")
        matter = matter_by_id.get(matter_id)
        if matter is None:
            raise fail(line, f"matter_id {matter_id!r} 不是 meeting.json 中的事项")
        if voter_id not in electorate.subjects:
            if voter_id in registered_owners:
                raise fail(
                    line,
                    f"voter_id {voter_id!r} 在登记册中，但不是有表决权的业主"
                    "（不是任何计入单元的代表投票人）",
                )
            raise fail(line, f"voter_id {voter_id!r} 不在登记册中")
        if matter.kind == RESOLUTION:
            if candidate_id != "":
                raise fail(line, f"事项 {matter_id} 是表决事项，candidate_id 应为空，实为 {candidate_id!r}")
        elif candidate_id not in candidates_of[matter_id]:
            if candidate_id == "":
                raise fail(line, f"事项 {matter_id} 是选举事项，candidate_id 不能为空")
            raise fail(line, f"candidate_id {candidate_id!r} 不是事项 {matter_id} 的候选人")
        if choice not in CHOICES:
            raise fail(line, f"choice {choice!r} 无效，应为 {'、'.join(CHOICES)} 之一")
        if channel not in CHANNELS:
            raise fail(line, f"channel {channel!r} 无效，应为 {' 或 '.join(CHANNELS)}")
        cast_at_text = record["cast_at"]
        draft = drafts.get(ballot_id)
        if draft is None or cast_at_text != draft.cast_at_text:
            # Parsed once per submission: its other rows must repeat the same text.
            cast_at = _parse_cast_at(cast_at_text, line)

        if draft is None:
            key = (voter_id, matter_id, cast_at)
            if key in cast_times:
                other_line, other_ballot = cast_times[key]
                raise fail(
                    line,
                    f"业主 {voter_id} 对事项 {matter_id} 的两份选票 cast_at 相同（{cast_at_text}）："
                    f"另一份为第 {other_line} 行的 {other_ballot}；同一业主同一事项的每次提交时间须不同",
                )
            cast_times[key] = (line, ballot_id)
            drafts[ballot_id] = _BallotDraft(
                line, ballot_id, voter_id, matter_id, channel, cast_at, cast_at_text,
                [(candidate_id, choice)], {candidate_id: line},
            )
            continue

        if (voter_id, matter_id) != (draft.voter_id, draft.matter_id):
            raise fail(
                line,
                f"ballot_id {ballot_id!r} 用于两位业主或两个事项：此处为 {voter_id}/{matter_id}，"
                f"第 {draft.line} 行为 {draft.voter_id}/{draft.matter_id}",
            )
        if channel != draft.channel:
            raise fail(line, f"选票 {ballot_id} 的各行 channel 不一致（第 {draft.line} 行为 {draft.channel}）")
        if cast_at_text != draft.cast_at_text:
            raise fail(line, f"选票 {ballot_id} 的各行 cast_at 不一致（第 {draft.line} 行为 {draft.cast_at_text}）")
        if matter.kind == RESOLUTION:
            raise fail(line, f"选票 {ballot_id} 是表决事项的选票，只能有一行（第 {draft.line} 行已有）")
        if candidate_id in draft.candidate_lines:
            raise fail(
                line,
                f"选票 {ballot_id} 中候选人 {candidate_id} 出现两次（第 {draft.candidate_lines[candidate_id]} 行已有）",
            )
        draft.candidate_lines[candidate_id] = line
        draft.choices.append((candidate_id, choice))

    return tuple(
        Submission(d.ballot_id, d.voter_id, d.matter_id, d.channel, d.cast_at, tuple(d.choices))
        for d in drafts.values()
    )


def parse_bundle(sources: Mapping[str, bytes]) -> Bundle:
    """Check and read a bundle from its files' contents (``{file name: bytes}``, as :func:`read_files` gives)."""
    for name in BUNDLE_FILES:
        if name not in sources:
            raise BundleError(name, 0, "文件缺失")
    meeting, meeting_id, rules, matters = _MeetingReader().read(decode_text(MEETING_FILE, sources[MEETING_FILE]))
    register_rows, electorate = _read_register(decode_text(REGISTER_FILE, sources[REGISTER_FILE]), rules)
    submissions = _read_ballots(decode_text(BALLOTS_FILE, sources[BALLOTS_FILE]), matters, electorate, register_rows)
    return Bundle(meeting, meeting_id, rules, matters, register_rows, electorate, submissions)


def read_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle directory or archive; raises :class:`~server.record.format.BundleError`."""
    return parse_bundle(read_files(path))
