"""Owner reads: the meeting, my status, my receipts (ballot token only)."""
from __future__ import annotations

import pytest

from tests.helpers_meetings import ballot_token, bearer, cast, open_meeting


async def test_owner_sees_meeting_matters_and_candidates(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, show_live_results=True)
    voter = m.voter_ids[0]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    resp = await client.get("/api/ballot/meeting", headers=bearer(token))
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["meeting_id"] == m.meeting_id and doc["state"] == "open" and doc["state_name"] == "投票中"
    assert doc["opens_at"] and doc["closes_at"]
    assert doc["allow_revision"] is False and doc["show_live_results"] is True
    assert doc["voter"]["voter_id"] == voter and doc["voter"]["units"]
    m1, m2, e1 = doc["matters"]
    assert (m1["matter_id"], m1["category"], m1["threshold_name"]) == ("M1", 2, "过半数")
    assert (m2["matter_id"], m2["category"], m2["threshold_name"]) == ("M2", 6, "四分之三以上")
    assert m2["category_name"] == "筹集建筑物及其附属设施的维修资金"
    assert e1["seats"] == 5 and e1["alternates"] == 2 and len(e1["candidates"]) == 7
    first = e1["candidates"][0]
    assert {"candidate_id", "name", "unit_label", "party_member", "statement"} <= first.keys()
    # staff-only data (totals per voter, names of other owners, the staff's rules document) is not there
    assert "created_by" not in doc and "count_parking_area" not in doc["rules"] and "rank_by" not in doc["rules"]
    # the rules that decide which ballot counts and what a blank one means, stated before voting
    rules = doc["rules"]
    assert (rules["duplicate_policy"], rules["allow_revision"], rules["invalid_ballot"]) == (
        "electronic_prevails", False, "abstain")
    assert [(r["key"], r["title"]) for r in rules["statements"]] == [
        ("duplicate_policy", "手机投票与纸质票重复时"), ("allow_revision", "能否改票"), ("invalid_ballot", "空白票、无效票")]
    texts = [r["text"] for r in rules["statements"]]
    assert "以手机投票为准，纸质票不计入" in texts[0]
    assert texts[1].startswith("不能改票")
    assert "视为弃权" in texts[2] and "手机投票不会产生无效票" in texts[2]
    assert [m["scope"] for m in doc["matters"]] == [None, None, None]


@pytest.mark.parametrize("rules,expected", [
    ({"duplicate_policy": "first_received", "allow_revision": False, "invalid_ballot": "not_counted"},
     ["两种票同等对待，以先收到的一张为准", "不能改票", "不计入：视为没有参加该议题的表决"]),
    ({"duplicate_policy": "first_received", "allow_revision": True},
     ["两种票同等对待，以后收到的一张为准", "投票截止前可以改票", "视为弃权"]),
    ({"duplicate_policy": "electronic_prevails", "allow_revision": True},
     ["以手机投票为准", "但投过手机票的议题，纸质票不计入", "视为弃权"]),
])
async def test_owner_reads_the_meetings_own_rules_in_plain_chinese(client, db_pool, staff_headers, imported_community,
                                                                    rules, expected):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, rules=rules)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    doc = await (await client.get("/api/ballot/meeting", headers=bearer(token))).json()
    assert doc["rules"]["allow_revision"] is rules["allow_revision"] is doc["allow_revision"]
    assert doc["rules"]["invalid_ballot"] == rules.get("invalid_ballot", "abstain")
    statements = " ".join(r["text"] for r in doc["rules"]["statements"])
    for text in expected:
        assert text in statements, text


async def test_status_and_receipts_follow_my_votes(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    other = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[1])
    status = await (await client.get("/api/ballot/status", headers=bearer(token))).json()
    assert [(x["matter_id"], x["voted"], x["can_vote"]) for x in status["matters"]] == [
        ("M1", False, True), ("M2", False, True), ("E1", False, True)]
    assert status["voted_all"] is False
    assert (await (await client.get("/api/ballot/receipts", headers=bearer(token))).json())["receipts"] == []

    cast_resp = await cast(client, token, [{"matter_id": "M1", "choice": "abstain"},
                                           {"matter_id": "E1", "marks": {"C4": "yes"}}])
    cast_body = await cast_resp.json()
    await cast(client, other, [{"matter_id": "M2", "choice": "yes"}])

    status = await (await client.get("/api/ballot/status", headers=bearer(token))).json()
    by_matter = {x["matter_id"]: x for x in status["matters"]}
    assert by_matter["M1"]["voted"] and by_matter["E1"]["voted"] and not by_matter["M2"]["voted"]
    assert by_matter["M1"]["received_at"] == cast_body["received_at"]
    assert by_matter["M1"]["channel"] == "electronic" and by_matter["M1"]["can_vote"] is False
    receipts = (await (await client.get("/api/ballot/receipts", headers=bearer(token))).json())["receipts"]
    mine = {(r["matter_id"], r["ballot_id"], r["receipt"], r["received_at"]) for r in receipts}
    assert mine == {(r["matter_id"], r["ballot_id"], r["receipt"], r["received_at"]) for r in cast_body["receipts"]}


async def test_owner_reads_need_a_ballot_token(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    for path in ("/api/ballot/meeting", "/api/ballot/status", "/api/ballot/receipts"):
        resp = await client.get(path)
        assert resp.status == 401
        # a staff token is not a ballot token
        resp = await client.get(path, headers=m.headers)
        assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_token"
