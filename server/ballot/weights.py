"""Who votes and with what weight: the electorate of one meeting.

Civil Code art. 278 counts every decision twice, by area and by persons
(专有部分面积 and 人数).  This module turns the frozen owner register into
those weights.  Pure: no I/O, integers only (areas in milli-m², see
:mod:`server.ballot.amounts`).

Rules (voting-rules.md, bundle-format.md; SPC interpretation art. 9):

- A unit's buyer is the set of its owners.  All units with exactly the same
  set of owners form one *voting subject*; its id is the owners' ids sorted by
  code point and joined with ``+`` (just the ``owner_id`` of a sole owner), so
  an ``owner_id`` may never contain ``+``.  A and B jointly, and A alone, are
  two subjects.
- All developer-held units carry the developer's single ``owner_id``, so they
  form one subject.
- A subject's area is the sum of the areas of its counted units; it is one
  person however many units it holds.  Parking units count only when the
  community's rules say so; a subject with no counted unit is not in the
  electorate.
- Every unit of one subject names the same representative, the owner who casts
  the subject's ballot; who it is never changes the count.
- A matter scoped to some buildings has its own electorate
  (:meth:`Electorate.for_scope`): the subjects with a counted unit there, each
  weighing the area of its units there.

The validation helpers return *every* problem as structured data instead of
raising on the first one, so an importer can list all bad rows at once; the
bundle reader reports the first.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from server.ballot.amounts import AreaFormatError, area_places, format_area, parse_area

__all__ = [
    "AREA_SOURCES",
    "HOLDERS",
    "KINDS",
    "REGISTER_COLUMNS",
    "SUBJECT_SEPARATOR",
    "BuildingTotals",
    "Electorate",
    "MatterElectorate",
    "RegisterInvalid",
    "RegisterProblem",
    "RegisterRow",
    "Subject",
    "compute_electorate",
    "in_scope",
    "is_counted",
    "iter_register_problems",
    "parse_register_record",
    "scope_problem",
    "subject_id",
    "validate_register",
]

SUBJECT_SEPARATOR = "+"
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
    area: int  # milli-m²
    area_source: str  # one of AREA_SOURCES
    holder: str  # one of HOLDERS
    owner_id: str
    representative: bool


def subject_id(owner_ids: Iterable[str]) -> str:
    """The id of the voting subject of a set of owners: sorted by code point, joined with ``+``."""
    owners = sorted(set(owner_ids))
    if not owners or any(not owner or SUBJECT_SEPARATOR in owner for owner in owners):
        raise ValueError(f"owner ids must be non-empty and contain no {SUBJECT_SEPARATOR!r}: {owners!r}")
    return SUBJECT_SEPARATOR.join(owners)


@dataclass(frozen=True, slots=True)
class Subject:
    """A voting subject: one person, with the summed area of its counted units.

    ``id`` is the subject id (the owners' ids joined with ``+``), which ballots
    name as their voter.  ``representative`` is the owner who casts its ballot
    (by default the id itself, for a sole owner).  ``building_areas`` is the
    area in each of ``buildings`` (in the same order); it may be left out when
    the subject lies in at most one building.
    """

    id: str
    area: int  # milli-m²
    units: tuple[str, ...] = ()  # counted units, in register order
    buildings: tuple[str, ...] = ()  # distinct buildings of those units, first-seen order
    representative: str = ""
    building_areas: tuple[int, ...] = ()  # milli-m² in each of ``buildings``

    def __post_init__(self) -> None:
        owners = self.owners
        if not self.representative:
            if len(owners) != 1:
                raise ValueError(f"subject {self.id!r} of several owners needs its representative")
            object.__setattr__(self, "representative", self.id)
        elif self.representative not in owners:
            raise ValueError(f"representative {self.representative!r} is not an owner of subject {self.id!r}")
        if not self.building_areas and len(self.buildings) == 1:
            object.__setattr__(self, "building_areas", (self.area,))
        if self.buildings and (
            len(self.building_areas) != len(self.buildings) or sum(self.building_areas) != self.area
        ):
            raise ValueError(f"subject {self.id!r}: building_areas must give the area in each building")

    @property
    def owner_id(self) -> str:
        """The subject id (the name this field had when a subject was one owner)."""
        return self.id

    @property
    def owners(self) -> tuple[str, ...]:
        """The owners whose units these are, sorted by code point."""
        return tuple(self.id.split(SUBJECT_SEPARATOR))

    def area_in(self, buildings: Collection[str]) -> int:
        """The area of this subject's counted units in ``buildings``."""
        return sum(area for building, area in zip(self.buildings, self.building_areas) if building in buildings)


def in_scope(subject: Subject, scope: Collection[str]) -> bool:
    """Whether the subject votes on a matter of this scope (empty: the whole community)."""
    return not scope or any(building in scope for building in subject.buildings)


@dataclass(frozen=True, slots=True)
class BuildingTotals:
    """Counted units of one building.

    ``persons`` is the number of distinct voting subjects holding a counted
    unit in the building.  Summed over buildings it can exceed the
    electorate's ``total_persons``: one person holding units in two buildings is
    one person in each building but only one person overall.
    """

    area: int  # milli-m²
    persons: int
    units: int


@dataclass(frozen=True, slots=True)
class MatterElectorate:
    """Who votes on one matter and with what weight: the register's totals, or a scope's.

    ``areas`` maps each voter id of the matter to the area it weighs there (one
    person each).  The dict is not copied on access; treat it as read-only.
    """

    scope: tuple[str, ...]  # buildings; empty: the whole community
    areas: Mapping[str, int]  # voter id -> milli-m²
    total_area: int  # milli-m²
    total_persons: int
    places: int = 2  # decimals the register's areas are printed with


@dataclass(frozen=True, slots=True)
class Electorate:
    """The weights of a meeting: voting subjects and the totals art. 278 divides by.

    ``places`` is 3 when any area of the register (counted or not) has a third
    decimal, else 2: every area of the meeting's result is printed with it.
    The dicts are not copied on access; treat them as read-only.
    """

    subjects: dict[str, Subject]
    total_area: int  # milli-m², sum over subjects
    total_persons: int  # number of subjects
    by_building: dict[str, BuildingTotals]
    places: int = 2

    def for_scope(self, scope: Sequence[str] = ()) -> MatterElectorate:
        """The electorate of a matter scoped to ``scope`` (buildings; empty: the whole register).

        A scoped matter's voters are the subjects with a counted unit in those
        buildings, each weighing its area there.  An empty result raises
        ``ValueError`` (check the scope with :func:`scope_problem` first):
        quorum against nobody would be met by nobody.
        """
        scope = tuple(scope)
        if not scope:
            areas = {voter_id: subject.area for voter_id, subject in self.subjects.items()}
            return MatterElectorate(scope, areas, self.total_area, self.total_persons, self.places)
        buildings = frozenset(scope)
        areas = {}
        for voter_id, subject in self.subjects.items():
            area = subject.area_in(buildings)
            if area:
                areas[voter_id] = area
        if not areas:
            raise ValueError(f"no voting subject holds a counted unit in {', '.join(scope)}")
        return MatterElectorate(scope, areas, sum(areas.values()), len(areas), self.places)


def scope_problem(
    scope: Sequence[str], electorate: Electorate, register_buildings: Collection[str] | None = None
) -> str | None:
    """Why a matter may not be scoped to ``scope`` (Chinese), or None.

    Every building must be in the register (``register_buildings``, every
    building of its rows, counted or not; without it, the buildings with
    counted units), and the scope's electorate must not be empty.  An empty
    scope is the whole community and always fine here: a scope written as an
    empty list is the reader's to refuse.
    """
    known = electorate.by_building if register_buildings is None else register_buildings
    seen: set[str] = set()
    for building in scope:
        if not isinstance(building, str) or building == "":
            return "范围中的楼栋名称不能为空"
        if building in seen:
            return f"范围中楼栋 {building!r} 重复"
        seen.add(building)
        if building not in known:
            return f"范围中的楼栋 {building!r} 不在登记册中"
    if scope and not any(building in electorate.by_building for building in scope):
        return f"范围（{'、'.join(scope)}）内没有有表决权的业主（没有计入的单元）"
    return None


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
        return repr(format_area(value, area_places([value])))
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
            f"area 的值 {record['area']!r} 不是至多三位小数的正数（如 88.5、102.37、71.125；不带符号、指数或千位分隔符）",
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

    - ``bad_owner_id``: an owner_id containing ``+`` (it joins the owners of a
      voting subject's id);
    - ``missing_representative``: a unit none of whose rows has representative=1
      (reported on the unit's first row);
    - ``duplicate_representative``: a second (third…) representative of a unit;
    - ``duplicate_owner_row``: a second row for the same (unit, owner);
    - ``inconsistent_unit``: a row of a unit disagreeing with the unit's first row
      on building, kind, area, area_source or holder (one problem per column);
    - ``multiple_developer_ids``: a developer-held row whose owner_id differs from
      the first developer owner_id (the developer must be one person);
    - ``split_representatives``: the units of one voting subject (the same set of
      owners) name different representatives; one problem per subject, on the
      representative row of its first unit that disagrees, naming every unit and
      its representative (checked on every unit, counted or not, so a register
      is valid or not whatever the parking rule);
    - ``empty_electorate``: no voting subject; only checked when
      ``count_parking_area`` is given, because which units count depends on it.
    """
    problems = list(iter_register_problems(rows, count_parking_area=count_parking_area))
    problems.sort(key=lambda p: (p.row is None, p.row or 0))
    return problems


def iter_register_problems(
    rows: Sequence[RegisterRow], *, count_parking_area: bool | None = None
) -> Iterator[RegisterProblem]:
    """The problems of :func:`validate_register`, one at a time and unordered (a caller that keeps
    only some of them need not hold them all)."""
    first_row_of_unit: dict[str, int] = {}
    representative_of_unit: dict[str, int] = {}
    row_of_owner_in_unit: dict[tuple[str, str], int] = {}
    owners_of_unit: dict[str, set[str]] = {}
    developer_id: str | None = None
    developer_row = -1

    for index, row in enumerate(rows):
        unit = row.unit_id
        if SUBJECT_SEPARATOR in row.owner_id:
            yield (
                RegisterProblem(
                    index,
                    "owner_id",
                    "bad_owner_id",
                    f"业主编号 {row.owner_id!r} 含有 {SUBJECT_SEPARATOR!r}；该符号用于连接共有人的编号，"
                    "不能出现在 owner_id 中",
                )
            )
        owners_of_unit.setdefault(unit, set()).add(row.owner_id)
        first = first_row_of_unit.setdefault(unit, index)
        if first != index:
            reference = rows[first]
            for column in _UNIT_COLUMNS:
                mine, theirs = getattr(row, column), getattr(reference, column)
                if mine != theirs:
                    yield (
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
            yield (
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
                yield (
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
                yield (
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
            yield (
                RegisterProblem(
                    first,
                    "representative",
                    "missing_representative",
                    f"单元 {unit!r} 没有代表投票人；共有人须推选一人（representative=1）",
                )
            )

    yield from _split_representatives(rows, owners_of_unit, representative_of_unit)

    if count_parking_area is not None:
        if not any(is_counted(row, count_parking_area) for row in rows):
            yield (
                RegisterProblem(
                    None,
                    None,
                    "empty_electorate",
                    "没有任何有表决权的业主（登记册为空，或只有不计入的车位）",
                )
            )



def _split_representatives(
    rows: Sequence[RegisterRow], owners_of_unit: Mapping[str, set[str]], representative_of_unit: Mapping[str, int]
) -> list[RegisterProblem]:
    """One ``split_representatives`` problem per owner set whose units name different representatives."""
    # Units with a representative, grouped by owner set, in register order (dicts keep it).
    units_of_owners: dict[frozenset[str], list[str]] = {}
    for unit, owners in owners_of_unit.items():
        if unit in representative_of_unit:
            units_of_owners.setdefault(frozenset(owners), []).append(unit)
    problems = []
    for owner_set, units in units_of_owners.items():
        first_row = representative_of_unit[units[0]]
        expected = rows[first_row].owner_id
        disagreeing = [unit for unit in units if rows[representative_of_unit[unit]].owner_id != expected]
        if not disagreeing:
            continue
        by_representative: dict[str, list[str]] = {}
        for unit in units:
            by_representative.setdefault(rows[representative_of_unit[unit]].owner_id, []).append(unit)
        listed = "；".join(
            f"单元 {'、'.join(named)} 为 {representative}" for representative, named in by_representative.items()
        )
        problems.append(
            RegisterProblem(
                representative_of_unit[disagreeing[0]],
                "representative",
                "split_representatives",
                f"业主 {'、'.join(sorted(owner_set))} 共同持有的单元是同一表决主体，须由同一人代表投票，"
                f"但各单元的代表投票人不同：{listed}",
                related_row=first_row,
            )
        )
    return problems


def compute_electorate(rows: Iterable[RegisterRow], count_parking_area: bool, *, validated: bool = False) -> Electorate:
    """Voting subjects, totals and per-building figures of a register.

    Raises :class:`RegisterInvalid` (listing every problem) if
    :func:`validate_register` finds any, because counting a unit twice or not at
    all would silently change every threshold.  ``validated``: the caller has just
    checked these rows with the same ``count_parking_area`` and found no problem.
    """
    rows = tuple(rows)
    problems = [] if validated else validate_register(rows, count_parking_area=count_parking_area)
    if problems:
        raise RegisterInvalid(problems)

    # Each unit once: its first row (which the others agree with), owners, representative.
    first_of_unit: dict[str, RegisterRow] = {}
    owners_of_unit: dict[str, list[str]] = {}
    representative_of_unit: dict[str, str] = {}
    for row in rows:
        first_of_unit.setdefault(row.unit_id, row)
        owners_of_unit.setdefault(row.unit_id, []).append(row.owner_id)
        if row.representative:
            representative_of_unit[row.unit_id] = row.owner_id

    units_of: dict[str, list[str]] = {}
    area_in: dict[str, dict[str, int]] = {}  # subject -> building -> area, buildings first-seen
    representative_of: dict[str, str] = {}
    building_area: dict[str, int] = {}
    building_units: dict[str, int] = {}
    building_people: dict[str, set[str]] = {}
    for unit, row in first_of_unit.items():
        if not is_counted(row, count_parking_area):
            continue
        voter, building = subject_id(owners_of_unit[unit]), row.building
        units_of.setdefault(voter, []).append(unit)
        areas = area_in.setdefault(voter, {})
        areas[building] = areas.get(building, 0) + row.area
        representative_of[voter] = representative_of_unit[unit]  # the same on every unit (validated)
        building_area[building] = building_area.get(building, 0) + row.area
        building_units[building] = building_units.get(building, 0) + 1
        building_people.setdefault(building, set()).add(voter)

    subjects = {
        voter: Subject(
            voter,
            sum(areas.values()),
            tuple(units_of[voter]),
            tuple(areas),
            representative_of[voter],
            tuple(areas.values()),
        )
        for voter, areas in area_in.items()
    }
    by_building = {
        building: BuildingTotals(area, len(building_people[building]), building_units[building])
        for building, area in building_area.items()
    }
    return Electorate(
        subjects=subjects,
        total_area=sum(subject.area for subject in subjects.values()),
        total_persons=len(subjects),
        by_building=by_building,
        places=area_places(row.area for row in first_of_unit.values()),
    )
