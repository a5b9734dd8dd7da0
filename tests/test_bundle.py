"""Reading and writing evote-bundle/2: the valid case, and every class of bad input with its line."""
from __future__ import annotations

import json
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from server.ballot.tally import Rules
from server.record import BundleError, bundle_files, canonical_json, meeting_document, read_bundle, write_bundle
from server.record import archive as record_archive

MEETING = """\
{
  "format": "evote-bundle/2",
  "community": {"id": "lc-haibin-017", "name": "海滨小区"},
  "meeting": {"id": "2026-01", "title": "首次业主大会"},
  "rules": {
    "count_parking_area": false,
    "allow_revision": false,
    "duplicate_policy": "electronic_prevails",
    "rank_by": "persons_then_area",
    "invalid_ballot": "abstain"
  },
  "matters": [
    {"id": "M1", "title": "表决通过《管理规约》", "kind": "resolution", "category": 2},
    {"id": "E1", "title": "选举业主委员会委员", "kind": "election", "category": 3,
     "seats": 1, "alternates": 1,
     "candidates": [{"id": "C1", "name": "张三"}, {"id": "C2", "name": "李四"}]},
    {"id": "L2", "title": "2号楼加装电梯", "kind": "resolution", "category": 6,
     "scope": {"buildings": ["2号楼"]}}
  ]
}
"""

# O2 and O2b jointly own 1-102 and 2-201: one voting subject "O2+O2b", one person, both areas.
# The parking space does not count (count_parking_area is false), so O4 is not a voting subject.
REGISTER = """\
unit_id,building,kind,area,area_source,holder,owner_id,representative
1-101,1号楼,dwelling,88.5,registry,owner,O1,1
1-102,1号楼,dwelling,102.37,survey,owner,O2,1
1-102,1号楼,dwelling,102.37,survey,owner,O2b,0
1-201,1号楼,dwelling,95,contract,owner,O3,1
2-101,2号楼,commercial,120,registry,developer,DEV,1
P-01,地下车库,parking,12.5,registry,owner,O4,1
2-201,2号楼,dwelling,60,registry,owner,O2b,0
2-201,2号楼,dwelling,60,registry,owner,O2,1
2-202,2号楼,dwelling,75.25,registry,owner,O5,1
"""

BALLOTS = """\
ballot_id,voter_id,matter_id,candidate_id,choice,channel,cast_at
b1,O1,M1,,yes,electronic,2026-01-10T09:00:00+08:00
b2,O2+O2b,M1,,yes,paper,2026-01-10T10:00:00+08:00
b3,O3,M1,,no,electronic,2026-01-10T11:00:00+08:00
b4,O1,E1,C1,yes,electronic,2026-01-10T09:01:00+08:00
b4,O1,E1,C2,no,electronic,2026-01-10T09:01:00+08:00
b5,O2+O2b,E1,C1,yes,paper,2026-01-10T10:01:00+08:00
b6,DEV,E1,C1,yes,electronic,2026-01-11T09:00:00Z
b7,O5,E1,,invalid,paper,2026-01-10T12:00:00+08:00
b8,O5,M1,,invalid,paper,2026-01-10T12:00:00+08:00
b9,DEV,L2,,yes,electronic,2026-01-11T09:05:00Z
b10,O2+O2b,L2,,yes,electronic,2026-01-10T10:02:00+08:00
b11,O5,L2,,no,paper,2026-01-10T12:01:00+08:00
"""

FILES = {"meeting.json": MEETING, "register.csv": REGISTER, "ballots.csv": BALLOTS}


