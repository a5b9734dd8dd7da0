"""The voting window (voting-rules.md): no early close, voiding with a reason, extension notices
(延期公告) within the meeting's limits, the scheduler closing at the new time, and the race of an
extension with the closes."""
from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import asyncpg
import pytest

from server import appkeys
from server.ballot.receipts import format_cast_at
from server.devtools.fixtures import end_voting_now
from server.errors import ApiError, ValidationFailed
from server.record import read_bundle
from server.record.writer import write_directory
from server.services import meetings as meetings_service
from server.services import results as results_service
from server.services import scheduler, voting_window
from server.services.effects import Effects
from server.services.meeting_input import beijing_time, check_extension_limits
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity
from tests.helpers_meetings import (
    backdate_notice,
    ballot_token,
    bearer,
    cast,
    close_now,
    meeting_body,
    open_meeting,
)

RACES = 30
RESOLUTION_ONLY = [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}]
REASON = "选票二维码印刷错误，部分业主无法登录"


async def _error(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Events:
    """Records what the app publishes to live views (and still publishes it)."""

    def __init__(self, app):
        self.effects = app[appkeys.EFFECTS]
        self.original = self.effects.publish
        self.seen: list[tuple[str, str, dict]] = []

    async def _publish(self, community_id, meeting_id, event):
        self.seen.append((community_id, meeting_id, event))
        await self.original(community_id, meeting_id, event)

    def __enter__(self):
        self.effects.publish = self._publish
        return self

    def __exit__(self, *exc):
        self.effects.publish = self.original

    def of(self, kind: str) -> list[dict]:
        return [event for _, _, event in self.seen if event.get("type") == kind]


async def _wait_for_state(client, m, state: str, timeout: float = 20.0) -> dict:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        doc = await (await client.get(m.base, headers=m.headers)).json()
        if doc["state"] == state or loop.time() > deadline:
            return doc
        await asyncio.sleep(0.1)


# ---------------------------------------------------------------- pure parts

def test_times_are_named_in_beijing_time():
    assert beijing_time(datetime(2026, 12, 8, 12, 0, tzinfo=UTC)) == "2026-12-08 20:00（北京时间）"
    assert beijing_time(datetime(2026, 12, 8, 20, 0, tzinfo=timezone(timedelta(hours=8)))) == "2026-12-08 20:00（北京时间）"
    assert beijing_time(datetime(2026, 12, 31, 16, 30, 15, tzinfo=UTC)) == "2027-01-01 00:30:15（北京时间）"


def test_extension_limits_are_both_set_or_both_zero():
    assert check_extension_limits({}) == {"max_extensions": 0, "max_extension_days": 0}
    assert check_extension_limits({"max_extensions": 2, "max_extension_days": 7}) == {
        "max_extensions": 2, "max_extension_days": 7}
    assert check_extension_limits({"max_extension_days": 5}, base={"max_extensions": 1, "max_extension_days": 2}) \
        == {"max_extensions": 1, "max_extension_days": 5}
    for bad in ({"max_extensions": 1}, {"max_extension_days": 3}, {"max_extensions": -1, "max_extension_days": 1},
                {"max_extensions": True, "max_extension_days": 1}, {"max_extensions": 11, "max_extension_days": 1},
                {"max_extensions": 1, "max_extension_days": 366}, {"max_extensions": "2", "max_extension_days": 1}):
        with pytest.raises(ValidationFailed) as caught:
            check_extension_limits(bad)
        assert caught.value.code == "bad_extension_limits", bad


async def test_extension_limits_are_set_on_the_draft(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    base = f"/api/admin/communities/{community_id}/meetings"
    body = meeting_body(matters=RESOLUTION_ONLY, max_extensions=1, max_extension_days=7)
    resp = await client.post(base, json=body, headers=headers)
    assert resp.status == 201
    doc = await resp.json()
    assert (doc["max_extensions"], doc["max_extension_days"], doc["extensions"]) == (1, 7, [])
    assert (doc["voided_at"], doc["void_reason"]) == (None, None)
    one = f"{base}/{body['meeting_id']}"
    resp = await client.patch(one, headers=headers, json={"max_extensions": 2})
    assert resp.status == 200 and (await resp.json())["max_extensions"] == 2
    error = await _error(await client.patch(one, headers=headers, json={"max_extension_days": 0}), 422)
    assert error["code"] == "bad_extension_limits"
    bad = meeting_body(matters=RESOLUTION_ONLY, max_extensions=3)
    assert (await _error(await client.post(base, json=bad, headers=headers), 422))["code"] == "bad_extension_limits"


# ---------------------------------------------------------------- no early close

async def test_closing_before_the_noticed_close_is_refused_naming_it_in_beijing_time(
        client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY)
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET closes_at = '2030-12-08T12:00:00Z' WHERE community_id = $1 "
                           "AND meeting_id = $2", m.community_id, m.meeting_id)
    error = await _error(await client.post(f"{m.base}/close", headers=m.headers), 409)
    assert error["code"] == "voting_period_not_over"
    assert "2030-12-08 20:00（北京时间）" in error["message"] and "作废" in error["message"]
    assert _when(error["fields"]["closes_at"]) == datetime(2030, 12, 8, 12, 0, tzinfo=UTC)
    doc = await (await client.get(m.base, headers=m.headers)).json()
    assert doc["state"] == "open" and doc["closed_at"] is None
    transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
    assert "closed" not in [t["to"] for t in transitions]
    # at the close time, the close works as before
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["state"] == "closed"


async def test_the_notice_needs_a_close_time(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    body = meeting_body(matters=RESOLUTION_ONLY, closes_at=False)
    base = f"/api/admin/communities/{community_id}/meetings"
    assert (await client.post(base, json=body, headers=headers)).status == 201
    error = await _error(await client.post(f"{base}/{body['meeting_id']}/notice", headers=headers), 409)
    assert error["code"] == "closes_at_missing"


# ---------------------------------------------------------------- void

async def test_a_voided_meeting_takes_no_votes_and_is_never_signed(client, db_pool, staff_headers,
                                                                   imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY,
                           max_extensions=1, max_extension_days=2)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    void = f"{m.base}/void"
    # a reason is required, not blank, at most 500 characters
    assert (await _error(await client.post(void, headers=m.headers), 422))["fields"] == {"reason": "必填"}
    assert (await _error(await client.post(void, headers=m.headers, json={}), 422))["fields"] == {"reason": "必填"}
    assert (await _error(await client.post(void, headers=m.headers, json={"reason": "  "}), 422))["fields"] == {
        "reason": "必填"}
    too_long = await _error(await client.post(void, headers=m.headers, json={"reason": "因" * 501}), 422)
    assert too_long["code"] == "reason_too_long"
    auditor = await staff_headers("auditor", communities=[m.community_id])
    assert (await client.post(void, headers=auditor, json={"reason": REASON})).status == 403

    with Events(client.app) as events:
        resp = await client.post(void, headers=m.headers, json={"reason": REASON})
        assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert (doc["state"], doc["state_name"], doc["void_reason"]) == ("voided", "已作废", REASON)
    assert doc["voided_at"] and doc["closed_at"] is None
    assert {"type": "state", "state": "voided", "reason": REASON, "voided_at": doc["voided_at"]} in events.of("state")
    transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
    last = transitions[-1]
    assert (last["from"], last["to"], last["note"]) == ("open", "voided", REASON)
    assert last["actor"].startswith("staff:")
    async with db_pool.acquire() as conn:
        detail = await conn.fetchval("""SELECT detail FROM audit_log WHERE community_id = $1 AND action = 'meeting.void'""",
                                     m.community_id)
    assert '"reason"' in detail and REASON in detail

    # once voided: no vote, no close, no extension, no second void, no signature, no publication
    refused = await _error(await cast(client, token, [{"matter_id": "M1", "choice": "no"}]), 409)
    assert refused["code"] == "meeting_voided"
    assert (await _error(await client.post(f"{m.base}/close", headers=m.headers), 409))["code"] == "wrong_state"
    again = await _error(await client.post(void, headers=m.headers, json={"reason": "再次"}), 409)
    assert again["code"] == "meeting_voided" and REASON in again["message"]
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    extension = await client.post(f"{m.base}/extensions", headers=m.headers, json={"closes_at": later, "reason": "x"})
    assert (await _error(extension, 409))["code"] == "meeting_voided"
    assert (await _error(await client.post(f"{m.base}/result/sign", headers=m.headers), 409))["code"] == \
        "meeting_voided"
    assert (await _error(await client.post(f"{m.base}/publish", headers=m.headers, json={}), 409))["code"] == \
        "meeting_voided"
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM meeting_result WHERE community_id = $1 AND meeting_id = $2",
                                   m.community_id, m.meeting_id) == 0
        # the database keeps it voided whatever path tries
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE meeting SET state = 'open' WHERE community_id = $1 AND meeting_id = $2",
                               m.community_id, m.meeting_id)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE meeting SET void_reason = 'x' WHERE community_id = $1 AND meeting_id = $2",
                               m.community_id, m.meeting_id)
        await conn.execute("UPDATE meeting SET closes_at = clock_timestamp() WHERE community_id = $1 "
                           "AND meeting_id = $2", m.community_id, m.meeting_id)
    done = await scheduler.run_once(db_pool, client.app[appkeys.EFFECTS])
    assert (m.community_id, m.meeting_id) not in done["closed"]

    # the public and the owners see that it was voided and why
    public = f"/api/public/meetings/{m.community_id}/{m.meeting_id}"
    error = await _error(await client.get(f"{public}/result"), 404)
    assert error["code"] == "meeting_voided" and error["fields"]["reason"] == REASON
    page = await client.get(f"/r/{m.community_id}/{m.meeting_id}")
    assert page.status == 200
    text = await page.text()
    assert "会议已宣布作废" in text and REASON in text and "（北京时间）" in text
    owner = await (await client.get("/api/ballot/meeting", headers=bearer(token))).json()
    assert (owner["state"], owner["void_reason"]) == ("voided", REASON) and owner["voided_at"]


