"""WeChat subscribe messages (订阅消息): owners' opt-ins, reminders, the shared access token, retries, and
the mini-program code on code sheets — all against a fake WeChat server on localhost."""
from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import aiohttp
import pytest
import pytest_asyncio

from server.app import create_app
from server.auth.wechat import WeChatClient
from server.services import notifications
from server.settings import SettingsError, load_settings, parse_templates
from tests import fake_wechat
from tests.helpers_codes import issue_codes, phone_last4, voter_identity
from tests.helpers_meetings import bearer, cast, open_meeting

TEMPLATES = ("notice_published=T-NOTICE,voting_opened=T-OPEN,reminder=T-REMIND,extension=T-EXT,"
             "result_published=T-RESULT")


@pytest_asyncio.fixture
async def wechat_server(aiohttp_server):
    return await aiohttp_server(fake_wechat.make_app())


@pytest.fixture
def wx_settings(settings, wechat_server):
    """WeChat configured against the fake; passes run by hand (no background loop) so tests control them."""
    return settings.replace(wechat_base_url=str(wechat_server.make_url("")).rstrip("/"),
                            wechat_appid=fake_wechat.APPID, wechat_secret=fake_wechat.SECRET,
                            wechat_templates=TEMPLATES, notify_interval_s=0, reminder_days_before_close=2)


@pytest_asyncio.fixture
async def wx_client(aiohttp_client, wx_settings):
    return await aiohttp_client(create_app(wx_settings))


@pytest_asyncio.fixture
async def wechat(wx_settings):
    async with aiohttp.ClientSession() as session:
        yield WeChatClient(session, base_url=wx_settings.wechat_base_url, appid=wx_settings.wechat_appid,
                           secret=wx_settings.wechat_secret)


async def bind(db_pool, community_id: str, meeting_id: str, voter_id: str, openid: str) -> None:
    """As a sign-in through the mini program leaves it: the subject's live code knows the WeChat user."""
    async with db_pool.acquire() as conn:
        await conn.execute("""UPDATE ballot_code SET wechat_openid = $4 WHERE community_id = $1 AND meeting_id = $2
                                 AND voter_id = $3 AND revoked_at IS NULL""", community_id, meeting_id, voter_id,
                           openid)


async def optin_rows(db_pool, community_id: str, meeting_id: str) -> dict:
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("""SELECT voter_id, kind, state, attempts, last_error, next_attempt_at
                                     FROM notification_optin WHERE community_id = $1 AND meeting_id = $2""",
                                community_id, meeting_id)
    return {(r["voter_id"], r["kind"]): dict(r) for r in rows}


async def choose(client, token: str, **body):
    resp = await client.post("/api/ballot/notifications", json=body, headers=bearer(token))
    return resp.status, await resp.json()


def test_templates_setting_is_checked():
    assert parse_templates(" reminder = T1 ,voting_opened=T2") == {"reminder": "T1", "voting_opened": "T2"}
    assert parse_templates("") == {}
    for bad in ("reminder", "nagging=T1", "reminder="):
        with pytest.raises(SettingsError, match="EVOTE_WECHAT_TEMPLATES"):
            load_settings({"EVOTE_WECHAT_TEMPLATES": bad})
    with pytest.raises(SettingsError, match="EVOTE_SHEET_QR"):
        load_settings({"EVOTE_SHEET_QR": "barcode"})


def test_messages_fit_wechat_and_speak_beijing_time(wx_settings):
    row = {"community_id": "c1", "meeting_id": "m1", "about_meeting_id": "m1", "kind": "extension",
           "openid": "o", "template_id": "T-EXT",
           "payload": {"title": "幸福里小区2026年第一次业主大会（选举业主委员会）", "at": "2026-12-01T02:00:00+00:00",
                       "until": "2026-12-20T10:00:00+00:00", "reason": "参与表决人数不足，延长表决期"}}
    message = notifications.build_message(row, wx_settings)
    assert fake_wechat.shape_problem(message) is None
    assert message["data"]["time2"]["value"] == "2026年12月20日 18:00"          # 10:00 UTC is 18:00 in Beijing
    assert message["data"]["thing1"]["value"].endswith("…") and len(message["data"]["thing1"]["value"]) == 20
    assert message["data"]["thing3"]["value"].startswith("表决期已延长")
    assert message["page"] == "pages/ballot/index?community=c1&meeting=m1"
    assert notifications.backoff_s(1) == 60 and notifications.backoff_s(3) == 240
    assert notifications.backoff_s(20) == notifications.BACKOFF_MAX_S


