"""Checking an uploaded register table row by row.  Pure: takes decoded records one at a time,
returns the rows, the first problems (every one counted) and the warnings.

The columns are those of bundle-format.md ``register.csv`` (checked by
``weights.parse_register_record`` and ``weights.iter_register_problems``, the same
code that reads public bundles), plus optional owner details kept only in the
database: ``owner_name``, ``phone``, ``id_number`` and ``possession_evidence``
(non-empty: the owner is recognised by lawful possession without registration,
and this is the evidence).  Headers and values may be the codes or their Chinese
names (server.ballot.register_columns); messages name columns in Chinese.
"""
from __future__ import annotations

import heapq
import itertools
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from server.ballot.register_columns import (
    ALL_COLUMNS,
    EXAMPLE_ROW,
    OPTIONAL_COLUMNS,
    VALUE_NAMES,
    allowed_values,
    column_code,
    label,
    value_code,
)
from server.ballot.weights import REGISTER_COLUMNS, RegisterRow, iter_register_problems, parse_register_record

__all__ = ["MAX_LISTED", "OPTIONAL_COLUMNS", "Capped", "OwnerDetails", "RegisterTable", "RowProblem",
           "parse_register_table", "valid_id_number", "valid_phone"]

# Problems (and warnings) listed in an answer; all are counted.
MAX_LISTED = 200

# Identifiers end up in URLs, CSV files and QR sheets: keep them plain.
_ID = re.compile(r"[A-Za-z0-9_\-./#\u4e00-\u9fff]{1,64}")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]|[A-Za-z0-9()（）]{6,20}")


def valid_phone(text: str) -> bool:
    """A phone number as the register accepts one (an owner's details given elsewhere are checked alike)."""
    return bool(_PHONE.fullmatch(text))


def valid_id_number(text: str) -> bool:
    """An ID number as the register accepts one."""
    return bool(_ID_NUMBER.fullmatch(text))