def make_bundle(directory: Path, **changes: str | None) -> Path:
    """Write the valid bundle with some files replaced (None: left out)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        text = changes.get(name.replace(".", "_"), text)
        if text is not None:
            (directory / name).write_text(text, encoding="utf-8")
    return directory


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


def fig(area: str, persons: int) -> dict:
    return {"area": area, "persons": persons}


# Worked by hand from bundle-format.md.  Voting subjects: O1 88.50, O2+O2b 162.37 (102.37 in
# 1号楼 and 60.00 in 2号楼), O3 95.00, DEV 120.00, O5 75.25: 541.12 m², 5 persons.
# M1: O5's invalid ballot takes part (invalid_ballot = abstain): 421.12 / 4 persons; yes
#     250.87 / 2 persons is more than half the area but not more than half the persons → failed.
# E1: O5's blank ballot takes part too: 446.12 / 4; C1 has 370.87 / 3 → elected.
# L2: scoped to 2号楼, whose electorate is DEV 120, O2+O2b 60 (their area there) and O5 75.25:
#     255.25 / 3, all vote; yes 180.00 / 2 is under three quarters of the area → failed.
EXPECTED_RESULT = {
    "format": "evote-result/2",
    "meeting_id": "2026-01",
    "totals": fig("541.12", 5),
    "matters": [
        {
            "id": "M1",
            "kind": "resolution",
            "category": 2,
            "threshold": "majority",
            "electorate": fig("541.12", 5),
            "participating": fig("421.12", 4),
            "invalid": fig("75.25", 1),
            "yes": fig("250.87", 2),
            "no": fig("95.00", 1),
            "abstain": fig("0.00", 0),
            "quorum_met": True,
            "outcome": "failed",
        },
        {
            "id": "E1",
            "kind": "election",
            "category": 3,
            "threshold": "majority",
            "electorate": fig("541.12", 5),
            "participating": fig("446.12", 4),
            "invalid": fig("75.25", 1),
            "quorum_met": True,
            "candidates": [
                {"id": "C1", "yes": fig("370.87", 3), "passed": True},
                {"id": "C2", "yes": fig("0.00", 0), "passed": False},
            ],
            "elected": ["C1"],
            "alternates": [],
            "runoff_needed": [],
            "outcome": "elected",
        },
        {
            "id": "L2",
            "kind": "resolution",
            "category": 6,
            "threshold": "three_quarters",
            "electorate": fig("255.25", 3),
            "participating": fig("255.25", 3),
            "invalid": fig("0.00", 0),
            "yes": fig("180.00", 2),
            "no": fig("75.25", 1),
            "abstain": fig("0.00", 0),
            "quorum_met": True,
            "outcome": "failed",
        },
    ],
}


def test_valid_bundle(tmp_path):
    bundle = read_bundle(make_bundle(tmp_path))
    assert bundle.meeting_id == "2026-01"
    assert bundle.rules == Rules()
    assert [m.id for m in bundle.matters] == ["M1", "E1", "L2"]
    assert bundle.matters[1].candidates == (("C1", "张三"), ("C2", "李四"))
    assert bundle.matters[0].scope == () and bundle.matters[2].scope == ("2号楼",)
    assert len(bundle.register_rows) == 9
    assert bundle.electorate.total_area == 541120 and bundle.electorate.total_persons == 5
    joint = bundle.electorate.subjects["O2+O2b"]
    assert (joint.area, joint.units, joint.representative) == (162370, ("1-102", "2-201"), "O2")
    assert [s.ballot_id for s in bundle.submissions] == [f"b{i}" for i in range(1, 12)]
    assert bundle.submissions[3].choices == (("C1", "yes"), ("C2", "no"))
    assert bundle.submissions[6].choices == (("", "invalid"),)
    assert type(bundle.meeting) is dict and type(bundle.meeting["matters"]) is list
    assert bundle.meeting["community"]["name"] == "海滨小区"
    assert bundle.meeting["matters"][2]["scope"] == {"buildings": ["2号楼"]}
    assert bundle.tally() == EXPECTED_RESULT


def test_invalid_ballots_not_counted(tmp_path):
    """The same ballots under invalid_ballot = not_counted: O5 takes no part in M1 and E1."""
    meeting = MEETING.replace('"invalid_ballot": "abstain"', '"invalid_ballot": "not_counted"')
    result = read_bundle(make_bundle(tmp_path, meeting_json=meeting)).tally()
    m1, e1, l2 = result["matters"]
    # M1: 345.87 / 3 is under two thirds of 541.12 (3 * 345.87 = 1037.61 < 1082.24): no decision.
    assert (m1["participating"], m1["invalid"], m1["yes"]) == (fig("345.87", 3), fig("75.25", 1), fig("250.87", 2))
    assert (m1["quorum_met"], m1["outcome"]) == (False, "no_quorum")
    # E1: 370.87 m² is two thirds of the area (1112.61 >= 1082.24), but 3 of 5 persons is not (9 < 10).
    assert (e1["participating"], e1["invalid"]) == (fig("370.87", 3), fig("75.25", 1))
    assert (e1["quorum_met"], e1["outcome"], e1["elected"]) == (False, "no_quorum", [])
    assert l2 == EXPECTED_RESULT["matters"][2]


def test_rules_default_when_omitted(tmp_path):
    meeting = json.loads(MEETING)
    del meeting["rules"]
    bundle = read_bundle(make_bundle(tmp_path, meeting_json=json.dumps(meeting)))
    assert bundle.rules == Rules()
    meeting["rules"] = {"allow_revision": True}
    bundle = read_bundle(make_bundle(tmp_path, meeting_json=json.dumps(meeting)))
    assert bundle.rules == Rules(allow_revision=True)


def test_parking_counts_when_the_rules_say_so(tmp_path):
    meeting = MEETING.replace('"count_parking_area": false', '"count_parking_area": true')
    ballots = BALLOTS + "b12,O4,M1,,abstain,paper,2026-01-10T12:00:00+08:00\n"
    bundle = read_bundle(make_bundle(tmp_path, meeting_json=meeting, ballots_csv=ballots))
    assert bundle.electorate.total_persons == 6
    assert bundle.tally()["totals"] == fig("553.62", 6)


def test_tolerates_bom_crlf_column_order_and_blank_lines(tmp_path):
    register_lines = REGISTER.strip().split("\n")
    # Move owner_id to the front.
    reordered = []
    for line in register_lines:
        fields = line.split(",")
        reordered.append(",".join([fields[6], *fields[:6], *fields[7:]]))
    register = "\ufeff" + "\r\n".join(reordered) + "\r\n\r\n"
    meeting = "\ufeff" + MEETING
    ballots = "\ufeff" + BALLOTS.replace("\n", "\r\n")
    bundle = read_bundle(make_bundle(tmp_path, register_csv=register, meeting_json=meeting, ballots_csv=ballots))
    assert bundle.tally() == EXPECTED_RESULT


def test_quoted_fields_spanning_lines_keep_line_numbers_right(tmp_path):
    register = replace_line(REGISTER, 2, '1-101,"1号楼\n东单元",dwelling,88.5,registry,owner,O1,1')
    register = register.replace("1-201,1号楼,dwelling,95,", "1-201,1号楼,dwelling,-95,")
    with pytest.raises(BundleError) as info:
        read_bundle(make_bundle(tmp_path, register_csv=register))
    assert (info.value.file, info.value.line) == ("register.csv", 6)


def test_round_trip_through_write_bundle_is_canonical(tmp_path):
    original = read_bundle(make_bundle(tmp_path / "a"))
    write_bundle(tmp_path / "b", original.meeting, original.register_rows, original.submissions)
    again = read_bundle(tmp_path / "b")
    assert again == original
    assert again.tally() == EXPECTED_RESULT
    files = bundle_files(again.meeting, again.register_rows, again.submissions)
    for name, content in files.items():
        assert (tmp_path / "b" / name).read_bytes() == content
    assert files["register.csv"].decode().splitlines()[1] == "1-101,1号楼,dwelling,88.50,registry,owner,O1,1"
    ballots = files["ballots.csv"].decode().splitlines()
    assert ballots[7] == "b6,DEV,E1,C1,yes,electronic,2026-01-11T09:00:00.000000+00:00"
    assert ballots[8] == "b7,O5,E1,,invalid,paper,2026-01-10T04:00:00.000000+00:00"
    meeting = json.loads(files["meeting.json"])
    assert meeting["format"] == "evote-bundle/2"
    assert meeting["matters"][2] == json.loads(MEETING)["matters"][2]


def test_canonical_json():
    assert canonical_json({"b": 1, "a": ["张三"]}) == '{\n  "b": 1,\n  "a": [\n    "张三"\n  ]\n}\n'


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "zip-root"])
def test_archives(tmp_path, kind):
    source = make_bundle(tmp_path / "2026-01")
    if kind == "tar.gz":
        archive = tmp_path / "bundle.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source, arcname="2026-01")
    else:
        archive = tmp_path / "bundle.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name in FILES:
                zf.write(source / name, name if kind == "zip-root" else f"2026-01/{name}")
    assert read_bundle(archive).tally() == EXPECTED_RESULT


def test_archive_missing_a_file(tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("x/meeting.json", MEETING)
        zf.writestr("x/register.csv", REGISTER)
    with pytest.raises(BundleError) as info:
        read_bundle(archive)
    assert (info.value.file, info.value.line) == ("ballots.csv", 0)


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_archive_member_over_the_size_limit_is_refused(tmp_path, monkeypatch, kind):
    source = make_bundle(tmp_path / "2026-01")
    archive = tmp_path / f"bundle.{kind}"
    if kind == "tar.gz":
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source, arcname="2026-01")
    else:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in FILES:
                zf.write(source / name, f"2026-01/{name}")
    sizes = {name: (source / name).stat().st_size for name in FILES}
    # The limit is on what a member inflates to, not on its compressed size.
    monkeypatch.setattr(record_archive, "MAX_MEMBER_BYTES", sizes["meeting.json"] - 1)
    with pytest.raises(BundleError) as info:
        read_bundle(archive)
    assert (info.value.file, info.value.line) == ("meeting.json", 0)
    assert "文件过大" in info.value.message
    monkeypatch.setattr(record_archive, "MAX_MEMBER_BYTES", max(sizes.values()))
    assert read_bundle(archive).tally() == EXPECTED_RESULT


def test_not_a_bundle(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BundleError) as info:
        read_bundle(tmp_path / "notes.txt")
    assert info.value.line == 0
    with pytest.raises(BundleError):
        read_bundle(tmp_path / "missing")


def meeting_with(line: int, new: str) -> str:
    return replace_line(MEETING, line, new)


SCOPE = '"scope": {"buildings": ["2号楼"]}'


def scope_as(text: str) -> str:
    """meeting.json with L2's scope (line 18) written as ``text``."""
    return MEETING.replace(SCOPE, text)