async def test_owner_opts_in_only_when_signed_in_through_wechat(wx_client, db_pool, staff_headers,
                                                                imported_community, wechat_server):
    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=6)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = sorted(codes)[0]
    identity = await voter_identity(db_pool, m.community_id, m.meeting_id, voter)
    # signed in on a web browser: no WeChat user, nothing to send to
    resp = await wx_client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": phone_last4(identity),
                                                            "device_id": "browser-1"})
    token = (await resp.json())["token"]
    resp = await wx_client.get("/api/ballot/notifications", headers=bearer(token))
    body = await resp.json()
    assert body["wechat_bound"] is False
    assert [t["kind"] for t in body["templates"]] == ["notice_published", "voting_opened", "reminder", "extension",
                                                      "result_published"]
    assert {t["state"] for t in body["templates"]} == {"none"} and body["templates"][2]["title"] == "投票提醒"
    status, body = await choose(wx_client, token, accepted=["reminder"])
    assert (status, body["error"]["code"]) == (409, "wechat_not_bound")
    # signed in through the mini program: the code knows the WeChat user
    resp = await wx_client.post("/api/ballot/redeem", json={"code": codes[voter].code, "wx_code": "ok-amy",
                                                            "last4": phone_last4(identity), "device_id": "mini-program-1"})
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["token"]
    status, body = await choose(wx_client, token, accepted=["reminder", "result_published"], declined=["extension"])
    assert status == 200, body
    states = {t["kind"]: t["state"] for t in body["templates"]}
    assert states == {"notice_published": "none", "voting_opened": "none", "reminder": "waiting",
                      "extension": "none", "result_published": "waiting"}
    rows = await optin_rows(db_pool, m.community_id, m.meeting_id)
    assert rows[(voter, "reminder")]["state"] == "waiting"
    async with db_pool.acquire() as conn:
        stored = await conn.fetchrow("""SELECT openid, template_id FROM notification_optin WHERE community_id=$1
                                          AND meeting_id=$2 AND voter_id=$3 AND kind='reminder'""",
                                     m.community_id, m.meeting_id, voter)
        audited = await conn.fetchval("""SELECT detail::text FROM audit_log WHERE community_id=$1
                                           AND action='notifications.choose' ORDER BY seq DESC LIMIT 1""",
                                      m.community_id)
    assert dict(stored) == {"openid": "openid-amy", "template_id": "T-REMIND"}
    assert json.loads(audited)["accepted"] == ["reminder", "result_published"]
    # declining withdraws; unknown kinds and bad shapes are refused with the envelope
    status, body = await choose(wx_client, token, declined=["reminder"])
    assert {t["kind"]: t["state"] for t in body["templates"]}["reminder"] == "withdrawn"
    status, body = await choose(wx_client, token, accepted=["spam"])
    assert (status, body["error"]["code"]) == (422, "unknown_notification")
    status, body = await choose(wx_client, token, accepted="reminder")
    assert status == 422
    status, body = await choose(wx_client, token, accepted=["reminder"], declined=["reminder"])
    assert status == 422
    # staff see counts per kind and state, no owner named
    resp = await wx_client.get(f"{m.base}/notifications", headers=m.headers)
    summary = await resp.json()
    assert summary["kinds"]["result_published"] == {"waiting": 1} and "openid" not in json.dumps(summary)


async def test_a_kind_not_configured_is_not_offered(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=4)
    from tests.helpers_meetings import ballot_token
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    resp = await client.get("/api/ballot/notifications", headers=bearer(token))
    assert (await resp.json())["templates"] == []
    status, body = await choose(client, token, accepted=["reminder"])
    assert (status, body["error"]["code"]) == (409, "notification_not_offered")


