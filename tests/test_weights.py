"""The electorate: voting subjects (owner sets), persons, areas, per-building figures, scopes, register problems."""
from __future__ import annotations

import pytest

from server.ballot.register_table import parse_register_table
from server.ballot.weights import (
    REGISTER_COLUMNS,
    BuildingTotals,
    RegisterInvalid,
    RegisterRow,
    Subject,
    compute_electorate,
    in_scope,
    parse_register_record,
    scope_problem,
    subject_id,
    validate_register,
)


def unit(unit_id, owner, area, *, building="1号楼", kind="dwelling", holder="owner", representative=True,
         source="registry"):
    return RegisterRow(unit_id, building, kind, area, source, holder, owner, representative)


def test_worked_example_multi_unit_owner_is_one_person():
    # voting-rules.md: X holds units of 80 and 120; Y and Z 100 each: 400 m², 3 persons.
    rows = [unit("101", "X", 80000), unit("102", "X", 120000), unit("201", "Y", 100000), unit("202", "Z", 100000)]
    electorate = compute_electorate(rows, count_parking_area=False)
    assert electorate.total_area == 400000
    assert electorate.total_persons == 3
    assert electorate.subjects["X"] == Subject("X", 200000, ("101", "102"), ("1号楼",))


def test_co_owned_unit_is_one_subject_of_its_owner_set():
    rows = [
        unit("101", "wife", 90000, representative=False),
        unit("101", "husband", 90000, representative=True),
        unit("102", "Y", 100000),
    ]
    electorate = compute_electorate(rows, count_parking_area=False)
    assert electorate.total_area == 190000
    assert electorate.total_persons == 2
    assert set(electorate.subjects) == {"husband+wife", "Y"}
    couple = electorate.subjects["husband+wife"]
    assert couple == Subject("husband+wife", 90000, ("101",), ("1号楼",), "husband")
    assert couple.owners == ("husband", "wife") and couple.representative == "husband"
    assert electorate.subjects["Y"].representative == "Y"


def test_a_co_owner_alone_is_another_subject():
    # A co-owns 101 with B and owns 102 alone: two buyers, two persons (SPC art. 9).
    rows = [
        unit("101", "A", 90000, representative=False),
        unit("101", "B", 90000),
        unit("102", "A", 50000),
    ]
    electorate = compute_electorate(rows, count_parking_area=False)
    assert electorate.total_persons == 2
    assert electorate.subjects["A"].area == 50000
    assert electorate.subjects["A+B"].area == 90000
    assert electorate.subjects["A+B"].representative == "B"


def test_developer_units_are_one_person():
    rows = [
        unit("101", "DEV", 100000, holder="developer"),
        unit("102", "DEV", 100000, holder="developer"),
        unit("103", "DEV", 120000, holder="developer", building="2号楼"),
        unit("104", "Y", 100000),
    ]
    electorate = compute_electorate(rows, count_parking_area=False)
    assert electorate.total_persons == 2
    assert electorate.total_area == 420000
    assert electorate.subjects["DEV"].area == 320000


def test_parking_counts_only_when_the_rules_say_so():
    rows = [unit("101", "X", 100000), unit("P1", "X", 12500, kind="parking"), unit("P2", "Y", 12500, kind="parking")]
    off = compute_electorate(rows, count_parking_area=False)
    assert (off.total_area, off.total_persons) == (100000, 1)
    assert "Y" not in off.subjects
    on = compute_electorate(rows, count_parking_area=True)
    assert (on.total_area, on.total_persons) == (125000, 2)
    assert on.subjects["X"].units == ("101", "P1")


def test_commercial_units_always_count():
    electorate = compute_electorate([unit("S1", "shop", 300000, kind="commercial")], count_parking_area=False)
    assert electorate.total_persons == 1


def test_by_building_persons_can_sum_above_total():
    rows = [
        unit("1-101", "X", 80000, building="1号楼"),
        unit("2-101", "X", 120000, building="2号楼"),
        unit("2-102", "Y", 100000, building="2号楼"),
        unit("2-103", "Y", 100000, building="2号楼"),
    ]
    electorate = compute_electorate(rows, count_parking_area=False)
    assert electorate.by_building == {
        "1号楼": BuildingTotals(area=80000, persons=1, units=1),
        "2号楼": BuildingTotals(area=320000, persons=2, units=3),
    }
    assert sum(b.persons for b in electorate.by_building.values()) == 3 > electorate.total_persons == 2
    assert sum(b.area for b in electorate.by_building.values()) == electorate.total_area
    assert electorate.subjects["X"].buildings == ("1号楼", "2号楼")