def window_as(text: str) -> str:
    """meeting.json whose ``meeting`` object (line 4) carries ``text`` too."""
    return meeting_with(4, f'  "meeting": {{"id": "2026-01", "title": "首次业主大会", {text}}},')


WINDOW = '"window": {"opens_at": "2026-01-10T08:00:00+08:00", "closes_at": "2026-01-25T20:00:00+08:00"}'
EXTENSION = '{"published_at": "2026-01-20T09:00:00+08:00", "reason": "参与人数不足", "closes_at": "2026-02-05T20:00:00+08:00"}'
EXTENSION_WITHOUT_REASON = EXTENSION.replace(', "reason": "参与人数不足"', "")
EXTENSION_WITH_NUMBER_REASON = EXTENSION.replace('"参与人数不足"', "1")
EXTENSION_WITH_BAD_TIME = EXTENSION.replace("2026-02-05T20:00:00+08:00", "下周")
REGISTER_LINES = REGISTER.split("\n")

BAD_BUNDLES = {
    # ---------------------------------------------------------------- meeting.json
    "missing meeting.json": ({"meeting_json": None}, "meeting.json", 0, "缺失"),
    "not JSON": ({"meeting_json": MEETING.replace('"format": "evote-bundle/2",', '"format": "evote-bundle/2"')},
                 "meeting.json", 3, "JSON"),
    "not an object": ({"meeting_json": "[]\n"}, "meeting.json", 1, "对象"),
    "another format": ({"meeting_json": MEETING.replace("evote-bundle/2", "evote-bundle/3")},
                       "meeting.json", 2, "evote-bundle/3"),
    "version 1": ({"meeting_json": MEETING.replace("evote-bundle/2", "evote-bundle/1")},
                  "meeting.json", 2, "第 1 版"),
    "missing format": ({"meeting_json": meeting_with(2, "")}, "meeting.json", 1, "format"),
    "meeting without id": ({"meeting_json": meeting_with(4, '  "meeting": {"title": "x"},')},
                           "meeting.json", 4, "id"),
    "window not an object": ({"meeting_json": window_as('"window": "2026-01-10/2026-01-25"')},
                             "meeting.json", 4, "window"),
    "window without closes_at": ({"meeting_json": window_as('"window": {"opens_at": "2026-01-10T08:00:00+08:00"}')},
                                 "meeting.json", 4, "closes_at"),
    "window time without offset": ({"meeting_json": window_as(WINDOW.replace("08:00:00+08:00", "08:00:00"))},
                                   "meeting.json", 4, "UTC"),
    "window time not a string": ({"meeting_json": window_as(WINDOW.replace('"2026-01-10T08:00:00+08:00"', "20260110"))},
                                 "meeting.json", 4, "opens_at"),
    "window closing before it opens": (
        {"meeting_json": window_as(WINDOW.replace("2026-01-25T20", "2026-01-09T20"))}, "meeting.json", 4, "晚于"),
    "extensions not an array": ({"meeting_json": window_as(f'{WINDOW}, "extensions": {EXTENSION}')},
                                "meeting.json", 4, "extensions"),
    "extension without reason": (
        {"meeting_json": window_as(f'"extensions": [{EXTENSION_WITHOUT_REASON}]')},
        "meeting.json", 4, "reason"),
    "extension reason not a string": (
        {"meeting_json": window_as(f'"extensions": [{EXTENSION_WITH_NUMBER_REASON}]')},
        "meeting.json", 4, "reason"),
    "extension time not a time": (
        {"meeting_json": window_as(f'"extensions": [{EXTENSION_WITH_BAD_TIME}]')},
        "meeting.json", 4, "下周"),
    "unknown rules key": ({"meeting_json": meeting_with(7, '    "allow_revision": false, "silent_majority": true,')},
                          "meeting.json", 7, "silent_majority"),
    "bad duplicate_policy": ({"meeting_json": meeting_with(8, '    "duplicate_policy": "paper_prevails",')},
                             "meeting.json", 8, "paper_prevails"),
    "bad rank_by": ({"meeting_json": meeting_with(9, '    "rank_by": "alphabetical",')},
                    "meeting.json", 9, "alphabetical"),
    "bad invalid_ballot": ({"meeting_json": meeting_with(10, '    "invalid_ballot": "ignore"')},
                           "meeting.json", 10, "ignore"),
    "invalid_ballot not a string": ({"meeting_json": meeting_with(10, '    "invalid_ballot": true')},
                                    "meeting.json", 10, "invalid_ballot"),
    "rule not boolean": ({"meeting_json": meeting_with(6, '    "count_parking_area": "no",')},
                         "meeting.json", 6, "count_parking_area"),
    "duplicate key": ({"meeting_json": meeting_with(9, '    "rank_by": "persons_then_area", "rank_by": "x",')},
                      "meeting.json", 9, "重复"),
    "no matters": ({"meeting_json": MEETING.split('  "matters"')[0].rstrip().rstrip(",") + ',\n  "matters": []\n}\n'},
                   "meeting.json", 12, "matters"),
    "unknown category": ({"meeting_json": MEETING.replace('"category": 3', '"category": 10')},
                         "meeting.json", 14, "category 10"),
    "category zero": ({"meeting_json": MEETING.replace('"category": 2', '"category": 0')},
                      "meeting.json", 13, "category 0"),
    "category as text": ({"meeting_json": MEETING.replace('"category": 2', '"category": "2"')},
                         "meeting.json", 13, "category '2'"),
    "category as float": ({"meeting_json": MEETING.replace('"category": 2', '"category": 2.0')},
                          "meeting.json", 13, "category 2.0"),
    "bad matter kind": ({"meeting_json": MEETING.replace('"kind": "resolution"', '"kind": "poll"')},
                        "meeting.json", 13, "poll"),
    "election without seats": ({"meeting_json": MEETING.replace('"seats": 1, ', "")},
                               "meeting.json", 14, "seats"),
    "election with zero seats": ({"meeting_json": MEETING.replace('"seats": 1', '"seats": 0')},
                                 "meeting.json", 15, "seats 0"),
    "negative alternates": ({"meeting_json": MEETING.replace('"alternates": 1', '"alternates": -1')},
                            "meeting.json", 15, "alternates -1"),
    "election without candidates": (
        {"meeting_json": MEETING.replace('[{"id": "C1", "name": "张三"}, {"id": "C2", "name": "李四"}]', "[]")},
        "meeting.json", 16, "candidates"),
    "resolution with candidates": (
        {"meeting_json": MEETING.replace('"category": 2}', '"category": 2, "candidates": []}')},
        "meeting.json", 13, "candidates"),
    "duplicate matter id": ({"meeting_json": MEETING.replace('"id": "E1"', '"id": "M1"')},
                            "meeting.json", 14, "M1"),
    "duplicate candidate id": ({"meeting_json": MEETING.replace('"id": "C2"', '"id": "C1"')},
                               "meeting.json", 16, "C1"),
    "candidate without id": ({"meeting_json": MEETING.replace('{"id": "C2", "name": "李四"}', '{"name": "李四"}')},
                             "meeting.json", 16, "id"),
    "scope not an object": ({"meeting_json": scope_as('"scope": ["2号楼"]')}, "meeting.json", 18, "对象"),
    "scope without buildings": ({"meeting_json": scope_as('"scope": {}')}, "meeting.json", 18, "buildings"),
    "scope with another key": (
        {"meeting_json": scope_as('"scope": {"buildings": ["2号楼"], "stairwells": ["1单元"]}')},
        "meeting.json", 18, "stairwells"),
    "scope naming no building": ({"meeting_json": scope_as('"scope": {"buildings": []}')},
                                 "meeting.json", 18, "为空"),
    "scope buildings not an array": ({"meeting_json": scope_as('"scope": {"buildings": "2号楼"}')},
                                     "meeting.json", 18, "数组"),
    "scope building not a string": ({"meeting_json": scope_as('"scope": {"buildings": [2]}')},
                                    "meeting.json", 18, "字符串"),
    "scope building empty": ({"meeting_json": scope_as('"scope": {"buildings": [""]}')},
                             "meeting.json", 18, "不能为空"),
    "scope building twice": ({"meeting_json": scope_as('"scope": {"buildings": ["2号楼", "2号楼"]}')},
                             "meeting.json", 18, "重复"),
    "scope building not in the register": ({"meeting_json": scope_as('"scope": {"buildings": ["9号楼"]}')},
                                           "meeting.json", 18, "9号楼"),
    "scope building not in the register, on its own line": (
        {"meeting_json": scope_as('"scope": {"buildings": [\n       "2号楼",\n       "9号楼"]}')},
        "meeting.json", 20, "9号楼"),
    "scope where nobody votes": ({"meeting_json": scope_as('"scope": {"buildings": ["地下车库"]}')},
                                 "meeting.json", 18, "表决权"),
    # ---------------------------------------------------------------- register.csv
    "missing register.csv": ({"register_csv": None}, "register.csv", 0, "缺失"),
    "empty register.csv": ({"register_csv": ""}, "register.csv", 1, "表头"),
    "missing column": ({"register_csv": REGISTER.replace(",holder", "", 1)}, "register.csv", 1, "holder"),
    "unknown column": ({"register_csv": REGISTER.replace("representative", "representative,note", 1)},
                       "register.csv", 1, "note"),
    "duplicate column": ({"register_csv": REGISTER.replace("building,", "building,building,", 1)},
                         "register.csv", 1, "building"),
    "wrong field count": ({"register_csv": replace_line(REGISTER, 3, "1-102,1号楼,dwelling,102.37,survey,owner,O2")},
                          "register.csv", 3, "8"),
    "negative area": ({"register_csv": REGISTER.replace("1-201,1号楼,dwelling,95,", "1-201,1号楼,dwelling,-3,")},
                      "register.csv", 5, "'-3'"),
    "four decimals": ({"register_csv": REGISTER.replace("88.5", "88.5125")}, "register.csv", 2, "88.5125"),
    "zero area": ({"register_csv": REGISTER.replace("88.5", "0.000")}, "register.csv", 2, "0.000"),
    "thousands separator": ({"register_csv": REGISTER.replace(",120,", ',"1,200",')}, "register.csv", 6, "1,200"),
    "bad unit kind": ({"register_csv": REGISTER.replace("commercial", "shop")}, "register.csv", 6, "shop"),
    "bad area_source": ({"register_csv": REGISTER.replace("contract", "estimate")}, "register.csv", 5, "estimate"),
    "bad holder": ({"register_csv": REGISTER.replace("developer", "builder")}, "register.csv", 6, "builder"),
    "bad representative": ({"register_csv": REGISTER.replace("O3,1", "O3,yes")}, "register.csv", 5, "yes"),
    "empty owner_id": ({"register_csv": REGISTER.replace("owner,O3,1", "owner,,1")}, "register.csv", 5, "owner_id"),
    "owner_id with a plus": ({"register_csv": REGISTER.replace("owner,O3,1", "owner,O3+X,1")},
                             "register.csv", 5, "O3+X"),
    "two representatives": ({"register_csv": REGISTER.replace("102.37,survey,owner,O2b,0", "102.37,survey,owner,O2b,1")},
                            "register.csv", 4, "代表"),
    "unit without representative": ({"register_csv": REGISTER.replace("O3,1", "O3,0")}, "register.csv", 5, "1-201"),
    "unit rows disagree on area": (
        {"register_csv": REGISTER.replace("102.37,survey,owner,O2b", "102.38,survey,owner,O2b")},
        "register.csv", 4, "area"),
    "unit rows disagree on building": (
        {"register_csv": REGISTER.replace("2-201,2号楼,dwelling,60,registry,owner,O2,1",
                                          "2-201,1号楼,dwelling,60,registry,owner,O2,1")},
        "register.csv", 9, "building"),
    "units of one subject naming different representatives": (
        {"register_csv": REGISTER.replace("60,registry,owner,O2b,0", "60,registry,owner,O2b,1")
                                 .replace("60,registry,owner,O2,1", "60,registry,owner,O2,0")},
        "register.csv", 8, "单元 1-102 为 O2；单元 2-201 为 O2b"),
    "two developer ids": ({"register_csv": REGISTER + "2-102,2号楼,commercial,50,registry,developer,DEV2,1\n"},
                          "register.csv", 11, "DEV2"),
    "empty electorate": ({"register_csv": "\n".join([REGISTER_LINES[0], REGISTER_LINES[6], ""])},
                         "register.csv", 0, "表决权"),
    "header only": ({"register_csv": REGISTER_LINES[0] + "\n"}, "register.csv", 0, "表决权"),
    "not UTF-8": ({"register_csv": REGISTER.encode("gbk").decode("latin-1")}, "register.csv", 2, "UTF-8"),
    "bad quoting": ({"register_csv": REGISTER.replace("1-201", '"1-201"x')}, "register.csv", 5, "CSV"),
    # ---------------------------------------------------------------- ballots.csv
    "missing ballots.csv": ({"ballots_csv": None}, "ballots.csv", 0, "缺失"),
    "ballots missing column": ({"ballots_csv": BALLOTS.replace(",channel", "", 1)}, "ballots.csv", 1, "channel"),
    "unknown voter": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O9")}, "ballots.csv", 4, "O9"),
    "joint owner voting alone": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b", "b2,O2")},
                                 "ballots.csv", 3, "O2+O2b"),
    "the other joint owner voting alone": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b", "b2,O2b")},
                                           "ballots.csv", 3, "O2+O2b"),
    "subject id not sorted": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b", "b2,O2b+O2")},
                              "ballots.csv", 3, "应按码位排序：O2+O2b"),
    "parking owner while parking does not count": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O4")},
                                                   "ballots.csv", 4, "O4"),
    "voter outside the scope": ({"ballots_csv": BALLOTS.replace("b11,O5,L2", "b11,O1,L2")},
                                "ballots.csv", 13, "表决范围"),
    "unknown matter": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b,M1", "b2,O2+O2b,M9")}, "ballots.csv", 3, "M9"),
    "unknown candidate": ({"ballots_csv": BALLOTS.replace("b5,O2+O2b,E1,C1", "b5,O2+O2b,E1,C9")},
                          "ballots.csv", 7, "C9"),
    "election row without candidate": ({"ballots_csv": BALLOTS.replace("b5,O2+O2b,E1,C1", "b5,O2+O2b,E1,")},
                                       "ballots.csv", 7, "candidate_id"),
    "invalid marked against a candidate": ({"ballots_csv": BALLOTS.replace("b4,O1,E1,C2,no", "b4,O1,E1,C2,invalid")},
                                           "ballots.csv", 6, "invalid"),
    "blank election ballot with a second row": (
        {"ballots_csv": BALLOTS + "b7,O5,E1,C1,yes,paper,2026-01-10T12:00:00+08:00\n"}, "ballots.csv", 14, "b7"),
    "marked election ballot with a blank row": (
        {"ballots_csv": BALLOTS.replace("b4,O1,E1,C2,no", "b4,O1,E1,,invalid")}, "ballots.csv", 6, "b4"),
    "resolution row with candidate": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b,M1,,", "b2,O2+O2b,M1,C1,")},
                                      "ballots.csv", 3, "candidate_id"),
    "resolution ballot with two rows": (
        {"ballots_csv": BALLOTS + "b1,O1,M1,,no,electronic,2026-01-10T09:00:00+08:00\n"}, "ballots.csv", 14, "b1"),
    "ballot id for two voters": ({"ballots_csv": BALLOTS.replace("b5,O2+O2b", "b4,O2+O2b")},
                                 "ballots.csv", 7, "b4"),
    "ballot id for two matters": (
        {"ballots_csv": BALLOTS + "b4,O1,M1,,yes,electronic,2026-01-10T09:01:00+08:00\n"}, "ballots.csv", 14, "b4"),
    "candidate twice in a ballot": ({"ballots_csv": BALLOTS.replace("b4,O1,E1,C2", "b4,O1,E1,C1")},
                                    "ballots.csv", 6, "C1"),
    "bad choice": ({"ballots_csv": BALLOTS.replace(",no,electronic,2026-01-10T11", ",oui,electronic,2026-01-10T11")},
                   "ballots.csv", 4, "oui"),
    "choice in capitals": ({"ballots_csv": BALLOTS.replace("b8,O5,M1,,invalid", "b8,O5,M1,,INVALID")},
                           "ballots.csv", 10, "INVALID"),
    "bad channel": ({"ballots_csv": BALLOTS.replace("yes,paper,2026-01-10T10:00", "yes,mail,2026-01-10T10:00")},
                    "ballots.csv", 3, "mail"),
    "cast_at without offset": ({"ballots_csv": BALLOTS.replace("2026-01-10T11:00:00+08:00", "2026-01-10T11:00:00")},
                               "ballots.csv", 4, "UTC"),
    "cast_at not a time": ({"ballots_csv": BALLOTS.replace("2026-01-10T11:00:00+08:00", "yesterday")},
                           "ballots.csv", 4, "yesterday"),
    "same cast_at for one voter and matter": (
        {"ballots_csv": BALLOTS + "b12,O1,M1,,no,paper,2026-01-10T01:00:00Z\n"}, "ballots.csv", 14, "cast_at"),
    "rows of a ballot disagree on channel": (
        {"ballots_csv": BALLOTS.replace("b4,O1,E1,C2,no,electronic", "b4,O1,E1,C2,no,paper")},
        "ballots.csv", 6, "channel"),
    "rows of a ballot disagree on cast_at": (
        {"ballots_csv": BALLOTS.replace("C2,no,electronic,2026-01-10T09:01", "C2,no,electronic,2026-01-10T09:02")},
        "ballots.csv", 6, "cast_at"),
    "empty ballot_id": ({"ballots_csv": BALLOTS.replace("b3,O3", ",O3")}, "ballots.csv", 4, "ballot_id"),
}