async def test_reminders_reach_exactly_the_subjects_who_opted_in_and_have_not_voted(
        wx_client, wx_settings, wechat, wechat_server, db_pool, staff_headers, imported_community):
    from tests.helpers_meetings import ballot_token

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=10,
                           closes_in=timedelta(days=1))
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    voters = m.voter_ids[:6]
    tokens = {}
    for i, voter in enumerate(voters):
        await bind(db_pool, m.community_id, m.meeting_id, voter, f"openid-v{i}")
        tokens[voter] = await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter)
    # v0, v1, v2 opt in and do not vote; v3 opts in and votes; v4 opts in, then declines; v5 never opts in
    for voter in voters[:5]:
        status, body = await choose(wx_client, tokens[voter], accepted=["reminder"])
        assert status == 200, body
    await choose(wx_client, tokens[voters[4]], declined=["reminder"])
    matter = m.document["matters"][0]
    vote = ({"matter_id": matter["matter_id"], "choice": "yes"} if matter["kind"] == "resolution" else
            {"matter_id": matter["matter_id"], "choices": {}})
    resp = await cast(wx_client, tokens[voters[3]], [vote])
    assert resp.status == 201, await resp.text()

    result = await notifications.run_once(db_pool, wechat, wx_settings)
    assert result.queued["reminder"] == 3 and result.sent == 3
    sent = wechat_server.app[fake_wechat.SENT]
    assert sorted(msg["touser"] for msg in sent) == ["openid-v0", "openid-v1", "openid-v2"]
    for msg in sent:
        assert fake_wechat.shape_problem(msg) is None
        assert msg["template_id"] == "T-REMIND" and msg["data"]["thing3"]["value"] == "您尚未投票，请在截止前表决"
        assert msg["page"].endswith(f"community={m.community_id}&meeting={m.meeting_id}")
    # one token for the whole pass; nothing sent twice on the next pass
    assert len(wechat_server.app[fake_wechat.TOKEN_CALLS]) == 1
    again = await notifications.run_once(db_pool, wechat, wx_settings)
    assert again.sent == 0 and len(sent) == 3
    rows = await optin_rows(db_pool, m.community_id, m.meeting_id)
    assert {v: rows[(v, "reminder")]["state"] for v in voters[:5]} == {
        voters[0]: "sent", voters[1]: "sent", voters[2]: "sent", voters[3]: "waiting", voters[4]: "withdrawn"}


async def test_a_reminder_waits_until_the_close_is_near(wx_client, wx_settings, wechat, wechat_server, db_pool,
                                                        staff_headers, imported_community):
    from tests.helpers_meetings import ballot_token

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=4,
                           closes_in=timedelta(days=5))
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = m.voter_ids[0]
    await bind(db_pool, m.community_id, m.meeting_id, voter, "openid-early")
    token = await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter)
    await choose(wx_client, token, accepted=["reminder"])
    assert (await notifications.run_once(db_pool, wechat, wx_settings)).sent == 0      # 5 days > 2 days
    later = wx_settings.replace(reminder_days_before_close=6)
    assert (await notifications.run_once(db_pool, wechat, later)).sent == 1
    assert wechat_server.app[fake_wechat.SENT][0]["touser"] == "openid-early"


