"""The electorate: voting subjects, persons, areas, per-building figures, register problems."""
from __future__ import annotations

import pytest

from server.ballot.weights import (
    BuildingTotals,
    RegisterInvalid,
    RegisterRow,
    Subject,
    compute_electorate,
    parse_register_record,
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
