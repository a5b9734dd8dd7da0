"""Before the vote: the preparatory group's rules, posting, objections and formation; the register's
public posting with owners' corrections and the notice it holds back; the temporary management committee."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.ballot.prep_group import GroupMember, composition_problems
from tests.helpers_meetings import meeting_body
from tests.helpers_register import ONE_RESOLUTION, PHONES, import_lines, register_bytes

LEADER = {"name": "陈主任", "side": "street", "leader": True, "party_member": True, "employment": "civil_servant"}
OWNERS = [{"name": f"业主{i}", "side": "owner", "unit_label": f"1-10{i}"} for i in range(1, 4)]
OTHERS = [{"name": "林书记", "side": "residents_committee", "employment": "public_institution"}]
LAWFUL = [LEADER, *OWNERS, *OTHERS]          # 5 members, 3 owner representatives, a street leader


def admin(cid: str) -> str:
    return f"/api/admin/communities/{cid}"


def public(cid: str) -> str:
    return f"/api/public/communities/{cid}"


def test_each_rule_of_the_composition_is_named():
    def codes(members):
        return [p.code for p in composition_problems([GroupMember(m["name"], m["side"], m.get("leader", False))
                                                      for m in members])]
    assert codes(LAWFUL) == []
    assert codes(LAWFUL[:4]) == ["prep_group_too_small", "prep_group_even"]
    assert codes([LEADER, OWNERS[0], *OTHERS, {"name": "开发商", "side": "developer"},
                  {"name": "王", "side": "other"}]) == ["prep_group_owner_share"]
    assert codes([{**LEADER, "leader": False}, *OWNERS, *OTHERS]) == ["prep_group_leader"]
    assert codes([{**LEADER, "leader": False}, {**OWNERS[0], "leader": True}, *OWNERS[1:], *OTHERS]) == [
        "prep_group_leader_side"]


async def backdate_posting(db_pool, cid: str) -> None:
    """TEST ONLY: the group's 7-day posting ended a minute ago."""
    async with db_pool.acquire() as conn:
        await conn.execute("""UPDATE prep_group SET posted_from = now() - interval '7 days 1 minute',
                                     posted_until = now() - interval '1 minute'
                               WHERE community_id = $1 AND state = 'posted'""", cid)


async def test_a_group_is_drafted_posted_objected_to_and_formed(client, db_pool, staff_headers, make_community):
    pdfium = pytest.importorskip("pypdfium2")
    cid = await make_community()
    prep = await staff_headers("prep_group", communities=[cid])
    street = await staff_headers("street_admin", street_id="test-street")
    resp = await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL[:4]}, headers=prep)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "prep_group_too_small"
    assert body["error"]["fields"]["rules"] == ["prep_group_too_small", "prep_group_even"]
    assert "5 人以上" in body["error"]["message"] and "单数" in body["error"]["message"]
    resp = await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL}, headers=prep)
    assert resp.status == 201, await resp.text()
    assert (await client.get(f"{public(cid)}/prep-group")).status == 404         # a draft is not public
    resp = await client.post(f"{admin(cid)}/prep-group/post", json={"days": 5}, headers=prep)
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "posting_too_short")
    resp = await client.post(f"{admin(cid)}/prep-group/post", json={"days": 7}, headers=prep)
    assert resp.status == 200, await resp.text()
    group = await resp.json()
    assert group["state"] == "posted" and group["members"][0]["side_name"] == "街道办事处"
    # posted: the public sees the list (no employment), may object; the list can't change meanwhile
    listed = await (await client.get(f"{public(cid)}/prep-group")).json()
    assert [m["name"] for m in listed["members"]] == ["陈主任", "业主1", "业主2", "业主3", "林书记"]
    assert "employment" not in listed["members"][0]
    resp = await client.post(f"{public(cid)}/prep-group/objections", json={"text": "业主3 并非本小区业主"})
    assert resp.status == 422
    resp = await client.post(f"{public(cid)}/prep-group/objections",
                             json={"name": "黄女士", "text": "业主3 并非本小区业主"})
    assert resp.status == 201, await resp.text()
    objection_no = (await resp.json())["objection_no"]
    resp = await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL}, headers=prep)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "prep_group_posted")
    # the posting ends with the objection open: not formed yet
    await backdate_posting(db_pool, cid)
    group = await (await client.get(f"{admin(cid)}/prep-group", headers=prep)).json()
    assert group["state"] == "posted" and group["open_objections"] == 1
    # only the street resolves, with a reason
    url = f"{admin(cid)}/prep-group/objections/{objection_no}/resolve"
    assert (await client.post(url, json={"outcome": "dismissed", "reason": "已核实"}, headers=prep)).status == 403
    assert (await client.post(url, json={"outcome": "dismissed"}, headers=street)).status == 422
    resp = await client.post(url, json={"outcome": "dismissed", "reason": "经核实，业主3 持有不动产权证"}, headers=street)
    assert resp.status == 200, await resp.text()
    group = await (await client.get(f"{admin(cid)}/prep-group", headers=prep)).json()
    today = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
    assert group["state"] == "formed" and group["formed_on"] == today.isoformat()
    # the 60-day deadline for the first assembly runs from the formation
    deadlines = await (await client.get(f"{admin(cid)}/deadlines", headers=prep)).json()
    first = next(d for d in deadlines["communities"][0]["deadlines"] if d["kind"] == "first_assembly")
    assert first["due"] == (today + timedelta(days=60)).isoformat()
    # the board's PDF
    resp = await client.get(f"{admin(cid)}/prep-group.pdf", headers=prep)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    pdf = pdfium.PdfDocument(await resp.read())
    text = pdf[0].get_textpage().get_text_range().replace("\r\n", "").replace(" ", "")
    assert "筹备组成员名单公示" in text and "陈主任" in text and "组长" in text and "60日内" in text


