"""Short receipts (回执码): one per ballot, unique in the meeting, kept by the voting subject across a
reissued code, resolved by the public proof endpoint to the full receipts and their proofs."""
from __future__ import annotations

import os
import re

import asyncpg
import pytest

from server.ballot.merkle import verify_inclusion
from server.ballot.receipts import (
    ballot_receipt_code,
    format_ballot_receipt,
    normalize_ballot_receipt,
)
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity
from tests.helpers_meetings import ballot_token, bearer, cast, close_now, open_meeting

SHORT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")


def test_the_short_code_is_derived_from_the_receipts_and_reads_back():
    a, b = os.urandom(32), os.urandom(32)
    code = ballot_receipt_code([a, b])
    assert code == ballot_receipt_code([b, a]) != ballot_receipt_code([a])   # order-free, names exactly them
    assert len(code) == 10 and SHORT.match(format_ballot_receipt(code))
    shown = format_ballot_receipt(code)
    assert normalize_ballot_receipt(shown.lower()) == code
    assert normalize_ballot_receipt(" " + shown[:3] + " " + shown[3:] + " ") == code
    # Crockford: I and L read as 1, O as 0
    assert normalize_ballot_receipt("0000l-ooooI") == "0000100001"
    for bad in ("", "ABCD-EFGH", "ABCDE-FGHJKM", "ABCDE-FGHJU", "x" * 40):
        assert normalize_ballot_receipt(bad) is None
    with pytest.raises(ValueError):
        ballot_receipt_code([])


VOTES = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
         {"matter_id": "E1", "marks": {"C1": "yes"}}]


async def test_one_short_receipt_per_ballot_kept_across_a_reissue_and_resolved_after_publication(
        client, db_pool, staff_headers, imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=10,
                                                  seed=31)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    last4 = phone_last4(await voter_identity(db_pool, community_id, meeting_id, voter))
    redeemed = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": last4})
    token = (await redeemed.json())["token"]

    resp = await cast(client, token, VOTES, idempotency_key="k-1")
    assert resp.status == 201, await resp.text()
    cast_doc = await resp.json()
    short = cast_doc["ballot_receipt"]
    assert SHORT.match(short)
    full = [r["receipt"] for r in cast_doc["receipts"]]
    assert normalize_ballot_receipt(short) == ballot_receipt_code([bytes.fromhex(r) for r in full])
    # a retried request (same idempotency key) gets the same receipts and the same short code
    again = await cast(client, token, VOTES, idempotency_key="k-1")
    assert again.status == 200 and (await again.json())["ballot_receipt"] == short

    # the short code is unique within the meeting: the database refuses a second one
    async with db_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT voter_id, received_at FROM ballot_receipt WHERE community_id = $1 "
                                  "AND meeting_id = $2", community_id, meeting_id)
        assert row["voter_id"] == voter
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO ballot_receipt (community_id, meeting_id, short_code, voter_id, "
                               "received_at) VALUES ($1, $2, $3, $4, now())",
                               community_id, meeting_id, normalize_ballot_receipt(short), voter)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):   # append-only, like the submissions
            await conn.execute("DELETE FROM ballot_receipt WHERE community_id = $1", community_id)

    # the code is reissued (lost phone): the new code, on another device, shows the same receipt
    staff = await staff_headers("district_admin")
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(f"{base}/codes/{voter}/reissue", json={"reason": "手机遗失"}, headers=staff)
    assert resp.status == 201, await resp.text()
    new_code = (await resp.json())["code"]
    redeemed = await client.post("/api/ballot/redeem", json={"code": new_code, "last4": last4,
                                                             "device_id": "web-another-phone"})
    assert redeemed.status == 200, await redeemed.text()
    new_token = (await redeemed.json())["token"]
    doc = await (await client.get("/api/ballot/receipts", headers=bearer(new_token))).json()
    assert [b["ballot_receipt"] for b in doc["ballots"]] == [short]
    assert doc["ballots"][0]["matters"] == ["M1", "M2", "E1"] and sorted(doc["ballots"][0]["receipts"]) == sorted(full)
    assert {r["ballot_receipt"] for r in doc["receipts"]} == {short}

    # after the close, sign-in says so and names the meeting for the page
    assert (await close_now(client, community_id, meeting_id, staff, json={})).status == 200
    closed = await client.post("/api/ballot/redeem", json={"code": new_code})
    body = (await closed.json())["error"]
    assert (closed.status, body["code"]) == (409, "meeting_closed")
    assert body["fields"]["community_id"] == community_id and body["fields"]["meeting_id"] == meeting_id
    assert body["fields"]["title"] and body["fields"]["closes_at"]
    # the reissued code too: once voting is over there is nothing to reissue, the meeting is named
    old = await client.post("/api/ballot/redeem", json={"code": codes[voter].code})
    assert (old.status, (await old.json())["error"]["code"]) == (409, "meeting_closed")

    public = f"/api/public/meetings/{community_id}/{meeting_id}"
    assert (await client.get(f"{public}/receipts/{short}/proof")).status == 404        # not yet published
    assert (await client.post(f"{base}/publish", headers=staff, json={"objection_days": 5})).status == 200
    result = await (await client.get(f"{public}/result")).json()
    root = bytes.fromhex(result["signed"]["payload"]["receipts"]["root"])
    for typed in (short, short.lower(), short.replace("-", ""), short.replace("0", "O").replace("1", "l")):
        resp = await client.get(f"{public}/receipts/{typed}/proof")
        assert resp.status == 200, (typed, await resp.text())
        proof = await resp.json()
        assert proof["ballot_receipt"] == short and proof["root"] == root.hex()
        assert sorted(r["receipt"] for r in proof["receipts"]) == sorted(full)
        for r in proof["receipts"]:
            assert set(r) == {"receipt", "leaf_index", "proof"}          # no matter, choice or voter
            assert verify_inclusion(bytes.fromhex(r["receipt"]), r["leaf_index"], proof["tree_size"],
                                    [bytes.fromhex(h) for h in r["proof"]], root)
    # a full receipt still works; an unknown short code is not found; junk is refused
    assert (await client.get(f"{public}/receipts/{full[0]}/proof")).status == 200
    unknown = "ZZZZZ-ZZZZZ" if short != "ZZZZZ-ZZZZZ" else "00000-00000"
    resp = await client.get(f"{public}/receipts/{unknown}/proof")
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "receipt_not_found")
    resp = await client.get(f"{public}/receipts/ABC-DEF/proof")
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "bad_receipt")


