"""A voting subject changing hands during voting (docs/meetings.md "Transfers during voting").

The register of tests/helpers_register.py: A and B jointly own 1-101 and 2-201 (subject ``A+B``,
80.50 + 100.25 m², A representing), A alone owns 1-102 (subject ``A``), C owns 2-202.
"""
from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
import pytest

from server.ballot import identity
from server.ballot.receipts import BALLOT_RECEIPT_ALPHABET, BALLOT_RECEIPT_CHARS, BALLOT_RECEIPT_LABEL
from server.repositories import casting as casting_repo
from server.services import casting, counting, personal_data, purge
from server.services import transfers as transfers_service
from tests.helpers_codes import issue_codes
from tests.helpers_meetings import cast, close_now, noticed_meeting, open_meeting
from tests.helpers_paper import clerks, double_entry
from tests.helpers_register import ONE_RESOLUTION, PHONES, import_lines

TWO_RESOLUTIONS = [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
                   {"matter_id": "M2", "kind": "resolution", "title": "续聘物业服务企业", "category": 4}]
NEW_OWNER = {"name": "赵六", "phone": "13600004444", "id_number": "350502199001014321"}
EVIDENCE = {"kind": "property_certificate", "reference": "闽(2026)鲤城区不动产权第0001234号", "date": "2026-03-01"}


def transfer_body(**changes) -> dict:
    """A transfer of A+B to 赵六; without the printable sheet (rendering it takes a second) unless asked."""
    return {"voter_id": "A+B", "new_owner": NEW_OWNER, "evidence": EVIDENCE, "sheet": False} | changes


async def joint_meeting(client, db_pool, staff_headers, make_community, *, matters=ONE_RESOLUTION,
                        rules: dict | None = None, state: str = "open"):
    community = await import_lines(db_pool, make_community)
    make = open_meeting if state == "open" else noticed_meeting
    return await make(db_pool, client, staff_headers, None, community=community, matters=matters, rules=rules)


async def redeem(client, code: str, last4: str, device: str = "device-transfer-1") -> tuple[int, dict]:
    resp = await client.post("/api/ballot/redeem", json={"code": code, "last4": last4, "device_id": device})
    return resp.status, await resp.json()


async def record(client, m, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    resp = await client.post(f"{m.base}/transfers", json=body, headers=headers or m.headers)
    return resp.status, await resp.json()


async def result_of(db_pool, m) -> dict:
    async with db_pool.acquire() as conn:
        result = await counting.compute_result(conn, m.community_id, m.meeting_id)
    return {matter["id"]: matter for matter in result["matters"]}


async def new_owner_row(db_pool, m, transfer_id: int) -> asyncpg.Record:
    async with db_pool.acquire() as conn:
        return await conn.fetchrow(
            """SELECT name, phone, id_number, phone_hmac, id_hmac, identity_key_id, phone_masked, id_masked, phone_enc
                 FROM transfer_new_owner WHERE community_id = $1 AND meeting_id = $2 AND transfer_id = $3""",
            m.community_id, m.meeting_id, transfer_id)


async def clear_anywhere(db_pool, values) -> list[str]:
    """Every table (any column, as text) holding one of ``values``."""
    async with db_pool.acquire() as conn:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE'")]
        return [f"{t}: {v}" for t in tables for v in values
                if await conn.fetchval(f'SELECT count(*) FROM "{t}" x WHERE x::text LIKE $1', f"%{v}%")]


async def live_serials(db_pool, m, voter_id: str) -> list[int]:
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT serial FROM ballot_code WHERE community_id = $1 AND meeting_id = $2 "
                                "AND voter_id = $3 AND revoked_at IS NULL", m.community_id, m.meeting_id, voter_id)
    return [r["serial"] for r in rows]