@pytest.mark.parametrize("case", list(BAD_BUNDLES))
def test_bad_bundles_name_file_and_line(tmp_path, case):
    changes, file, line, fragment = BAD_BUNDLES[case]
    directory = tmp_path / "bundle"
    directory.mkdir()
    for name, text in FILES.items():
        key = name.replace(".", "_")
        text = changes.get(key, text)
        if text is None:
            continue
        if case == "not UTF-8" and key == "register_csv":
            (directory / name).write_bytes(text.encode("latin-1"))
        else:
            (directory / name).write_text(text, encoding="utf-8")
    with pytest.raises(BundleError) as info:
        read_bundle(directory)
    error = info.value
    assert (error.file, error.line) == (file, line), str(error)
    assert fragment in error.message, str(error)
    assert str(error) == f"{file}:{line}: {error.message}"
    assert "\n" not in str(error)


# ---------------------------------------------------------------- the voting window


def test_window_and_extensions_are_accepted_and_kept(tmp_path):
    meeting = window_as(f'{WINDOW}, "extensions": [{EXTENSION}]')
    bundle = read_bundle(make_bundle(tmp_path, meeting_json=meeting))
    assert bundle.meeting["meeting"]["window"] == json.loads("{" + WINDOW + "}")["window"]
    assert bundle.meeting["meeting"]["extensions"] == [json.loads(EXTENSION)]
    assert bundle.tally() == EXPECTED_RESULT  # the window does not change the count


