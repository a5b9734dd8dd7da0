"""Reading and writing evote-bundle/1: the valid case, and every class of bad input with its line."""
from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from server.ballot.tally import Rules
from server.record import BundleError, bundle_files, canonical_json, read_bundle, write_bundle
from server.record import archive as record_archive

MEETING = """\
{
  "format": "evote-bundle/1",
  "community": {"id": "lc-haibin-017", "name": "海滨小区"},
  "meeting": {"id": "2026-01", "title": "首次业主大会"},
  "rules": {
    "count_parking_area": false,
    "allow_revision": false,
    "duplicate_policy": "electronic_prevails",
    "rank_by": "persons_then_area"
  },
  "matters": [
    {"id": "M1", "title": "表决通过《管理规约》", "kind": "resolution", "category": 2},
    {"id": "E1", "title": "选举业主委员会委员", "kind": "election", "category": 3,
     "seats": 1, "alternates": 1,
     "candidates": [{"id": "C1", "name": "张三"}, {"id": "C2", "name": "李四"}]}
  ]
}
"""

REGISTER = """\
unit_id,building,kind,area,area_source,holder,owner_id,representative
1-101,1号楼,dwelling,88.5,registry,owner,O1,1
1-102,1号楼,dwelling,102.37,survey,owner,O2,1
1-102,1号楼,dwelling,102.37,survey,owner,O2b,0
1-201,1号楼,dwelling,95,contract,owner,O3,1
2-101,2号楼,commercial,120,registry,developer,DEV,1
P-01,地下车库,parking,12.5,registry,owner,O4,1
"""