async def test_void_from_draft_and_noticed_but_not_after_the_close(client, db_pool, staff_headers,
                                                                   imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, state="draft",
                                                  matters=RESOLUTION_ONLY)
    headers = await staff_headers("district_admin")
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(f"{base}/void", headers=headers, json={"reason": "草稿作废"})
    assert resp.status == 200 and (await resp.json())["state"] == "voided"
    assert (await _error(await client.post(f"{base}/notice", headers=headers), 409))["code"] == "meeting_not_draft"

    # noticed: owners signing in are told why
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community,
                                                  state="noticed", units=6, matters=RESOLUTION_ONLY)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(f"{base}/void", headers=headers, json={"reason": REASON})
    assert resp.status == 200 and (await resp.json())["state"] == "voided"
    redeem = await client.post("/api/ballot/redeem", json={"code": codes[voter].code,
                                                           "last4": phone_last4(identity)})
    error = await _error(redeem, 409)
    assert error["code"] == "meeting_voided" and REASON in error["message"]

    # closed: too late to void
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=6, matters=RESOLUTION_ONLY)
    assert (await close_now(client, m.community_id, m.meeting_id, m.headers)).status == 200
    late = await _error(await client.post(f"{m.base}/void", headers=m.headers, json={"reason": REASON}), 409)
    assert late["code"] == "wrong_state"


