"""The canvass list: units not voted yet, per building, masked, organisers only, every read audited."""
from __future__ import annotations

import json

from tests.helpers_codes import make_meeting
from tests.helpers_live import Voting
from tests.helpers_meetings import end_voting_and_close, open_meeting


async def _units(db_pool, m) -> dict[str, tuple[str, list[str]]]:
    """voter_id -> (first building, counted units) of the frozen electorate."""
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT voter_id, building, units FROM electorate WHERE community_id=$1 AND meeting_id=$2",
                                m.community_id, m.meeting_id)
    return {r["voter_id"]: (r["building"], list(r["units"])) for r in rows}


async def _audits(db_pool, community_id: str) -> list:
    async with db_pool.acquire() as conn:
        return await conn.fetch("SELECT actor, detail FROM audit_log WHERE community_id=$1 AND action='canvass.read' "
                                "ORDER BY seq", community_id)


async def test_the_list_shrinks_as_owners_vote_and_every_read_is_audited(client, db_pool, staff_headers,
                                                                        imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=30)
    url = f"{m.base}/canvass"
    organiser = await staff_headers("prep_group", communities=[m.community_id])
    units = await _units(db_pool, m)
    all_units = sorted(u for _, us in units.values() for u in us)

    resp = await client.get(url, headers=organiser)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    doc = await resp.json()
    listed = [row for b in doc["buildings"] for row in b["not_voted"]]
    assert sorted(row["unit_id"] for row in listed) == all_units
    assert doc["total_not_voted"] == len(all_units) == sum(b["count"] for b in doc["buildings"])
    for b in doc["buildings"]:
        assert b["count"] == len(b["not_voted"]) > 0
    for row in listed:
        assert set(row) >= {"unit_id", "unit_label", "owner_masked", "phone_masked"}
        assert len(row["owner_masked"]) >= 1 and set(row["owner_masked"][1:]) <= {"*"}
        digits = [ch for ch in row["phone_masked"] if ch.isdigit()]
        assert len(digits) <= 3          # never the last four that sign-in asks for

    # votes (electronic on one matter only, and a paper ballot): those subjects' units leave the list
    voting = await Voting(client, db_pool, m).load()
    first, second = voting.voters[0], voting.voters[1]
    await voting.vote(first, [{"matter_id": "M1", "choice": "no"}])
    await voting.paper(second, "M2", (("", "abstain"),))
    doc = await (await client.get(url, headers=organiser)).json()
    left = {row["unit_id"] for b in doc["buildings"] for row in b["not_voted"]}
    assert left == set(all_units) - set(units[first][1]) - set(units[second][1])
    assert doc["total_not_voted"] == len(left)

    # one building
    building = units[voting.voters[2]][0]
    resp = await client.get(url, params={"building": building}, headers=organiser)
    one = await resp.json()
    assert [b["building"] for b in one["buildings"]] == [building]
    assert {r["unit_id"] for r in one["buildings"][0]["not_voted"]} == {
        r["unit_id"] for b in doc["buildings"] if b["building"] == building for r in b["not_voted"]}
    resp = await client.get(url, params={"building": "no-such"}, headers=organiser)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "building_not_found"

    audits = await _audits(db_pool, m.community_id)
    assert len(audits) == 3                      # the 404 wrote nothing
    assert all(a["actor"].startswith("staff:") for a in audits)
    details = [json.loads(a["detail"]) for a in audits]
    assert [(d["meeting_id"], d["building"]) for d in details] == [(m.meeting_id, None), (m.meeting_id, None),
                                                                  (m.meeting_id, building)]
    assert details[0]["units"] == len(all_units) and details[1]["units"] == len(left)


async def test_only_organisers_of_the_community_see_it(client, db_pool, staff_headers, imported_community,
                                                      make_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    url = f"{m.base}/canvass"
    for role in ("prep_group", "committee"):
        assert (await client.get(url, headers=await staff_headers(role, communities=[m.community_id]))).status == 200
    assert (await client.get(url, headers=await staff_headers("street_admin", street_id="test-street"))).status == 200
    auditor = await staff_headers("auditor", communities=[m.community_id])
    resp = await client.get(url, headers=auditor)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "role_forbidden"
    stranger = await staff_headers("prep_group", communities=[await make_community()])
    assert (await client.get(url, headers=stranger)).status == 403
    assert (await client.get(url)).status == 401
    assert len(await _audits(db_pool, m.community_id)) == 3


async def test_no_list_before_the_notice_or_after_the_close(client, db_pool, staff_headers, imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=5,
                                                  state="draft")
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.get(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/canvass", headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_not_noticed"
    resp = await client.get(f"/api/admin/communities/{community_id}/meetings/nope/canvass", headers=headers)
    assert resp.status == 404

    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=5)
    resp = await end_voting_and_close(db_pool, m.community_id, m.meeting_id,
                                      lambda: client.post(f"{m.base}/close", headers=m.headers))
    assert resp.status == 200
    resp = await client.get(f"{m.base}/canvass", headers=m.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_closed"
