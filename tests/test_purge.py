"""`evote purge`: personal data of meetings decided before a date goes (codes, sessions, sign-in attempts,
WeChat openids, the pseudonym key; the register's names masked and numbers' hashes, masked forms and
encrypted phones removed), the signed record and the audit chain stay; dry run, audit, bad dates."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, date, datetime

import asyncpg
import pytest

from server.ballot.masking import mask_name
from server.services import purge
from server.services.audit import verify_audit
from tests.helpers_codes import issue_codes, person_voter, phone_last4, voter_identity, wrong_last4
from tests.helpers_meetings import close_now, meeting_body, open_meeting
from tests.helpers_register import ONE_RESOLUTION
from tests.helpers_results import voted_meeting

SIX_YEARS = "interval '6 years'"


async def _decided_long_ago(db_pool, client, staff_headers, imported_community):
    """A meeting with codes (one redeemed on a device and bound to WeChat, one with a failed attempt) and
    sessions, closed, signed and published, whose decision and register import are then moved six years back."""
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12, close=False)
    m = v.m
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = await person_voter(db_pool, m.community_id, m.meeting_id, codes)
    identity = await voter_identity(db_pool, m.community_id, m.meeting_id, voter)
    resp = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": phone_last4(identity),
                                                         "device_id": "device-of-owner"})
    assert resp.status == 200, await resp.text()
    other = next(v for v in sorted(codes) if v != voter)
    resp = await client.post("/api/ballot/redeem", json={"code": codes[other].code, "last4": wrong_last4(
        await voter_identity(db_pool, m.community_id, m.meeting_id, other))})
    assert resp.status == 403
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_code SET wechat_openid = 'o-wechat-user' WHERE community_id = $1 "
                           "AND voter_id = $2", m.community_id, voter)
        for _ in range(100):    # the close hook signs the result just after the close
            if await conn.fetchval("SELECT count(*) FROM meeting_result WHERE community_id = $1", m.community_id):
                break
            await asyncio.sleep(0.05)
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={})
    assert resp.status == 200, await resp.text()
    async with db_pool.acquire() as conn:
        await conn.execute(f"UPDATE meeting_transition SET at = at - {SIX_YEARS} WHERE community_id = $1",
                           m.community_id)
        await conn.execute(f"UPDATE register_version SET created_at = created_at - {SIX_YEARS} "
                           "WHERE community_id = $1", m.community_id)
    return m


async def _signed_record(conn, community_id: str) -> tuple:
    result = await conn.fetchrow("SELECT result_json, signed_json, receipts_root FROM meeting_result "
                                 "WHERE community_id = $1", community_id)
    files = await conn.fetch("SELECT name, sha256 FROM meeting_record_file WHERE community_id = $1 ORDER BY name",
                             community_id)
    assert result is not None and files
    return tuple(result), [tuple(f) for f in files]


async def _personal(conn, community_id: str) -> dict:
    return {
        "codes": await conn.fetchval("SELECT count(*) FROM ballot_code WHERE community_id = $1", community_id),
        "sessions": await conn.fetchval("SELECT count(*) FROM ballot_session WHERE community_id = $1", community_id),
        "hashes": await conn.fetchval("SELECT count(*) FROM owner WHERE community_id = $1 AND (phone_hmac IS NOT NULL"
                                      " OR id_hmac IS NOT NULL OR phone_masked <> '' OR id_masked <> '')",
                                      community_id),
        "pseudonym_key": await conn.fetchval("SELECT length(pseudonym_key) FROM meeting_result "
                                             "WHERE community_id = $1", community_id),
    }


async def test_purge_removes_personal_data_and_keeps_the_signed_record(client, db_pool, staff_headers,
                                                                        imported_community):
    m = await _decided_long_ago(db_pool, client, staff_headers, imported_community)
    cid = m.community_id
    before = purge.parse_before(None, purge.today_cn(datetime.now(UTC)))
    async with db_pool.acquire() as conn:
        record = await _signed_record(conn, cid)
        personal = await _personal(conn, cid)
        names = dict(await conn.fetch("SELECT owner_id, name FROM owner WHERE community_id = $1", cid))
        audits = await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id = $1", cid)
    assert personal["codes"] > 2 and personal["sessions"] > 1 and personal["hashes"] and personal["pseudonym_key"]

    dry = await purge.purge_personal_data(db_pool, before=before, actor="test", dry_run=True, community_id=cid)
    totals = dry["totals"]
    assert totals == {"meetings": 1, "register_versions": 1, "owners": len(names), "codes": personal["codes"],
                      "sessions": personal["sessions"], "wechat_openids": 1, "signin_attempts": 1,
                      "new_owners": 0}
    assert dry["communities"][0]["meetings"][0]["meeting_id"] == m.meeting_id
    async with db_pool.acquire() as conn:
        assert await _personal(conn, cid) == personal      # a dry run changes nothing ...
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id = $1", cid) == audits

    done = await purge.purge_personal_data(db_pool, before=before, actor="test", community_id=cid)
    assert done["totals"] == totals and not done["dry_run"]
    async with db_pool.acquire() as conn:
        assert await _personal(conn, cid) == {"codes": 0, "sessions": 0, "hashes": 0, "pseudonym_key": 0}
        assert await _signed_record(conn, cid) == record    # the signed record is untouched
        after = dict(await conn.fetch("SELECT owner_id, name FROM owner WHERE community_id = $1", cid))
        assert after == {owner: mask_name(name) for owner, name in names.items()}
        assert await conn.fetchval("SELECT personal_data_purged_at IS NOT NULL FROM register_version "
                                   "WHERE community_id = $1", cid)
        entry = await conn.fetchrow("SELECT actor, detail::text AS detail FROM audit_log WHERE community_id = $1 "
                                    "AND action = 'personal_data.purge'", cid)
    assert entry["actor"] == "test"
    detail = json.loads(entry["detail"])
    assert detail["meetings"] == [m.meeting_id] and detail["register_versions"] == [1]
    assert detail["counts"] == totals and detail["before"] == before.isoformat()
    count, problems = await verify_audit(db_pool, cid)
    assert count > 0 and problems == []
    # The published result and the record are still served.
    for what in ("result", "record.zip"):
        resp = await client.get(f"/api/public/meetings/{cid}/{m.meeting_id}/{what}", headers=m.headers)
        assert resp.status == 200, (what, await resp.text())
    # Done once: a second run finds nothing.
    again = await purge.purge_personal_data(db_pool, before=before, actor="test", community_id=cid)
    assert again["communities"] == [] and again["totals"] == {}

    # A purged register cannot be frozen by a new notice: import a current register first.
    body = meeting_body(matters=ONE_RESOLUTION)
    resp = await client.post(f"/api/admin/communities/{cid}/meetings", json=body, headers=m.headers)
    assert resp.status == 201, await resp.text()
    resp = await client.post(f"/api/admin/communities/{cid}/meetings/{body['meeting_id']}/notice", headers=m.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "register_purged", await resp.text()
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT state FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                                   cid, body["meeting_id"]) == "draft"
        # and the database refuses it by itself
        with pytest.raises(asyncpg.CheckViolationError, match="个人信息已按保存期限清除"):
            await conn.execute(
                """UPDATE meeting SET state = 'noticed', register_version = 1, total_area = 1, total_persons = 1,
                          noticed_at = now(), area_places = 2 WHERE community_id = $1 AND meeting_id = $2""",
                cid, body["meeting_id"])


async def test_recent_and_undecided_meetings_keep_their_data(client, db_pool, staff_headers, imported_community):
    recent = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12, close=False)
    await issue_codes(db_pool, recent.m.community_id, recent.m.meeting_id)
    resp = await close_now(client, recent.m.community_id, recent.m.meeting_id, recent.m.headers)
    assert resp.status == 200, await resp.text()
    running = await open_meeting(db_pool, client, staff_headers, imported_community, units=12,
                                 matters=ONE_RESOLUTION)
    await issue_codes(db_pool, running.community_id, running.meeting_id)
    async with db_pool.acquire() as conn:
        # Both registers were imported long ago; one meeting is still open, the other decided today.
        for m in (recent.m, running):
            await conn.execute(f"UPDATE register_version SET created_at = created_at - {SIX_YEARS} "
                               "WHERE community_id = $1", m.community_id)
        kept = {m.community_id: await _personal(conn, m.community_id) for m in (recent.m, running)}
    # Even the latest date allowed, today, takes neither: the open meeting is not decided (so its register
    # stays too), and a meeting decided today was not decided before today.
    today = purge.today_cn(datetime.now(UTC))
    for m in (recent.m, running):
        for before in (purge.parse_before(None, today), today):
            done = await purge.purge_personal_data(db_pool, before=before, actor="test", community_id=m.community_id)
            assert done["communities"] == [], done
    async with db_pool.acquire() as conn:
        assert {cid: await _personal(conn, cid) for cid in kept} == kept


def test_purge_dates():
    today = date(2028, 2, 29)
    assert purge.parse_before(None, today) == date(2023, 2, 28)
    assert purge.parse_before("2020-01-31", today) == date(2020, 1, 31)
    assert purge.parse_before(" 2028-02-29 ", today) == today
    for bad in ("2028-03-01", "yesterday", "2021-02-30", "2021/01/01", ""):
        with pytest.raises(purge.BadPurgeDate):
            purge.parse_before(bad, today)
    assert purge.boundary(date(2021, 6, 1)).isoformat() == "2021-06-01T00:00:00+08:00"


async def _cli(database_url, data_dir, *args) -> tuple[int, str, str]:
    env = {**os.environ, "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(data_dir)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", "purge", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_evote_purge_command(client, db_pool, staff_headers, imported_community, database_url, data_dir):
    status, out, err = await _cli(database_url, data_dir, "--before", "2021-13-01")
    assert status == 2 and out == ""
    assert err.strip() == "evote purge: --before must be a date written YYYY-MM-DD, got '2021-13-01'"
    status, out, err = await _cli(database_url, data_dir, "--before", "2999-01-01")
    assert status == 2 and "after today" in err and out == ""

    m = await _decided_long_ago(db_pool, client, staff_headers, imported_community)
    status, out, err = await _cli(database_url, data_dir, "--community", m.community_id, "--dry-run")
    assert status == 0, err
    dry = json.loads(out)
    assert dry["dry_run"] and dry["totals"]["meetings"] == 1 and dry["totals"]["codes"] > 0
    async with db_pool.acquire() as conn:
        assert (await _personal(conn, m.community_id))["codes"] == dry["totals"]["codes"]
    status, out, err = await _cli(database_url, data_dir, "--community", m.community_id)
    assert status == 0, err
    assert json.loads(out)["totals"] == dry["totals"]
    async with db_pool.acquire() as conn:
        assert (await _personal(conn, m.community_id))["codes"] == 0
        assert await conn.fetchval("SELECT actor FROM audit_log WHERE community_id = $1 "
                                   "AND action = 'personal_data.purge'", m.community_id) == "cli"