# ---------------------------------------------------------------- extensions

async def test_extensions_within_and_over_the_limits(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY,
                           max_extensions=2, max_extension_days=3)
    assert (m.document["max_extensions"], m.document["max_extension_days"]) == (2, 3)
    assert m.document["extensions"] == []
    original = _when(m.document["closes_at"])
    url = f"{m.base}/extensions"
    # the limits are frozen with the notice
    frozen = await client.patch(m.base, headers=m.headers, json={"max_extensions": 5, "max_extension_days": 9})
    assert (await _error(frozen, 409))["code"] == "meeting_not_draft"
    # bad input
    one_day = (original + timedelta(days=1)).isoformat()
    assert (await _error(await client.post(url, headers=m.headers, json={"reason": "延期"}), 422))["fields"] == {
        "closes_at": "必填"}
    assert (await _error(await client.post(url, headers=m.headers, json={"closes_at": one_day}), 422))["fields"] == {
        "reason": "必填"}
    assert (await client.post(url, headers=m.headers, json={"closes_at": one_day, "reason": "x", "days": 1})).status \
        == 422
    earlier = await _error(await client.post(url, headers=m.headers, json={
        "closes_at": (original - timedelta(minutes=1)).isoformat(), "reason": "提前"}), 422)
    assert earlier["code"] == "extension_not_later" and "（北京时间）" in earlier["message"]

    with Events(client.app) as events:
        resp = await client.post(url, headers=m.headers, json={"closes_at": one_day, "reason": "参与率未达三分之二"})
        assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert _when(doc["closes_at"]) == original + timedelta(days=1)
    [first] = doc["extensions"]
    assert first["number"] == 1 and first["reason"] == "参与率未达三分之二" and first["actor"].startswith("staff:")
    assert _when(first["previous_closes_at"]) == original and _when(first["closes_at"]) == original + timedelta(days=1)
    assert _when(first["published_at"]) < original
    assert (await (await client.get(m.base, headers=m.headers)).json())["extensions"] == doc["extensions"]
    [event] = events.of("extension")
    assert event == {"type": "extension", **{k: first[k] for k in ("number", "previous_closes_at", "closes_at",
                                                                   "reason", "published_at")}}
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id = $1 AND action = 'meeting.extend'",
                                   m.community_id) == 1
    # the owner's page shows the new close
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    owner = await (await client.get("/api/ballot/meeting", headers=bearer(token))).json()
    assert _when(owner["closes_at"]) == original + timedelta(days=1)
    assert [e["reason"] for e in owner["extensions"]] == ["参与率未达三分之二"] and "actor" not in owner["extensions"][0]

    # three days in all, counted from the original close
    too_long = await _error(await client.post(url, headers=m.headers, json={
        "closes_at": (original + timedelta(days=3, minutes=1)).isoformat(), "reason": "再延"}), 409)
    assert too_long["code"] == "extension_too_long" and _when(too_long["fields"]["latest"]) == original + timedelta(days=3)
    resp = await client.post(url, headers=m.headers, json={
        "closes_at": (original + timedelta(days=3)).isoformat(), "reason": "再延"})
    assert resp.status == 201, await resp.text()
    assert [e["number"] for e in (await resp.json())["extensions"]] == [1, 2]
    third = await _error(await client.post(url, headers=m.headers, json={
        "closes_at": (original + timedelta(days=3, minutes=1)).isoformat(), "reason": "三延"}), 409)
    assert third["code"] == "extension_limit_reached"
    # extension rows are history
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("UPDATE meeting_extension SET reason = 'x' WHERE community_id = $1", m.community_id)


