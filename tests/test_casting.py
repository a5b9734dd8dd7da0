"""Electronic vote casting: one counted submission per voter and matter, receipts, refusals, races."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from server.ballot.amounts import format_area
from server.ballot.receipts import canonical_submission, receipt_for
from server.services import counting
from tests.helpers_meetings import (
    ballot_token,
    bearer,
    cast,
    close_now,
    noticed_meeting,
    open_meeting,
)
from tests.helpers_scope import IN_E2, IN_M2, VOTERS, scoped_meeting

ALL_YES = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
           {"matter_id": "E1", "marks": {"C1": "yes", "C2": "yes", "C3": "no"}}]


async def _error(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


async def _count(db_pool, m, voter_id=None) -> int:
    async with db_pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM submission WHERE community_id = $1 AND meeting_id = $2 "
            "AND ($3::text IS NULL OR voter_id = $3)", m.community_id, m.meeting_id, voter_id)


async def test_a_ballot_is_recorded_with_a_verifiable_receipt_per_matter(client, db_pool, staff_headers,
                                                                        imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    voter = m.voter_ids[0]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    resp = await cast(client, token, ALL_YES)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert [r["matter_id"] for r in body["receipts"]] == ["M1", "M2", "E1"]
    assert all(r["received_at"] == body["received_at"] for r in body["receipts"])
    async with db_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT s.ballot_id, s.matter_id, s.received_at, s.salt, s.receipt, s.revision,
                      array_agg(c.candidate_id ORDER BY c.candidate_id) AS cands,
                      array_agg(c.choice ORDER BY c.candidate_id) AS choices
                 FROM submission s JOIN submission_choice c USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $3
                GROUP BY s.community_id, s.meeting_id, s.ballot_id""", m.community_id, m.meeting_id, voter)
    by_matter = {r["matter_id"]: r for r in rows}
    assert set(by_matter) == {"M1", "M2", "E1"}
    assert all(r["revision"] == 0 for r in rows)
    assert list(zip(by_matter["E1"]["cands"], by_matter["E1"]["choices"])) == [("C1", "yes"), ("C2", "yes"),
                                                                              ("C3", "no")]
    for receipt in body["receipts"]:
        row = by_matter[receipt["matter_id"]]
        assert str(row["ballot_id"]) == receipt["ballot_id"]
        # the receipt commits to exactly what is counted, with the server's receive time
        canonical = canonical_submission(
            community_id=m.community_id, meeting_id=m.meeting_id, ballot_id=receipt["ballot_id"], voter_id=voter,
            matter_id=receipt["matter_id"], channel="electronic", cast_at=row["received_at"],
            choices=list(zip(row["cands"], row["choices"])))
        assert receipt_for(canonical, bytes(row["salt"])).hex() == receipt["receipt"] == bytes(row["receipt"]).hex()


async def test_second_submission_is_refused_and_nothing_half_written(client, db_pool, staff_headers,
                                                                     imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    # M2 is new but M1 was voted: the whole request is refused, M2 is not recorded either
    resp = await cast(client, token, [{"matter_id": "M2", "choice": "yes"}, {"matter_id": "M1", "choice": "no"}])
    error = await _error(resp, 409)
    assert error["code"] == "already_voted" and error["fields"]["matters"] == ["M1"]
    assert "只能投一次" in error["message"]
    assert await _count(db_pool, m, m.voter_ids[0]) == 1


async def test_revision_allowed_records_a_new_revision_and_the_latest_counts(client, db_pool, staff_headers,
                                                                             imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, rules={"allow_revision": True})
    voter = m.voter_ids[0]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "no"}])).status == 201
    async with db_pool.acquire() as conn:
        revisions = [r["revision"] for r in await conn.fetch(
            "SELECT revision FROM submission WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 "
            "ORDER BY received_at", m.community_id, m.meeting_id, voter)]
        result = await counting.compute_result(conn, m.community_id, m.meeting_id)
    assert revisions == [1, 2]
    m1 = result["matters"][0]
    assert m1["yes"]["persons"] == 0 and m1["no"]["persons"] == 1 and m1["participating"]["persons"] == 1


async def test_concurrent_revisions_get_distinct_numbers(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, rules={"allow_revision": True})
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    responses = await asyncio.gather(*(cast(client, token, [{"matter_id": "M1", "choice": c}])
                                       for c in ("yes", "no", "abstain", "yes")))
    statuses = sorted(r.status for r in responses)
    # each either counted as its own revision or was refused cleanly (never a 500)
    assert all(s in (201, 409) for s in statuses) and 201 in statuses
    async with db_pool.acquire() as conn:
        revisions = sorted(r["revision"] for r in await conn.fetch(
            "SELECT revision FROM submission WHERE community_id = $1 AND meeting_id = $2",
            m.community_id, m.meeting_id))
    assert revisions == list(range(1, statuses.count(201) + 1))


