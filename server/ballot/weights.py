"""Who votes and with what weight: the electorate of one meeting.

Civil Code art. 278 counts every decision twice, by area and by persons
(专有部分面积 and 人数).  This module turns the frozen owner register into
those weights.  Pure: no I/O, integers only (areas in centi-m², see
:mod:`server.ballot.amounts`).

Rules (voting-rules.md, bundle-format.md):

- A *voting subject* is an ``owner_id`` that is the representative of at least
  one counted unit.  Co-owners of a unit choose one representative, so the unit
  counts once.
- Its area is the sum of the areas of the units it represents; it is one person
  however many units it holds (a buyer of several units is one person).
- All developer-held units carry the developer's single ``owner_id``, so the
  developer is one person automatically.
- Parking units count only when the community's rules say so.

The validation helpers return *every* problem as structured data instead of
raising on the first one, so an importer can list all bad rows at once; the
bundle reader reports the first.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from server.ballot.amounts import AreaFormatError, format_area, parse_area

__all__ = [
    "AREA_SOURCES",
    "HOLDERS",
    "KINDS",
    "REGISTER_COLUMNS",
    "BuildingTotals",
    "Electorate",
    "RegisterInvalid",
    "RegisterProblem",
    "RegisterRow",
    "Subject",
    "compute_electorate",
    "is_counted",
    "parse_register_record",
    "validate_register",
]

KINDS = ("dwelling", "commercial", "parking")
AREA_SOURCES = ("registry", "survey", "contract")
HOLDERS = ("owner", "developer")
REGISTER_COLUMNS = (
    "unit_id",
    "building",
    "kind",
    "area",
    "area_source",
    "holder",
    "owner_id",
    "representative",
)
# Columns that describe the unit itself and so must agree on every row of one unit.
_UNIT_COLUMNS = ("building", "kind", "area", "area_source", "holder")

@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One (unit, owner) row of the register; a co-owned unit has several."""

    unit_id: str
    building: str
    kind: str  # one of KINDS
    area: int  # centi-m²
    area_source: str  # one of AREA_SOURCES
    holder: str  # one of HOLDERS
    owner_id: str
    representative: bool


@dataclass(frozen=True, slots=True)
class Subject:
    """A voting subject: one person, with the summed area of the units it represents."""

    owner_id: str
    area: int  # centi-m²
    units: tuple[str, ...]  # counted units it represents, in register order
    buildings: tuple[str, ...]  # distinct buildings of those units, first-seen order


@dataclass(frozen=True, slots=True)
class BuildingTotals:
    """Counted units of one building.

    ``persons`` is the number of distinct voting subjects representing a
    counted unit in the building.  Summed over buildings it can exceed the
    electorate's ``total_persons``: one person holding units in two buildings is
    one person in each building but only one person overall.
    """

    area: int  # centi-m²
    persons: int
    units: int


@dataclass(frozen=True, slots=True)
class Electorate:
    """The weights of a meeting: voting subjects and the totals art. 278 divides by.

    The dicts are not copied on access; treat them as read-only.
    """

    subjects: dict[str, Subject]
    total_area: int  # centi-m², sum over subjects
    total_persons: int  # number of subjects
    by_building: dict[str, BuildingTotals]


@dataclass(frozen=True, slots=True)
class RegisterProblem:
    """One thing wrong with the register.

    ``row`` is the 0-based index into the rows given (``None`` for a problem of
    the register as a whole), ``column`` the column at fault (or ``None``),
    ``code`` a stable machine-readable code, ``message`` Chinese text for staff
    (it names units and owners but no row numbers, since callers number rows
    differently: CSV lines, spreadsheet rows); ``related_row`` is the index of
    the earlier row this one conflicts with.
    """

    row: int | None
    column: str | None
    code: str
    message: str
    related_row: int | None = None  # the earlier row this one conflicts with, if any