async def test_the_dashboard_follows_an_extension_to_the_new_close(client, db_pool, staff_headers,
                                                                   imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY,
                           max_extensions=1, max_extension_days=1)
    new_close = _when(m.document["closes_at"]) + timedelta(hours=6)
    live = await client.app[appkeys.LIVE].meeting(m.community_id, m.meeting_id, fresh=True)
    resp = await client.post(f"{m.base}/extensions", headers=m.headers,
                             json={"closes_at": new_close.isoformat(), "reason": "延长六小时"})
    assert resp.status == 201, await resp.text()
    # no refresh asked for: the extension event brings the live document (and the dashboard) up to date
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while _when(live.document(True)["closes_at"]) != new_close and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert _when(live.document(True)["closes_at"]) == new_close


async def test_extensions_refused_when_not_allowed_in_a_draft_and_after_the_close(client, db_pool, staff_headers,
                                                                                 imported_community):
    community = await imported_community(8)
    later = (datetime.now(UTC) + timedelta(days=60)).isoformat()
    m = await open_meeting(db_pool, client, staff_headers, imported_community, matters=RESOLUTION_ONLY,
                           community=community)
    body = {"closes_at": later, "reason": "延期"}
    assert (await _error(await client.post(f"{m.base}/extensions", headers=m.headers, json=body), 409))["code"] == \
        "extension_not_allowed"

    draft_cid, draft_mid = await make_meeting(db_pool, client, staff_headers, imported_community, state="draft",
                                              matters=RESOLUTION_ONLY)
    draft = f"/api/admin/communities/{draft_cid}/meetings/{draft_mid}/extensions"
    assert (await _error(await client.post(draft, headers=m.headers, json=body), 409))["code"] == "wrong_state"

    m = await open_meeting(db_pool, client, staff_headers, imported_community, matters=RESOLUTION_ONLY,
                           community=community, max_extensions=1, max_extension_days=90)
    # the close time has passed (whether or not the scheduler has closed it yet): too late
    assert await end_voting_now(db_pool, m.community_id, m.meeting_id)
    late = await _error(await client.post(f"{m.base}/extensions", headers=m.headers, json=body), 409)
    assert late["code"] == "voting_period_over" and "（北京时间）" in late["message"]
    assert (await _wait_for_state(client, m, "closed"))["state"] == "closed"
    late = await _error(await client.post(f"{m.base}/extensions", headers=m.headers, json=body), 409)
    assert late["code"] == "voting_period_over"