@dataclass(frozen=True)
class RowProblem:
    line: int | None        # line (CSV) or row (xlsx) of the file; None: the whole file
    column: str             # the column's code (``area``); "" for none
    code: str
    message: str            # Chinese, naming the column by its Chinese name

    def as_dict(self) -> dict[str, int | str | None]:
        return {"line": self.line, "column": self.column, "column_label": label(self.column) if self.column else "",
                "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"第 {self.line} 行" if self.line else "整个文件"
        column = f" {self.column} 列" if self.column else ""
        return f"{where}{column}: {self.message} [{self.code}]"


class Capped:
    """The first ``limit`` items by line (whole-file ones last) of any number added; ``count`` counts all."""

    def __init__(self, limit: int = MAX_LISTED):
        self.limit = limit
        self.count = 0
        self._heap: list[tuple[int, int, int, RowProblem]] = []  # max-heap by (file-wide, line, order)
        self._order = itertools.count()

    def add(self, item: RowProblem) -> None:
        self.count += 1
        key = (-(item.line is None), -(item.line or 0), -next(self._order))
        if len(self._heap) < self.limit:
            heapq.heappush(self._heap, (*key, item))
        elif key > self._heap[0][:3]:
            heapq.heapreplace(self._heap, (*key, item))

    def extend(self, items: Iterable[RowProblem]) -> None:
        for item in items:
            self.add(item)

    def listed(self) -> list[RowProblem]:
        return [entry[3] for entry in sorted(self._heap, reverse=True)]

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[RowProblem]:
        return iter(self.listed())

    def __getitem__(self, index: int) -> RowProblem:
        return self.listed()[index]


@dataclass(frozen=True, slots=True)
class OwnerDetails:
    owner_id: str
    name: str
    phone: str
    id_number: str
    possession_evidence: str


@dataclass
class RegisterTable:
    rows: list[RegisterRow]
    owners: dict[str, OwnerDetails]
    problems: Capped
    lines: list[int] = field(default_factory=list)  # the file line of each of ``rows``
    records: int = 0                                # data rows read (blank ones not counted)


def check_header(header: list[str]) -> tuple[list[str | None], list[RowProblem]]:
    """The column code of each header cell (None: unknown or repeated) and the header's problems."""
    problems = []
    codes: list[str | None] = []
    seen: set[str] = set()
    for name in header:
        code = column_code(name)
        if code is None:
            problems.append(RowProblem(1, "", "unknown_column",
                                       f"不认识的列“{name}”（可用的列见模板的“填写说明”）"))
        elif code in seen:
            problems.append(RowProblem(1, code, "duplicate_column", f"列“{label(code)}”（{code}）重复出现"))
            code = None
        else:
            seen.add(code)
        codes.append(code)
    for code in REGISTER_COLUMNS:
        if code not in seen:
            problems.append(RowProblem(1, code, "missing_column", f"缺少必需的列“{label(code)}”（{code}）"))
    return codes, problems


_CHOICE_CODES = {"kind": "bad_kind", "area_source": "bad_area_source", "holder": "bad_holder",
                 "representative": "bad_representative"}


def _localise(column: str, message: str) -> str:
    """A message of weights.py names columns by code; name them in Chinese."""
    if column and message.startswith(column + " "):
        message = f"“{label(column)}”" + message[len(column) + 1:]
    for code in REGISTER_COLUMNS:
        message = message.replace(f"的 {code} 为", f"的“{label(code)}”为")
    return message.replace("（representative=1）", "（“代表投票人”为“是”或 1）")


def _choice_problem(line: int, column: str, text: str) -> RowProblem:
    what = f"“{label(column)}”为空" if text == "" else f"“{label(column)}”的值“{text}”无效"
    return RowProblem(line, column, _CHOICE_CODES[column], f"{what}，应为 {allowed_values(column)} 之一")


def _cell_problems(line: int, cells: dict[str, str]) -> list[RowProblem]:
    found = []
    for name in ("unit_id", "building", "owner_id"):
        if cells[name] and not _ID.fullmatch(cells[name]):
            found.append(RowProblem(line, name, "bad_identifier",
                                    f"“{label(name)}”的值“{cells[name][:80]}”含有不允许的字符或超过 64 个字符"
                                    "（可用汉字、字母、数字和 _ - . / #）"))
    if cells["phone"] and not _PHONE.fullmatch(cells["phone"]):
        found.append(RowProblem(line, "phone", "bad_phone", f"“{label('phone')}”格式不正确"))
    if cells["id_number"] and not _ID_NUMBER.fullmatch(cells["id_number"]):
        found.append(RowProblem(line, "id_number", "bad_id_number", f"“{label('id_number')}”格式不正确"))
    if len(cells["owner_name"]) > 100:
        found.append(RowProblem(line, "owner_name", "too_long", f"“{label('owner_name')}”过长（最多 100 字）"))
    if cells["owner_id"] == EXAMPLE_ROW["owner_id"]:
        found.append(RowProblem(line, "owner_id", "template_example_row", "这是模板中的示例行，请删除后再导入"))
    if len(cells["possession_evidence"]) > 500:
        found.append(RowProblem(line, "possession_evidence", "too_long",
                                f"“{label('possession_evidence')}”过长（最多 500 字）"))
    return found


def parse_register_table(header: list[str], records: Iterable[tuple[int, dict[str, str | None]]],
                         *, count_parking_area: bool, max_listed: int = MAX_LISTED) -> RegisterTable:
    """Check every cell and every rule between rows, reading ``records`` (line, {header: text}) once.

    Every problem is counted; the first ``max_listed`` by line are kept.
    """
    codes, header_problems = check_header(header)
    problems = Capped(max_listed)
    problems.extend(header_problems)
    table = RegisterTable(rows=[], owners={}, problems=problems)
    if header_problems:
        return table
    columns = [(name, code) for name, code in zip(header, codes) if code is not None]
    failed_units: set[str] = set()
    for line, values in records:
        table.records += 1
        cells = dict.fromkeys(ALL_COLUMNS, "")
        for name, code in columns:
            cells[code] = values.get(name) or ""
        cells["building"] = sys.intern(cells["building"])  # a few hundred buildings, many rows
        found: list[RowProblem] = []
        for column in VALUE_NAMES:
            value = value_code(column, cells[column])
            if value is None:
                found.append(_choice_problem(line, column, cells[column]))
            else:
                cells[column] = value  # the code object itself: one string shared by every row
        reported = {p.column for p in found}
        row, row_problems = parse_register_record(cells, line)
        found.extend(RowProblem(line, p.column or "", p.code, _localise(p.column or "", p.message))
                     for p in row_problems if p.column not in reported)
        if "\x00extra" in values:
            found.append(RowProblem(line, "", "extra_cells", "该行的单元格比表头多"))
        found.extend(_cell_problems(line, cells))
        if found or row is None:
            problems.extend(sorted(found, key=lambda p: _COLUMN_ORDER.get(p.column, len(_COLUMN_ORDER))))
            failed_units.add(cells["unit_id"])
            continue
        details = OwnerDetails(row.owner_id, cells["owner_name"], cells["phone"],
                               cells["id_number"].upper(), cells["possession_evidence"])
        known = table.owners.get(row.owner_id)
        table.owners[row.owner_id] = details if known is None else _merge_owner(known, details, line, problems)
        table.rows.append(row)
        table.lines.append(line)
    # Rules between rows (representatives, unit consistency, one developer, electorate),
    # checked on the rows that read; a unit with an unreadable row is left out, since
    # its other rows would only seem to miss a representative.
    for p in iter_register_problems(table.rows, count_parking_area=None if problems else count_parking_area):
        if p.row is not None and table.rows[p.row].unit_id in failed_units:
            continue
        problems.add(RowProblem(table.lines[p.row] if p.row is not None else None,
                                p.column or "", p.code, _localise(p.column or "", p.message)))
    return table


_COLUMN_ORDER = {column: i for i, column in enumerate(ALL_COLUMNS)}


def _merge_owner(known: OwnerDetails, new: OwnerDetails, line: int, problems: Capped) -> OwnerDetails:
    """One owner on several rows: details may be given once, but must not disagree."""
    merged = {}
    for attr, column in (("name", "owner_name"), ("phone", "phone"), ("id_number", "id_number"),
                         ("possession_evidence", "possession_evidence")):
        a, b = getattr(known, attr), getattr(new, attr)
        if a and b and a != b:
            problems.add(RowProblem(line, column, "owner_conflict",
                                    f"业主 {new.owner_id} 的“{label(column)}”与前面的行不一致"))
        merged[attr] = a or b
    return OwnerDetails(known.owner_id, **merged)

