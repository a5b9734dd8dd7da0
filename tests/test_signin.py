"""Owners' sign-in: identity check, lockout (atomic across parallel guesses), devices, WeChat, tokens."""
from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import pytest_asyncio

from server.app import create_app
from server.auth.ballot import BallotPrincipal, ensure_session_live
from server.ballot.codes import code_hash
from server.errors import Unauthorized
from server.services import codes as codes_service
from tests import fake_wechat
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity, wrong_last4
from tests.helpers_register import ONE_RESOLUTION, PHONES, import_lines


@pytest_asyncio.fixture
async def meeting(imported_community, db_pool, client, staff_headers):
    """(community_id, meeting_id, codes by voter, a voter with phone and ID on record, that voter's identity)."""
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, seed=11)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    return community_id, meeting_id, codes, voter, identity


@pytest_asyncio.fixture
async def wechat_server(aiohttp_server):
    return await aiohttp_server(fake_wechat.make_app())


@pytest_asyncio.fixture
async def wx_client(aiohttp_client, settings, wechat_server):
    """The real app configured to call the fake WeChat on localhost."""
    configured = settings.replace(wechat_base_url=str(wechat_server.make_url("")).rstrip("/"),
                                  wechat_appid=fake_wechat.APPID, wechat_secret=fake_wechat.SECRET)
    return await aiohttp_client(create_app(configured))


async def redeem(client, **body):
    resp = await client.post("/api/ballot/redeem", json=body)
    return resp.status, await resp.json()


async def test_redeem_with_phone_last4_returns_a_typed_eddsa_ballot_token(client, meeting, db_pool, settings):
    community_id, meeting_id, codes, voter, identity = meeting
    status, body = await redeem(client, code=codes[voter].code, last4=phone_last4(identity), device_id="device-aaaa-1")
    assert status == 200, body
    header = jwt.get_unverified_header(body["token"])
    assert header == {"alg": "EdDSA", "typ": "evote-ballot+jwt"}
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == voter and claims["mid"] == meeting_id and claims["cid"] == community_id
    assert claims["aud"] == "evote-ballot" and claims["iss"] == settings.token_issuer and claims["jti"]
    async with db_pool.acquire() as conn:
        closes_at = await conn.fetchval("SELECT closes_at FROM meeting WHERE community_id=$1 AND meeting_id=$2",
                                        community_id, meeting_id)
        session = await conn.fetchrow("SELECT voter_id, code_serial, device_hash, revoked_at FROM ballot_session "
                                      "WHERE community_id=$1 AND meeting_id=$2 AND jti=$3",
                                      community_id, meeting_id, claims["jti"])
    assert claims["exp"] == int((closes_at + timedelta(seconds=settings.ballot_token_margin_s)).timestamp())
    assert session["voter_id"] == voter and session["code_serial"] == 1 and session["device_hash"] is not None
    assert body["voter"]["voter_id"] == voter and body["voter"]["units"]
    assert identity["name"] not in body["voter"]["name"] or len(identity["name"]) == 0
    assert body["meeting"]["title"] == "测试业主大会" and body["meeting"]["state"] == "open"
    assert body["identity_checked"] is True


async def test_id_number_last4_works_and_codes_are_read_leniently(client, meeting):
    _, _, codes, voter, identity = meeting
    from server.ballot.masking import last4
    typed = "-".join(codes[voter].code[i:i + 4] for i in range(0, 20, 4)).lower()
    status, body = await redeem(client, code=typed, last4=last4(identity["id_number"]).lower())
    assert status == 200, body


async def test_unknown_and_malformed_codes_are_code_invalid(client, meeting):
    for code in ("0" * 20, "not-a-code", "ABC", "Z" * 40):
        status, body = await redeem(client, code=code, last4="1234")
        assert status == 404, code
        assert body["error"]["code"] == "code_invalid"
        assert "二维码" in body["error"]["message"]


async def test_identity_is_required_and_a_wrong_one_says_how_many_tries_are_left(client, meeting):
    _, _, codes, voter, identity = meeting
    status, body = await redeem(client, code=codes[voter].code)
    assert (status, body["error"]["code"]) == (401, "identity_required")
    status, body = await redeem(client, code=codes[voter].code, last4="12a")
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    status, body = await redeem(client, code=codes[voter].code, last4=wrong_last4(identity))
    assert (status, body["error"]["code"]) == (403, "identity_mismatch")
    assert body["error"]["fields"]["attempts_left"] == 4
    assert "4" in body["error"]["message"]


