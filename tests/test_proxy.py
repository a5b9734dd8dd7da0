"""Proxies (书面委托) and guardians: authorization, the owner's area and person, revocation by voting, cap."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from server.app import create_app
from server.ballot.amounts import format_area
from tests.helpers_meetings import ballot_token, cast, open_meeting
from tests.helpers_paper import (
    areas,
    authorize,
    clerks,
    counted,
    double_entry,
    matter,
    proxy_vote,
    submission_events,
)
from tests.helpers_scope import scoped_meeting

RESOLUTIONS = [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
               {"matter_id": "M2", "kind": "resolution", "title": "续聘物业服务企业", "category": 4}]


async def _meeting(db_pool, client, staff_headers, imported_community, **kwargs):
    return await open_meeting(db_pool, client, staff_headers, imported_community, units=16, matters=RESOLUTIONS,
                              **kwargs)


async def test_proxy_without_a_valid_authorization_is_refused(client, db_pool, staff_headers, imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy, stranger = m.voter_ids[:3]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}], expect=403)
    body = await resp.json()
    assert body["error"]["code"] == "proxy_not_authorized" and "书面委托" in body["error"]["message"]
    auth = await (await authorize(client, m, owner, proxy)).json()
    # another voter's token does not carry the authorization
    other = await ballot_token(db_pool, client, m.community_id, m.meeting_id, stranger)
    await proxy_vote(client, other, owner, [{"matter_id": "M1", "choice": "yes"}], expect=403)
    # revoked: refused
    resp = await client.post(f"{m.base}/proxies/{auth['authorization_id']}/revoke", json={"reason": "业主撤回"},
                             headers=m.headers)
    assert resp.status == 200 and (await resp.json())["revoked_at"]
    await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}], expect=403)
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["participating"]["persons"] == 0


async def test_expired_and_uncovered_authorizations(client, db_pool, staff_headers, imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy, owner2 = m.voter_ids[:3]
    resp = await authorize(client, m, owner, proxy, valid_for=timedelta(seconds=-60), expect=422)
    assert (await resp.json())["error"]["code"] == "authorization_expired"
    auth = await (await authorize(client, m, owner, proxy, matters=["M1"])).json()
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M2", "choice": "yes"}], expect=403)
    assert (await resp.json())["error"]["code"] == "proxy_matter_not_covered"
    # TEST ONLY: the authorization's period ends (as if time had passed)
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE proxy_authorization SET valid_until = clock_timestamp() - interval '1 second' "
                           "WHERE community_id = $1 AND authorization_id = $2", m.community_id,
                           auth["authorization_id"])
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}], expect=403)
    assert (await resp.json())["error"]["code"] == "proxy_authorization_expired"
    await authorize(client, m, owner2, owner2, expect=422)


async def test_proxy_vote_counts_under_the_owners_area_and_person(client, db_pool, staff_headers,
                                                                  imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy = m.voter_ids[:2]
    weights = await areas(db_pool, m.community_id, m.meeting_id)
    await authorize(client, m, owner, proxy)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    held = await (await client.get("/api/ballot/proxies", headers={"Authorization": f"Bearer {token}"})).json()
    assert [o["owner_voter_id"] for o in held["owners"]] == [owner]
    assert held["owners"][0]["area"] == format_area(weights[owner])
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}])
    assert len((await resp.json())["receipts"]) == 1
    # the proxy also votes for themself: two persons, two areas
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "no"}])).status == 201
    async with db_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT voter_id, proxy_voter_id, channel FROM submission WHERE community_id = $1 "
                                  "AND meeting_id = $2 AND proxy_voter_id IS NOT NULL", m.community_id, m.meeting_id)
        logged = await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id = $1 AND action IN "
                                     "('proxy.authorize', 'proxy.vote')", m.community_id)
    assert (row["voter_id"], row["proxy_voter_id"], row["channel"]) == (owner, proxy, "electronic")
    assert logged == 2
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    m1 = matter(result, "M1")
    assert m1["yes"] == {"area": format_area(weights[owner]), "persons": 1}
    assert m1["no"] == {"area": format_area(weights[proxy]), "persons": 1}
    # voting twice for the owner is refused (no revision)
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "no"}], expect=409)
    assert (await resp.json())["error"]["code"] == "already_voted"


async def test_a_proxy_vote_is_announced_with_its_ballot_ids(client, db_pool, staff_headers, imported_community):
    """Live views read a proxy's submissions by id, as they read the owner's own votes."""
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy = m.voter_ids[:2]
    await authorize(client, m, owner, proxy)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    events = submission_events(client, m)
    body = await (await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"},
                                                          {"matter_id": "M2", "choice": "no"}])).json()
    assert len(events) == 1
    assert events[0]["ballot_ids"] == [r["ballot_id"] for r in body["receipts"]] and events[0]["count"] == 2
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT voter_id, proxy_voter_id FROM submission WHERE community_id = $1 "
                                "AND meeting_id = $2 AND ballot_id = any($3::uuid[])", m.community_id,
                                m.meeting_id, events[0]["ballot_ids"])
    assert sorted((r["voter_id"], r["proxy_voter_id"]) for r in rows) == [(owner, proxy)] * 2
    # the proxy's own vote is announced the same way (the electronic path)
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "no"}])).status == 201
    assert len(events) == 2 and len(events[1]["ballot_ids"]) == 1


async def test_guardian_votes_for_an_owner_without_capacity(client, db_pool, staff_headers, imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, guardian = m.voter_ids[2:4]
    auth = await (await authorize(client, m, owner, guardian, kind="guardian")).json()
    assert auth["kind_name"] == "监护人"
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, guardian)
    await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "abstain"},
                                            {"matter_id": "M2", "choice": "yes"}])
    listing = await (await client.get(f"{m.base}/proxies", headers=m.headers)).json()
    status = {s["matter_id"]: s["status"] for s in listing["authorizations"][0]["matter_status"]}
    assert status == {"M1": "proxy_voted", "M2": "proxy_voted"}
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["abstain"]["persons"] == 1 and chosen[(owner, "M2")].voter_id == owner


async def test_owner_who_votes_after_authorizing_revokes_the_proxy_for_that_matter(client, db_pool, staff_headers,
                                                                                   imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy, paper_owner = m.voter_ids[:3]
    await authorize(client, m, owner, proxy)
    await authorize(client, m, paper_owner, proxy)
    owner_token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, owner)
    assert (await cast(client, owner_token, [{"matter_id": "M1", "choice": "no"}])).status == 201
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    resp = await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}], expect=409)
    body = await resp.json()
    assert body["error"]["code"] == "owner_voted_personally" and "业主本人" in body["error"]["message"]
    await proxy_vote(client, token, owner, [{"matter_id": "M2", "choice": "yes"}])   # M2 still covered
    # a personal paper ballot ends the proxy's power too
    c1, c2 = await clerks(staff_headers, m.community_id)
    await double_entry(client, m, [c1, c2], paper_owner, [{"matter_id": "M2", "choice": "no"}])
    resp = await proxy_vote(client, token, paper_owner, [{"matter_id": "M2", "choice": "yes"}], expect=409)
    assert (await resp.json())["error"]["code"] == "owner_voted_personally"
    listing = await (await client.get(f"{m.base}/proxies", headers=m.headers)).json()
    by_owner = {a["owner_voter_id"]: {s["matter_id"]: s["status"] for s in a["matter_status"]}
                for a in listing["authorizations"]}
    assert by_owner[owner] == {"M1": "owner_voted", "M2": "proxy_voted"}
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["no"]["persons"] == 1 and matter(result, "M1")["yes"]["persons"] == 0


@pytest.mark.parametrize("allow_revision", [False, True])
async def test_owner_after_the_proxy_voted(client, db_pool, staff_headers, imported_community, allow_revision):
    m = await _meeting(db_pool, client, staff_headers, imported_community, rules={"allow_revision": allow_revision})
    owner, proxy = m.voter_ids[:2]
    await authorize(client, m, owner, proxy)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    await proxy_vote(client, token, owner, [{"matter_id": "M1", "choice": "yes"}])
    owner_token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, owner)
    resp = await cast(client, owner_token, [{"matter_id": "M1", "choice": "no"}])
    result, chosen = await counted(db_pool, m.community_id, m.meeting_id)
    if allow_revision:
        assert resp.status == 201                       # the owner's own revision counts (latest)
        assert matter(result, "M1")["no"]["persons"] == 1 and matter(result, "M1")["yes"]["persons"] == 0
    else:
        assert resp.status == 409
        body = await resp.json()
        assert body["error"]["code"] == "voted_by_proxy" and "代理人" in body["error"]["message"]
        assert matter(result, "M1")["yes"]["persons"] == 1
    assert matter(result, "M1")["participating"]["persons"] == 1


async def test_per_proxy_cap_holds_under_concurrent_registrations(aiohttp_client, settings, db_pool, staff_headers,
                                                                  imported_community):
    client = await aiohttp_client(create_app(settings.replace(proxy_cap=2)))
    community = await imported_community(16)
    m = await open_meeting(db_pool, client, staff_headers, imported_community, matters=RESOLUTIONS,
                           community=community)
    proxy, *owners = m.voter_ids[:7]
    answers = await asyncio.gather(*(authorize(client, m, owner, proxy, expect=None) for owner in owners[:4]))
    statuses = sorted(a.status for a in answers)
    assert statuses == [201, 201, 409, 409]
    refused = [await a.json() for a in answers if a.status == 409]
    assert {r["error"]["code"] for r in refused} == {"proxy_cap_reached"}
    assert "上限 2 户" in refused[0]["error"]["message"]
    async with db_pool.acquire() as conn:
        live = await conn.fetchval("SELECT count(*) FROM proxy_authorization WHERE community_id = $1 "
                                   "AND proxy_voter_id = $2 AND revoked_at IS NULL", m.community_id, proxy)
    assert live == 2
    # one live authorization per owner
    first_ok = next(o for o, a in zip(owners, answers) if a.status == 201)
    resp = await authorize(client, m, first_ok, owners[5], expect=409)
    assert (await resp.json())["error"]["code"] == "already_authorized"


async def test_only_writers_register_proxies(client, db_pool, staff_headers, imported_community):
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    auditor = await staff_headers("auditor", communities=[m.community_id])
    await authorize(client, m, m.voter_ids[0], m.voter_ids[1], headers=auditor, expect=403)
    resp = await client.get(f"{m.base}/proxies", headers=auditor)
    assert resp.status == 200 and (await resp.json())["authorizations"] == []


async def test_a_proxy_votes_only_on_matters_in_the_owners_scope(client, db_pool, staff_headers, make_community):
    """The ballot counts under the owner, so the owner's scope decides, not the proxy's."""
    m = await scoped_meeting(db_pool, client, staff_headers, make_community)
    # C1 (building 3) does not vote on M2 (building 1): an authorization naming it is refused
    resp = await authorize(client, m, "C1", "A1", matters=["M1", "M2"], expect=422)
    error = (await resp.json())["error"]
    assert error["code"] == "matter_out_of_scope" and error["fields"] == {"matters": ["M2"]}
    await authorize(client, m, "C1", "A1")                      # every matter C1 votes on
    await authorize(client, m, "B1", "A2")
    a1 = await ballot_token(db_pool, client, m.community_id, m.meeting_id, "A1")
    a2 = await ballot_token(db_pool, client, m.community_id, m.meeting_id, "A2")
    held = await (await client.get("/api/ballot/proxies", headers={"Authorization": f"Bearer {a1}"})).json()
    assert [(o["owner_voter_id"], [x["matter_id"] for x in o["matters"]]) for o in held["owners"]] == [("C1", ["M1"])]
    listing = await (await client.get(f"{m.base}/proxies", headers=m.headers)).json()
    assert {a["owner_voter_id"]: [x["matter_id"] for x in a["matter_status"]] for a in listing["authorizations"]} \
        == {"C1": ["M1"], "B1": ["M1", "E2"]}
    # A1 votes on M2 himself, but not for C1
    resp = await proxy_vote(client, a1, "C1", [{"matter_id": "M2", "choice": "yes"}], expect=422)
    assert (await resp.json())["error"]["code"] == "matter_out_of_scope"
    await proxy_vote(client, a1, "C1", [{"matter_id": "M1", "choice": "yes"}])
    # A2 (building 1) does not vote on E2 himself, but for B1 (building 2) he does
    resp = await cast(client, a2, [{"matter_id": "E2", "marks": {"K1": "yes"}}])
    assert resp.status == 422
    await proxy_vote(client, a2, "B1", [{"matter_id": "E2", "marks": {"K2": "yes"}}])
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT voter_id, matter_id, proxy_voter_id FROM submission WHERE community_id = $1 "
                                "AND meeting_id = $2 ORDER BY voter_id", m.community_id, m.meeting_id)
    assert [tuple(r) for r in rows] == [("B1", "E2", "A2"), ("C1", "M1", "A1")]


async def test_a_proxy_retry_replays_and_a_reused_key_is_refused(client, db_pool, staff_headers, imported_community):
    """Same idempotency key: the same body gets the earlier receipts (200); other choices, other matters
    or another owner get 409 idempotency_key_reused and record nothing."""
    m = await _meeting(db_pool, client, staff_headers, imported_community)
    owner, proxy, owner2 = m.voter_ids[:3]
    await authorize(client, m, owner, proxy)
    await authorize(client, m, owner2, proxy)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, proxy)
    headers = {"Authorization": f"Bearer {token}"}

    async def send(on_behalf_of: str, votes: list):
        return await client.post("/api/ballot/proxy-votes", headers=headers,
                                 json={"on_behalf_of": on_behalf_of, "votes": votes, "idempotency_key": "k-1"})

    first = await send(owner, [{"matter_id": "M1", "choice": "yes"}])
    assert first.status == 201, await first.text()
    again = await send(owner, [{"matter_id": "M1", "choice": "yes"}])
    assert again.status == 200 and (await again.json())["receipts"] == (await first.json())["receipts"]
    for on_behalf_of, votes in ((owner, [{"matter_id": "M1", "choice": "no"}]),
                                (owner, [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"}]),
                                (owner2, [{"matter_id": "M1", "choice": "yes"}])):
        resp = await send(on_behalf_of, votes)
        assert resp.status == 409, (on_behalf_of, votes, await resp.text())
        assert (await resp.json())["error"]["code"] == "idempotency_key_reused"
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT voter_id, matter_id FROM submission WHERE community_id = $1 "
                                "AND meeting_id = $2 AND proxy_voter_id = $3", m.community_id, m.meeting_id, proxy)
    assert [(r["voter_id"], r["matter_id"]) for r in rows] == [(owner, "M1")]
    result, _ = await counted(db_pool, m.community_id, m.meeting_id)
    assert matter(result, "M1")["no"]["persons"] == 0