def codes(problems):
    return [(p.row, p.column, p.code) for p in problems]


def test_validate_register_clean():
    rows = [unit("101", "X", 80000), unit("102", "Y", 90000, representative=True)]
    assert validate_register(rows, count_parking_area=False) == []


def test_validate_register_lists_every_problem_in_row_order():
    rows = [
        unit("101", "A", 90000),                              # 0
        unit("101", "B", 90000),                              # 1 second representative
        unit("102", "C", 90000, representative=False),        # 2 unit without representative
        unit("103", "D", 90000),                              # 3
        unit("103", "E", 91000, representative=False),        # 4 area disagrees
        unit("103", "F", 90000, representative=False, building="2号楼", kind="commercial"),  # 5
        unit("104", "DEV1", 90000, holder="developer"),       # 6
        unit("105", "DEV2", 90000, holder="developer"),       # 7 second developer id
        unit("106", "G", 90000),                              # 8
        unit("106", "G", 90000, representative=False),        # 9 same owner twice
    ]
    problems = validate_register(rows, count_parking_area=False)
    assert codes(problems) == [
        (1, "representative", "duplicate_representative"),
        (2, "representative", "missing_representative"),
        (4, "area", "inconsistent_unit"),
        (5, "building", "inconsistent_unit"),
        (5, "kind", "inconsistent_unit"),
        (7, "owner_id", "multiple_developer_ids"),
        (9, "owner_id", "duplicate_owner_row"),
    ]
    assert problems[0].related_row == 0
    assert problems[5].related_row == 6
    assert problems[6].related_row == 8
    assert all(p.message for p in problems)
    assert "101" in problems[0].message
    assert "91.00" in problems[2].message and "90.00" in problems[2].message


def test_validate_register_empty_electorate_depends_on_parking_setting():
    rows = [unit("P1", "X", 12500, kind="parking")]
    assert codes(validate_register(rows, count_parking_area=False)) == [(None, None, "empty_electorate")]
    assert validate_register(rows, count_parking_area=True) == []
    assert validate_register(rows) == []  # not checked without the setting
    assert codes(validate_register([], count_parking_area=True)) == [(None, None, "empty_electorate")]


def test_compute_electorate_refuses_an_invalid_register():
    rows = [unit("101", "A", 90000), unit("101", "B", 90000)]
    with pytest.raises(RegisterInvalid) as info:
        compute_electorate(rows, count_parking_area=False)
    assert [p.code for p in info.value.problems] == ["duplicate_representative"]
    with pytest.raises(RegisterInvalid):
        compute_electorate([], count_parking_area=False)


GOOD_RECORD = {
    "unit_id": "1-101",
    "building": "1号楼",
    "kind": "dwelling",
    "area": "88.5",
    "area_source": "survey",
    "holder": "owner",
    "owner_id": "O1",
    "representative": "1",
}


def test_parse_register_record():
    row, problems = parse_register_record(GOOD_RECORD, 0)
    assert problems == []
    assert row == RegisterRow("1-101", "1号楼", "dwelling", 88500, "survey", "owner", "O1", True)


def test_parse_register_record_lists_every_bad_field_in_column_order():
    record = dict(
        GOOD_RECORD, unit_id="", area="-3", kind="villa", area_source="guess", holder="bank", representative="yes"
    )
    row, problems = parse_register_record(record, 7)
    assert row is None
    assert [(p.row, p.column, p.code) for p in problems] == [
        (7, "unit_id", "empty_unit_id"),
        (7, "kind", "bad_kind"),
        (7, "area", "bad_area"),
        (7, "area_source", "bad_area_source"),
        (7, "holder", "bad_holder"),
        (7, "representative", "bad_representative"),
    ]
    assert "'-3'" in problems[2].message


def test_parse_register_record_missing_column():
    record = dict(GOOD_RECORD)
    del record["holder"]
    row, problems = parse_register_record(record, 0)
    assert row is None and [(p.column, p.code) for p in problems] == [("holder", "missing_column")]


# ---------------------------------------------------------------- voting subjects are owner sets (SPC art. 9)


def five_units(representative_of_u1="A", representative_of_u2="A"):
    """A and B jointly own u1 and u2; A alone owns u3; C owns u4; the developer holds u5."""
    return [
        unit("u1", "A", 100000, representative=representative_of_u1 == "A"),
        unit("u1", "B", 100000, representative=representative_of_u1 == "B"),
        unit("u2", "B", 80500, representative=representative_of_u2 == "B", building="2号楼"),
        unit("u2", "A", 80500, representative=representative_of_u2 == "A", building="2号楼"),
        unit("u3", "A", 60250),
        unit("u4", "C", 90000, building="2号楼"),
        unit("u5", "DEV", 120125, holder="developer"),
    ]