async def test_five_failures_lock_the_code_even_for_the_right_answer_until_the_lock_ends(client, meeting, db_pool):
    community_id, meeting_id, codes, voter, identity = meeting
    code = codes[voter].code
    statuses = []
    for _ in range(5):
        status, body = await redeem(client, code=code, last4=wrong_last4(identity))
        statuses.append((status, body["error"]["code"]))
    assert statuses[:4] == [(403, "identity_mismatch")] * 4
    assert statuses[4] == (429, "code_locked")
    status, body = await redeem(client, code=code, last4=phone_last4(identity))
    assert (status, body["error"]["code"]) == (429, "code_locked")
    assert "以后再试" in body["error"]["message"] and body["error"]["fields"]["retry_at"]
    retry_at = datetime.fromisoformat(body["error"]["fields"]["retry_at"])
    assert timedelta(minutes=14) < retry_at - datetime.now(UTC) <= timedelta(minutes=15)
    async with db_pool.acquire() as conn:
        # the lock has run out (as 15 minutes later)
        await conn.execute("UPDATE ballot_code SET locked_until = clock_timestamp() - interval '1 second' "
                           "WHERE code_hash = $1", code_hash(code))
    status, body = await redeem(client, code=code, last4=wrong_last4(identity))
    assert (status, body["error"]["fields"]["attempts_left"]) == (403, 4), "a new count starts after the lock"
    status, body = await redeem(client, code=code, last4=phone_last4(identity))
    assert status == 200, body
    async with db_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT failed_attempts, locked_until FROM ballot_code WHERE code_hash=$1",
                                  code_hash(code))
        actions = await conn.fetch("SELECT action FROM audit_log WHERE community_id=$1 AND action LIKE 'code.%'",
                                   community_id)
    assert (row["failed_attempts"], row["locked_until"]) == (0, None)
    assert {"code.locked", "code.redeem"} <= {a["action"] for a in actions}


async def test_parallel_guesses_are_all_counted(client, meeting, db_pool):
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    guesses = [f"{n:04d}" for n in range(10000) if f"{n:04d}" != phone_last4(identity)][:12]
    results = await asyncio.gather(*(redeem(client, code=code, last4=g) for g in guesses))
    kinds = sorted(body["error"]["code"] for _, body in results)
    assert kinds.count("identity_mismatch") == 4
    assert kinds.count("code_locked") == 8
    async with db_pool.acquire() as conn:
        attempts = await conn.fetchval("SELECT failed_attempts FROM ballot_code WHERE code_hash=$1", code_hash(code))
    assert attempts == 5


async def test_same_device_signs_in_again_without_identity_but_another_device_must_check(client, meeting):
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    status, first = await redeem(client, code=code, last4=phone_last4(identity), device_id="phone-of-owner-1")
    assert status == 200
    status, again = await redeem(client, code=code, device_id="phone-of-owner-1")
    assert status == 200 and again["identity_checked"] is False
    assert again["token"] != first["token"]
    for other in ({"device_id": "someone-elses-phone"}, {}):
        status, body = await redeem(client, code=code, **other)
        assert (status, body["error"]["code"]) == (401, "identity_required")
    status, body = await redeem(client, code=code, device_id="someone-elses-phone", last4=wrong_last4(identity))
    assert status == 403
    status, body = await redeem(client, code=code, device_id="new-phone-of-owner", last4=phone_last4(identity))
    assert status == 200 and body["identity_checked"] is True


async def test_bad_device_ids_and_bodies_are_refused(client, meeting):
    _, _, codes, voter, _ = meeting
    status, body = await redeem(client, code=codes[voter].code, last4="1234", device_id="short")
    assert (status, body["error"]["code"]) == (422, "validation_failed")
    resp = await client.post("/api/ballot/redeem", data=b"[1,2]", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/ballot/redeem", json={"code": 5})
    assert resp.status == 422


async def test_closed_meeting_refuses_sign_in(client, imported_community, db_pool, staff_headers):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=4)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET state='closed', closed_at=now() WHERE community_id=$1", community_id)
    voter = next(iter(codes))
    status, body = await redeem(client, code=codes[voter].code, last4="1234")
    assert (status, body["error"]["code"]) == (409, "meeting_closed")


async def test_a_meeting_without_close_time_gets_a_day_long_token(client, imported_community, db_pool,
                                                                 staff_headers):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=6,
                                                  closes_in=None)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    status, body = await redeem(client, code=codes[voter].code, last4=phone_last4(identity))
    assert status == 200, body
    exp = jwt.decode(body["token"], options={"verify_signature": False})["exp"]
    assert abs(exp - (datetime.now(UTC) + timedelta(hours=24)).timestamp()) < 120