async def test_a_noticed_meeting_may_be_extended(client, db_pool, staff_headers, imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community,
                                                  state="noticed", units=6, matters=RESOLUTION_ONLY)
    async with db_pool.acquire() as conn:   # limits set on the draft; this one is noticed already
        closes_at = await conn.fetchval("SELECT closes_at FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                                        community_id, meeting_id)
    effects = Effects(client.app[appkeys.SETTINGS])
    with pytest.raises(ApiError) as caught:
        await voting_window.extend_meeting(db_pool, effects, community_id=community_id, meeting_id=meeting_id,
                                           data={"closes_at": (closes_at + timedelta(days=1)).isoformat(),
                                                 "reason": "x"}, actor="staff:test")
    assert caught.value.code == "extension_not_allowed"
    headers = await staff_headers("district_admin")
    body = meeting_body(matters=RESOLUTION_ONLY, max_extensions=1, max_extension_days=2)
    base = f"/api/admin/communities/{community_id}/meetings"
    assert (await client.post(base, json=body, headers=headers)).status == 201
    assert (await client.post(f"{base}/{body['meeting_id']}/notice", headers=headers)).status == 200
    new_close = _when(body["closes_at"]) + timedelta(days=2)
    resp = await client.post(f"{base}/{body['meeting_id']}/extensions", headers=headers,
                             json={"closes_at": new_close.isoformat(), "reason": "春节假期"})
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["state"] == "noticed" and _when(doc["closes_at"]) == new_close


async def test_the_scheduler_closes_at_the_new_time(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8, matters=RESOLUTION_ONLY,
                           max_extensions=1, max_extension_days=1, closes_in=timedelta(seconds=6))
    original = _when(m.document["closes_at"])
    new_close = original + timedelta(seconds=4)
    resp = await client.post(f"{m.base}/extensions", headers=m.headers,
                             json={"closes_at": new_close.isoformat(), "reason": "延长 4 秒"})
    assert resp.status == 201, await resp.text()
    async with db_pool.acquire() as conn:
        now = await conn.fetchval("SELECT clock_timestamp()")
    await asyncio.sleep(max(0.0, (original - now).total_seconds()) + 0.5)
    # the original close has passed: the scheduler leaves the meeting open
    done = await scheduler.run_once(db_pool, client.app[appkeys.EFFECTS])
    assert (m.community_id, m.meeting_id) not in done["closed"]
    assert (await (await client.get(m.base, headers=m.headers)).json())["state"] == "open"
    doc = await _wait_for_state(client, m, "closed")
    assert doc["state"] == "closed" and _when(doc["closed_at"]) >= new_close
    transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
    assert (transitions[-1]["to"], transitions[-1]["actor"]) == ("closed", "system:scheduler")


async def _racing_meeting(client, db_pool, headers: dict, community_id: str, effects: Effects,
                          closes_in: float) -> str:
    """An open meeting (one extension of a day allowed) that closes ``closes_in`` seconds from now."""
    base = f"/api/admin/communities/{community_id}/meetings"
    body = meeting_body(matters=RESOLUTION_ONLY, max_extensions=1, max_extension_days=1)
    meeting_id = body["meeting_id"]
    assert (await client.post(base, json=body, headers=headers)).status == 201
    assert (await client.post(f"{base}/{meeting_id}/notice", headers=headers)).status == 200
    await backdate_notice(db_pool, community_id, meeting_id)
    try:
        await meetings_service.open_meeting(db_pool, effects, community_id=community_id, meeting_id=meeting_id,
                                            actor="staff:race")
    except ApiError as exc:   # the app's own scheduler opened it first
        assert exc.code == "wrong_state"
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET closes_at = clock_timestamp() + make_interval(secs => $3) "
                           "WHERE community_id = $1 AND meeting_id = $2", community_id, meeting_id, closes_in)
    return meeting_id


