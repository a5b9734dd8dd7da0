"""Owner codes: lockouts that escalate (15 minutes, 4 hours, then until a staff unlock), the audited
unlock (API and `evote codes unlock`), and masked numbers that show staff nothing sign-in checks."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from server.ballot.codes import code_hash
from server.ballot.masking import HIDDEN_FROM_AUDITORS, mask_id_number, mask_phone, masked_for_role
from server.cli import main as evote
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity, wrong_last4


@pytest_asyncio.fixture
async def meeting(imported_community, db_pool, client, staff_headers):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, seed=17)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    return community_id, meeting_id, codes, voter, identity


async def redeem(client, **body):
    resp = await client.post("/api/ballot/redeem", json=body)
    return resp.status, await resp.json()


async def _fail_five(client, code, identity):
    answers = [await redeem(client, code=code, last4=wrong_last4(identity)) for _ in range(5)]
    assert [a[1]["error"]["code"] for a in answers[:4]] == ["identity_mismatch"] * 4
    return answers[4]


async def _lock_runs_out(db_pool, code):
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_code SET locked_until = clock_timestamp() - interval '1 second' "
                           "WHERE code_hash = $1", code_hash(code))


async def _row(db_pool, code):
    async with db_pool.acquire() as conn:
        return await conn.fetchrow("SELECT failed_attempts, locked_until, lock_level FROM ballot_code "
                                   "WHERE code_hash = $1", code_hash(code))


def _unlock_url(community_id, meeting_id, voter):
    return f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes/{voter}/unlock"


async def test_lockouts_escalate_from_15_minutes_to_4_hours_to_a_staff_unlock(client, meeting, db_pool):
    community_id, _, codes, voter, identity = meeting
    code = codes[voter].code
    status, body = await _fail_five(client, code, identity)
    assert (status, body["error"]["code"]) == (429, "code_locked")
    retry_at = datetime.fromisoformat(body["error"]["fields"]["retry_at"])
    assert timedelta(minutes=14) < retry_at - datetime.now(UTC) <= timedelta(minutes=15)
    assert "北京时间" in body["error"]["message"] and "以后再试" in body["error"]["message"]
    assert (await _row(db_pool, code))["lock_level"] == 1

    await _lock_runs_out(db_pool, code)
    status, body = await _fail_five(client, code, identity)
    assert (status, body["error"]["code"]) == (429, "code_locked")
    retry_at = datetime.fromisoformat(body["error"]["fields"]["retry_at"])
    assert timedelta(hours=3, minutes=59) < retry_at - datetime.now(UTC) <= timedelta(hours=4)
    beijing = retry_at.astimezone(UTC) + timedelta(hours=8)
    assert f"{beijing:%H:%M}" in body["error"]["message"] and f"{beijing.month}月{beijing.day}日" in \
        body["error"]["message"]
    assert (await _row(db_pool, code))["lock_level"] == 2

    await _lock_runs_out(db_pool, code)
    status, body = await _fail_five(client, code, identity)
    assert (status, body["error"]["code"]) == (403, "code_locked")
    assert body["error"]["fields"] == {"retry_at": None, "unlock_required": True}
    assert "解锁" in body["error"]["message"]
    row = await _row(db_pool, code)
    assert row["lock_level"] == 3 and row["locked_until"] == datetime.max   # 'infinity'
    # the right answer does not get through, and no time passing ends it
    status, body = await redeem(client, code=code, last4=phone_last4(identity))
    assert (status, body["error"]["code"], body["error"]["fields"]["unlock_required"]) == (403, "code_locked", True)
    async with db_pool.acquire() as conn:
        locks = await conn.fetch("SELECT detail FROM audit_log WHERE community_id = $1 AND action = 'code.locked' "
                                 "ORDER BY seq", community_id)
    levels = [(json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]) for r in locks]
    assert [(d["lock_level"], d["until_unlock"]) for d in levels] == [(1, False), (2, False), (3, True)]


async def test_parallel_guesses_at_the_last_level_lock_until_unlock(client, meeting, db_pool):
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_code SET lock_level = 2 WHERE code_hash = $1", code_hash(code))
    guesses = [f"{n:04d}" for n in range(10000) if f"{n:04d}" != phone_last4(identity)][:12]
    results = await asyncio.gather(*(redeem(client, code=code, last4=g) for g in guesses))
    assert sorted(s for s, _ in results).count(403) == 12
    assert sum(1 for _, b in results if b["error"]["code"] == "identity_mismatch") == 4
    row = await _row(db_pool, code)
    assert (row["failed_attempts"], row["lock_level"]) == (5, 3)


async def test_a_right_answer_resets_the_ladder(client, meeting, db_pool):
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    await _fail_five(client, code, identity)
    await _lock_runs_out(db_pool, code)
    status, _ = await redeem(client, code=code, last4=phone_last4(identity))
    assert status == 200
    row = await _row(db_pool, code)
    assert (row["failed_attempts"], row["locked_until"], row["lock_level"]) == (0, None, 0)


async def test_staff_unlock_resets_the_code_and_is_audited(client, meeting, db_pool, staff_headers):
    community_id, meeting_id, codes, voter, identity = meeting
    code = codes[voter].code
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_code SET lock_level = 3, failed_attempts = 5, locked_until = 'infinity' "
                           "WHERE code_hash = $1", code_hash(code))
    headers = await staff_headers("committee", communities=[community_id])
    url = _unlock_url(community_id, meeting_id, voter)
    resp = await client.post(url, json={}, headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["fields"] == {"reason": "必填"}
    resp = await client.post(url, json={"reason": "已当面核实业主身份"}, headers=headers)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["voter_id"] == voter and doc["serial"] == 1 and doc["was_locked"] is True
    assert (doc["failed_attempts"], doc["lock_level"], doc["until_unlock"]) == (5, 3, True)
    row = await _row(db_pool, code)
    assert (row["failed_attempts"], row["locked_until"], row["lock_level"]) == (0, None, 0)
    async with db_pool.acquire() as conn:
        entry = await conn.fetchrow("SELECT actor, detail FROM audit_log WHERE community_id = $1 "
                                    "AND action = 'codes.unlock'", community_id)
    detail = json.loads(entry["detail"]) if isinstance(entry["detail"], str) else entry["detail"]
    assert entry["actor"].startswith("staff:") and detail["reason"] == "已当面核实业主身份"
    assert detail["voter_id"] == voter and detail["meeting_id"] == meeting_id
    # unlocked: five more tries, at the first level again
    status, body = await redeem(client, code=code, last4=wrong_last4(identity))
    assert (status, body["error"]["fields"]["attempts_left"]) == (403, 4)
    status, _ = await redeem(client, code=code, last4=phone_last4(identity))
    assert status == 200


async def test_unlock_is_refused_to_auditors_strangers_and_for_unknown_voters(client, meeting, staff_headers,
                                                                             make_community):
    community_id, meeting_id, _, voter, _ = meeting
    url = _unlock_url(community_id, meeting_id, voter)
    body = {"reason": "核实"}
    auditor = await staff_headers("auditor", communities=[community_id])
    resp = await client.post(url, json=body, headers=auditor)
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "role_forbidden")
    stranger = await staff_headers("prep_group", communities=[await make_community()])
    assert (await client.post(url, json=body, headers=stranger)).status == 403
    assert (await client.post(url, json=body)).status == 401
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(_unlock_url(community_id, meeting_id, "nobody"), json=body, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "code_not_found")
    resp = await client.post(_unlock_url(community_id, "nope", voter), json=body, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "meeting_not_found")


async def test_evote_codes_unlock(client, meeting, db_pool, database_url, monkeypatch, capsys):
    community_id, meeting_id, codes, voter, identity = meeting
    code = codes[voter].code
    await _fail_five(client, code, identity)
    monkeypatch.setenv("EVOTE_DATABASE_URL", database_url)
    rc = await asyncio.to_thread(evote, ["codes", "unlock", meeting_id, "--community", community_id,
                                         "--voter", voter, "--reason", "业主来电核实"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["was_locked"] is True and doc["lock_level"] == 1 and doc["until_unlock"] is False
    assert (await _row(db_pool, code))["lock_level"] == 0
    async with db_pool.acquire() as conn:
        entry = await conn.fetchrow("SELECT actor FROM audit_log WHERE community_id = $1 AND action = 'codes.unlock'",
                                    community_id)
    assert entry["actor"] == "cli"
    rc = await asyncio.to_thread(evote, ["codes", "unlock", meeting_id, "--community", community_id,
                                         "--voter", voter, "--reason", " "])
    assert rc != 0


def test_masked_numbers_keep_only_the_first_three_and_auditors_see_none():
    assert mask_phone("13812345678") == "138********"
    assert mask_phone("138-1234-5678") == "138********"
    assert mask_phone("12345") == "*****"
    assert mask_id_number("35050219900101123X") == "350***************"
    assert mask_id_number("1234567") == "*******"
    assert masked_for_role("138********", "committee") == "138********"
    assert masked_for_role("138********", "auditor") == HIDDEN_FROM_AUDITORS
    assert masked_for_role("", "auditor") == ""


async def test_auditors_see_no_masked_numbers_in_the_register(client, meeting, staff_headers):
    community_id = meeting[0]
    url = f"/api/admin/communities/{community_id}/register/subjects"
    committee = await (await client.get(url, headers=await staff_headers("committee",
                                                                         communities=[community_id]))).json()
    auditor = await (await client.get(url, headers=await staff_headers("auditor",
                                                                       communities=[community_id]))).json()
    shown = [s["phone"] for s in committee["subjects"] if s["phone"]]
    assert shown and all(p[:3].isdigit() and set(p[3:]) == {"*"} for p in shown)
    assert {s["phone"] for s in auditor["subjects"]} <= {"", HIDDEN_FROM_AUDITORS}
    assert {s["id_number"] for s in auditor["subjects"]} <= {"", HIDDEN_FROM_AUDITORS}
    assert {o["phone"] for s in auditor["subjects"] for o in s["owners"]} <= {"", HIDDEN_FROM_AUDITORS}


async def test_migration_0077_remasks_stored_forms(meeting, db_pool):
    """0077's UPDATEs, run again over forms masked the old way, leave the first three characters only."""
    from pathlib import Path

    import server.db

    community_id = meeting[0]
    sql = (Path(server.db.__file__).parent / "migrations" / "0077_code_lockout_masks.sql").read_text()
    updates = [s[s.index("UPDATE"):] for s in sql.split(";") if "UPDATE" in s]
    assert len(updates) == 4
    async with db_pool.acquire() as conn:
        owner_id = await conn.fetchval("SELECT owner_id FROM owner WHERE community_id = $1 ORDER BY owner_id LIMIT 1",
                                       community_id)
        await conn.execute("UPDATE owner SET phone_masked = '138****5678', id_masked = '3505**********123X' "
                           "WHERE community_id = $1 AND owner_id = $2", community_id, owner_id)
        await conn.execute("UPDATE owner SET phone_masked = '*****', id_masked = '' "
                           "WHERE community_id = $1 AND owner_id <> $2", community_id, owner_id)
        for statement in updates:
            await conn.execute(statement)
        rows = await conn.fetch("SELECT owner_id, phone_masked, id_masked FROM owner WHERE community_id = $1",
                                community_id)
    by_id = {r["owner_id"]: (r["phone_masked"], r["id_masked"]) for r in rows}
    assert by_id.pop(owner_id) == ("138********", "350***************")
    assert set(by_id.values()) == {("*****", "")}
