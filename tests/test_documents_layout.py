"""The document layouts alone (no database): a runoff in the result announcement, the figures printed
against the two-thirds lines, codes that never break inside a group, sign-off lists without codes."""
from __future__ import annotations

import pytest

from server.ballot.codes import generate_code
from server.printing.code_sheets import SheetContext, building_pdf, code_groups
from server.printing.result_notice import ordinal, percent, result_announcement_pdf, two_thirds_line
from server.printing.signoff import SignoffRow, signoff_pdf
from server.printing.text import building_label, day, when
from server.services.codes import IssuedCode, sheet_number, sheet_positions
from tests.helpers_documents import pdf_qr_codes, pdf_text

pytest.importorskip("pypdfium2")
pytest.importorskip("zxingcpp")


def _flat(pages: list[str]) -> str:
    return "".join("".join(page.split()) for page in pages)


def test_words_and_figures():
    assert when("2026-12-08T12:59:00+00:00") == "2026-12-08 20:59（北京时间）"
    assert when("2026-12-08T12:59:30Z", seconds=True) == "2026-12-08 20:59:30（北京时间）"
    assert day("2026-12-31T16:00:00+00:00") == "2027年01月01日"
    assert building_label("1") == "1 栋" and building_label("A座") == "A座" and building_label("3号楼") == "3号楼"
    assert [ordinal(n) for n in (1, 10, 11, 20, 23)] == ["一", "十", "十一", "二十", "二十三"]
    assert percent("200.00", "300.00") == "66.67%" and percent(1, 3) == "33.33%" and percent(0, 0) == "—"
    # the smallest figures meeting quorum: 2/3 of 300.003 m² is 200.002, of 4 persons 3 (2.67 rounded up)
    assert two_thirds_line({"area": "300.003", "persons": 4}) == ("200.002", "3")
    assert two_thirds_line({"area": "600.00", "persons": 6}) == ("400.00", "4")
    assert sheet_number("1", 3, 2) == "1-003-2"
    voters = [{"voter_id": v, "building": b} for v, b in (("A", "1"), ("B", "1"), ("C", "2"), ("D", "1"))]
    assert sheet_positions(voters) == {"A": 1, "B": 2, "C": 1, "D": 3}


def _result_data(runoff: bool) -> dict:
    names = {"C1": "甲", "C2": "乙", "C3": "丙", "C4": "丁"}
    yes = {"C1": ("300.00", 3), "C2": ("200.00", 2), "C3": ("200.00", 2), "C4": ("100.00", 1)}
    return {
        "community_name": "海滨小区", "meeting_title": "首次业主大会", "convener": "业主大会筹备组",
        "status_name": "初步结果（异议期内）", "opened_at": "2026-12-01T01:00:00+00:00",
        "closed_at": "2026-12-08T12:00:00+00:00", "published_at": "2026-12-08T13:00:00+00:00",
        "objection_ends_at": "2026-12-15T13:00:00+00:00", "finalized_at": None,
        "signed_at": "2026-12-08T12:00:05+00:00",
        "result": {"totals": {"area": "400.00", "persons": 4}, "matters": [
            {"id": "E1", "kind": "election", "category": 3, "threshold": "majority",
             "electorate": {"area": "400.00", "persons": 4}, "participating": {"area": "300.00", "persons": 3},
             "invalid": {"area": "0.00", "persons": 0}, "quorum_met": True,
             "candidates": [{"id": c, "yes": {"area": a, "persons": p}, "passed": p >= 2} for c, (a, p) in yes.items()],
             "elected": ["C1"], "alternates": [], "runoff_needed": ["C2", "C3"] if runoff else [],
             "outcome": "elected"}]},
        "matters": [{"id": "E1", "title": "选举业主委员会委员", "kind": "election", "category": 3, "seats": 2,
                     "alternates": 1, "candidates": [{"id": c, "name": n} for c, n in names.items()]}],
        "formations": {"E1": {"reason": "第 2 席出现票数完全相同（候选人 C2、C3），需另行选举", "notes": []}},
        "results_url": "https://evote.example.cn/r/c1/m1", "key_id": "0123456789abcdef",
        "key_fingerprint": "ab" * 32, "receipts_root": "cd" * 32, "receipt_count": 3,
    }


