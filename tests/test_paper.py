"""Paper ballots: printing with the owner's code, double entry by two staff, mismatches, duplicate policy."""
from __future__ import annotations

import asyncpg
import pytest

from server.ballot.amounts import format_area
from server.services.rule_statements import rule_statements
from tests.helpers_meetings import ballot_token, cast, close_now, open_meeting
from tests.helpers_paper import (
    areas,
    clerks,
    counted,
    double_entry,
    enter,
    matter,
    reissue_code,
    submission_events,
)
from tests.helpers_scope import scoped_meeting

RESOLUTION_ONLY = [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}]


async def test_printed_ballot_carries_the_owners_code_as_qr(client, db_pool, staff_headers, imported_community):
    pdfium = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    voter = m.voter_ids[0]
    resp = await client.post(f"{m.base}/paper/ballots", json={"voter_ids": [voter]}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf" and resp.headers["X-Ballots"] == "1"
    pdf = pdfium.PdfDocument(await resp.read())
    image = pdf[0].render(scale=3).to_pil()
    found = zxingcpp.read_barcodes(image)
    assert len(found) == 1 and "/b/" in found[0].text
    scanned = found[0].text
    # The scanned text is what a clerk's scanner gives: it identifies the owner for entry.
    c1, c2 = await clerks(staff_headers, m.community_id)
    first = await (await enter(client, m, c1, code=scanned, votes=[{"matter_id": "M1", "choice": "yes"}])).json()
    assert first["voter_id"] == voter and first["status"] == "pending"
    text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "业主大会书面表决票" in text and "签名" in text and "同意" in text and "王芳" in text


async def test_print_for_a_building_reissues_their_codes(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    old = await reissue_code(client, m, m.voter_ids[0])
    async with db_pool.acquire() as conn:
        building = await conn.fetchval("SELECT building FROM electorate WHERE community_id = $1 AND meeting_id = $2 "
                                       "AND voter_id = $3", m.community_id, m.meeting_id, m.voter_ids[0])
        in_building = await conn.fetchval("SELECT count(*) FROM electorate WHERE community_id = $1 AND "
                                          "meeting_id = $2 AND building = $3", m.community_id, m.meeting_id, building)
    resp = await client.post(f"{m.base}/paper/ballots", json={"building": building}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    assert int(resp.headers["X-Ballots"]) == in_building
    c1, _ = await clerks(staff_headers, m.community_id)
    resp = await enter(client, m, c1, code=old["code"], votes=[{"matter_id": "M1", "choice": "yes"}], expect=409)
    assert (await resp.json())["error"]["code"] == "code_revoked"


async def test_double_entry_counts_with_receipt_time_and_paper_date(client, db_pool, staff_headers,
                                                                     imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    voter = m.voter_ids[1]
    code = (await reissue_code(client, m, voter))["code"]
    c1, c2 = await clerks(staff_headers, m.community_id)
    votes = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
             {"matter_id": "E1", "marks": {"C1": "yes", "C2": "no"}}]
    first = await (await enter(client, m, c1, code=code.lower(), votes=votes, paper_date="2026-02-27")).json()
    assert first["status"] == "pending" and first["receipts"] == []
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["participating"]["persons"] == 0     # one entry never counts
    second = await (await enter(client, m, c2, voter_id=voter, votes=list(reversed(votes)),
                                paper_date="2026-02-27", scan_ref="")).json()
    assert second["status"] == "matched" and len(second["receipts"]) == 3
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT channel, paper_date, received_at, proxy_voter_id FROM submission "
                                "WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3",
                                m.community_id, m.meeting_id, voter)
        entered_at = await conn.fetchval("SELECT entered_at FROM paper_entry WHERE community_id = $1 AND "
                                         "meeting_id = $2 AND paper_id = $3 AND entry_no = 2",
                                         m.community_id, m.meeting_id, second["paper_id"])
        audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id = $1 AND action = "
                                    "'paper.entry'", m.community_id)
    assert len(rows) == 3 and {r["channel"] for r in rows} == {"paper"}
    assert {r["paper_date"].isoformat() for r in rows} == {"2026-02-27"}
    assert {r["received_at"] for r in rows} == {entered_at}            # the matching entry's server time
    assert audit == 2
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    area = format_area((await areas(db_pool, m.community_id, m.meeting_id))[voter])
    assert matter(result, "M1")["yes"] == {"area": area, "persons": 1}
    assert matter(result, "M2")["no"] == {"area": area, "persons": 1}
    listing = await (await client.get(f"{m.base}/paper?status=matched", headers=c1)).json()
    assert listing["counts"]["matched"] == 1
    sheet = listing["sheets"][0]
    assert [e["entry_no"] for e in sheet["entries"]] == [1, 2] and sheet["entries"][0]["scan_ref"] == "scan/0001.jpg"
    assert {s["paper_date"] for s in sheet["submissions"]} == {"2026-02-27"}


async def test_same_staff_member_cannot_enter_a_sheet_twice(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, _ = await clerks(staff_headers, m.community_id)
    votes = [{"matter_id": "M1", "choice": "yes"}]
    first = await (await enter(client, m, c1, voter_id=m.voter_ids[0], votes=votes)).json()
    resp = await enter(client, m, c1, voter_id=m.voter_ids[0], votes=votes, expect=409)
    body = await resp.json()
    assert body["error"]["code"] == "same_staff_twice" and "两位不同的工作人员" in body["error"]["message"]
    # The database itself refuses it too.
    async with db_pool.acquire() as conn:
        staff_id = await conn.fetchval("SELECT staff_id FROM paper_entry WHERE community_id = $1 AND paper_id = $2",
                                       m.community_id, first["paper_id"])
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                """INSERT INTO paper_entry (community_id, meeting_id, paper_id, entry_no, staff_id, entered_by, votes)
                   VALUES ($1, $2, $3, 2, $4, 'staff:x', '{}')""", m.community_id, m.meeting_id, first["paper_id"],
                staff_id)
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["participating"]["persons"] == 0


async def test_mismatch_is_held_shown_and_settled_by_a_third_entry(client, db_pool, staff_headers,
                                                                   imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, c2, c3 = await clerks(staff_headers, m.community_id, 3)
    voter = m.voter_ids[2]
    await enter(client, m, c1, voter_id=voter, votes=[{"matter_id": "M1", "choice": "yes"},
                                                      {"matter_id": "M2", "choice": "no"}])
    second = await (await enter(client, m, c2, voter_id=voter, votes=[{"matter_id": "M1", "choice": "no"},
                                                                      {"matter_id": "M2", "choice": "no"}])).json()
    assert second["status"] == "mismatch" and second["differences"] == ["M1"] and second["receipts"] == []
    held = await (await client.get(f"{m.base}/paper?status=mismatch", headers=c3)).json()
    assert held["counts"]["mismatch"] == 1
    sheet = held["sheets"][0]
    assert sheet["voter_id"] == voter and sheet["differences"] == ["M1"]
    assert [e["votes"]["M1"] for e in sheet["entries"]] == [[["", "yes"]], [["", "no"]]]
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["participating"]["persons"] == 0       # held: not counted
    third = await (await enter(client, m, c3, voter_id=voter, votes=[{"matter_id": "M1", "choice": "yes"},
                                                                     {"matter_id": "M2", "choice": "no"}])).json()
    assert third["status"] == "resolved" and len(third["receipts"]) == 2
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["yes"]["persons"] == 1


async def test_supervisor_decides_a_mismatch(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, c2 = await clerks(staff_headers, m.community_id)
    committee = await staff_headers("committee", communities=[m.community_id])
    for voter in m.voter_ids[:2]:
        await enter(client, m, c1, voter_id=voter, votes=[{"matter_id": "M1", "choice": "yes"}])
        await enter(client, m, c2, voter_id=voter, votes=[{"matter_id": "M1", "choice": "abstain"}])
    sheets = (await (await client.get(f"{m.base}/paper?status=mismatch", headers=c1)).json())["sheets"]
    first, second = sheets[0]["paper_id"], sheets[1]["paper_id"]
    resp = await client.post(f"{m.base}/paper/{first}/resolve", json={"decision": "entry2", "note": "核对原件"},
                             headers=committee)
    assert resp.status == 403
    resp = await client.post(f"{m.base}/paper/{first}/resolve", json={"decision": "entry2", "note": "核对原件"},
                             headers=c1)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "entered_this_sheet"
    resp = await client.post(f"{m.base}/paper/{first}/resolve", json={"decision": "entry2", "note": ""},
                             headers=m.headers)
    assert resp.status == 422
    resp = await client.post(f"{m.base}/paper/{first}/resolve",
                             json={"decision": "entry2", "note": "核对原件，勾的是弃权"}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{m.base}/paper/{second}/resolve", json={"decision": "void", "note": "字迹无法辨认"},
                             headers=m.headers)
    assert resp.status == 200, await resp.text()
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["abstain"]["persons"] == 1 and matter(result, "M1")["participating"]["persons"] == 1
    async with db_pool.acquire() as conn:
        decisions = await conn.fetch("SELECT detail->>'decision' AS d FROM audit_log WHERE community_id = $1 "
                                     "AND action = 'paper.resolve' ORDER BY seq", m.community_id)
    assert [r["d"] for r in decisions] == ["entry2", "void"]


async def test_a_counted_sheet_is_announced_with_its_ballot_ids(client, db_pool, staff_headers, imported_community):
    """Live views read a counted sheet's submissions by id, as they read electronic votes."""
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, c2 = await clerks(staff_headers, m.community_id)
    events = submission_events(client, m)
    votes = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"}]
    first = await (await enter(client, m, c1, voter_id=m.voter_ids[0], votes=votes)).json()
    assert first["status"] == "pending" and events == []          # not counted: nothing to announce
    second = await (await enter(client, m, c2, voter_id=m.voter_ids[0], votes=votes)).json()
    assert second["status"] == "matched"
    assert len(events) == 1
    assert events[0]["ballot_ids"] == [r["ballot_id"] for r in second["receipts"]]
    assert events[0]["matters"] == [r["matter_id"] for r in second["receipts"]] and events[0]["count"] == 2
    # a supervisor's decision that makes a mismatched sheet count is announced the same way
    await enter(client, m, c1, voter_id=m.voter_ids[1], votes=[{"matter_id": "M1", "choice": "yes"}])
    await enter(client, m, c2, voter_id=m.voter_ids[1], votes=[{"matter_id": "M1", "choice": "no"}])
    assert len(events) == 1
    sheet = (await (await client.get(f"{m.base}/paper?status=mismatch", headers=c1)).json())["sheets"][0]
    resp = await client.post(f"{m.base}/paper/{sheet['paper_id']}/resolve",
                             json={"decision": "entry1", "note": "核对原件"}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    resolved = await resp.json()
    assert len(events) == 2 and events[1]["ballot_ids"] == [r["ballot_id"] for r in resolved["receipts"]]
    async with db_pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM submission WHERE community_id = $1 AND meeting_id = $2 "
                                     "AND channel = 'paper' AND ballot_id = any($3::uuid[])", m.community_id,
                                     m.meeting_id, events[0]["ballot_ids"] + events[1]["ballot_ids"])
    assert stored == 3


async def test_overmarked_paper_election_is_an_invalid_ballot(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, c2 = await clerks(staff_headers, m.community_id)
    six = {f"C{i}": "yes" for i in range(1, 7)}          # 6 ticks, 5 seats
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    resp = await cast(client, token, [{"matter_id": "E1", "marks": six}])
    assert resp.status == 422                             # the electronic path prevents it
    await double_entry(client, m, [c1, c2], m.voter_ids[0], [{"matter_id": "E1", "marks": six},
                                                             {"matter_id": "M1", "choice": "invalid"}])
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    e1 = matter(result, "E1")
    # over-marked: invalid, which under the default rule takes part and supports nobody
    assert e1["participating"]["persons"] == 1 and e1["invalid"]["persons"] == 1
    assert all(c["yes"]["persons"] == 0 for c in e1["candidates"])
    m1 = matter(result, "M1")                     # "invalid" is kept and counted as the rule says
    assert m1["participating"]["persons"] == 1 and m1["invalid"]["persons"] == 1 and m1["abstain"]["persons"] == 0


@pytest.mark.parametrize("policy,allow_revision,counted_channel", [
    ("electronic_prevails", False, "electronic"),
    ("electronic_prevails", True, "electronic"),
    ("first_received", False, "electronic"),     # the earlier one
    ("first_received", True, "paper"),           # the later one
])
async def test_paper_ballot_of_an_owner_who_voted_electronically(client, db_pool, staff_headers, imported_community,
                                                                 policy, allow_revision, counted_channel):
    rules = {"duplicate_policy": policy, "allow_revision": allow_revision}
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY,
                           rules=rules)
    voter = m.voter_ids[3]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    c1, c2 = await clerks(staff_headers, m.community_id)
    await double_entry(client, m, [c1, c2], voter, [{"matter_id": "M1", "choice": "no"}])
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    assert chosen[(voter, "M1")].channel == counted_channel
    m1 = matter(result, "M1")
    assert m1["participating"]["persons"] == 1                         # counted once, whichever way
    expected = "yes" if counted_channel == "electronic" else "no"
    assert m1[expected]["persons"] == 1 and m1["no" if expected == "yes" else "yes"]["persons"] == 0


async def test_second_paper_ballot_refused_without_revision(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY)
    c1, c2 = await clerks(staff_headers, m.community_id)
    await double_entry(client, m, [c1, c2], m.voter_ids[0], [{"matter_id": "M1", "choice": "yes"}])
    resp = await enter(client, m, c1, voter_id=m.voter_ids[0], votes=[{"matter_id": "M1", "choice": "no"}],
                       expect=409)
    assert (await resp.json())["error"]["code"] == "paper_already_counted"


async def test_bad_paper_input_and_access(client, db_pool, staff_headers, imported_community, make_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    c1, _ = await clerks(staff_headers, m.community_id)
    resp = await enter(client, m, c1, voter_id=m.voter_ids[0], votes=[{"matter_id": "X9", "choice": "yes"}],
                       expect=422)
    assert (await resp.json())["error"]["code"] == "unknown_matter"
    resp = await enter(client, m, c1, code="NOT-A-CODE", votes=[{"matter_id": "M1", "choice": "yes"}], expect=404)
    assert (await resp.json())["error"]["code"] == "code_invalid"
    resp = await enter(client, m, c1, voter_id=m.voter_ids[0], votes=[{"matter_id": "M1", "choice": "yes"}],
                       paper_date="3/1", expect=422)
    auditor = await staff_headers("auditor", communities=[m.community_id])
    await enter(client, m, auditor, voter_id=m.voter_ids[0], votes=[{"matter_id": "M1", "choice": "yes"}],
                expect=403)
    other = await staff_headers("prep_group", communities=[await make_community()])
    await enter(client, m, other, voter_id=m.voter_ids[0], votes=[{"matter_id": "M1", "choice": "yes"}], expect=403)
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200
    resp = await enter(client, m, c1, voter_id=m.voter_ids[0], votes=[{"matter_id": "M1", "choice": "yes"}],
                       expect=409)
    assert (await resp.json())["error"]["code"] == "voting_closed"


def _pdf_pages(pdfium, data: bytes) -> list[str]:
    """Each page's text with the line breaks (and spaces) the layout put in taken out."""
    pdf = pdfium.PdfDocument(data)
    return ["".join(pdf[i].get_textpage().get_text_range().split()) for i in range(len(pdf))]


@pytest.mark.parametrize("rule", ["abstain", "not_counted"])
async def test_a_blank_or_unclear_sheet_is_entered_as_invalid_kept_and_counted_under_the_rule(
        client, db_pool, staff_headers, make_community, rule):
    m = await scoped_meeting(db_pool, client, staff_headers, make_community, rules={"invalid_ballot": rule})
    c1, c2 = await clerks(staff_headers, m.community_id)
    # A2 (building 1, 90 m²): M1 left blank, M2 ticked; B1 (building 2, 100 m²): the election left blank,
    # keyed once as no tick ("marks": {}) and once as "invalid" -- the same entry
    await double_entry(client, m, [c1, c2], "A2", [{"matter_id": "M1", "choice": "invalid"},
                                                   {"matter_id": "M2", "choice": "yes"}])
    first = await (await enter(client, m, c1, voter_id="B1", votes=[{"matter_id": "E2", "marks": {}}])).json()
    second = await (await enter(client, m, c2, voter_id="B1",
                                votes=[{"matter_id": "E2", "choice": "invalid"}])).json()
    assert first["status"] == "pending" and second["status"] == "matched" and len(second["receipts"]) == 1

    # kept: the entries hold "invalid", and each invalid matter is a paper submission of the single choice
    listing = await (await client.get(f"{m.base}/paper?status=matched", headers=c1)).json()
    entries = {s["voter_id"]: [e["votes"] for e in s["entries"]] for s in listing["sheets"]}
    assert entries["A2"] == [{"M1": "invalid", "M2": [["", "yes"]]}] * 2
    assert entries["B1"] == [{"E2": "invalid"}] * 2
    async with db_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT s.voter_id, s.matter_id, s.channel, c.candidate_id, c.choice
                 FROM submission s JOIN submission_choice c USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2 ORDER BY s.voter_id, s.matter_id""",
            m.community_id, m.meeting_id)
    assert [tuple(r) for r in rows] == [("A2", "M1", "paper", "", "invalid"), ("A2", "M2", "paper", "", "yes"),
                                        ("B1", "E2", "paper", "", "invalid")]

    # counted under the meeting's rule: in the invalid figure either way, participating only under abstain
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    m1, e2 = matter(result, "M1"), matter(result, "E2")
    assert m1["invalid"] == {"area": "90.00", "persons": 1} and e2["invalid"] == {"area": "100.00", "persons": 1}
    assert all(m1[choice]["persons"] == 0 for choice in ("yes", "no", "abstain"))
    assert all(c["yes"]["persons"] == 0 for c in e2["candidates"])
    taking_part = {"area": "90.00", "persons": 1} if rule == "abstain" else {"area": "0.00", "persons": 0}
    assert m1["participating"] == taking_part
    assert e2["participating"]["persons"] == (1 if rule == "abstain" else 0)
    assert matter(result, "M2")["participating"] == {"area": "90.00", "persons": 1}

    # double entry is unchanged: "invalid" against a tick is a mismatch, held and not counted
    await enter(client, m, c1, voter_id="A3", votes=[{"matter_id": "M1", "choice": "invalid"}])
    held = await (await enter(client, m, c2, voter_id="A3", votes=[{"matter_id": "M1", "choice": "yes"}])).json()
    assert held["status"] == "mismatch" and held["differences"] == ["M1"] and held["receipts"] == []


async def test_a_paper_sheet_is_entered_only_for_matters_in_its_owners_scope(client, db_pool, staff_headers,
                                                                             make_community):
    m = await scoped_meeting(db_pool, client, staff_headers, make_community)
    c1, _ = await clerks(staff_headers, m.community_id)
    for votes in ([{"matter_id": "M2", "choice": "yes"}], [{"matter_id": "M2", "choice": "invalid"}],
                  [{"matter_id": "M1", "choice": "no"}, {"matter_id": "E2", "marks": {"K1": "yes"}}]):
        resp = await enter(client, m, c1, voter_id="C1", votes=votes, expect=422)
        error = (await resp.json())["error"]
        assert error["code"] == "matter_out_of_scope" and "楼栋的业主表决" in error["message"], votes
    async with db_pool.acquire() as conn:
        sheets = await conn.fetchval("SELECT count(*) FROM paper_ballot WHERE community_id = $1 AND meeting_id = $2",
                                     m.community_id, m.meeting_id)
    assert sheets == 0
    assert (await enter(client, m, c1, voter_id="C1", votes=[{"matter_id": "M1", "choice": "no"}])).status == 201


@pytest.mark.parametrize("rules", [{}, {"duplicate_policy": "first_received", "allow_revision": True,
                                        "invalid_ballot": "not_counted"}])
async def test_printed_ballots_state_the_rules_and_list_only_the_owners_matters(client, db_pool, staff_headers,
                                                                                make_community, rules):
    pdfium = pytest.importorskip("pypdfium2")
    m = await scoped_meeting(db_pool, client, staff_headers, make_community, rules=rules)
    resp = await client.post(f"{m.base}/paper/ballots", json={"voter_ids": ["B1", "A2"]}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    pages = _pdf_pages(pdfium, await resp.read())
    assert len(pages) == 2                            # one sheet each, building 1 first
    sheets = {"A2": pages[0], "B1": pages[1]}
    assert "业主编号：A2" in sheets["A2"] and "业主编号：B1" in sheets["B1"]
    statements = rule_statements(m.document["rules"])
    assert [s["key"] for s in statements] == ["duplicate_policy", "allow_revision", "invalid_ballot"]
    for text in sheets.values():
        assert "本次表决的规则" in text
        for statement in statements:
            assert f"{statement['title']}：{statement['text']}" in text, statement
    if rules:
        assert "以后收到的一张为准" in sheets["A2"] and "投票截止前可以改票" in sheets["A2"]
        assert "不计入：视为没有参加该议题的表决" in sheets["A2"]
    else:
        assert "以手机投票为准" in sheets["A2"] and "不能改票" in sheets["A2"]
        assert "视为弃权：计入参与表决的人数和面积" in sheets["A2"]
    # a scoped matter only on its owners' sheets, with its scope printed
    assert "筹集1号楼电梯维修资金" in sheets["A2"] and "本议题仅由1楼栋的业主表决" in sheets["A2"]
    assert "选举2号楼楼长" not in sheets["A2"]
    assert "选举2号楼楼长" in sheets["B1"] and "筹集1号楼电梯维修资金" not in sheets["B1"]