BALLOTS = """\
ballot_id,voter_id,matter_id,candidate_id,choice,channel,cast_at
b1,O1,M1,,yes,electronic,2026-01-10T09:00:00+08:00
b2,O2,M1,,yes,paper,2026-01-10T10:00:00+08:00
b3,O3,M1,,no,electronic,2026-01-10T11:00:00+08:00
b4,O1,E1,C1,yes,electronic,2026-01-10T09:01:00+08:00
b4,O1,E1,C2,no,electronic,2026-01-10T09:01:00+08:00
b5,O2,E1,C1,yes,paper,2026-01-10T10:01:00+08:00
b6,DEV,E1,C1,yes,electronic,2026-01-11T09:00:00Z
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


EXPECTED_RESULT = {
    "format": "evote-result/1",
    "meeting_id": "2026-01",
    "totals": {"area": "405.87", "persons": 4},
    "matters": [
        {
            "id": "M1",
            "kind": "resolution",
            "category": 2,
            "threshold": "majority",
            "participating": {"area": "285.87", "persons": 3},
            "yes": {"area": "190.87", "persons": 2},
            "no": {"area": "95.00", "persons": 1},
            "abstain": {"area": "0.00", "persons": 0},
            "quorum_met": True,
            "outcome": "passed",
        },
        {
            "id": "E1",
            "kind": "election",
            "category": 3,
            "threshold": "majority",
            "participating": {"area": "310.87", "persons": 3},
            "quorum_met": True,
            "candidates": [
                {"id": "C1", "yes": {"area": "310.87", "persons": 3}, "passed": True},
                {"id": "C2", "yes": {"area": "0.00", "persons": 0}, "passed": False},
            ],
            "elected": ["C1"],
            "alternates": [],
            "runoff_needed": [],
            "outcome": "elected",
        },
    ],
}


def test_valid_bundle(tmp_path):
    bundle = read_bundle(make_bundle(tmp_path))
    assert bundle.meeting_id == "2026-01"
    assert bundle.rules == Rules()
    assert [m.id for m in bundle.matters] == ["M1", "E1"]
    assert bundle.matters[1].candidates == (("C1", "张三"), ("C2", "李四"))
    assert len(bundle.register_rows) == 6
    assert bundle.electorate.total_area == 40587 and bundle.electorate.total_persons == 4
    assert [s.ballot_id for s in bundle.submissions] == ["b1", "b2", "b3", "b4", "b5", "b6"]
    assert bundle.submissions[3].choices == (("C1", "yes"), ("C2", "no"))
    assert type(bundle.meeting) is dict and type(bundle.meeting["matters"]) is list
    assert bundle.meeting["community"]["name"] == "海滨小区"
    assert bundle.tally() == EXPECTED_RESULT


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
    ballots = BALLOTS + "b7,O4,M1,,abstain,paper,2026-01-10T12:00:00+08:00\n"
    bundle = read_bundle(make_bundle(tmp_path, meeting_json=meeting, ballots_csv=ballots))
    assert bundle.electorate.total_persons == 5
    assert bundle.tally()["totals"] == {"area": "418.37", "persons": 5}


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
    assert files["ballots.csv"].decode().splitlines()[-1] == "b6,DEV,E1,C1,yes,electronic,2026-01-11T09:00:00.000000+00:00"


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


MEETING_LINES = MEETING.split("\n")


def meeting_with(line: int, new: str) -> str:
    return replace_line(MEETING, line, new)


BAD_BUNDLES = {
    # ---------------------------------------------------------------- meeting.json
    "missing meeting.json": ({"meeting_json": None}, "meeting.json", 0, "缺失"),
    "not JSON": ({"meeting_json": MEETING.replace('"format": "evote-bundle/1",', '"format": "evote-bundle/1"')},
                 "meeting.json", 3, "JSON"),
    "not an object": ({"meeting_json": "[]\n"}, "meeting.json", 1, "对象"),
    "bad format": ({"meeting_json": MEETING.replace("evote-bundle/1", "evote-bundle/2")},
                   "meeting.json", 2, "evote-bundle/2"),
    "missing format": ({"meeting_json": meeting_with(2, "")}, "meeting.json", 1, "format"),
    "meeting without id": ({"meeting_json": meeting_with(4, '  "meeting": {"title": "x"},')},
                           "meeting.json", 4, "id"),
    "unknown rules key": ({"meeting_json": meeting_with(7, '    "allow_revision": false, "silent_majority": true,')},
                          "meeting.json", 7, "silent_majority"),
    "bad duplicate_policy": ({"meeting_json": meeting_with(8, '    "duplicate_policy": "paper_prevails",')},
                             "meeting.json", 8, "paper_prevails"),
    "bad rank_by": ({"meeting_json": meeting_with(9, '    "rank_by": "alphabetical"')},
                    "meeting.json", 9, "alphabetical"),
    "rule not boolean": ({"meeting_json": meeting_with(6, '    "count_parking_area": "no",')},
                         "meeting.json", 6, "count_parking_area"),
    "duplicate key": ({"meeting_json": meeting_with(9, '    "rank_by": "persons_then_area", "rank_by": "x"')},
                      "meeting.json", 9, "重复"),
    "no matters": ({"meeting_json": MEETING.split('  "matters"')[0].rstrip().rstrip(",") + ',\n  "matters": []\n}\n'},
                   "meeting.json", 11, "matters"),
    "unknown category": ({"meeting_json": MEETING.replace('"category": 3', '"category": 10')},
                         "meeting.json", 13, "category 10"),
    "category zero": ({"meeting_json": MEETING.replace('"category": 2', '"category": 0')},
                      "meeting.json", 12, "category 0"),
    "category as text": ({"meeting_json": MEETING.replace('"category": 2', '"category": "2"')},
                         "meeting.json", 12, "category '2'"),
    "category as float": ({"meeting_json": MEETING.replace('"category": 2', '"category": 2.0')},
                          "meeting.json", 12, "category 2.0"),
    "bad matter kind": ({"meeting_json": MEETING.replace('"kind": "resolution"', '"kind": "poll"')},
                 "meeting.json", 12, "poll"),
    "election without seats": ({"meeting_json": MEETING.replace('"seats": 1, ', "")},
                               "meeting.json", 13, "seats"),
    "election with zero seats": ({"meeting_json": MEETING.replace('"seats": 1', '"seats": 0')},
                                 "meeting.json", 14, "seats 0"),
    "negative alternates": ({"meeting_json": MEETING.replace('"alternates": 1', '"alternates": -1')},
                            "meeting.json", 14, "alternates -1"),
    "election without candidates": (
        {"meeting_json": MEETING.replace('[{"id": "C1", "name": "张三"}, {"id": "C2", "name": "李四"}]', "[]")},
        "meeting.json", 15, "candidates"),
    "resolution with candidates": (
        {"meeting_json": MEETING.replace('"category": 2}', '"category": 2, "candidates": []}')},
        "meeting.json", 12, "candidates"),
    "duplicate matter id": ({"meeting_json": MEETING.replace('"id": "E1"', '"id": "M1"')},
                            "meeting.json", 13, "M1"),
    "duplicate candidate id": ({"meeting_json": MEETING.replace('"id": "C2"', '"id": "C1"')},
                               "meeting.json", 15, "C1"),
    "candidate without id": ({"meeting_json": MEETING.replace('{"id": "C2", "name": "李四"}', '{"name": "李四"}')},
                             "meeting.json", 15, "id"),
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
    "three decimals": ({"register_csv": REGISTER.replace("88.5", "88.512")}, "register.csv", 2, "88.512"),
    "thousands separator": ({"register_csv": REGISTER.replace(",120,", ',"1,200",')}, "register.csv", 6, "1,200"),
    "bad unit kind": ({"register_csv": REGISTER.replace("commercial", "shop")}, "register.csv", 6, "shop"),
    "bad area_source": ({"register_csv": REGISTER.replace("contract", "estimate")}, "register.csv", 5, "estimate"),
    "bad holder": ({"register_csv": REGISTER.replace("developer", "builder")}, "register.csv", 6, "builder"),
    "bad representative": ({"register_csv": REGISTER.replace("O3,1", "O3,yes")}, "register.csv", 5, "yes"),
    "empty owner_id": ({"register_csv": REGISTER.replace("owner,O3,1", "owner,,1")}, "register.csv", 5, "owner_id"),
    "two representatives": ({"register_csv": REGISTER.replace("O2b,0", "O2b,1")}, "register.csv", 4, "代表"),
    "unit without representative": ({"register_csv": REGISTER.replace("O3,1", "O3,0")}, "register.csv", 5, "1-201"),
    "unit rows disagree": ({"register_csv": REGISTER.replace("102.37,survey,owner,O2b", "102.38,survey,owner,O2b")},
                           "register.csv", 4, "area"),
    "two developer ids": ({"register_csv": REGISTER + "2-102,2号楼,commercial,50,registry,developer,DEV2,1\n"},
                          "register.csv", 8, "DEV2"),
    "empty electorate": ({"register_csv": "\n".join(REGISTER.split("\n")[:1] + REGISTER.split("\n")[6:])},
                         "register.csv", 0, "表决权"),
    "header only": ({"register_csv": REGISTER.split("\n")[0] + "\n"}, "register.csv", 0, "表决权"),
    "not UTF-8": ({"register_csv": REGISTER.encode("gbk").decode("latin-1")}, "register.csv", 2, "UTF-8"),
    "bad quoting": ({"register_csv": REGISTER.replace("1-201", '"1-201"x')}, "register.csv", 5, "CSV"),
    # ---------------------------------------------------------------- ballots.csv
    "missing ballots.csv": ({"ballots_csv": None}, "ballots.csv", 0, "缺失"),
    "ballots missing column": ({"ballots_csv": BALLOTS.replace(",channel", "", 1)}, "ballots.csv", 1, "channel"),
    "unknown voter": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O9")}, "ballots.csv", 4, "O9"),
    "co-owner who is not the representative": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O2b")},
                                                 "ballots.csv", 4, "表决权"),
    "parking owner while parking does not count": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O4")},
                                                    "ballots.csv", 4, "O4"),
    "unknown matter": ({"ballots_csv": BALLOTS.replace("b2,O2,M1", "b2,O2,M9")}, "ballots.csv", 3, "M9"),
    "unknown candidate": ({"ballots_csv": BALLOTS.replace("b5,O2,E1,C1", "b5,O2,E1,C9")}, "ballots.csv", 7, "C9"),
    "election row without candidate": ({"ballots_csv": BALLOTS.replace("b5,O2,E1,C1", "b5,O2,E1,")},
                                       "ballots.csv", 7, "candidate_id"),
    "resolution row with candidate": ({"ballots_csv": BALLOTS.replace("b2,O2,M1,,", "b2,O2,M1,C1,")},
                                      "ballots.csv", 3, "candidate_id"),
    "resolution ballot with two rows": (
        {"ballots_csv": BALLOTS + "b1,O1,M1,,no,electronic,2026-01-10T09:00:00+08:00\n"}, "ballots.csv", 9, "b1"),
    "ballot id for two voters": ({"ballots_csv": BALLOTS.replace("b5,O2", "b4,O2")}, "ballots.csv", 7, "b4"),
    "ballot id for two matters": (
        {"ballots_csv": BALLOTS + "b4,O1,M1,,yes,electronic,2026-01-10T09:01:00+08:00\n"}, "ballots.csv", 9, "b4"),
    "candidate twice in a ballot": ({"ballots_csv": BALLOTS.replace("b4,O1,E1,C2", "b4,O1,E1,C1")},
                                    "ballots.csv", 6, "C1"),
    "bad choice": ({"ballots_csv": BALLOTS.replace(",no,electronic,2026-01-10T11", ",oui,electronic,2026-01-10T11")},
                   "ballots.csv", 4, "oui"),
    "bad channel": ({"ballots_csv": BALLOTS.replace("yes,paper,2026-01-10T10:00", "yes,mail,2026-01-10T10:00")},
                    "ballots.csv", 3, "mail"),
    "cast_at without offset": ({"ballots_csv": BALLOTS.replace("2026-01-10T11:00:00+08:00", "2026-01-10T11:00:00")},
                               "ballots.csv", 4, "UTC"),
    "cast_at not a time": ({"ballots_csv": BALLOTS.replace("2026-01-10T11:00:00+08:00", "yesterday")},
                           "ballots.csv", 4, "yesterday"),
    "same cast_at for one voter and matter": (
        {"ballots_csv": BALLOTS + "b7,O1,M1,,no,paper,2026-01-10T01:00:00Z\n"}, "ballots.csv", 9, "cast_at"),
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