@pytest.mark.parametrize("representative", ["A", "B"])
def test_five_unit_example_joint_owners_are_one_person_whoever_represents_them(representative):
    electorate = compute_electorate(five_units(representative, representative), count_parking_area=False)
    assert list(electorate.subjects) == ["A+B", "A", "C", "DEV"]
    assert electorate.subjects["A+B"] == Subject(
        "A+B", 180500, ("u1", "u2"), ("1号楼", "2号楼"), representative, (100000, 80500)
    )
    assert electorate.subjects["A+B"].owners == ("A", "B")
    assert electorate.subjects["A"].area == 60250  # A alone is another buyer: a second person
    assert electorate.subjects["DEV"].units == ("u5",)
    assert (electorate.total_area, electorate.total_persons) == (450875, 4)
    assert electorate.places == 3  # 120.125 m² has a third decimal
    assert electorate.by_building == {
        "1号楼": BuildingTotals(area=280375, persons=3, units=3),
        "2号楼": BuildingTotals(area=170500, persons=2, units=2),
    }


def test_five_unit_example_split_representatives_is_refused_naming_units_and_representatives():
    rows = five_units("A", "B")
    problems = validate_register(rows, count_parking_area=False)
    assert codes(problems) == [(2, "representative", "split_representatives")]
    problem = problems[0]
    assert problem.related_row == 0  # A is named on u1
    assert "单元 u1 为 A" in problem.message and "单元 u2 为 B" in problem.message
    assert "A、B" in problem.message
    with pytest.raises(RegisterInvalid) as info:
        compute_electorate(rows, count_parking_area=False)
    assert [p.code for p in info.value.problems] == ["split_representatives"]


def test_split_representatives_is_one_problem_per_subject_listing_every_unit():
    rows = [
        unit("1", "A", 10000, representative=False), unit("1", "B", 10000),
        unit("2", "A", 10000), unit("2", "B", 10000, representative=False),
        unit("3", "B", 10000), unit("3", "A", 10000, representative=False),
        unit("4", "C", 10000), unit("4", "D", 10000, representative=False),
        unit("5", "D", 10000), unit("5", "C", 10000, representative=False),
    ]
    problems = validate_register(rows)
    assert codes(problems) == [(2, "representative", "split_representatives"),
                               (8, "representative", "split_representatives")]
    assert "单元 1、3 为 B；单元 2 为 A" in problems[0].message
    assert "单元 4 为 C；单元 5 为 D" in problems[1].message


def test_split_representatives_is_checked_on_parking_that_does_not_count():
    rows = [unit("101", "A", 90000), unit("101", "B", 90000, representative=False),
            unit("P1", "A", 12000, kind="parking", representative=False), unit("P1", "B", 12000, kind="parking")]
    assert [p.code for p in validate_register(rows, count_parking_area=False)] == ["split_representatives"]


def test_owner_id_may_not_contain_the_subject_separator():
    rows = [unit("101", "A+B", 90000), unit("102", "A", 90000)]
    problems = validate_register(rows, count_parking_area=False)
    assert codes(problems) == [(0, "owner_id", "bad_owner_id")]
    assert "'+'" in problems[0].message
    with pytest.raises(RegisterInvalid):
        compute_electorate(rows, count_parking_area=False)


def test_subject_ids_sort_by_code_point():
    assert subject_id(["b", "A", "a", "B"]) == "A+B+a+b"
    assert subject_id(["王五", "张三", "O1"]) == "O1+张三+王五"
    assert subject_id(["A", "A"]) == "A"
    for bad in ([], ["A+B"], [""]):
        with pytest.raises(ValueError):
            subject_id(bad)


def test_a_subject_with_only_parking_that_does_not_count_is_not_in_the_electorate():
    rows = [unit("101", "A", 90000), unit("P1", "A", 12000, kind="parking"), unit("P1", "B", 12000,
            kind="parking", representative=False)]
    assert set(compute_electorate(rows, count_parking_area=False).subjects) == {"A"}
    assert set(compute_electorate(rows, count_parking_area=True).subjects) == {"A", "A+B"}
    rows = [unit("P1", "A", 12000, kind="parking"), unit("P1", "B", 12000, kind="parking", representative=False)]
    assert codes(validate_register(rows, count_parking_area=False)) == [(None, None, "empty_electorate")]