def test_meeting_document_writes_window_and_extensions():
    bundle_meeting = json.loads(MEETING)
    rules = Rules()
    china = timezone(timedelta(hours=8))
    document = meeting_document(
        "2026-01", "首次业主大会", rules, (), "lc-haibin-017", "海滨小区",
        window={"opens_at": datetime(2026, 1, 10, 8, tzinfo=china), "closes_at": "2026-01-25T20:00:00+08:00"},
        extensions=[{"published_at": datetime(2026, 1, 20, 1, tzinfo=UTC), "reason": "参与人数不足",
                     "closes_at": "2026-02-05T20:00:00+08:00"}],
    )
    assert document["format"] == bundle_meeting["format"]
    assert document["meeting"] == {
        "id": "2026-01",
        "title": "首次业主大会",
        "window": {"opens_at": "2026-01-10T08:00:00+08:00", "closes_at": "2026-01-25T20:00:00+08:00"},
        "extensions": [{"published_at": "2026-01-20T01:00:00+00:00", "reason": "参与人数不足",
                        "closes_at": "2026-02-05T20:00:00+08:00"}],
    }
    assert list(document["meeting"]["extensions"][0]) == ["published_at", "reason", "closes_at"]
    plain = meeting_document("2026-01", "首次业主大会", rules, ())
    assert plain["meeting"] == {"id": "2026-01", "title": "首次业主大会"}
    with pytest.raises(ValueError):
        meeting_document("m", "t", rules, (), window={"opens_at": datetime(2026, 1, 10), "closes_at": "x"})
    with pytest.raises(ValueError):
        meeting_document("m", "t", rules, (), extensions=[{"published_at": "2026-01-20T09:00:00+08:00"}])


