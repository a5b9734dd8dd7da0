"""Reading and checking a bundle: :func:`read_bundle` (a path) and :func:`parse_bundle` (its files).

Everything the format requires (docs/bundle-format.md) is checked, and the
first thing wrong raises :class:`~server.record.format.BundleError` naming the
file, the line and the problem; the pure core (server.ballot) then counts the
:class:`~server.record.format.Bundle`.  meeting.json is read by
:mod:`server.record.meeting`; this module reads the two CSV files and checks
each matter's scope against the register and each ballot's voter against the
matter's electorate.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from server.ballot.tally import (
    CHANNELS,
    ELECTION_CHOICES,
    INVALID,
    RESOLUTION,
    RESOLUTION_CHOICES,
    Matter,
    Rules,
    Submission,
    voter_problem,
)
from server.ballot.weights import (
    REGISTER_COLUMNS,
    SUBJECT_SEPARATOR,
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
    MEETING_FILE,
    REGISTER_FILE,
    Bundle,
    BundleError,
    parse_moment,
)
from server.record.meeting import check_scopes, read_meeting

__all__ = ["parse_bundle", "read_bundle"]


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
    candidate_lines: dict[str, int]  # "" for the row of a blank election ballot


def _parse_cast_at(text: str, line: int) -> datetime:
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise BundleError(BALLOTS_FILE, line, f"cast_at {exc}") from None


class _Voters:
    """Says why a ``voter_id`` may not vote on a matter, naming owners who are not voting subjects as such."""

    def __init__(self, electorate: Electorate, register_rows: Sequence[RegisterRow]) -> None:
        self.electorate = electorate
        self.registered_owners = {row.owner_id for row in register_rows}
        self.subjects_of_owner: dict[str, list[str]] = {}
        for subject_id in electorate.subjects:
            for owner in subject_id.split(SUBJECT_SEPARATOR):
                self.subjects_of_owner.setdefault(owner, []).append(subject_id)

    def problem(self, matter: Matter, voter_id: str) -> str | None:
        if voter_id in self.electorate.subjects:
            return voter_problem(matter, voter_id, self.electorate)
        if voter_id in self.registered_owners:
            subjects = self.subjects_of_owner.get(voter_id)
            if subjects:
                return (
                    f"voter_id {voter_id!r} 是登记册中的业主，但不是表决主体的编号；其所在的表决主体为 "
                    f"{'、'.join(subjects)}（共有人的编号按码位排序、以 {SUBJECT_SEPARATOR} 连接）"
                )
            return f"voter_id {voter_id!r} 在登记册中，但没有计入的单元，不是有表决权的业主"
        owners = voter_id.split(SUBJECT_SEPARATOR)
        normalised = SUBJECT_SEPARATOR.join(sorted(set(owners)))
        if SUBJECT_SEPARATOR in voter_id and normalised in self.electorate.subjects:
            return f"voter_id {voter_id!r} 不是表决主体的编号；共有人的编号应按码位排序：{normalised}"
        return f"voter_id {voter_id!r} 不在登记册中（不是任何表决主体）"


def _check_choice(matter: Matter, candidate_id: str, choice: str, candidates: set[str]) -> str | None:
    """Why a row's ``candidate_id`` and ``choice`` do not fit the matter (Chinese), or None."""
    if matter.kind == RESOLUTION:
        if candidate_id != "":
            return f"事项 {matter.id} 是表决事项，candidate_id 应为空，实为 {candidate_id!r}"
        if choice not in RESOLUTION_CHOICES:
            return f"choice {choice!r} 无效，表决事项应为 {'、'.join(RESOLUTION_CHOICES)} 之一"
        return None
    if candidate_id == "":
        if choice == INVALID:
            return None  # a blank or unclear election ballot: its single row
        return (
            f"事项 {matter.id} 是选举事项，candidate_id 不能为空"
            f"（空白或无法辨认的选票记为一行：candidate_id 为空，choice 为 {INVALID}）"
        )
    if candidate_id not in candidates:
        return f"candidate_id {candidate_id!r} 不是事项 {matter.id} 的候选人"
    if choice not in ELECTION_CHOICES:
        if choice == INVALID:
            return f"choice {INVALID} 不能针对某一候选人：无效的选举选票记为一行，candidate_id 为空"
        return f"choice {choice!r} 无效，对候选人应为 {'、'.join(ELECTION_CHOICES)} 之一"
    return None


def _read_ballots(
    text: str, matters: Sequence[Matter], electorate: Electorate, register_rows: Sequence[RegisterRow]
) -> tuple[Submission, ...]:
    matter_by_id = {matter.id: matter for matter in matters}
    candidates_of = {matter.id: set(matter.candidate_ids) for matter in matters}
    voters = _Voters(electorate, register_rows)
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
        problem = voters.problem(matter, voter_id)
        if problem is None:
            problem = _check_choice(matter, candidate_id, choice, candidates_of[matter_id])
        if problem is not None:
            raise fail(line, problem)
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
                    f"表决主体 {voter_id} 对事项 {matter_id} 的两份选票 cast_at 相同（{cast_at_text}）："
                    f"另一份为第 {other_line} 行的 {other_ballot}；同一表决主体同一事项的每次提交时间须不同",
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
                f"ballot_id {ballot_id!r} 用于两个表决主体或两个事项：此处为 {voter_id}/{matter_id}，"
                f"第 {draft.line} 行为 {draft.voter_id}/{draft.matter_id}",
            )
        if channel != draft.channel:
            raise fail(line, f"选票 {ballot_id} 的各行 channel 不一致（第 {draft.line} 行为 {draft.channel}）")
        if cast_at_text != draft.cast_at_text:
            raise fail(line, f"选票 {ballot_id} 的各行 cast_at 不一致（第 {draft.line} 行为 {draft.cast_at_text}）")
        if matter.kind == RESOLUTION:
            raise fail(line, f"选票 {ballot_id} 是表决事项的选票，只能有一行（第 {draft.line} 行已有）")
        if "" in draft.candidate_lines or candidate_id == "":
            raise fail(
                line,
                f"选票 {ballot_id}（第 {draft.line} 行起）：空白或无法辨认的选举选票只能是单独一行"
                f"（candidate_id 为空、choice 为 {INVALID}），不能与其他行同属一张选票",
            )
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
    """Check and read a bundle from its files' contents (``{file name: bytes}``, as :func:`read_files` gives).

    Files are checked in the order meeting.json, register.csv, ballots.csv; a
    matter's scope is checked against the register once the register is read.
    """
    for name in BUNDLE_FILES:
        if name not in sources:
            raise BundleError(name, 0, "文件缺失")
    meeting = read_meeting(decode_text(MEETING_FILE, sources[MEETING_FILE]))
    register_rows, electorate = _read_register(decode_text(REGISTER_FILE, sources[REGISTER_FILE]), meeting.rules)
    check_scopes(meeting, electorate, {row.building for row in register_rows})
    submissions = _read_ballots(
        decode_text(BALLOTS_FILE, sources[BALLOTS_FILE]), meeting.matters, electorate, register_rows
    )
    return Bundle(
        meeting.document, meeting.meeting_id, meeting.rules, meeting.matters, register_rows, electorate, submissions
    )


def read_bundle(path: str | Path) -> Bundle:
    """Read and check a bundle directory or archive; raises :class:`~server.record.format.BundleError`."""
    return parse_bundle(read_files(path))