async def test_two_phones_of_one_owner_race_exactly_one_counts(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    voter = m.voter_ids[1]
    phone_a = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    phone_b = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
    a, b = await asyncio.gather(cast(client, phone_a, [{"matter_id": "M1", "choice": "yes"}]),
                                cast(client, phone_b, [{"matter_id": "M1", "choice": "no"}]))
    assert sorted([a.status, b.status]) == [201, 409]
    loser = a if a.status == 409 else b
    assert (await loser.json())["error"]["code"] == "already_voted"
    assert await _count(db_pool, m, voter) == 1
    # and many phones at once for another matter: still exactly one
    tokens = [await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter) for _ in range(6)]
    responses = await asyncio.gather(*(cast(client, t, [{"matter_id": "M2", "choice": "yes"}]) for t in tokens))
    assert sorted(r.status for r in responses) == [201] + [409] * 5
    assert await _count(db_pool, m, voter) == 2


async def test_idempotent_retry_returns_the_original_receipts(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    first = await cast(client, token, ALL_YES, idempotency_key="retry-1")
    assert first.status == 201
    again = await cast(client, token, ALL_YES, idempotency_key="retry-1")
    assert again.status == 200
    assert await again.json() == await first.json()
    assert await _count(db_pool, m, m.voter_ids[0]) == 3
    # the same key for a different set of matters is a client bug, not a vote
    other = await cast(client, token, [{"matter_id": "M1", "choice": "yes"}], idempotency_key="retry-1")
    assert (await _error(other, 409))["code"] == "idempotency_key_reused"


async def test_concurrent_retries_with_one_key_record_one_vote(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    responses = await asyncio.gather(*(cast(client, token, ALL_YES, idempotency_key="same") for _ in range(4)))
    assert sorted(r.status for r in responses) == [200, 200, 200, 201]
    bodies = [await r.json() for r in responses]
    assert all(b == bodies[0] for b in bodies)
    assert await _count(db_pool, m) == 3


async def test_refused_before_open_and_after_close(client, db_pool, staff_headers, imported_community):
    m = await noticed_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await _error(await cast(client, token, ALL_YES), 409))["code"] == "voting_not_started"

    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    # the closing time passed but the scheduler has not closed it yet: the receive time decides
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET closes_at = clock_timestamp() WHERE community_id = $1 "
                           "AND meeting_id = $2", m.community_id, m.meeting_id)
    assert (await _error(await cast(client, token, ALL_YES), 409))["code"] == "voting_closed"

    m = await open_meeting(db_pool, client, staff_headers, imported_community, closes_in=None)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await close_now(client, m.community_id, m.meeting_id, m.headers)).status == 200
    error = await _error(await cast(client, token, ALL_YES), 409)
    assert error["code"] == "voting_closed" and "已经结束" in error["message"]
    assert await _count(db_pool, m) == 0