async def test_reissue_kills_the_old_code_and_its_sessions_at_once(client, meeting, db_pool):
    community_id, meeting_id, codes, voter, identity = meeting
    old = codes[voter].code
    status, body = await redeem(client, code=old, last4=phone_last4(identity), device_id="device-before-loss")
    assert status == 200
    jti = jwt.decode(body["token"], options={"verify_signature": False})["jti"]
    principal = BallotPrincipal(community_id, meeting_id, voter, jti)
    async with db_pool.acquire() as conn:
        await ensure_session_live(conn, principal)   # live before
    _, new = await codes_service.reissue_code(db_pool, community_id=community_id, meeting_id=meeting_id,
                                              voter_id=voter, actor="staff:test", public_url="http://evote.test",
                                              reason="遗失")
    async with db_pool.acquire() as conn:
        with pytest.raises(Unauthorized):
            await ensure_session_live(conn, principal)
    # even the device that had redeemed it cannot use the old code any more
    status, body = await redeem(client, code=old, device_id="device-before-loss")
    assert (status, body["error"]["code"]) == (404, "code_invalid")
    assert "作废" in body["error"]["message"]
    status, body = await redeem(client, code=new.code, device_id="device-before-loss")
    assert (status, body["error"]["code"]) == (401, "identity_required"), "a new code needs the identity check"
    status, body = await redeem(client, code=new.code, last4=phone_last4(identity))
    assert status == 200
    assert jwt.decode(body["token"], options={"verify_signature": False})["sub"] == voter


async def test_wechat_binding_stores_openid_and_lets_the_same_wechat_user_in_again(wx_client, meeting, db_pool,
                                                                                   wechat_server, caplog):
    caplog.set_level(logging.DEBUG)
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    status, body = await redeem(wx_client, code=code, last4=phone_last4(identity), wx_code="ok-alice",
                                device_id="mini-program-1")
    assert status == 200, body
    assert body["wechat_bound"] is True
    assert "sk-secret" not in str(body) and "session_key" not in str(body)
    call = wechat_server.app[fake_wechat.CALLS][-1]
    assert call["js_code"] == "ok-alice" and call["grant_type"] == "authorization_code"
    async with db_pool.acquire() as conn:
        openid = await conn.fetchval("SELECT wechat_openid FROM ballot_code WHERE code_hash=$1", code_hash(code))
    assert openid == "openid-alice"
    # the same WeChat user on another phone: no identity check
    status, body = await redeem(wx_client, code=code, wx_code="ok-alice", device_id="mini-program-2")
    assert status == 200 and body["identity_checked"] is False
    # another WeChat user must pass it
    status, body = await redeem(wx_client, code=code, wx_code="ok-mallory", device_id="mini-program-3")
    assert (status, body["error"]["code"]) == (401, "identity_required")
    ours = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records if r.name.startswith("evote"))
    assert ours and "sk-secret" not in ours and fake_wechat.SECRET not in ours


async def test_wechat_errors_are_mapped(wx_client, meeting, client):
    _, _, codes, voter, identity = meeting
    code = codes[voter].code
    status, body = await redeem(wx_client, code=code, last4=phone_last4(identity), wx_code="bad")
    assert (status, body["error"]["code"]) == (400, "wechat_code_invalid")
    status, body = await redeem(wx_client, code=code, last4=phone_last4(identity), wx_code="busy")
    assert (status, body["error"]["code"]) == (429, "wechat_rate_limited")
    # the app without WeChat settings says so, and the owner can still use last4 alone
    status, body = await redeem(client, code=code, last4=phone_last4(identity), wx_code="ok-bob")
    assert (status, body["error"]["code"]) == (503, "wechat_not_configured")
    # an unknown code never reaches WeChat
    status, body = await redeem(wx_client, code="0" * 20, wx_code="ok-bob")
    assert status == 404


async def test_wechat_unreachable_is_a_503(aiohttp_client, settings, meeting, unused_tcp_port_factory):
    app = create_app(settings.replace(wechat_base_url=f"http://127.0.0.1:{unused_tcp_port_factory()}",
                                      wechat_appid="a", wechat_secret="b"))
    client = await aiohttp_client(app)
    _, _, codes, voter, identity = meeting
    status, body = await redeem(client, code=codes[voter].code, last4=phone_last4(identity), wx_code="ok-x")
    assert (status, body["error"]["code"]) == (503, "wechat_unavailable")


async def test_a_joint_subject_signs_in_with_its_representatives_digits(client, db_pool, staff_headers,
                                                                       make_community):
    community = await import_lines(db_pool, make_community)
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, None, community=community,
                                                  matters=ONE_RESOLUTION)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    assert sorted(codes) == ["A", "A+B", "C"]          # one code per voting subject
    joint = codes["A+B"].code
    # B is an owner of the subject but not its representative: B's digits do not open A's code
    status, body = await redeem(client, code=joint, last4=PHONES["B"][-4:])
    assert status == 403 and body["error"]["code"] == "identity_mismatch"
    status, body = await redeem(client, code=joint, last4=PHONES["A"][-4:], device_id="device-joint-1")
    assert status == 200, body
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["sub"] == "A+B"
    assert body["voter"] == {"voter_id": "A+B", "name": "张*", "building": "1", "units": ["1-101", "2-201"],
                             "joint": True}
    # the subject's identity for the helpers is its representative's
    assert (await voter_identity(db_pool, community_id, meeting_id, "A+B"))["phone"] == PHONES["A"]