async def test_each_submission_is_its_own_ballot_and_messages_name_matters_by_title(
        client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8,
                           rules={"allow_revision": True})
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    first = await (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).json()
    second = await (await cast(client, token, [{"matter_id": "M1", "choice": "no"},
                                               {"matter_id": "M2", "choice": "yes"}])).json()
    assert first["ballot_receipt"] != second["ballot_receipt"]
    doc = await (await client.get("/api/ballot/receipts", headers=bearer(token))).json()
    assert [(b["ballot_receipt"], b["matters"]) for b in doc["ballots"]] == [
        (first["ballot_receipt"], ["M1"]), (second["ballot_receipt"], ["M1", "M2"])]

    # without revision: the refusal names the matter by its title, never by its id
    n = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    token = await ballot_token(db_pool, client, n.community_id, n.meeting_id, n.voter_ids[0])
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    resp = await cast(client, token, [{"matter_id": "M1", "choice": "no"}])
    error = (await resp.json())["error"]
    assert error["code"] == "already_voted" and "“表决通过《管理规约》”" in error["message"]
    assert "M1" not in error["message"] and error["fields"] == {"matters": ["M1"]}
    resp = await cast(client, token, [{"matter_id": "M2", "choice": "maybe"}])
    error = (await resp.json())["error"]
    assert error["code"] == "bad_choice" and "“筹集电梯维修资金”" in error["message"] and "M2" not in error["message"]
    # the ballot explains itself: each matter's threshold in words, and when a vote counts at all
    page = await (await client.get("/api/ballot/meeting", headers=bearer(token))).json()
    texts = {x["matter_id"]: x["threshold_text"] for x in page["matters"]}
    assert "过半数同意" in texts["M1"] and "四分之三以上同意" in texts["M2"] and "当选" in texts["E1"]
    assert "三分之二以上" in page["quorum_text"]