async def test_an_extension_and_a_close_at_the_same_moment_never_both_win(client, db_pool, staff_headers,
                                                                          imported_community, settings):
    cid, _ = await imported_community(6)
    headers = await staff_headers("district_admin")
    effects = Effects(settings)   # no close hooks: only the transitions race here
    rng = random.Random(2026)
    outcomes: Counter[str] = Counter()
    for _ in range(RACES):
        delay = rng.randint(20, 120) / 1000   # the close comes in that many seconds
        mid = await _racing_meeting(client, db_pool, headers, cid, effects, delay)
        new_close = datetime.now(UTC) + timedelta(hours=2)

        async def extend(wait: float):
            await asyncio.sleep(wait)
            return await voting_window.extend_meeting(
                db_pool, effects, community_id=cid, meeting_id=mid, actor="staff:race",
                data={"closes_at": new_close.isoformat(), "reason": "同时延期"})

        async def close_by_hand(wait: float):
            await asyncio.sleep(wait)
            return await meetings_service.close_meeting(db_pool, effects, community_id=cid, meeting_id=mid,
                                                        actor="staff:race")

        async def scheduled(wait: float):
            await asyncio.sleep(wait)
            return await scheduler.run_once(db_pool, effects)

        # the extension is sent shortly before the close (or at it), the closes at about the close time
        jitter = [max(0.0, delay + rng.uniform(-0.03, 0.005))] + [max(0.0, delay + rng.uniform(-0.003, 0.008))
                                                                 for _ in range(3)]
        extended, by_hand, *passes = await asyncio.gather(
            extend(jitter[0]), close_by_hand(jitter[1]), scheduled(jitter[2]), scheduled(jitter[3]),
            return_exceptions=True)
        for outcome in (extended, by_hand, *passes):
            if isinstance(outcome, BaseException) and not isinstance(outcome, ApiError):
                raise outcome
        won_extension = not isinstance(extended, BaseException)
        closed_by_hand = not isinstance(by_hand, BaseException)
        closed_by_pass = any((cid, mid) in p["closed"] for p in passes if not isinstance(p, BaseException))
        async with db_pool.acquire() as conn:
            row = await conn.fetchrow("SELECT state, closes_at, closed_at FROM meeting WHERE community_id = $1 "
                                      "AND meeting_id = $2", cid, mid)
            closes = await conn.fetchval("SELECT count(*) FROM meeting_transition WHERE community_id = $1 "
                                         "AND meeting_id = $2 AND to_state = 'closed'", cid, mid)
            extensions = await conn.fetch("SELECT previous_closes_at, published_at FROM meeting_extension "
                                          "WHERE community_id = $1 AND meeting_id = $2", cid, mid)
        assert closes <= 1 and not (closed_by_hand and closed_by_pass)
        if won_extension:
            # the extension won: nobody closed, the close is the new one, published before the old one
            assert not closed_by_hand and not closed_by_pass, (delay, jitter)
            assert row["state"] == "open" and row["closes_at"] == new_close
            [ext] = extensions
            assert ext["published_at"] < ext["previous_closes_at"]
            outcomes["extended"] += 1
        else:
            assert isinstance(extended, ApiError) and extended.code == "voting_period_over", extended
            assert extensions == []
            if row["state"] == "closed":
                assert row["closed_at"] >= row["closes_at"]
                outcomes["closed"] += 1
            else:   # refused as too late, not yet closed by anyone here (the app's scheduler will)
                outcomes["neither yet"] += 1
        if closed_by_hand or closed_by_pass:
            assert not won_extension and row["state"] == "closed"
    assert sum(outcomes.values()) == RACES, outcomes