def test_meeting_document_writes_what_the_reader_read(tmp_path):
    """The writer's meeting.json of the objects read is the file read (scope included)."""
    bundle = read_bundle(make_bundle(tmp_path))
    document = meeting_document(bundle.meeting_id, "首次业主大会", bundle.rules, bundle.matters,
                                "lc-haibin-017", "海滨小区")
    assert document == json.loads(MEETING)
    assert canonical_json(document) == canonical_json(bundle.meeting)


# ---------------------------------------------------------------- the examples of bundle-format.md


def bundle_from(directory: Path, matters: list[dict], register: str, ballots: str, **rules) -> Path:
    meeting = {"format": "evote-bundle/2", "meeting": {"id": "m"}, "rules": rules, "matters": matters}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "meeting.json").write_text(json.dumps(meeting, ensure_ascii=False), encoding="utf-8")
    (directory / "register.csv").write_text(
        "unit_id,building,kind,area,area_source,holder,owner_id,representative\n" + register, encoding="utf-8")
    (directory / "ballots.csv").write_text(
        "ballot_id,voter_id,matter_id,candidate_id,choice,channel,cast_at\n" + ballots, encoding="utf-8")
    return directory


RESOLUTION = {"id": "M1", "title": "决议", "kind": "resolution", "category": 2}


