"""Elections through the API: nominations, qualification, candidates, formation, runoffs,
the committee's follow-up steps, promotion of alternates, deadlines and the public page."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.helpers_elections import (
    close,
    community_with_areas,
    draft_meeting,
    election_matter,
    notice_and_open,
    paper_ballot,
    spread,
    vote_electronically,
)
from tests.helpers_meetings import ballot_token, bearer, vet_inline_candidates_for_tests

TEN = ["100"] * 10


async def vetted_notice_and_open(db_pool, client, headers, cid: str, meeting_id: str) -> None:
    """The candidates C1..C7 typed into these committee elections get qualified nominations of owners
    O01..O07 first (TEST ONLY shortcut, tests/helpers_meetings.py), else the notice is refused."""
    await vet_inline_candidates_for_tests(db_pool, cid, meeting_id)
    await notice_and_open(db_pool, client, headers, cid, meeting_id)


def admin(cid: str) -> str:
    return f"/api/admin/communities/{cid}"


async def _committee(client, headers, cid):
    resp = await client.get(f"{admin(cid)}/committees", headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["committees"]


async def test_nomination_qualification_and_only_qualified_candidates(client, db_pool, staff_headers,
                                                                      make_community):
    cid, owners = await community_with_areas(db_pool, make_community, TEN)
    headers = await staff_headers("prep_group", communities=[cid])
    # an owner with a ballot token of a meeting of the community nominates themself
    # (its election is free-form, body 'other': no nomination needed; O01 is not nominated yet)
    await draft_meeting(client, headers, cid, [election_matter(body="other")], meeting_id="first")
    await notice_and_open(db_pool, client, headers, cid, "first")
    token = await ballot_token(db_pool, client, cid, "first", owners[0])
    resp = await client.post("/api/ballot/nominations", headers=bearer(token),
                             json={"body": "committee", "party_member": True, "statement": "热心公益",
                                   "name": "冒名"})
    assert resp.status == 201, await resp.text()
    own = await resp.json()
    assert own["source"] == "self" and own["owner_id"] == "O01" and own["status"] == "pending"
    assert own["name"] == "王芳1" and own["unit_label"] == "1-001"  # from the register, not the request
    again = await client.post("/api/ballot/nominations", headers=bearer(token), json={"body": "committee"})
    assert again.status == 409 and (await again.json())["error"]["code"] == "already_nominated"
    # a NUL character (found by schemathesis) is refused, not a server error: at the edge, for any body
    resp = await client.post("/api/ballot/nominations", headers=bearer(token),
                             json={"body": "supervisory", "statement": "a\x00b"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_characters"
    # the prep group nominates two more; an unknown owner is refused
    ids = [own["nomination_id"]]
    for owner in ("O02", "O03"):
        resp = await client.post(f"{admin(cid)}/nominations", headers=headers,
                                 json={"body": "committee", "owner_id": owner, "statement": "愿意服务"})
        assert resp.status == 201, await resp.text()
        ids.append((await resp.json())["nomination_id"])
    resp = await client.post(f"{admin(cid)}/nominations", headers=headers,
                             json={"body": "committee", "owner_id": "NOBODY"})
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "owner_not_found"
    # qualification: refusing needs a reason
    resp = await client.post(f"{admin(cid)}/nominations/{ids[2]}/refuse", headers=headers, json={"reason": " "})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "reason_required"
    resp = await client.post(f"{admin(cid)}/nominations/{ids[2]}/refuse", headers=headers,
                             json={"reason": "拖欠物业费，不符合候选人条件"})
    assert resp.status == 200 and (await resp.json())["status"] == "refused"
    for nid in ids[:2]:
        resp = await client.post(f"{admin(cid)}/nominations/{nid}/qualify", headers=headers)
        assert resp.status == 200 and (await resp.json())["status"] == "qualified"
    resp = await client.post(f"{admin(cid)}/nominations/{ids[0]}/qualify", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "already_decided"
    # the owner sees the decision and the reason
    mine = await (await client.get("/api/ballot/nominations", headers=bearer(token))).json()
    assert [n["status"] for n in mine["nominations"]] == ["qualified"]
    # attach: unqualified refused, after the notice refused, wrong body refused
    await draft_meeting(client, headers, cid, [election_matter(cands=[]), election_matter(
        body="supervisory", seats=3, cands=[], matter_id="S1")], meeting_id="second")
    base = f"{admin(cid)}/meetings/second/matters"
    resp = await client.post(f"{base}/E1/nominees", headers=headers, json={"nomination_ids": [ids[2]]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "nomination_not_qualified"
    resp = await client.post(f"{base}/S1/nominees", headers=headers, json={"nomination_ids": [ids[0]]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "wrong_body"
    resp = await client.post(f"{base}/E1/nominees", headers=headers, json={"nomination_ids": ids[:2]})
    assert resp.status == 201, await resp.text()
    matter = await resp.json()
    assert [(c["candidate_id"], c["name"], c["party_member"]) for c in matter["candidates"]] == \
        [(f"N{ids[0]}", "王芳1", True), (f"N{ids[1]}", "李强2", False)]
    resp = await client.post(f"{base}/E1/nominees", headers=headers, json={"nomination_ids": [ids[0]]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "duplicate_candidate"
    check = await (await client.get(f"{admin(cid)}/meetings/first/candidate-check", headers=headers)).json()
    assert check["all_vetted"]                                       # body 'other' is free-form
    await draft_meeting(client, headers, cid, [election_matter()], meeting_id="third")
    check = await (await client.get(f"{admin(cid)}/meetings/third/candidate-check", headers=headers)).json()
    assert not check["all_vetted"] and len(check["unvetted"]) == 7  # added directly, not from nominations
    resp = await client.post(f"{admin(cid)}/meetings/third/notice", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "candidates_not_qualified"
    check = await (await client.get(f"{admin(cid)}/meetings/second/candidate-check", headers=headers)).json()
    assert check["all_vetted"]
    resp = await client.post(f"{admin(cid)}/meetings/first/matters/E1/nominees", headers=headers,
                             json={"nomination_ids": [ids[0]]})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_not_draft"
    # owners read candidate profiles of their meeting
    profiles = await (await client.get("/api/ballot/candidates", headers=bearer(token))).json()
    assert profiles["elections"][0]["candidates"][0] == {"candidate_id": "C1", "name": "候选人1",
                                                        "unit_label": "1-001", "party_member": True,
                                                        "statement": "愿为业主服务"}
    # another community's staff may not decide here
    other = await staff_headers("prep_group", communities=[await make_community()])
    resp = await client.post(f"{admin(cid)}/nominations/{ids[1]}/qualify", headers=other)
    assert resp.status == 403


async def test_tie_at_last_seat_runoff_formation_and_after_the_vote(client, db_pool, staff_headers,
                                                                    make_community):
    cid, owners = await community_with_areas(db_pool, make_community, TEN,
                                             prep_group_formed_on=date.today() - timedelta(days=50))
    headers = await staff_headers("prep_group", communities=[cid])
    await draft_meeting(client, headers, cid, [election_matter(seats=5)], meeting_id="first")
    await vetted_notice_and_open(db_pool, client, headers, cid, "first")
    # C1..C4 distinct; C5 and C6 exactly tied for seat 5; C7 fails
    marks = spread({"C1": 10, "C2": 9, "C3": 8, "C4": 7, "C5": 6, "C6": 6, "C7": 2}, owners, 5)
    await vote_electronically(client, db_pool, cid, "first", marks)
    live = await (await client.get(f"{admin(cid)}/meetings/first/elections", headers=headers)).json()
    assert not live["final"] and live["elections"][0]["formation"]["runoff"]["candidates"] == ["C5", "C6"]
    await close(client, headers, cid, "first")
    outcome = (await (await client.get(f"{admin(cid)}/meetings/first/elections", headers=headers)).json())
    election = outcome["elections"][0]
    assert election["result"]["elected"] == ["C1", "C2", "C3", "C4"]
    assert election["result"]["runoff_needed"] == ["C5", "C6"]
    # the close hook formed the (unformed) committee record with the reason
    [committee] = await _committee(client, headers, cid)
    assert not committee["formed"]
    assert committee["reason"].startswith("第 5 席出现票数完全相同（候选人 C5、C6），需另行选举")
    assert [m["candidate_id"] for m in committee["members"]] == ["C1", "C2", "C3", "C4"]
    assert committee["alternates"] == []
    # follow-up steps are refused until it is formed
    cbase = f"{admin(cid)}/committees/{committee['committee_id']}"
    resp = await client.post(f"{cbase}/first-meeting", headers=headers, json={"held_on": "2026-01-01", "chair": 1})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_formed"
    # runoff: a new draft meeting with the tied candidates ranked over place 5 (a seat) and 6 (an alternate)
    opens = datetime.now(UTC) + timedelta(days=15, hours=1)
    resp = await client.post(f"{admin(cid)}/meetings/first/matters/E1/runoff", headers=headers,
                             json={"opens_at": opens.isoformat(), "closes_at": (opens + timedelta(days=3)).isoformat()})
    assert resp.status == 201, await resp.text()
    runoff = await resp.json()
    assert runoff["meeting_id"] == "first-R1" and runoff["state"] == "draft"
    [matter] = runoff["matters"]
    assert (matter["seats"], matter["alternates"]) == (2, 0)
    assert runoff["runoff"]["seat_places"] == 1 and runoff["runoff"]["alternate_places"] == 1
    assert [c["candidate_id"] for c in matter["candidates"]] == ["C5", "C6"]
    again = await client.post(f"{admin(cid)}/meetings/first/matters/E1/runoff", headers=headers, json={})
    assert again.status == 409 and (await again.json())["error"]["code"] == "runoff_exists"
    await notice_and_open(db_pool, client, headers, cid, "first-R1")  # carried-over candidates: vetted
    # C6: 8 of 10; C5: 6 of 10 — both pass, C6 ranks first
    marks = {o: (["C6", "C5"] if i < 4 else ["C6"] if i < 8 else ["C5"]) for i, o in enumerate(owners)}
    await vote_electronically(client, db_pool, cid, "first-R1", marks)
    await close(client, headers, cid, "first-R1")
    [committee] = await _committee(client, headers, cid)
    # C6 takes seat 5, C5 the first alternate place; C7 failed in the first round
    assert committee["formed"] and committee["reason"] == ""
    assert [m["candidate_id"] for m in committee["members"]] == ["C1", "C2", "C3", "C4", "C6"]
    assert [m["candidate_id"] for m in committee["alternates"]] == ["C5"]
    assert committee["party_share"]["party_members"] == 3 and committee["party_share"]["percent"] == "60.0%"
    assert [e["kind"] for e in committee["events"]] == ["election", "runoff_result"]
    # first meeting: the chair must be a member
    members = {m["candidate_id"]: m["member_no"] for m in committee["members"]}
    held = committee["elected_on"]
    resp = await client.post(f"{cbase}/first-meeting", headers=headers,
                             json={"held_on": held, "chair": 99, "vice_chairs": []})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "not_a_member"
    resp = await client.post(f"{cbase}/first-meeting", headers=headers,
                             json={"held_on": held, "chair": members["C1"], "vice_chairs": [members["C2"]]})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["chair"] == "候选人1" and doc["vice_chairs"] == ["候选人2"]
    # seal before filing refused; filing; seal; term validated 3–5 years
    resp = await client.post(f"{cbase}/seal", headers=headers, json={"seal_status": "made"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "filing_missing"
    resp = await client.post(f"{cbase}/filing", headers=headers, json={"filing_date": held, "filing_ref": "鲤住建备〔2026〕12号"})
    assert resp.status == 200, await resp.text()
    assert (await client.post(f"{cbase}/seal", headers=headers, json={"seal_status": "made"})).status == 200
    start = date.fromisoformat(held)
    resp = await client.post(f"{cbase}/term", headers=headers, json={
        "term_start": start.isoformat(), "term_end": start.replace(year=start.year + 6).isoformat()})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "bad_term"
    resp = await client.post(f"{cbase}/term", headers=headers, json={
        "term_start": start.isoformat(), "term_end": start.replace(year=start.year + 5).isoformat()})
    assert resp.status == 200
    # deadlines: first meeting and filing done, first assembly done (opened 50 days after the group formed)
    dl = await (await client.get(f"{admin(cid)}/deadlines", headers=headers)).json()
    states = {d["kind"]: d["state"] for d in dl["communities"][0]["deadlines"]}
    assert states == {"first_assembly": "done", "first_meeting": "done", "filing": "done", "term_end": "on_time"}
    # public page: names of public officers, no owner ids
    public = await (await client.get(f"/api/public/communities/{cid}/committee")).json()
    assert public["committee"]["chair"] == "候选人1"
    assert "owner_id" not in public["committee"]["members"][0]
    assert public["committee"]["filing"]["reference"] == "鲤住建备〔2026〕12号"
    assert public["supervisory"] is None


async def test_alternate_promoted_in_vote_order_when_a_member_leaves(client, db_pool, staff_headers,
                                                                     make_community):
    cid, owners = await community_with_areas(db_pool, make_community, TEN)
    headers = await staff_headers("district_admin")
    await draft_meeting(client, headers, cid, [election_matter(seats=5)], meeting_id="m")
    await vetted_notice_and_open(db_pool, client, headers, cid, "m")
    marks = spread({"C1": 10, "C2": 10, "C3": 9, "C4": 8, "C5": 7, "C6": 6, "C7": 0}, owners, 5)
    await vote_electronically(client, db_pool, cid, "m", marks)
    await close(client, headers, cid, "m")
    [committee] = await _committee(client, headers, cid)
    assert committee["formed"] and [m["candidate_id"] for m in committee["alternates"]] == ["C6"]
    assert committee["notes"] == ["候补委员应有 2 人，实有 1 人"]
    cbase = f"{admin(cid)}/committees/{committee['committee_id']}"
    c3 = next(m for m in committee["members"] if m["candidate_id"] == "C3")
    resp = await client.post(f"{cbase}/members/{c3['member_no']}/leave", headers=headers,
                             json={"left_on": committee["elected_on"], "reason": "搬离小区"})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert [m["candidate_id"] for m in doc["members"]] == ["C1", "C2", "C4", "C5", "C6"]
    promoted = next(m for m in doc["members"] if m["candidate_id"] == "C6")
    assert promoted["promoted_on"] == committee["elected_on"] and doc["alternates"] == []
    assert doc["former"][0]["candidate_id"] == "C3" and doc["former"][0]["leave_reason"] == "搬离小区"
    assert "由候补委员 候选人6 递补为委员" in doc["events"][-1]["summary"]
    # a second departure with no alternate left: recorded, seat vacant
    c4 = next(m for m in doc["members"] if m["candidate_id"] == "C4")
    doc = await (await client.post(f"{cbase}/members/{c4['member_no']}/leave", headers=headers,
                                   json={"left_on": committee["elected_on"], "reason": "辞职"})).json()
    assert doc["vacant_seats"] == 1 and "已无候补委员可递补" in doc["events"][-1]["summary"]
    public = await (await client.get(f"/api/public/communities/{cid}/committee")).json()
    assert "递补" in public["committee"]["events"][-2]["summary"]


async def test_too_few_passing_persons_not_area_and_a_spoiled_ballot(client, db_pool, staff_headers,
                                                                     make_community):
    # O01 holds 500 m²; the others 100 m² each: 1400.00 m², 10 persons
    cid, owners = await community_with_areas(db_pool, make_community, ["500"] + ["100"] * 9)
    headers = await staff_headers("district_admin")
    await draft_meeting(client, headers, cid, [election_matter(seats=5)], meeting_id="m")
    await vetted_notice_and_open(db_pool, client, headers, cid, "m")
    everyone = {o: ["C1", "C2", "C3"] for o in owners[:9]}
    for o in owners[1:7]:            # C4: 6 of 10 persons, but 600 of 1400 m² without O01
        everyone[o].append("C4")
    await vote_electronically(client, db_pool, cid, "m", everyone)
    # O10 sends a paper ballot with six yes marks for a five-seat election: spoiled, but took part
    await paper_ballot(db_pool, cid, "m", owners[9], ["C1", "C2", "C3", "C4", "C5", "C6"])
    await close(client, headers, cid, "m")
    election = (await (await client.get(f"{admin(cid)}/meetings/m/elections", headers=headers)).json())["elections"][0]
    result = election["result"]
    assert result["participating"] == {"area": "1400.00", "persons": 10}   # the spoiled ballot took part
    yes = {c["id"]: c["yes"] for c in result["candidates"]}
    assert yes["C1"] == {"area": "1300.00", "persons": 9}                  # ... and supported nobody
    c4 = next(c for c in result["candidates"] if c["id"] == "C4")
    assert c4["yes"] == {"area": "600.00", "persons": 6} and not c4["passed"]
    assert result["elected"] == ["C1", "C2", "C3"]
    assert election["formation"]["reason"] == "当选人数不足 5 人（当选 3 人），需另行选举补足 2 席"
    [committee] = await _committee(client, headers, cid)
    assert not committee["formed"] and committee["reason"] == election["formation"]["reason"]
    # runoff for the empty seats: no candidates yet; qualified nominees are attached
    resp = await client.post(f"{admin(cid)}/meetings/m/matters/E1/runoff", headers=headers)
    assert resp.status == 201, await resp.text()
    runoff = await resp.json()
    assert runoff["runoff"]["kind"] == "shortage"
    assert (runoff["runoff"]["seat_places"], runoff["runoff"]["alternate_places"]) == (2, 2)
    assert (runoff["matters"][0]["seats"], runoff["matters"][0]["alternates"]) == (4, 0)
    assert runoff["matters"][0]["candidates"] == []
    nid = (await (await client.post(f"{admin(cid)}/nominations", headers=headers,
                                    json={"body": "committee", "owner_id": "O08"})).json())["nomination_id"]
    await client.post(f"{admin(cid)}/nominations/{nid}/qualify", headers=headers)
    resp = await client.post(f"{admin(cid)}/meetings/m-R1/matters/E1/nominees", headers=headers,
                             json={"nomination_ids": [nid]})
    assert resp.status == 201 and (await resp.json())["candidates"][0]["candidate_id"] == f"N{nid}"


async def test_tie_at_last_alternate_place_forms_with_note_and_runoff_for_alternates(
        client, db_pool, staff_headers, make_community):
    cid, owners = await community_with_areas(db_pool, make_community, TEN)
    headers = await staff_headers("district_admin")
    await draft_meeting(client, headers, cid, [election_matter(seats=5, alternates=1)], meeting_id="m")
    await vetted_notice_and_open(db_pool, client, headers, cid, "m")
    marks = spread({"C1": 8, "C2": 7, "C3": 7, "C4": 7, "C5": 7, "C6": 6, "C7": 6}, owners, 5)
    await vote_electronically(client, db_pool, cid, "m", marks)
    await close(client, headers, cid, "m")
    [committee] = await _committee(client, headers, cid)
    assert committee["formed"] and len(committee["members"]) == 5 and committee["alternates"] == []
    assert committee["notes"] == ["候补第 1 位出现票数完全相同（候选人 C6、C7），需另行选举候补委员"]
    resp = await client.post(f"{admin(cid)}/meetings/m/matters/E1/runoff", headers=headers,
                             json={"meeting_id": "alt-runoff"})
    assert resp.status == 201, await resp.text()
    runoff = await resp.json()
    assert runoff["meeting_id"] == "alt-runoff" and runoff["runoff"]["fills"] == "alternates"
    assert (runoff["matters"][0]["seats"], runoff["matters"][0]["alternates"]) == (1, 0)
    assert [c["candidate_id"] for c in runoff["matters"][0]["candidates"]] == ["C6", "C7"]


async def test_no_quorum_and_no_runoff_when_seats_are_filled(client, db_pool, staff_headers, make_community):
    cid, owners = await community_with_areas(db_pool, make_community, TEN)
    headers = await staff_headers("district_admin")
    await draft_meeting(client, headers, cid, [election_matter(seats=5)], meeting_id="m")
    await vetted_notice_and_open(db_pool, client, headers, cid, "m")
    await vote_electronically(client, db_pool, cid, "m", {o: ["C1", "C2", "C3", "C4", "C5"] for o in owners[:6]})
    await close(client, headers, cid, "m")
    [committee] = await _committee(client, headers, cid)
    assert not committee["formed"] and committee["reason"].startswith("未达参与表决法定比例")
    resp = await client.post(f"{admin(cid)}/meetings/m/matters/E1/runoff", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "no_quorum_no_runoff"
    # forming again is idempotent
    resp = await client.post(f"{admin(cid)}/committees", headers=headers, json={"meeting_id": "m", "matter_id": "E1"})
    assert resp.status == 201 and (await resp.json())["committee_id"] == committee["committee_id"]


async def test_deadline_states_for_a_street(client, db_pool, staff_headers, make_community):
    street = "street-deadlines"
    formed_on = date.today() - timedelta(days=55)
    cid, owners = await community_with_areas(db_pool, make_community, TEN, prep_group_formed_on=formed_on,
                                             street_id=street)
    idle = await make_community(street_id=street, prep_group_formed_on=date.today() - timedelta(days=61))
    headers = await staff_headers("street_admin", street_id=street)
    await draft_meeting(client, headers, cid, [election_matter(seats=5)], meeting_id="m")
    await vetted_notice_and_open(db_pool, client, headers, cid, "m")
    await vote_electronically(client, db_pool, cid, "m",
                              spread({"C1": 10, "C2": 9, "C3": 8, "C4": 7, "C5": 7, "C6": 6, "C7": 3}, owners, 5))
    await close(client, headers, cid, "m")
    [committee] = await _committee(client, headers, cid)
    assert committee["formed"], committee["reason"]
    elected = date.fromisoformat(committee["elected_on"])

    async def states(on: date) -> dict:
        doc = await (await client.get(f"/api/admin/streets/{street}/deadlines?on={on.isoformat()}",
                                      headers=headers)).json()
        return {(c["community_id"], d["kind"]): d["state"] for c in doc["communities"] for d in c["deadlines"]}

    s = await states(elected)
    assert s[(cid, "first_meeting")] == "on_time" and s[(cid, "filing")] == "on_time"
    assert s[(cid, "first_assembly")] == "done"
    assert s[(idle, "first_assembly")] == "overdue"          # 61 days, no meeting opened
    s = await states(elected + timedelta(days=2))            # 1-day window for the 3-day deadline
    assert s[(cid, "first_meeting")] == "due_soon"
    s = await states(elected + timedelta(days=3))
    assert s[(cid, "first_meeting")] == "due_soon"
    s = await states(elected + timedelta(days=4))
    assert s[(cid, "first_meeting")] == "overdue"
    s = await states(elected + timedelta(days=23))
    assert s[(cid, "filing")] == "due_soon"
    s = await states(elected + timedelta(days=31))
    assert s[(cid, "filing")] == "overdue"
    # another street's office may not look
    await make_community(street_id="street-other")
    other = await staff_headers("street_admin", street_id="street-other")
    resp = await client.get(f"/api/admin/streets/{street}/deadlines", headers=other)
    assert resp.status == 403


async def test_path_ids_that_are_not_numbers_are_not_found(client, staff_headers, make_community):
    """A nomination, committee or member number in the URL that cannot be one is the same 404 as an
    unknown one, with that resource's code, before the body is read."""
    cid = await make_community()
    headers = await staff_headers("prep_group", communities=[cid])
    cases = [
        ("post", "nominations/{}/qualify", None, "nomination_not_found"),
        ("post", "nominations/{}/refuse", None, "nomination_not_found"),
        ("get", "committees/{}", None, "committee_not_found"),
        ("post", "committees/{}/filing", None, "committee_not_found"),
        ("post", "committees/{}/members/1/leave", None, "committee_not_found"),
        ("post", "committees/1/members/{}/leave", None, "member_not_found"),
    ]
    for method, path, body, code in cases:
        for bad in ("abc", "0", "-1", "+1", "1.0", "%20%31", "\u0663", "99999999999"):
            resp = await getattr(client, method)(f"{admin(cid)}/{path.format(bad)}", headers=headers, json=body)
            assert resp.status == 404, (path, bad, await resp.text())
            assert (await resp.json())["error"]["code"] == code, (path, bad)
    # a well-formed id that does not exist gives the same answer
    resp = await client.get(f"{admin(cid)}/committees/7", headers=headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "committee_not_found"
    resp = await client.post(f"{admin(cid)}/nominations/7/qualify", headers=headers)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "nomination_not_found"