async def test_the_guarded_updates_alone_never_both_win(client, db_pool, staff_headers, imported_community,
                                                        settings):
    """The same race one level down: the extension's and the closes' UPDATEs with no row lock taken first."""
    from server.repositories import meetings as meetings_repo
    from server.repositories import window as window_repo

    cid, _ = await imported_community(6)
    headers = await staff_headers("district_admin")
    effects = Effects(settings)
    rng = random.Random(7)
    outcomes: Counter[str] = Counter()
    mid = await _racing_meeting(client, db_pool, headers, cid, effects, 0.05)
    for _ in range(RACES):
        new_close = datetime.now(UTC) + timedelta(hours=2)

        async def move(wait: float):
            await asyncio.sleep(wait)
            async with db_pool.acquire() as conn, conn.transaction():
                return await window_repo.move_close(conn, cid, mid, new_close)

        async def close(wait: float):
            await asyncio.sleep(wait)
            async with db_pool.acquire() as conn, conn.transaction():
                closed_at = await meetings_repo.close_by_hand(conn, cid, mid)
                if closed_at is not None:
                    await meetings_repo.insert_transition(conn, community_id=cid, meeting_id=mid, from_state="open",
                                                          to_state="closed", actor="staff:race")
                return closed_at

        async def scheduled(wait: float):
            await asyncio.sleep(wait)
            return (cid, mid) in (await scheduler.run_once(db_pool, effects))["closed"]

        async with db_pool.acquire() as conn:
            closes_at = await conn.fetchval("SELECT closes_at FROM meeting WHERE community_id = $1 "
                                            "AND meeting_id = $2", cid, mid)
            wait = max(0.0, (closes_at - await conn.fetchval("SELECT clock_timestamp()")).total_seconds())
        moved, by_hand, by_pass = await asyncio.gather(move(wait + rng.uniform(-0.004, 0.004)),
                                                       close(wait + rng.uniform(-0.002, 0.004)),
                                                       scheduled(wait + rng.uniform(-0.002, 0.004)))
        async with db_pool.acquire() as conn:
            row = await conn.fetchrow("SELECT state, closes_at, closed_at FROM meeting WHERE community_id = $1 "
                                      "AND meeting_id = $2", cid, mid)
        if moved is not None:
            assert by_hand is None and not by_pass and row["state"] == "open" and row["closes_at"] == new_close
            assert moved < closes_at   # published before the close it moved
            outcomes["moved"] += 1
            async with db_pool.acquire() as conn:   # race again on the same meeting, closing in a moment
                await conn.execute("UPDATE meeting SET closes_at = clock_timestamp() + interval '30 ms' "
                                   "WHERE community_id = $1 AND meeting_id = $2", cid, mid)
        else:
            assert row["closes_at"] == closes_at
            if row["state"] == "closed":
                assert row["closed_at"] >= closes_at and not (by_hand is not None and by_pass)
                outcomes["closed"] += 1
            else:
                outcomes["neither yet"] += 1
            mid = await _racing_meeting(client, db_pool, headers, cid, effects, rng.uniform(0.02, 0.08))
    assert sum(outcomes.values()) == RACES, outcomes