def test_places_follow_every_area_of_the_register_counted_or_not():
    rows = [unit("101", "A", 90000), unit("P1", "A", 12345, kind="parking")]
    assert compute_electorate(rows, count_parking_area=False).places == 3
    assert compute_electorate(rows[:1], count_parking_area=False).places == 2


def test_subject_checks_its_fields():
    assert Subject("X", 100).representative == "X"
    assert Subject("X", 100, ("1",), ("1号楼",)).building_areas == (100,)
    assert Subject("X", 100).owner_id == "X"  # the old name of the id
    with pytest.raises(ValueError):
        Subject("A+B", 100)  # a subject of several owners names its representative
    with pytest.raises(ValueError):
        Subject("A+B", 100, representative="C")
    with pytest.raises(ValueError):
        Subject("X", 100, ("1", "2"), ("1号楼", "2号楼"))  # whose area is where?
    with pytest.raises(ValueError):
        Subject("X", 100, ("1", "2"), ("1号楼", "2号楼"), "X", (50, 60))


def test_register_table_lists_split_representatives_with_the_other_problems():
    header = list(REGISTER_COLUMNS)

    def record(unit_id, owner, representative, area="88.5"):
        return {"unit_id": unit_id, "building": "1", "kind": "dwelling", "area": area, "area_source": "registry",
                "holder": "owner", "owner_id": owner, "representative": representative}

    records = [(2, record("1", "A", "1")), (3, record("1", "B", "0")), (4, record("2", "A", "0")),
               (5, record("2", "B", "1")), (6, record("3", "C", "1", area="71.1255"))]
    table = parse_register_table(header, records, count_parking_area=False)
    assert [(p.line, p.column, p.code) for p in table.problems] == [
        (5, "representative", "split_representatives"),
        (6, "area", "bad_area"),
    ]
    assert "至多三位小数" in table.problems[1].message


# ---------------------------------------------------------------- scoped electorates


def scoped_register():
    return [
        unit("1-1", "X", 100000, building="1号楼"),
        unit("1-2", "Y", 100000, building="1号楼"),
        unit("2-1", "Y", 50000, building="2号楼"),
        unit("2-2", "Z", 100000, building="2号楼"),
        unit("2-3", "X", 80000, building="2号楼", representative=False),
        unit("2-3", "Z", 80000, building="2号楼"),
        unit("P-1", "X", 12000, building="车库", kind="parking"),
    ]


def test_a_scoped_electorate_weighs_each_subject_by_its_area_there():
    electorate = compute_electorate(scoped_register(), count_parking_area=False)
    assert (electorate.total_area, electorate.total_persons) == (430000, 4)
    whole = electorate.for_scope(())
    assert (whole.total_area, whole.total_persons) == (430000, 4)
    assert whole.areas == {"X": 100000, "Y": 150000, "Z": 100000, "X+Z": 80000}
    two = electorate.for_scope(("2号楼",))
    assert two.areas == {"Y": 50000, "Z": 100000, "X+Z": 80000}
    assert (two.total_area, two.total_persons, two.scope) == (230000, 3, ("2号楼",))
    both = electorate.for_scope(("2号楼", "1号楼"))
    assert (both.total_area, both.total_persons) == (430000, 4)
    assert electorate.subjects["Y"].area_in({"2号楼"}) == 50000
    assert in_scope(electorate.subjects["Y"], ("2号楼",))
    assert not in_scope(electorate.subjects["X"], ("2号楼",))
    assert in_scope(electorate.subjects["X"], ())
    with pytest.raises(ValueError):
        electorate.for_scope(("车库",))  # only parking, which does not count: nobody votes


def test_scope_problems():
    rows = scoped_register()
    electorate = compute_electorate(rows, count_parking_area=False)
    buildings = {row.building for row in rows}
    assert scope_problem((), electorate, buildings) is None
    assert scope_problem(("2号楼",), electorate, buildings) is None
    assert scope_problem(("2号楼", "车库"), electorate, buildings) is None  # 车库 has no voter, 2号楼 has
    assert "不在登记册中" in scope_problem(("9号楼",), electorate, buildings)
    assert "没有有表决权的业主" in scope_problem(("车库",), electorate, buildings)
    assert "不在登记册中" in scope_problem(("车库",), electorate)  # without the register: counted buildings only
    assert "重复" in scope_problem(("2号楼", "2号楼"), electorate, buildings)
    assert "不能为空" in scope_problem(("",), electorate, buildings)