async def test_an_upheld_objection_rejects_the_group(client, db_pool, staff_headers, make_community):
    cid = await make_community()
    headers = await staff_headers("district_admin")
    assert (await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL}, headers=headers)).status == 201
    assert (await client.post(f"{admin(cid)}/prep-group/post", json={}, headers=headers)).status == 200
    resp = await client.post(f"{public(cid)}/prep-group/objections", json={"name": "黄女士", "text": "组长不是挂钩领导"})
    number = (await resp.json())["objection_no"]
    resp = await client.post(f"{admin(cid)}/prep-group/objections/{number}/resolve", headers=headers,
                             json={"outcome": "upheld", "reason": "组长应由挂钩社区的街道领导担任，重新组建"})
    assert (await resp.json())["group_state"] == "rejected"
    again = await client.post(f"{admin(cid)}/prep-group/objections/{number}/resolve", headers=headers,
                              json={"outcome": "dismissed", "reason": "x"})
    assert again.status in (404, 409)
    # a new group is drafted
    resp = await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL}, headers=headers)
    assert resp.status == 201 and (await resp.json())["group_no"] == 2


async def test_the_register_posting_shows_owners_their_record_and_holds_the_notice(client, db_pool, staff_headers,
                                                                                   make_community):
    cid, _ = await import_lines(db_pool, make_community)
    headers = await staff_headers("district_admin")
    resp = await client.post(f"{admin(cid)}/register-posting", json={"days": 3}, headers=headers)
    assert resp.status == 422
    resp = await client.post(f"{admin(cid)}/register-posting", json={"days": 7}, headers=headers)
    assert resp.status == 201, await resp.text()
    listed = await (await client.get(f"{public(cid)}/register-posting")).json()
    assert listed["running"] and [b["building"] for b in listed["buildings"]] == ["1", "2"]
    assert listed["buildings"][0]["units"][0] == {"unit_id": "1-101", "kind": "住宅", "area": "80.50",
                                                  "area_source": "不动产登记"}
    assert "张三" not in str(listed) and "李四" not in str(listed)
    # an owner sees their own record after the unit and the last four digits
    lookup = f"{public(cid)}/register-posting/my-record"
    resp = await client.post(lookup, json={"unit_id": "1-101", "last4": "0000"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "identity_mismatch")
    resp = await client.post(lookup, json={"unit_id": "1-101", "last4": PHONES["A"][-4:]})
    mine = await resp.json()
    assert resp.status == 200 and mine["name"] == "张三"
    assert {u["unit_id"]: u["co_owners"] for u in mine["units"]} == {"1-101": ["李*"], "1-102": [], "2-201": ["李*"]}
    # five wrong guesses lock the unit's lookup, even for the right digits
    for _ in range(5):
        resp = await client.post(lookup, json={"unit_id": "2-202", "last4": "9999"})
        assert resp.status == 403
    resp = await client.post(lookup, json={"unit_id": "2-202", "last4": PHONES["C"][-4:]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (429, "lookup_locked")
    # C files a correction; while the posting runs, and while it is open, a notice is refused
    resp = await client.post(f"{public(cid)}/register-posting/corrections",
                             json={"unit_id": "1-102", "last4": PHONES["A"][-4:], "text": "1-102 面积应为 95 平方米"})
    assert resp.status == 201, await resp.text()
    correction = await resp.json()
    body = meeting_body(matters=ONE_RESOLUTION)
    resp = await client.post(f"{admin(cid)}/meetings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    notice = f"{admin(cid)}/meetings/{body['meeting_id']}/notice"
    resp = await client.post(notice, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "register_posting_running")
    async with db_pool.acquire() as conn:      # TEST ONLY: the posting period is over
        await conn.execute("""UPDATE register_posting SET starts_at = now() - interval '8 days',
                                     ends_at = now() - interval '1 minute' WHERE community_id = $1""", cid)
    resp = await client.post(notice, headers=headers)
    body_ = await resp.json()
    assert (resp.status, body_["error"]["code"]) == (409, "register_corrections_open")
    # accepting needs the corrected register imported first; the diff is kept
    resolve = f"{admin(cid)}/register-posting/{correction['posting_no']}/corrections/{correction['correction_no']}/resolve"
    resp = await client.post(resolve, json={"decision": "accept", "version": 2}, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "corrected_version_missing")
    fixed = register_bytes().replace(b"1-102,1,dwelling,90,", b"1-102,1,dwelling,95,")
    resp = await client.post(f"{admin(cid)}/register", data=fixed, headers=headers | {"Content-Type": "text/csv"})
    assert resp.status in (200, 201), await resp.text()
    resp = await client.post(resolve, json={"decision": "accept", "version": 2, "reason": "按不动产证更正"},
                             headers=headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["diff"] == {"added": [], "removed": [], "changed": [
        {"unit_id": "1-102", "changes": {"area": {"from": "90.00", "to": "95.00"}}}]}
    listed = await (await client.get(f"{admin(cid)}/register-posting/corrections", headers=headers)).json()
    assert listed["corrections"][0]["status"] == "accepted" and listed["corrections"][0]["new_version"] == 2
    resp = await client.post(notice, headers=headers)
    assert resp.status == 200, await resp.text()


async def test_the_posting_rule_can_be_turned_off(client, db_pool, staff_headers, make_community):
    cid, _ = await import_lines(db_pool, make_community)
    headers = await staff_headers("district_admin")
    assert (await client.post(f"{admin(cid)}/register-posting", json={}, headers=headers)).status == 201
    body = meeting_body(matters=ONE_RESOLUTION)
    assert (await client.post(f"{admin(cid)}/meetings", json=body, headers=headers)).status == 201
    notice = f"{admin(cid)}/meetings/{body['meeting_id']}/notice"
    assert (await client.post(notice, headers=headers)).status == 409
    prep = await staff_headers("prep_group", communities=[cid])
    assert (await client.post(f"{admin(cid)}/register-posting/rule", json={"required": False},
                              headers=prep)).status == 403
    resp = await client.post(f"{admin(cid)}/register-posting/rule", json={"required": False}, headers=headers)
    assert resp.status == 200
    resp = await client.post(notice, headers=headers)
    assert resp.status == 200, await resp.text()


async def test_a_temporary_committee_acts_until_a_committee_is_elected(client, db_pool, staff_headers,
                                                                       make_community):
    from tests.test_campaigns import elected_community

    cid = await make_community()
    headers = await staff_headers("street_admin", street_id="test-street")
    members = [{"name": "陈主任", "side": "street"}, {"name": "林书记", "side": "residents_committee"},
               {"name": "业主甲", "side": "owner", "unit_label": "3-301"}]
    prep = await staff_headers("prep_group", communities=[cid])
    assert (await client.post(f"{admin(cid)}/temporary-committee", json={"members": members},
                              headers=prep)).status == 403
    resp = await client.post(f"{admin(cid)}/temporary-committee", json={"members": members[:2] + members[:1]},
                             headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "temporary_committee_sides")
    resp = await client.post(f"{admin(cid)}/temporary-committee", json={"members": members}, headers=headers)
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["active"] == 1 and doc["temporary_committees"][0]["reason"] == "no_committee"
    resp = await client.post(f"{admin(cid)}/temporary-committee", json={"members": members}, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "temporary_committee_exists")
    # it convenes a draft meeting in its own name
    body = meeting_body(matters=ONE_RESOLUTION)
    assert (await client.post(f"{admin(cid)}/meetings", json=body, headers=headers)).status == 201
    resp = await client.post(f"{admin(cid)}/temporary-committee/convene", json={"meeting_id": body["meeting_id"]},
                             headers=headers)
    assert resp.status == 200 and (await resp.json())["convener_name"] == "临时物业管理委员会"
    doc = await (await client.get(f"{admin(cid)}/temporary-committee", headers=headers)).json()
    assert [m["meeting_id"] for m in doc["temporary_committees"][0]["meetings"]] == [body["meeting_id"]]
    # in a community whose committee is in office it is refused; once one is elected, an active one ends
    done_cid, district = await elected_community(client, db_pool, staff_headers, make_community)
    resp = await client.post(f"{admin(done_cid)}/temporary-committee", json={"members": members}, headers=district)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "committee_in_office")
    async with db_pool.acquire() as conn:   # a temporary committee created before that election
        await conn.execute("""INSERT INTO temporary_committee (community_id, tc_no, reason, created_on, created_by)
                              VALUES ($1, 1, 'no_committee', current_date - 30, 'test')""", done_cid)
    doc = await (await client.get(f"{admin(done_cid)}/temporary-committee", headers=district)).json()
    assert doc["active"] is None and doc["temporary_committees"][0]["end_reason"] == "业主委员会已选举产生"