# ---------------------------------------------------------------- the record

async def test_the_record_carries_the_window_and_the_extensions(client, db_pool, staff_headers, imported_community,
                                                                monkeypatch, tmp_path):
    from server.services import export

    calls: list[dict] = []
    real = export.meeting_document

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "meeting_document", recording)
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=12, matters=RESOLUTION_ONLY,
                           max_extensions=1, max_extension_days=2)
    original = _when(m.document["closes_at"])
    resp = await client.post(f"{m.base}/extensions", headers=m.headers, json={
        "closes_at": (original + timedelta(days=1)).isoformat(), "reason": "节假日顺延"})
    assert resp.status == 201
    [extension] = (await resp.json())["extensions"]
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    assert (await close_now(client, m.community_id, m.meeting_id, m.headers)).status == 200
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={})
    assert resp.status == 200, await resp.text()
    doc = await (await client.get(m.base, headers=m.headers)).json()
    window = {"opens_at": format_cast_at(_when(doc["opens_at"])), "closes_at": format_cast_at(_when(doc["closes_at"]))}
    extensions = [{"published_at": format_cast_at(_when(extension["published_at"])), "reason": "节假日顺延",
                   "closes_at": format_cast_at(original + timedelta(days=1))}]
    assert calls and calls[-1] == {"window": window, "extensions": extensions, "attachments": []}
    public = await (await client.get(f"/api/public/meetings/{m.community_id}/{m.meeting_id}/result")).json()
    meeting = public["signed"]["payload"]["meeting"]
    assert meeting["window"] == window and meeting["extensions"] == extensions
    # meeting.json of the signed record holds them too, and the record reads back
    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)
    recorded = json.loads(files["meeting.json"])["meeting"]
    assert recorded["window"] == window and recorded["extensions"] == extensions
    write_directory(tmp_path / "record", files)
    assert read_bundle(tmp_path / "record").meeting["meeting"]["extensions"] == extensions


# ---------------------------------------------------------------- the demo

async def test_the_demo_can_end_voting_of_its_own_meeting_only(client, db_pool, settings):
    from server.cli import build_parser
    from server.devtools.demo import DEMO_COMMUNITY, DemoNotOpen, end_demo_voting
    from server.devtools.demo_data import generate_register_rows, register_csv
    from server.devtools.demo_meeting import DEMO_MEETING, demo_meeting_step
    from server.repositories import communities as community_repo
    from server.services import register as register_service

    assert build_parser().parse_args(["demo", "--end-voting"]).end_voting
    async with db_pool.acquire() as conn:
        await community_repo.upsert_district(conn, "licheng", "鲤城区")
        await community_repo.upsert_street(conn, "haibin", "licheng", "海滨街道")
        if await community_repo.get_community(conn, DEMO_COMMUNITY) is None:
            await community_repo.insert_community(conn, community_id=DEMO_COMMUNITY, name="海滨演示小区",
                                                  street_id="haibin", count_parking_area=False,
                                                  prep_group_formed_on=None)
    await register_service.import_register(db_pool, community_id=DEMO_COMMUNITY,
                                           data=register_csv(generate_register_rows(20, seed=5)),
                                           filename="demo.csv", actor="test")
    await demo_meeting_step(db_pool, settings, {"community_id": DEMO_COMMUNITY})
    ended = await end_demo_voting(db_pool)
    assert (ended["community_id"], ended["meeting_id"]) == (DEMO_COMMUNITY, DEMO_MEETING)
    done = await scheduler.run_once(db_pool, Effects(settings))
    # closed by this pass, or by the app's own scheduler, whose pass may hold the row (SKIP LOCKED) and
    # commit a moment later
    for _ in range(100):
        async with db_pool.acquire() as conn:
            state = await conn.fetchval("SELECT state FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                                        DEMO_COMMUNITY, DEMO_MEETING)
        if state != "open":
            break
        await asyncio.sleep(0.1)
    assert state == "closed", done
    with pytest.raises(DemoNotOpen):
        await end_demo_voting(db_pool)
