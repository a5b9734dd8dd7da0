"""Checking an uploaded register table row by row.  Pure: takes decoded records,
returns the rows and every problem (never only the first).

The columns are those of bundle-format.md ``register.csv`` (checked by
``weights.parse_register_record`` and ``weights.validate_register``, the same
code that reads public bundles), plus optional owner details kept only in the
database: ``owner_name``, ``phone``, ``id_number`` and ``possession_evidence``
(non-empty: the owner is recognised by lawful possession without registration,
and this is the evidence).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from server.ballot.weights import REGISTER_COLUMNS, RegisterRow, parse_register_record, validate_register

OPTIONAL_COLUMNS = ("owner_name", "phone", "id_number", "possession_evidence")

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
    column: str
    code: str
    message: str

    def as_dict(self) -> dict[str, int | str | None]:
        return {"line": self.line, "column": self.column, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        where = f"第 {self.line} 行" if self.line else "整个文件"
        column = f" {self.column} 列" if self.column else ""
        return f"{where}{column}: {self.message} [{self.code}]"


@dataclass(frozen=True)
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
    problems: list[RowProblem]


def check_header(header: list[str]) -> list[RowProblem]:
    problems = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            problems.append(RowProblem(1, name, "duplicate_column", f"列 {name} 重复出现"))
        seen.add(name)
        if name not in REGISTER_COLUMNS and name not in OPTIONAL_COLUMNS:
            problems.append(RowProblem(1, name, "unknown_column", f"不认识的列 “{name}”"))
    for name in REGISTER_COLUMNS:
        if name not in seen:
            problems.append(RowProblem(1, name, "missing_column", f"缺少必需的列 {name}"))
    return problems


def parse_register_table(header: list[str], records: list[tuple[int, dict[str, str | None]]],
                         *, count_parking_area: bool) -> RegisterTable:
    """Check every cell and every rule between rows; collect all problems."""
    problems = check_header(header)
    table = RegisterTable(rows=[], owners={}, problems=problems)
    if problems:
        return table
    lines: list[int] = []
    failed_units: set[str] = set()
    for line, values in records:
        cells = {name: (values.get(name) or "") for name in (*REGISTER_COLUMNS, *OPTIONAL_COLUMNS)}
        row, row_problems = parse_register_record(cells, line)
        found = [RowProblem(line, p.column or "", p.code, p.message) for p in row_problems]
        if "\x00extra" in values:
            found.append(RowProblem(line, "", "extra_cells", "该行的单元格比表头多"))
        for name in ("unit_id", "building", "owner_id"):
            if cells[name] and not _ID.fullmatch(cells[name]):
                found.append(RowProblem(line, name, "bad_identifier",
                                        f"{name} “{cells[name]}” 含有不允许的字符或超过 64 个字符"))
        if cells["phone"] and not _PHONE.fullmatch(cells["phone"]):
            found.append(RowProblem(line, "phone", "bad_phone", "电话号码格式不正确"))
        if cells["id_number"] and not _ID_NUMBER.fullmatch(cells["id_number"]):
            found.append(RowProblem(line, "id_number", "bad_id_number", "证件号码格式不正确"))
        if len(cells["owner_name"]) > 100:
            found.append(RowProblem(line, "owner_name", "too_long", "姓名过长（最多 100 字）"))
        if found or row is None:
            problems.extend(found)
            failed_units.add(cells["unit_id"])
            continue
        details = OwnerDetails(row.owner_id, cells["owner_name"], cells["phone"],
                               cells["id_number"].upper(), cells["possession_evidence"])
        known = table.owners.get(row.owner_id)
        table.owners[row.owner_id] = details if known is None else _merge_owner(known, details, line, problems)
        table.rows.append(row)
        lines.append(line)
    # Rules between rows (representatives, unit consistency, one developer, electorate),
    # checked on the rows that read; a unit with an unreadable row is left out, since
    # its other rows would only seem to miss a representative.
    between = validate_register(table.rows, count_parking_area=None if problems else count_parking_area)
    for p in between:
        if p.row is not None and table.rows[p.row].unit_id in failed_units:
            continue
        problems.append(RowProblem(lines[p.row] if p.row is not None else None,
                                   p.column or "", p.code, p.message))
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return table


def _merge_owner(known: OwnerDetails, new: OwnerDetails, line: int, problems: list[RowProblem]) -> OwnerDetails:
    """One owner on several rows: details may be given once, but must not disagree."""
    merged = {}
    for attr, column in (("name", "owner_name"), ("phone", "phone"), ("id_number", "id_number"),
                         ("possession_evidence", "possession_evidence")):
        a, b = getattr(known, attr), getattr(new, attr)
        if a and b and a != b:
            problems.append(RowProblem(line, column, "owner_conflict",
                                       f"业主 {new.owner_id} 的 {column} 与前面的行不一致"))
        merged[attr] = a or b
    return OwnerDetails(known.owner_id, **merged)