def five_units(representative_of_u1: str, representative_of_u2: str) -> str:
    """A and B jointly own u1 and u2; A alone owns u3; C owns u4; the developer holds u5."""
    return "".join(
        f"{unit},1号楼,dwelling,{area},registry,{holder},{owner},{1 if representative else 0}\n"
        for unit, area, holder, owner, representative in [
            ("u1", "100", "owner", "A", representative_of_u1 == "A"),
            ("u1", "100", "owner", "B", representative_of_u1 == "B"),
            ("u2", "80.5", "owner", "A", representative_of_u2 == "A"),
            ("u2", "80.5", "owner", "B", representative_of_u2 == "B"),
            ("u3", "60.25", "owner", "A", True),
            ("u4", "90", "owner", "C", True),
            ("u5", "120.125", "developer", "DEV", True),
        ]
    )


FIVE_UNIT_BALLOTS = """\
1,A+B,M1,,yes,electronic,2026-01-10T09:00:00+08:00
2,A,M1,,no,paper,2026-01-10T09:00:00+08:00
3,C,M1,,yes,electronic,2026-01-10T09:30:00+08:00
"""


@pytest.mark.parametrize("representative", ["A", "B"])
def test_five_unit_example_joint_owners_are_one_person_whoever_represents_them(tmp_path, representative):
    bundle = read_bundle(bundle_from(tmp_path, [RESOLUTION], five_units(representative, representative),
                                     FIVE_UNIT_BALLOTS))
    subjects = bundle.electorate.subjects
    assert sorted(subjects) == ["A", "A+B", "C", "DEV"]
    assert subjects["A+B"].units == ("u1", "u2") and subjects["A+B"].representative == representative
    result = bundle.tally()
    # A+B 180.500 (one person), A alone 60.250 (a second buyer), C 90.000, the developer 120.125.
    assert result["totals"] == fig("450.875", 4)
    matter = result["matters"][0]
    assert matter["participating"] == fig("330.750", 3)  # 3 * 330.75 >= 2 * 450.875 and 3 * 3 >= 2 * 4
    assert matter["yes"] == fig("270.500", 2)  # A+B's one ballot carries both units and one person
    assert matter["no"] == fig("60.250", 1)
    assert matter["outcome"] == "passed"


def test_five_unit_example_with_split_representatives_is_bad_input(tmp_path):
    with pytest.raises(BundleError) as info:
        read_bundle(bundle_from(tmp_path, [RESOLUTION], five_units("A", "B"), FIVE_UNIT_BALLOTS))
    # Lines: 1 header, 2–3 u1 (A represents), 4–5 u2 (B represents, line 5).
    assert (info.value.file, info.value.line) == ("register.csv", 5)
    assert "单元 u1 为 A；单元 u2 为 B" in info.value.message and "第 2 行" in info.value.message


SCOPED_REGISTER = """\
1-1,1,dwelling,100,registry,owner,A,1
3-1,3,dwelling,50,registry,owner,A,1
3-2,3,dwelling,80,registry,owner,B,1
5-1,5,dwelling,70,survey,owner,C,1
1-2,1,dwelling,90,registry,owner,D,1
"""
SCOPED_MATTERS = [
    {"id": "M1", "title": "管理规约", "kind": "resolution", "category": 2},
    {"id": "L35", "title": "3、5号楼加装电梯", "kind": "resolution", "category": 5,
     "scope": {"buildings": ["3", "5"]}},
]