async def test_events_after_the_opt_in_are_announced_once(wx_client, wx_settings, wechat, wechat_server, db_pool,
                                                          staff_headers, imported_community):
    """Voting opened before the owner opted in is not announced; an extension and the published result
    after it are, once each, with their own templates and times."""
    from tests.helpers_meetings import ballot_token, close_now

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=4, max_extensions=1,
                           max_extension_days=10)
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = m.voter_ids[0]
    await bind(db_pool, m.community_id, m.meeting_id, voter, "openid-ev")
    token = await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter)
    status, _ = await choose(wx_client, token, accepted=["voting_opened", "extension", "result_published"])
    assert status == 200
    new_close = (datetime.fromisoformat(m.document["closes_at"]) + timedelta(days=3)).isoformat()
    resp = await wx_client.post(f"{m.base}/extensions", json={"closes_at": new_close, "reason": "参与人数不足"},
                                headers=m.headers)
    assert resp.status in (200, 201), await resp.text()
    result = await notifications.run_once(db_pool, wechat, wx_settings)
    assert result.queued["voting_opened"] == 0 and result.queued["extension"] == 1
    sent = wechat_server.app[fake_wechat.SENT]
    assert [msg["template_id"] for msg in sent] == ["T-EXT"]
    assert sent[0]["data"]["thing3"]["value"] == "表决期已延长：参与人数不足"
    resp = await close_now(wx_client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    resp = await wx_client.post(f"/api/admin/communities/{m.community_id}/meetings/{m.meeting_id}/publish",
                                json={}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    await notifications.run_once(db_pool, wechat, wx_settings)
    assert [msg["template_id"] for msg in sent] == ["T-EXT", "T-RESULT"]
    await notifications.run_once(db_pool, wechat, wx_settings)
    assert len(sent) == 2


async def test_stale_token_is_refreshed_and_failures_retry_then_give_up(wx_client, wx_settings, wechat,
                                                                         wechat_server, db_pool, staff_headers,
                                                                         imported_community):
    from tests.helpers_meetings import ballot_token

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=6,
                           closes_in=timedelta(days=1))
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    names = ["openid-ok", "openid-flaky", "openid-refuser"]
    for voter, openid in zip(m.voter_ids, names):
        await bind(db_pool, m.community_id, m.meeting_id, voter, openid)
        await choose(wx_client, await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter),
                     accepted=["reminder"])
    # a token cached from before, that WeChat no longer takes: refreshed once, then the send goes through
    async with db_pool.acquire() as conn:
        await conn.execute("""INSERT INTO wechat_access_token (appid, token, expires_at)
                              VALUES ($1, 'tok-old', now() + interval '1 hour')
                              ON CONFLICT (appid) DO UPDATE SET token = 'tok-old'""", fake_wechat.APPID)
    result = await notifications.run_once(db_pool, wechat, wx_settings)
    assert (result.sent, result.retried, result.given_up) == (1, 1, 1)
    token_calls = wechat_server.app[fake_wechat.TOKEN_CALLS]
    assert len(token_calls) == 1 and token_calls[0]["force_refresh"] is True
    rows = await optin_rows(db_pool, m.community_id, m.meeting_id)
    by_openid = dict(zip(names, m.voter_ids))
    flaky = rows[(by_openid["openid-flaky"], "reminder")]
    assert flaky["state"] == "queued" and flaky["attempts"] == 1 and flaky["last_error"].startswith("errcode -1")
    refused = rows[(by_openid["openid-refuser"], "reminder")]
    assert refused["state"] == "given_up" and "43101" in refused["last_error"]
    # not yet due: the next pass leaves it; once its backoff has passed, it is sent
    assert (await notifications.run_once(db_pool, wechat, wx_settings)).sent == 0
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE notification_optin SET next_attempt_at = now() WHERE state = 'queued' "
                           "AND community_id = $1", m.community_id)
    assert (await notifications.run_once(db_pool, wechat, wx_settings)).sent == 1
    assert sorted(msg["touser"] for msg in wechat_server.app[fake_wechat.SENT]) == ["openid-flaky", "openid-ok"]


async def test_unreachable_wechat_is_retried_and_given_up_after_the_last_attempt(
        wx_client, wx_settings, db_pool, staff_headers, imported_community, unused_tcp_port_factory):
    from tests.helpers_meetings import ballot_token

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=4,
                           closes_in=timedelta(days=1))
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = m.voter_ids[0]
    await bind(db_pool, m.community_id, m.meeting_id, voter, "openid-far")
    await choose(wx_client, await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter),
                 accepted=["reminder"])
    async with aiohttp.ClientSession() as session:
        nowhere = WeChatClient(session, base_url=f"http://127.0.0.1:{unused_tcp_port_factory()}",
                               appid="wx-nowhere", secret="s", timeout_s=1)
        for attempt in range(1, notifications.MAX_ATTEMPTS + 1):
            result = await notifications.run_once(db_pool, nowhere, wx_settings)
            row = (await optin_rows(db_pool, m.community_id, m.meeting_id))[(voter, "reminder")]
            assert row["attempts"] == attempt and row["last_error"].startswith("unreachable")
            async with db_pool.acquire() as conn:
                await conn.execute("UPDATE notification_optin SET next_attempt_at = now() WHERE state = 'queued' "
                                   "AND community_id = $1", m.community_id)
        assert row["state"] == "given_up" and result.given_up == 1