def test_result_announcement_names_a_runoff_and_links_the_public_page():
    data = _result_data(runoff=True)
    body = result_announcement_pdf(data)
    pages = pdf_text(body)
    flat = _flat(pages)
    assert "票数完全相同、需另行选举：乙、丙。" in flat and "当选：甲。" in flat and "候补：无。" in flat
    assert "需另行选举" in flat and "第2席出现票数完全相同" in flat
    assert "参与表决" in flat and "300.00m²（75.00%）" in flat and "3人（75.00%）" in flat
    assert "266.67m²，已达到" in flat and "3人，已达到" in flat
    assert "2026-12-15 21:00（北京时间）" in "\n".join(pages) and "UTC" not in "".join(pages)
    assert "abab abab" in "\n".join(pages)          # the fingerprint in groups of four
    assert pdf_qr_codes(body) == ["https://evote.example.cn/r/c1/m1"]
    assert "需另行选举" not in _flat(pdf_text(result_announcement_pdf(_result_data(runoff=False)))).replace(
        "第2席出现票数完全相同（候选人C2、C3），需另行选举", "")


def _codes(n: int, building: str = "1") -> list[IssuedCode]:
    out = []
    for i in range(n):
        code = generate_code()
        out.append(IssuedCode(f"O{i:03d}", building, (f"{building}-{i:04d}",), "王**", 1, code,
                              f"https://evote.example.cn/b/{code}", sheet_no=sheet_number(building, i + 1, 1)))
    return out


def test_sheets_number_their_pages_per_building_and_keep_code_groups_whole():
    ctx = SheetContext("2026年第一次业主大会会议", public_url="https://evote.example.cn",
                       opens_at="2026-12-01T01:00:00+00:00", closes_at="2026-12-15T12:00:00+00:00",
                       contact="筹备组 王女士 0595-22000000")
    codes = _codes(9, "3") + _codes(2, "5")
    body = building_pdf(ctx, "全部楼栋", codes, signoff=True)
    pages = pdf_text(body)
    # building 3: two pages of sheets, then its list; building 5: one page, then its list
    labels = ["3栋·第1/2页", "3栋·第2/2页", "3栋签收表·第1/1页", "5栋·第1/1页", "5栋签收表·第1/1页"]
    assert len(pages) == len(labels)
    for page, label in zip(pages, labels):
        assert label in _flat([page])
    first = pages[0]
    flat = _flat([first])
    assert "网址：https://evote.example.cn/b/" in flat and "2026-12-0109:00至2026-12-1520:00（北京时间）" in flat
    assert "联系：筹备组王女士0595-22000000" in flat
    for code in codes[:8]:
        lines = first.splitlines()
        assert all(any(group in line for line in lines) for group in code_groups(code.code))
    assert sorted(pdf_qr_codes(body, [0])) == sorted(c.url for c in codes[:8])
    lists = _flat(pages[2:3] + pages[4:])
    assert all(c.sheet_no in lists for c in codes) and not any(c.code in lists for c in codes)


def test_a_long_sign_off_list_runs_over_pages_of_its_building():
    rows = [SignoffRow("7", (f"7-{i:04d}",), "李*", f"7-{i:03d}-1") for i in range(1, 46)]
    pages = pdf_text(signoff_pdf(SheetContext("会议"), {"7": rows}))
    assert len(pages) == 3
    assert [f"7栋第{n}/3页" in _flat([p]) for n, p in enumerate(pages, start=1)] == [True] * 3
    assert "7-045-1" in pages[2]