async def test_bad_ballots_are_refused_with_422(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    six = {f"C{i}": "yes" for i in range(1, 7)}
    cases = [
        ([], "empty_votes"),
        ([{"matter_id": "X9", "choice": "yes"}], "unknown_matter"),
        ([{"matter_id": "E1", "marks": {"C99": "yes"}}], "unknown_candidate"),
        ([{"matter_id": "E1", "marks": six}], "too_many_marks"),
        ([{"matter_id": "E1"}], "empty_marks"),
        ([{"matter_id": "E1", "marks": ["C1"]}], "empty_marks"),
        ([{"matter_id": "M1", "choice": "maybe"}], "bad_choice"),
        # an electronic ballot is never invalid (blank or unclear is for returned paper sheets)
        ([{"matter_id": "M1", "choice": "invalid"}], "bad_choice"),
        ([{"matter_id": "E1", "marks": {"C1": "invalid"}}], "bad_choice"),
        ([{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M1", "choice": "no"}], "duplicate_matter"),
    ]
    for votes, code in cases:
        error = await _error(await cast(client, token, votes), 422)
        assert error["code"] == code, (votes, error)
    too_many = await _error(await cast(client, token, [{"matter_id": "E1", "marks": six}]), 422)
    assert "最多只能选 5 人" in too_many["message"]
    # five yes and two no is fine
    marks = {f"C{i}": "yes" for i in range(1, 6)} | {"C6": "no", "C7": "no"}
    assert (await cast(client, token, [{"matter_id": "E1", "marks": marks}])).status == 201
    resp = await client.post("/api/ballot/votes", data=b"not json", headers=bearer(token))
    assert (await _error(resp, 400))["code"] == "invalid_json"


async def test_tokens_bind_to_their_meeting_and_revoked_sessions_stop(client, db_pool, staff_headers,
                                                                       imported_community):
    a = await open_meeting(db_pool, client, staff_headers, imported_community)
    b = await open_meeting(db_pool, client, staff_headers, imported_community, matters=[
        {"matter_id": "B1", "kind": "resolution", "title": "另一小区的议题", "category": 4}])
    token_b = await ballot_token(db_pool, client, b.community_id, b.meeting_id, b.voter_ids[0])
    # a token of meeting B cannot reach meeting A's matters
    error = await _error(await cast(client, token_b, [{"matter_id": "M1", "choice": "yes"}]), 422)
    assert error["code"] == "unknown_matter"
    assert await _count(db_pool, a) == 0
    # no token, a garbage token
    resp = await client.post("/api/ballot/votes", json={"votes": ALL_YES})
    assert (await _error(resp, 401))["code"] == "ballot_login_required"
    resp = await client.post("/api/ballot/votes", json={"votes": ALL_YES}, headers=bearer("x.y.z"))
    assert (await _error(resp, 401))["code"] == "invalid_token"
    # a revoked session (its code was reissued) stops working at once
    token_a = await ballot_token(db_pool, client, a.community_id, a.meeting_id, a.voter_ids[0])
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_session SET revoked_at = now() WHERE community_id = $1 AND meeting_id = $2",
                           a.community_id, a.meeting_id)
    error = await _error(await cast(client, token_a, ALL_YES), 401)
    assert error["code"] == "ballot_session_revoked"
    assert (await _error(await client.get("/api/ballot/status", headers=bearer(token_a)), 401))["code"] \
        == "ballot_session_revoked"
    assert await _count(db_pool, a) == 0


async def test_counting_compute_result_matches_the_votes_cast(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12)
    async with db_pool.acquire() as conn:
        weights = {r["voter_id"]: r["area"] for r in await conn.fetch(
            "SELECT voter_id, area FROM electorate WHERE community_id = $1 AND meeting_id = $2",
            m.community_id, m.meeting_id)}
    voters = m.voter_ids
    assert len(voters) >= 6
    plan = {}  # voter -> M1 choice; everyone votes: quorum is met
    for i, voter in enumerate(voters):
        choice = "yes" if i % 3 != 2 else ("no" if i % 2 else "abstain")
        plan[voter] = choice
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        marks = {"C1": "yes", "C2": "yes"} if i % 2 == 0 else {"C2": "yes", "C3": "no"}
        resp = await cast(client, token, [{"matter_id": "M1", "choice": choice}, {"matter_id": "E1", "marks": marks}])
        assert resp.status == 201, await resp.text()
    async with db_pool.acquire() as conn:
        inputs = await counting.load_counted_inputs(conn, m.community_id, m.meeting_id)
        result = await counting.compute_result(conn, m.community_id, m.meeting_id)
    assert inputs.rules.allow_revision is False
    assert [x.id for x in inputs.matters] == ["M1", "M2", "E1"]
    assert len(inputs.submissions) == 2 * len(voters)
    total_area = sum(weights.values())
    assert result["totals"]["persons"] == len(voters)
    m1 = result["matters"][0]

    def figure(choice):
        chosen = [v for v in voters if plan[v] == choice]
        area = sum(weights[v] for v in chosen)
        return {"area": format_area(area), "persons": len(chosen)}

    assert m1["participating"] == {"area": format_area(total_area), "persons": len(voters)}
    assert m1["yes"] == figure("yes") and m1["no"] == figure("no") and m1["abstain"] == figure("abstain")
    yes_area = sum(weights[v] for v in voters if plan[v] == "yes")
    yes_persons = sum(1 for v in voters if plan[v] == "yes")
    expected = "passed" if 2 * yes_area > total_area and 2 * yes_persons > len(voters) else "failed"
    assert m1["quorum_met"] is True and m1["outcome"] == expected
    m2 = result["matters"][1]
    assert m2["participating"]["persons"] == 0 and m2["outcome"] == "no_quorum"
    e1 = result["matters"][2]
    c2 = next(c for c in e1["candidates"] if c["id"] == "C2")
    assert c2["yes"]["persons"] == len(voters) and c2["passed"] is True and "C2" in e1["elected"]
    assert timedelta(0) <= inputs.submissions[-1].cast_at - inputs.submissions[0].cast_at


async def _ballot_reads(client, token: str) -> tuple[list[str], list[str]]:
    """The matter ids of the owner's ballot page and of their status."""
    meeting = await (await client.get("/api/ballot/meeting", headers=bearer(token))).json()
    status = await (await client.get("/api/ballot/status", headers=bearer(token))).json()
    return [x["matter_id"] for x in meeting["matters"]], [x["matter_id"] for x in status["matters"]]


async def test_a_scoped_matter_is_hidden_from_and_refused_for_owners_outside_its_scope(client, db_pool,
                                                                                     staff_headers, make_community):
    m = await scoped_meeting(db_pool, client, staff_headers, make_community)
    tokens = {v: await ballot_token(db_pool, client, m.community_id, m.meeting_id, v) for v in VOTERS}
    for voter in VOTERS:
        expected = ["M1"] + ["M2"] * (voter in IN_M2) + ["E2"] * (voter in IN_E2)
        page, status = await _ballot_reads(client, tokens[voter])
        assert page == expected and status == expected, voter
    page = await (await client.get("/api/ballot/meeting", headers=bearer(tokens["A1"]))).json()
    assert [x["scope"] for x in page["matters"]] == [None, {"buildings": ["1"]}, {"buildings": ["2"]}]

    # B1 (building 2) may not vote on M2 (building 1): refused whole, nothing stored
    for votes in ([{"matter_id": "M2", "choice": "yes"}],
                  [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"}]):
        error = await _error(await cast(client, tokens["B1"], votes), 422)
        assert error["code"] == "matter_out_of_scope" and error["fields"] == {"matters": ["M2"]}
        assert "“筹集 1 号楼电梯维修资金”只由 1 楼栋的业主表决" in error["message"] and "M2" not in error["message"]
    error = await _error(await cast(client, tokens["C1"], [{"matter_id": "E2", "marks": {"K1": "yes"}}]), 422)
    assert error["code"] == "matter_out_of_scope"
    assert await _count(db_pool, m) == 0

    # in scope: B1 on M1 and E2 (no candidate marked: takes part, supports nobody), A1 on all three
    resp = await cast(client, tokens["B1"], [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "E2", "marks": {}}])
    assert resp.status == 201, await resp.text()
    resp = await cast(client, tokens["A1"], [{"matter_id": "M1", "choice": "no"}, {"matter_id": "M2", "choice": "yes"},
                                             {"matter_id": "E2", "marks": {"K1": "yes"}}])
    assert resp.status == 201, await resp.text()
    async with db_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT c.candidate_id, c.choice FROM submission s JOIN submission_choice c
                      USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = 'B1' AND s.matter_id = 'E2'
                ORDER BY c.candidate_id""", m.community_id, m.meeting_id)
    assert [(r["candidate_id"], r["choice"]) for r in rows] == [("K1", "abstain"), ("K2", "abstain")]
    status = await (await client.get("/api/ballot/status", headers=bearer(tokens["B1"]))).json()
    assert status["voted_all"] is True                          # every matter B1 votes on

    # the database refuses an invalid choice on an electronic ballot, whatever code path tries
    async with db_pool.acquire() as conn:
        ballot_id = await conn.fetchval("SELECT ballot_id FROM submission WHERE community_id = $1 AND meeting_id = $2 "
                                        "AND voter_id = 'A1' AND matter_id = 'E2'", m.community_id, m.meeting_id)
        for candidate, constraint in (("K2", "submission_choice_invalid_without_candidate"),
                                      ("", "submission_choice_invalid_on_paper")):
            with pytest.raises(asyncpg.CheckViolationError) as refused:
                await conn.execute("INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, "
                                   "choice) VALUES ($1, $2, $3, $4, 'invalid')", m.community_id, m.meeting_id,
                                   ballot_id, candidate)
            assert refused.value.constraint_name == constraint


async def test_a_scoped_matter_counts_against_its_own_electorate(client, db_pool, staff_headers, make_community):
    """M2 (building 1): A1 100 + A2 90 + A3 80 = 270 m², 3 persons; E2 (building 2): A1 50 + B1 100 + B2 110."""
    m = await scoped_meeting(db_pool, client, staff_headers, make_community)
    for voter, votes in (("A1", [{"matter_id": "M2", "choice": "yes"}, {"matter_id": "E2", "marks": {"K1": "yes"}}]),
                         ("A2", [{"matter_id": "M2", "choice": "no"}]),
                         ("B1", [{"matter_id": "E2", "marks": {"K1": "yes"}}]),
                         ("C1", [{"matter_id": "M1", "choice": "yes"}])):
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        assert (await cast(client, token, votes)).status == 201
    async with db_pool.acquire() as conn:
        result = await counting.compute_result(conn, m.community_id, m.meeting_id)
    m1, m2, e2 = result["matters"]
    assert m1["electorate"] == {"area": "600.00", "persons": 6}
    assert m2["electorate"] == {"area": "270.00", "persons": 3}
    assert m2["participating"] == {"area": "190.00", "persons": 2} and m2["yes"] == {"area": "100.00", "persons": 1}
    assert e2["electorate"] == {"area": "260.00", "persons": 3}
    assert e2["participating"] == {"area": "150.00", "persons": 2}
    assert next(c for c in e2["candidates"] if c["id"] == "K1")["yes"] == {"area": "150.00", "persons": 2}