async def test_a_whole_subject_changing_hands_before_voting_gets_a_new_code_for_the_new_owner(
        client, db_pool, settings, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    status, body = await redeem(client, codes["A+B"].code, PHONES["A"][-4:])
    assert status == 200, body
    old_token = body["token"]
    # A+B had given C a written authorization: it ends with the transfer
    resp = await client.post(f"{m.base}/proxies", headers=m.headers, json={
        "owner_voter_id": "A+B", "proxy_voter_id": "C", "document_ref": "委托书 001",
        "valid_until": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert resp.status == 201, await resp.text()
    authorization_id = (await resp.json())["authorization_id"]

    # named by all its units (any order): the whole subject
    status, doc = await record(client, m, transfer_body(voter_id=None, units=["2-201", "1-101"], sheet=True))
    assert status == 201, doc
    assert (doc["voter_id"], doc["units"], doc["voted_matters"], doc["open_matters"]) == (
        "A+B", ["1-101", "2-201"], [], ["M1"])
    assert not doc["votes_stand"] and doc["revoked_serials"] == [1] and doc["sessions_revoked"] == 1
    assert doc["proxies_revoked"] == [authorization_id] and doc["code_serial"] == 2
    assert doc["new_owner"] == {"name": "赵*", "phone": "136********", "id_number": "350***************"}
    assert doc["evidence"]["kind_name"] == "不动产权证书" and "新业主凭新码投票" in doc["message"]
    code = doc["code"]
    assert (code["voter_id"], code["serial"], code["masked_name"], code["units"]) == ("A+B", 2, "赵*",
                                                                                     ["1-101", "2-201"])
    assert base64.b64decode(code["sheet_pdf_base64"]).startswith(b"%PDF")
    assert base64.b64decode(code["qr_png_base64"]).startswith(b"\x89PNG") and code["url"].endswith(code["code"])

    # the old code and its session are dead at once
    status, body = await redeem(client, codes["A+B"].code, PHONES["A"][-4:])
    assert (status, body["error"]["code"]) == (404, "code_invalid")
    resp = await cast(client, old_token, [{"matter_id": "M1", "choice": "no"}])
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "ballot_session_revoked")
    # the new code opens with the new owner's digits, not the old representative's
    status, body = await redeem(client, code["code"], PHONES["A"][-4:])
    assert (status, body["error"]["code"]) == (403, "identity_mismatch")
    status, body = await redeem(client, code["code"], NEW_OWNER["phone"][-4:])
    assert status == 200, body
    assert body["voter"] == {"voter_id": "A+B", "name": "赵*", "building": "1", "units": ["1-101", "2-201"],
                             "joint": True}
    resp = await cast(client, body["token"], [{"matter_id": "M1", "choice": "yes"}])
    assert resp.status == 201, await resp.text()
    # ... the ID number's last four work too (another device)
    status, _ = await redeem(client, code["code"], "4321", device="device-transfer-2")
    assert status == 200

    # counted under the frozen subject: its area and one person
    m1 = (await result_of(db_pool, m))["M1"]
    assert m1["yes"] == {"area": "180.75", "persons": 1}
    assert m1["electorate"] == {"area": "390.75", "persons": 3}

    # listed (masked), audited without the new owner's personal data in clear
    resp = await client.get(f"{m.base}/transfers", headers=m.headers)
    listed = (await resp.json())["transfers"]
    assert [t["transfer_id"] for t in listed] == [doc["transfer_id"]]
    assert listed[0]["new_owner"]["name"] == "赵*" and "code" not in listed[0]
    async with db_pool.acquire() as conn:
        entry = await conn.fetchrow("SELECT actor, detail FROM audit_log WHERE community_id = $1 "
                                    "AND action = 'subject.transfer'", m.community_id)
        revoked = await conn.fetchval("SELECT revoked_at IS NOT NULL FROM proxy_authorization "
                                      "WHERE community_id = $1 AND authorization_id = $2",
                                      m.community_id, authorization_id)
    assert entry["actor"].startswith("staff:") and '"A+B"' in entry["detail"]
    assert NEW_OWNER["phone"] not in entry["detail"] and "赵六" not in entry["detail"]
    # (not even the masked numbers: the audit trail outlives a purge, and they show the last four)
    assert "4444" not in entry["detail"] and "4321" not in entry["detail"] and '"赵*"' in entry["detail"]
    assert revoked
    # kept like a register owner: hashes bound to transfer:<id>, masked forms, no full number (no master key)
    row = await new_owner_row(db_pool, m, doc["transfer_id"])
    assert (row["name"], row["phone"], row["id_number"], row["phone_enc"]) == ("赵六", "", "", None)
    assert (row["phone_masked"], row["id_masked"]) == ("136********", "350***************")
    assert row["identity_key_id"] is not None and row["phone_hmac"] != row["id_hmac"]
    assert bytes(row["phone_hmac"]) == identity.last4_digest(
        personal_data.identity_keys(settings).hmac_key, identity.PHONE,
        m.community_id, f"transfer:{doc['transfer_id']}", "4444")
    assert await clear_anywhere(db_pool, (NEW_OWNER["phone"], NEW_OWNER["id_number"])) == []

    # a lost code is reissued to the new owner, who signs in with their digits
    resp = await client.post(f"{m.base}/codes/A+B/reissue", json={"reason": "遗失"}, headers=m.headers)
    reissued = await resp.json()
    assert resp.status == 201 and reissued["masked_name"] == "赵*" and reissued["serial"] == 3
    status, _ = await redeem(client, reissued["code"], NEW_OWNER["phone"][-4:], device="device-transfer-3")
    assert status == 200


@pytest.mark.parametrize("allow_revision", [False, True])
async def test_after_the_subject_voted_its_vote_stands_and_the_new_owner_votes_on_the_rest(
        client, db_pool, staff_headers, make_community, allow_revision):
    m = await joint_meeting(client, db_pool, staff_headers, make_community, matters=TWO_RESOLUTIONS,
                            rules={"allow_revision": allow_revision})
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    status, body = await redeem(client, codes["A+B"].code, PHONES["A"][-4:])
    resp = await cast(client, body["token"], [{"matter_id": "M1", "choice": "no"}])
    assert resp.status == 201

    status, doc = await record(client, m, transfer_body())
    assert status == 201, doc
    assert (doc["voted_matters"], doc["open_matters"], doc["votes_stand"]) == (["M1"], ["M2"], True)
    assert "原业主已对议题 M1 投票，原投票有效" in doc["message"] and doc["code"]["serial"] == 2
    status, body = await redeem(client, doc["code"]["code"], NEW_OWNER["phone"][-4:])
    token = body["token"]
    # no re-vote on M1, whether the meeting allows revising a vote or not; nothing of the request is kept
    for votes in ([{"matter_id": "M1", "choice": "yes"}],
                  [{"matter_id": "M2", "choice": "yes"}, {"matter_id": "M1", "choice": "yes"}]):
        resp = await cast(client, token, votes)
        error = (await resp.json())["error"]
        assert resp.status == 409 and error["code"] == ("voted_before_transfer" if allow_revision
                                                        else "already_voted"), error
    resp = await cast(client, token, [{"matter_id": "M2", "choice": "yes"}])
    assert resp.status == 201, await resp.text()
    results = await result_of(db_pool, m)
    assert results["M1"]["no"] == {"area": "180.75", "persons": 1} and results["M1"]["yes"]["persons"] == 0
    assert results["M2"]["yes"] == {"area": "180.75", "persons": 1}


async def test_a_paper_vote_before_the_transfer_stands_against_any_channel(client, db_pool, staff_headers,
                                                                           make_community):
    # revising is allowed, so nothing but the transfer stops a second vote on M1
    m = await joint_meeting(client, db_pool, staff_headers, make_community, matters=TWO_RESOLUTIONS,
                            rules={"allow_revision": True})
    two = await clerks(staff_headers, m.community_id)
    await double_entry(client, m, two, "A+B", [{"matter_id": "M1", "choice": "abstain"}])
    status, doc = await record(client, m, transfer_body())
    assert status == 201 and doc["voted_matters"] == ["M1"]
    status, body = await redeem(client, doc["code"]["code"], NEW_OWNER["phone"][-4:])
    # an electronic vote (which does not look at paper ones before writing): the database refuses it
    resp = await cast(client, body["token"], [{"matter_id": "M1", "choice": "yes"}])
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "voted_before_transfer")
    # a new paper sheet of the subject marking M1: refused when it would count (its second entry) ...
    url = f"{m.base}/paper/entries"
    sheet = {"voter_id": "A+B", "votes": [{"matter_id": "M1", "choice": "yes"}]}
    assert (await client.post(url, headers=two[0], json=sheet)).status == 201
    resp = await client.post(url, headers=two[1], json=sheet)
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (409, "voted_before_transfer"), body
    assert "原业主已对议题 M1 投票" in body["error"]["message"]
    # (the refused entry is not kept: the sheet waits with its first entry)
    async with db_pool.acquire() as conn:
        sheets = await conn.fetch("SELECT status, (SELECT count(*) FROM paper_entry e WHERE e.community_id = "
                                  "p.community_id AND e.paper_id = p.paper_id) AS entries FROM paper_ballot p "
                                  "WHERE community_id = $1 ORDER BY paper_id", m.community_id)
    assert [(r["status"], r["entries"]) for r in sheets] == [("matched", 2), ("pending", 1)]
    results = await result_of(db_pool, m)
    assert results["M1"]["abstain"] == {"area": "180.75", "persons": 1} and results["M1"]["yes"]["persons"] == 0
    # while a sheet of the subject is being entered, it cannot change hands again
    status, doc = await record(client, m, transfer_body())
    assert (status, doc["error"]["code"]) == (409, "paper_ballot_pending")


async def test_a_vote_racing_the_transfer_is_either_before_it_and_stands_or_refused(
        client, db_pool, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    for voter_id, owner in (("A+B", "A"), ("A", "A"), ("C", "C")):
        status, body = await redeem(client, codes[voter_id].code, PHONES[owner][-4:], device=f"race-{owner}-1")
        assert status == 200, body
        vote, (status, doc) = await asyncio.gather(
            cast(client, body["token"], [{"matter_id": "M1", "choice": "no"}]),
            record(client, m, transfer_body(voter_id=voter_id)))
        assert status == 201, doc
        if vote.status == 201:
            assert (doc["voted_matters"], doc["code"]) == (["M1"], None)
        else:
            assert (vote.status, (await vote.json())["error"]["code"]) == (401, "ballot_session_revoked")
            assert doc["voted_matters"] == [] and doc["code"]["serial"] == 2


async def test_the_transfer_waits_for_a_vote_in_flight_and_a_vote_during_it_is_refused(
        client, db_pool, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    tokens = {}
    for voter_id, owner in (("A+B", "A"), ("C", "C")):
        status, body = await redeem(client, codes[voter_id].code, PHONES[owner][-4:], device=f"flight-{owner}-1")
        tokens[voter_id] = body["token"]

    # 1. A+B's vote is written but not committed when the transfer starts: the transfer waits for
    #    it, and the vote stands
    jti = jwt.decode(tokens["A+B"], options={"verify_signature": False})["jti"]
    async with db_pool.acquire() as conn:
        voting = conn.transaction()
        await voting.start()
        p = casting.prepare_ballot(m.community_id, m.meeting_id, "A+B", [casting.Vote("M1", (("", "no"),))],
                                   jti=jti, idempotency_key=None)
        row = await casting_repo.cast(conn, m.community_id, m.meeting_id, allow_revision=False, ballot=p,
                                      short_label=BALLOT_RECEIPT_LABEL, short_alphabet=BALLOT_RECEIPT_ALPHABET,
                                      short_chars=BALLOT_RECEIPT_CHARS)
        assert row is not None
        assert row["session_live"] and len(row["stored"]) == 1 and row["short_code"]
        transfer = asyncio.create_task(record(client, m, transfer_body()))
        await asyncio.sleep(0.5)
        assert not transfer.done()
        await voting.commit()
    status, doc = await transfer
    assert status == 201 and (doc["voted_matters"], doc["code"]) == (["M1"], None)

    # 2. C's transfer has revoked C's session but not committed (held up at C's proxy authorization):
    #    a vote with that session waits for it and is refused
    resp = await client.post(f"{m.base}/proxies", headers=m.headers, json={
        "owner_voter_id": "C", "proxy_voter_id": "A", "document_ref": "委托书 002",
        "valid_until": (datetime.now(UTC) + timedelta(days=3)).isoformat()})
    assert resp.status == 201, await resp.text()
    async with db_pool.acquire() as conn:
        holding = conn.transaction()
        await holding.start()
        await conn.execute("SELECT 1 FROM proxy_authorization WHERE community_id = $1 AND owner_voter_id = 'C' "
                           "FOR UPDATE", m.community_id)
        transfer = asyncio.create_task(record(client, m, transfer_body(voter_id="C")))
        await asyncio.sleep(0.5)
        vote = asyncio.create_task(cast(client, tokens["C"], [{"matter_id": "M1", "choice": "yes"}]))
        await asyncio.sleep(0.3)
        assert not transfer.done() and not vote.done()
        await holding.commit()
    status, doc = await transfer
    assert status == 201 and doc["voted_matters"] == [] and doc["code"]["serial"] == 2
    resp = await vote
    assert (resp.status, (await resp.json())["error"]["code"]) == (401, "ballot_session_revoked")


async def test_a_subject_that_voted_on_everything_gets_no_new_code(client, db_pool, staff_headers,
                                                                   make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    status, body = await redeem(client, codes["C"].code, PHONES["C"][-4:])
    assert (await cast(client, body["token"], [{"matter_id": "M1", "choice": "yes"}])).status == 201
    status, doc = await record(client, m, transfer_body(voter_id=None, units=["2-202"]))
    assert status == 201, doc
    assert (doc["voter_id"], doc["voted_matters"], doc["open_matters"], doc["code"], doc["code_serial"]) == (
        "C", ["M1"], [], None, None)
    assert "不发放新码" in doc["message"] and await live_serials(db_pool, m, "C") == []
    status, body = await redeem(client, codes["C"].code, PHONES["C"][-4:])
    assert (status, body["error"]["code"]) == (404, "code_invalid")
    assert (await result_of(db_pool, m))["M1"]["yes"] == {"area": "120.00", "persons": 1}


async def test_part_of_a_subject_cannot_change_hands_during_voting(client, db_pool, staff_headers,
                                                                    make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    for body in (transfer_body(voter_id=None, units=["1-101"]), transfer_body(units=["2-201"])):
        status, doc = await record(client, m, body)
        assert (status, doc["error"]["code"]) == (409, "partial_transfer_refused"), doc
        assert "只能整体转让一个表决主体的全部房屋" in doc["error"]["message"]
        assert "会议结束后更新业主登记册" in doc["error"]["message"]
        assert doc["error"]["fields"]["units"] == ["1-101", "2-201"]
    assert doc["error"]["fields"]["units_missing"] == ["1-101"]
    # other units that do not make one subject
    refusals = {
        "units_of_several_subjects": transfer_body(voter_id=None, units=["1-102", "2-202"]),
        "units_not_in_electorate": transfer_body(voter_id=None, units=["9-999"]),
        "units_not_of_subject": transfer_body(voter_id="A", units=["1-101", "2-201"]),
        "voter_not_found": transfer_body(voter_id="Z"),
        "new_owner_identity_missing": transfer_body(new_owner={"name": "赵六"}),
        "bad_phone": transfer_body(new_owner={"name": "赵六", "phone": "12"}),
        "bad_evidence_kind": transfer_body(evidence=EVIDENCE | {"kind": "口头说明"}),
        "bad_evidence_date": transfer_body(evidence=EVIDENCE | {"date": (datetime.now(UTC) + timedelta(days=3))
                                                                 .date().isoformat()}),
        "subject_required": {"new_owner": NEW_OWNER, "evidence": EVIDENCE},
    }
    for code, body in refusals.items():
        status, doc = await record(client, m, body)
        assert doc["error"]["code"] == code and status in (404, 422), (code, status, doc)
    # nothing was written: the codes are all live, no transfer
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM subject_transfer WHERE community_id = $1",
                                   m.community_id) == 0
    assert await live_serials(db_pool, m, "A+B") == [1]


async def test_the_database_takes_only_whole_subjects_while_voting(client, db_pool, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await conn.execute(
                """INSERT INTO subject_transfer (community_id, meeting_id, voter_id, units, evidence_kind,
                                                 evidence_reference, evidence_date, voted_matters, open_matters,
                                                 recorded_by)
                   VALUES ($1, $2, 'A+B', '{1-101}', 'sale_contract', 'x', '2026-01-01', '{}', '{M1}', 't')""",
                m.community_id, m.meeting_id)
    assert caught.value.constraint_name == "subject_transfer_whole_subject"


async def test_the_database_takes_a_transfer_only_with_the_code_it_names(client, db_pool, staff_headers,
                                                                         make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError) as caught:
            async with conn.transaction():
                await conn.execute(
                    """INSERT INTO subject_transfer (community_id, meeting_id, voter_id, units, evidence_kind,
                                                     evidence_reference, evidence_date, voted_matters, open_matters,
                                                     code_serial, recorded_by)
                       VALUES ($1, $2, 'A+B', '{1-101,2-201}', 'sale_contract', 'x', '2026-01-01', '{}', '{M1}',
                               7, 't')""", m.community_id, m.meeting_id)
    assert caught.value.constraint_name == "subject_transfer_code_issued"


async def test_who_may_record_transfers_and_when(client, db_pool, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community, state="noticed")
    auditor = await staff_headers("auditor", communities=[m.community_id])
    status, doc = await record(client, m, transfer_body(), auditor)
    assert (status, doc["error"]["code"]) == (403, "role_forbidden")
    stranger = await staff_headers("prep_group", communities=[await make_community()])
    status, doc = await record(client, m, transfer_body(), stranger)
    assert (status, doc["error"]["code"]) == (403, "community_forbidden")
    assert (await client.post(f"{m.base}/transfers", json=transfer_body())).status == 401
    # before voting opens (noticed: the electorate is frozen, codes are being handed out) ...
    committee = await staff_headers("committee", communities=[m.community_id])
    status, doc = await record(client, m, transfer_body(), committee)
    assert status == 201 and doc["code"]["serial"] == 1 and doc["revoked_serials"] == []
    assert "原选票码已作废" not in doc["message"] and doc["code"]["sheet_pdf_base64"] is None
    # ... readable by auditors, not by other communities
    resp = await client.get(f"{m.base}/transfers", headers=auditor)
    assert resp.status == 200 and len((await resp.json())["transfers"]) == 1
    assert (await client.get(f"{m.base}/transfers", headers=stranger)).status == 403
    # not after voting ends
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET state = 'open' WHERE community_id = $1 AND meeting_id = $2",
                           m.community_id, m.meeting_id)
        await conn.execute("UPDATE meeting SET state = 'closed' WHERE community_id = $1 AND meeting_id = $2",
                           m.community_id, m.meeting_id)
    status, doc = await record(client, m, transfer_body(voter_id="C"))
    assert (status, doc["error"]["code"]) == (409, "meeting_closed")
    # nor in a draft: the register is updated instead
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings", headers=m.headers,
                             json={"meeting_id": "draft-1", "title": "草稿", "matters": ONE_RESOLUTION,
                                   "opens_at": (datetime.now(UTC) + timedelta(days=20)).isoformat()})
    assert resp.status == 201, await resp.text()
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings/draft-1/transfers",
                             json=transfer_body(), headers=m.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "meeting_not_noticed")
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings/nope/transfers",
                             json=transfer_body(), headers=m.headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "meeting_not_found")


async def test_a_second_transfer_hands_the_code_to_the_latest_owner(client, db_pool, staff_headers,
                                                                   make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    status, first = await record(client, m, transfer_body())
    assert status == 201
    later = {"name": "钱七", "phone": "13500005555"}
    status, second = await record(client, m, transfer_body(new_owner=later,
                                                           evidence=EVIDENCE | {"kind": "court_document"}))
    assert status == 201 and second["revoked_serials"] == [first["code"]["serial"]]
    status, _ = await redeem(client, second["code"]["code"], NEW_OWNER["phone"][-4:])
    assert status == 403
    status, body = await redeem(client, second["code"]["code"], later["phone"][-4:])
    assert status == 200 and body["voter"]["name"] == "钱*"
    resp = await client.get(f"{m.base}/transfers", headers=m.headers)
    assert [t["new_owner"]["name"] for t in (await resp.json())["transfers"]] == ["赵*", "钱*"]


async def test_with_a_master_key_the_new_owners_phone_is_sealed_and_another_key_cannot_check(
        client, db_pool, settings, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    keyed = settings.replace(master_key="transfer master key")
    result = await transfers_service.record_transfer(
        db_pool, community_id=m.community_id, meeting_id=m.meeting_id, actor="test", public_url="http://evote.test",
        request=transfers_service.parse_request(transfer_body()), settings=keyed)
    transfer_id = result.transfer["transfer_id"]
    assert result.transfer["new_owner"] == {"name": "赵*", "phone": "136********", "id_number": "350***************"}
    keys = personal_data.identity_keys(keyed)
    row = await new_owner_row(db_pool, m, transfer_id)
    assert row["identity_key_id"] == keys.key_id and row["phone"] == row["id_number"] == ""
    owner_id = identity.transfer_owner_id(transfer_id)
    assert owner_id == f"transfer:{transfer_id}"
    assert identity.open_phone(keys.phone_aead, m.community_id, identity.TRANSFER_VERSION, owner_id,
                               bytes(row["phone_enc"])) == NEW_OWNER["phone"]
    for typed in ("4444", "4321"):
        assert identity.identity_matches_digests(keys.hmac_key, typed, community_id=m.community_id,
                                                 owner_id=owner_id, phone_hmac=row["phone_hmac"],
                                                 id_hmac=row["id_hmac"])
    assert await clear_anywhere(db_pool, (NEW_OWNER["phone"], NEW_OWNER["id_number"])) == []
    # The app runs without that master key: it cannot check the new owner's digits, says so (503), and
    # does not count the attempt against them.
    assert result.code is not None
    status, body = await redeem(client, result.code.code, "4444")
    assert (status, body["error"]["code"]) == (503, "identity_check_unavailable")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT failed_attempts FROM ballot_code WHERE community_id = $1 AND "
                                   "meeting_id = $2 AND voter_id = 'A+B' AND serial = $3",
                                   m.community_id, m.meeting_id, result.code.serial) == 0


async def test_a_new_owner_stored_in_clear_is_converted_by_the_start_up_step(client, db_pool, settings,
                                                                             staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    status, doc = await record(client, m, transfer_body())
    assert status == 201, doc
    where = "WHERE community_id = $1 AND meeting_id = $2 AND transfer_id = $3"
    ids = (m.community_id, m.meeting_id, doc["transfer_id"])
    async with db_pool.acquire() as conn:
        # once the start-up step ran (the app's start), the database refuses a number in clear
        with pytest.raises(asyncpg.CheckViolationError, match="transfer_new_owner_identity_not_in_clear"):
            await conn.execute(f"UPDATE transfer_new_owner SET phone = '13600004444' {where}", *ids)
        async with conn.transaction():
            # a row as migration 0074 stored it, its constraint as 0075 leaves it before the step
            await conn.execute("ALTER TABLE transfer_new_owner DROP CONSTRAINT transfer_new_owner_identity_not_in_clear")
            await conn.execute(
                f"""UPDATE transfer_new_owner SET phone = $4, id_number = $5, phone_hmac = NULL, id_hmac = NULL,
                           identity_key_id = NULL, phone_masked = '', id_masked = '' {where}""",
                *ids, NEW_OWNER["phone"], NEW_OWNER["id_number"])
            await conn.execute("ALTER TABLE transfer_new_owner ADD CONSTRAINT transfer_new_owner_identity_not_in_clear"
                               " CHECK (phone = '' AND id_number = '') NOT VALID")
            assert await personal_data.protect_stored_identities(conn, settings) == 1
            assert await conn.fetchval("SELECT convalidated FROM pg_constraint "
                                       "WHERE conname = 'transfer_new_owner_identity_not_in_clear'")
        assert await personal_data.protect_stored_identities(conn, settings) == 0
    row = await new_owner_row(db_pool, m, doc["transfer_id"])
    assert (row["phone"], row["id_number"], row["phone_masked"], row["id_masked"]) == (
        "", "", "136********", "350***************")
    assert await clear_anywhere(db_pool, (NEW_OWNER["phone"], NEW_OWNER["id_number"])) == []
    status, body = await redeem(client, doc["code"]["code"], "4321")
    assert status == 200, body


async def test_purge_leaves_the_new_owner_a_masked_name_only(client, db_pool, staff_headers, make_community):
    m = await joint_meeting(client, db_pool, staff_headers, make_community)
    status, doc = await record(client, m, transfer_body())
    assert status == 201, doc
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    async with db_pool.acquire() as conn:
        for _ in range(100):    # the close hook signs the result just after the close
            if await conn.fetchval("SELECT count(*) FROM meeting_result WHERE community_id = $1", m.community_id):
                break
            await asyncio.sleep(0.05)
        await conn.execute("UPDATE meeting_transition SET at = at - interval '6 years' WHERE community_id = $1",
                           m.community_id)
    before = purge.parse_before(None, purge.today_cn(datetime.now(UTC)))
    dry = await purge.purge_personal_data(db_pool, before=before, actor="test", dry_run=True,
                                          community_id=m.community_id)
    assert (dry["totals"]["meetings"], dry["totals"]["new_owners"]) == (1, 1)
    assert (await new_owner_row(db_pool, m, doc["transfer_id"]))["phone_hmac"] is not None
    done = await purge.purge_personal_data(db_pool, before=before, actor="test", community_id=m.community_id)
    assert done["totals"] == dry["totals"]
    row = await new_owner_row(db_pool, m, doc["transfer_id"])
    assert tuple(row) == ("赵*", "", "", None, None, None, "", "", None)
    # the transfer itself stays
    resp = await client.get(f"{m.base}/transfers", headers=m.headers)
    listed = (await resp.json())["transfers"]
    assert [(t["voter_id"], t["new_owner"]) for t in listed] == [
        ("A+B", {"name": "赵*", "phone": "", "id_number": ""})]