def test_scoped_matter_counts_its_own_electorate(tmp_path):
    ballots = """\
1,A,L35,,yes,electronic,2026-01-10T09:00:00+08:00
2,B,L35,,no,electronic,2026-01-10T09:01:00+08:00
3,C,L35,,yes,paper,2026-01-10T09:02:00+08:00
4,D,M1,,yes,paper,2026-01-10T09:02:00+08:00
"""
    result = read_bundle(bundle_from(tmp_path, SCOPED_MATTERS, SCOPED_REGISTER, ballots)).tally()
    whole, lift = result["matters"]
    assert result["totals"] == fig("390.00", 4) and whole["electorate"] == fig("390.00", 4)
    assert (whole["participating"], whole["outcome"]) == (fig("90.00", 1), "no_quorum")
    # A weighs only its 50 m² in building 3 (not its 100 m² in building 1); D is not in the scope.
    assert lift["electorate"] == fig("200.00", 3)
    assert lift["participating"] == fig("200.00", 3)
    assert (lift["yes"], lift["no"]) == (fig("120.00", 2), fig("80.00", 1))
    assert (lift["quorum_met"], lift["outcome"]) == (True, "passed")


def test_a_ballot_from_outside_the_scope_is_bad_input(tmp_path):
    ballots = "1,A,L35,,yes,electronic,2026-01-10T09:00:00+08:00\n2,D,L35,,yes,paper,2026-01-10T09:02:00+08:00\n"
    with pytest.raises(BundleError) as info:
        read_bundle(bundle_from(tmp_path, SCOPED_MATTERS, SCOPED_REGISTER, ballots))
    assert (info.value.file, info.value.line) == ("ballots.csv", 3)
    assert "D" in info.value.message and "表决范围" in info.value.message


FOUR_OWNERS = "".join(f"u{i},1,dwelling,100,registry,owner,O{i},1\n" for i in range(1, 5))
ELECTION = {"id": "E1", "title": "选举", "kind": "election", "category": 3, "seats": 1, "alternates": 0,
            "candidates": [{"id": "C1", "name": "甲"}, {"id": "C2", "name": "乙"}]}
INVALID_BALLOTS = """\
1,O1,M1,,yes,electronic,2026-01-10T09:00:00+08:00
2,O2,M1,,yes,electronic,2026-01-10T09:00:00+08:00
3,O3,M1,,no,electronic,2026-01-10T09:00:00+08:00
4,O4,M1,,invalid,paper,2026-01-10T09:00:00+08:00
5,O1,E1,C1,yes,electronic,2026-01-10T09:00:00+08:00
6,O2,E1,C1,yes,electronic,2026-01-10T09:00:00+08:00
7,O3,E1,,invalid,paper,2026-01-10T09:00:00+08:00
8,O4,E1,C1,yes,paper,2026-01-10T09:00:00+08:00
8,O4,E1,C2,yes,paper,2026-01-10T09:00:00+08:00
"""


@pytest.mark.parametrize(
    ("rule", "participating", "outcome", "election_participating", "elected"),
    [
        # The invalid ballot takes part and supports nothing: yes 200 of 400 is not more than half.
        ("abstain", fig("400.00", 4), "failed", fig("400.00", 4), []),
        # It does not take part: yes 200 of 300 passes, and 300 of 400 is still two thirds.
        ("not_counted", fig("300.00", 3), "passed", fig("200.00", 2), None),
    ],
)
def test_invalid_ballots_under_both_rules(tmp_path, rule, participating, outcome, election_participating, elected):
    result = read_bundle(bundle_from(tmp_path, [RESOLUTION, ELECTION], FOUR_OWNERS, INVALID_BALLOTS,
                                     invalid_ballot=rule)).tally()
    resolution, election = result["matters"]
    assert resolution["invalid"] == fig("100.00", 1)
    assert resolution["participating"] == participating and resolution["outcome"] == outcome
    assert resolution["abstain"] == fig("0.00", 0)  # explicit abstentions only
    # O3's blank ballot and O4's over-marked one (two yes for one seat) are both invalid.
    assert election["invalid"] == fig("200.00", 2)
    assert election["participating"] == election_participating
    assert election["candidates"][0]["yes"] == fig("200.00", 2)
    if rule == "abstain":
        assert (election["quorum_met"], election["elected"], election["outcome"]) == (True, [], "failed")
    else:  # 2 of 4 persons took part: no decision
        assert (election["quorum_met"], election["outcome"]) == (False, "no_quorum")


def all_areas(document: object) -> list[str]:
    if isinstance(document, dict):
        return [v for k, v in document.items() if k == "area"] + [a for v in document.values() for a in all_areas(v)]
    if isinstance(document, list):
        return [a for v in document for a in all_areas(v)]
    return []


def test_areas_print_two_decimals_unless_the_register_has_three(tmp_path):
    areas = all_areas(read_bundle(make_bundle(tmp_path / "two")).tally())
    assert areas and all(len(area.split(".")[1]) == 2 for area in areas)
    # One area with a third decimal anywhere in the register (here an uncounted parking space) → three everywhere.
    register = REGISTER.replace("P-01,地下车库,parking,12.5,", "P-01,地下车库,parking,12.345,")
    bundle = read_bundle(make_bundle(tmp_path / "three", register_csv=register))
    result = bundle.tally()
    areas = all_areas(result)
    assert areas and all(len(area.split(".")[1]) == 3 for area in areas)
    assert result["totals"] == fig("541.120", 5)
    assert result["matters"][0]["yes"] == fig("250.870", 2)
    # The writer gives every area of such a register three decimals too.
    files = bundle_files(bundle.meeting, bundle.register_rows, bundle.submissions)
    assert "P-01,地下车库,parking,12.345,registry,owner,O4,1" in files["register.csv"].decode()
    assert "1-101,1号楼,dwelling,88.500,registry,owner,O1,1" in files["register.csv"].decode()