class RegisterInvalid(ValueError):
    """Raised by :func:`compute_electorate` when the register has problems."""

    def __init__(self, problems: Sequence[RegisterProblem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0]
        where = f"[row {first.row}] " if first.row is not None else ""
        more = f"（另有 {len(self.problems) - 1} 处问题）" if len(self.problems) > 1 else ""
        super().__init__(f"{where}{first.message}{more}")


def _show(value: object) -> str:
    # Areas are ints internally but people know them in m².
    if isinstance(value, int) and not isinstance(value, bool):
        return repr(format_area(value))
    return repr(value)


def is_counted(row: RegisterRow, count_parking_area: bool) -> bool:
    """Whether the row's unit is an exclusive part (专有部分) for this meeting."""
    return row.kind != "parking" or count_parking_area


def parse_register_record(
    record: Mapping[str, str], row: int
) -> tuple[RegisterRow | None, list[RegisterProblem]]:
    """Check the text fields of one register record and build a :class:`RegisterRow`.

    ``record`` maps the column names of :data:`REGISTER_COLUMNS` to strings (as
    read from a CSV file or a spreadsheet); ``row`` is the index reported in
    problems.  Returns the row, or ``None`` with the problems in column order.
    Values are taken exactly as given (no trimming), so what is checked is what
    is published.
    """
    problems: list[RegisterProblem] = []

    def bad(column: str, code: str, message: str) -> None:
        problems.append(RegisterProblem(row, column, code, message))

    for column in REGISTER_COLUMNS:
        if column not in record or record[column] is None:
            bad(column, "missing_column", f"缺少列 {column}")
    if problems:
        return None, problems

    for column in ("unit_id", "building", "owner_id"):
        if record[column] == "":
            bad(column, f"empty_{column}", f"{column} 不能为空")

    area = 0
    try:
        area = parse_area(record["area"])
    except AreaFormatError:
        bad(
            "area",
            "bad_area",
            f"area 的值 {record['area']!r} 不是至多两位小数的正数（如 88.5、102.37；不带符号、指数或千位分隔符）",
        )

    choices = (
        ("kind", KINDS, "bad_kind"),
        ("area_source", AREA_SOURCES, "bad_area_source"),
        ("holder", HOLDERS, "bad_holder"),
    )
    for column, allowed, code in choices:
        if record[column] not in allowed:
            bad(column, code, f"{column} 的值 {record[column]!r} 无效，应为 {'、'.join(allowed)} 之一")

    representative = record["representative"]
    if representative not in ("0", "1"):
        bad(
            "representative",
            "bad_representative",
            f"representative 的值 {representative!r} 无效，应为 1（代表投票人）或 0",
        )

    # Keep problems in column order whatever order the checks ran in.
    order = {column: i for i, column in enumerate(REGISTER_COLUMNS)}
    problems.sort(key=lambda p: order.get(p.column or "", len(order)))
    if problems:
        return None, problems
    return (
        RegisterRow(
            unit_id=record["unit_id"],
            building=record["building"],
            kind=record["kind"],
            area=area,
            area_source=record["area_source"],
            holder=record["holder"],
            owner_id=record["owner_id"],
            representative=representative == "1",
        ),
        problems,
    )


def validate_register(
    rows: Sequence[RegisterRow], *, count_parking_area: bool | None = None
) -> list[RegisterProblem]:
    """Every structural problem of a register, ordered by row (whole-register last).

    Codes:

    - ``missing_representative``: a unit none of whose rows has representative=1
      (reported on the unit's first row);
    - ``duplicate_representative``: a second (third…) representative of a unit;
    - ``duplicate_owner_row``: a second row for the same (unit, owner);
    - ``inconsistent_unit``: a row of a unit disagreeing with the unit's first row
      on building, kind, area, area_source or holder (one problem per column);
    - ``multiple_developer_ids``: a developer-held row whose owner_id differs from
      the first developer owner_id (the developer must be one person);
    - ``empty_electorate``: no voting subject; only checked when
      ``count_parking_area`` is given, because which units count depends on it.
    """
    problems: list[RegisterProblem] = []
    first_row_of_unit: dict[str, int] = {}
    representative_of_unit: dict[str, int] = {}
    row_of_owner_in_unit: dict[tuple[str, str], int] = {}
    developer_id: str | None = None
    developer_row = -1

    for index, row in enumerate(rows):
        unit = row.unit_id
        first = first_row_of_unit.setdefault(unit, index)
        if first != index:
            reference = rows[first]
            for column in _UNIT_COLUMNS:
                mine, theirs = getattr(row, column), getattr(reference, column)
                if mine != theirs:
                    problems.append(
                        RegisterProblem(
                            index,
                            column,
                            "inconsistent_unit",
                            f"单元 {unit!r} 的 {column} 为 {_show(mine)}，与该单元此前的登记 "
                            f"{_show(theirs)} 不一致",
                            related_row=first,
                        )
                    )
        earlier_owner_row = row_of_owner_in_unit.setdefault((unit, row.owner_id), index)
        if earlier_owner_row != index:
            problems.append(
                RegisterProblem(
                    index,
                    "owner_id",
                    "duplicate_owner_row",
                    f"单元 {unit!r} 的业主 {row.owner_id!r} 重复登记",
                    related_row=earlier_owner_row,
                )
            )
        if row.representative:
            earlier = representative_of_unit.setdefault(unit, index)
            if earlier != index:
                problems.append(
                    RegisterProblem(
                        index,
                        "representative",
                        "duplicate_representative",
                        f"单元 {unit!r} 有多个代表投票人（representative=1）；每个单元只能指定一人",
                        related_row=earlier,
                    )
                )
        if row.holder == "developer":
            if developer_id is None:
                developer_id, developer_row = row.owner_id, index
            elif row.owner_id != developer_id:
                problems.append(
                    RegisterProblem(
                        index,
                        "owner_id",
                        "multiple_developer_ids",
                        f"建设单位持有的单元应使用同一 owner_id（此前为 {developer_id!r}，"
                        f"此处为 {row.owner_id!r}）；建设单位只计一人",
                        related_row=developer_row,
                    )
                )

    for unit, first in first_row_of_unit.items():
        if unit not in representative_of_unit:
            problems.append(
                RegisterProblem(
                    first,
                    "representative",
                    "missing_representative",
                    f"单元 {unit!r} 没有代表投票人；共有人须推选一人（representative=1）",
                )
            )

    if count_parking_area is not None:
        if not any(row.representative and is_counted(row, count_parking_area) for row in rows):
            problems.append(
                RegisterProblem(
                    None,
                    None,
                    "empty_electorate",
                    "没有任何有表决权的业主（登记册为空，或只有不计入的车位）",
                )
            )

    problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return problems


def compute_electorate(rows: Iterable[RegisterRow], count_parking_area: bool) -> Electorate:
    """Voting subjects, totals and per-building figures of a register.

    Raises :class:`RegisterInvalid` (listing every problem) if
    :func:`validate_register` finds any, because counting a unit twice or not at
    all would silently change every threshold.
    """
    rows = tuple(rows)
    problems = validate_register(rows, count_parking_area=count_parking_area)
    if problems:
        raise RegisterInvalid(problems)

    area_of: dict[str, int] = {}
    units_of: dict[str, list[str]] = {}
    buildings_of: dict[str, dict[str, None]] = {}  # dict as an ordered set
    building_area: dict[str, int] = {}
    building_units: dict[str, int] = {}
    building_people: dict[str, set[str]] = {}

    for row in rows:
        if not row.representative or not is_counted(row, count_parking_area):
            continue
        owner, building = row.owner_id, row.building
        area_of[owner] = area_of.get(owner, 0) + row.area
        units_of.setdefault(owner, []).append(row.unit_id)
        buildings_of.setdefault(owner, {})[building] = None
        building_area[building] = building_area.get(building, 0) + row.area
        building_units[building] = building_units.get(building, 0) + 1
        building_people.setdefault(building, set()).add(owner)

    subjects = {
        owner: Subject(owner, area, tuple(units_of[owner]), tuple(buildings_of[owner]))
        for owner, area in area_of.items()
    }
    by_building = {
        building: BuildingTotals(area, len(building_people[building]), building_units[building])
        for building, area in building_area.items()
    }
    return Electorate(
        subjects=subjects,
        total_area=sum(area_of.values()),
        total_persons=len(subjects),
        by_building=by_building,
    )