async def test_one_refresher_across_workers(wx_settings, wechat, wechat_server, db_pool):
    """Ten concurrent callers with no usable token: WeChat is asked once, all get the same token."""
    async with db_pool.acquire() as conn:
        await conn.execute("DELETE FROM wechat_access_token WHERE appid = $1", fake_wechat.APPID)
    got = await asyncio.gather(*(notifications.access_token(db_pool, wechat) for _ in range(10)))
    assert len(set(got)) == 1 and len(wechat_server.app[fake_wechat.TOKEN_CALLS]) == 1
    # near its expiry it is refreshed before WeChat would refuse it
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE wechat_access_token SET expires_at = now() + interval '1 minute' WHERE appid = $1",
                           fake_wechat.APPID)
    fresh = await notifications.access_token(db_pool, wechat)
    assert fresh != got[0] and len(wechat_server.app[fake_wechat.TOKEN_CALLS]) == 2


async def test_code_sheets_can_carry_the_mini_program_code(aiohttp_client, wx_settings, wechat_server, db_pool,
                                                           staff_headers, imported_community):
    pdfium = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    client = await aiohttp_client(create_app(wx_settings.replace(sheet_qr="miniprogram")))
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=3)
    resp = await client.post(f"{m.base}/codes", json={"format": "pdf", "test": True}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    pdf = pdfium.PdfDocument(await resp.read())
    # each building's sheets start on a page of their own (then its sign-off list, without codes)
    found = [f for i in range(len(pdf)) for f in zxingcpp.read_barcodes(pdf[i].render(scale=3).to_pil())]
    scenes = sorted(f.text.removeprefix("wxacode:") for f in found)
    calls = wechat_server.app[fake_wechat.WXACODE_CALLS]
    assert scenes and all(f.text.startswith("wxacode:") for f in found)
    assert scenes == sorted({c["scene"] for c in calls})      # a first call may meet a stale cached token
    assert all(c["page"] == "pages/ballot/index" and c["check_path"] is False for c in calls)
    # each scene is a live ballot code: it signs in
    async with db_pool.acquire() as conn:
        from server.ballot.codes import code_hash
        live = await conn.fetchval("SELECT count(*) FROM ballot_code WHERE code_hash = ANY($1::bytea[])",
                                   [code_hash(s) for s in scenes])
    assert live == len(scenes)


async def test_the_communitys_next_notice_is_announced(wx_client, wx_settings, wechat, wechat_server, db_pool,
                                                       staff_headers, imported_community):
    from tests.helpers_meetings import ballot_token, noticed_meeting

    m = await open_meeting(db_pool, wx_client, staff_headers, imported_community, units=4)
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = m.voter_ids[0]
    await bind(db_pool, m.community_id, m.meeting_id, voter, "openid-next")
    await choose(wx_client, await ballot_token(db_pool, wx_client, m.community_id, m.meeting_id, voter),
                 accepted=["notice_published"])
    assert (await notifications.run_once(db_pool, wechat, wx_settings)).queued["notice_published"] == 0
    nxt = await noticed_meeting(db_pool, wx_client, staff_headers, imported_community,
                                community=(m.community_id, m.register_rows))
    result = await notifications.run_once(db_pool, wechat, wx_settings)
    assert result.queued["notice_published"] == 1 and result.sent == 1
    msg = wechat_server.app[fake_wechat.SENT][0]
    assert msg["template_id"] == "T-NOTICE" and msg["page"].endswith(f"meeting={nxt.meeting_id}")
    assert msg["data"]["thing1"]["value"] == notifications.thing(nxt.document["title"])
