"""The owner page explains the ballot (Beijing times, thresholds, rules, who sees the vote, attached
documents), names unanswered matters, takes an X in the identity digits, follows live turnout over a
WebSocket (in WeChat's browser too) and says when voting starts — in headless Chromium at 390×844 and,
with a WeChat user agent, at 360×640."""
from __future__ import annotations

import json

import pytest

from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity
from tests.helpers_live import wait_for_js
from tests.helpers_meetings import backdate_notice, ballot_token, cast, close_now
from tests.helpers_owner_page import (
    beijing,
    browser,  # noqa: F401  (fixture)
    needs_chromium,
    no_sideways_scroll,
    phone_context,
    screenshot,
)

pytestmark = needs_chromium
PRIVACY = "本小区业主、业主大会筹备组/业委会工作人员和审计人员可以查阅每户的表决情况"
TITLES = {"M1": "表决通过《管理规约》", "M2": "筹集电梯维修资金", "E1": "选举第一届业主委员会委员"}


async def _meeting_times(db_pool, community_id, meeting_id):
    async with db_pool.acquire() as conn:
        return await conn.fetchrow("SELECT opens_at, closes_at FROM meeting WHERE community_id = $1 "
                                   "AND meeting_id = $2", community_id, meeting_id)


@pytest.mark.parametrize("size,wechat", [("phone", False), ("small", True)])
async def test_the_ballot_explains_itself_and_names_what_is_unanswered(browser, client, db_pool, staff_headers,  # noqa: F811
                                                                      imported_community, size, wechat):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=10,
                                                  seed=41)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    times = await _meeting_times(db_pool, community_id, meeting_id)
    context = await phone_context(browser, size, wechat=wechat)
    if not wechat:
        # The attachments list comes from another part of the service (GET /api/ballot/attachments);
        # here its documented answer is given to the page, which must list the files.
        answer = {"attachments": [{"attachment_id": "a1", "title": "管理规约（草案）", "filename": "rules.pdf",
                                   "media_type": "application/pdf", "size": 245760, "sha256": "0" * 64}]}
        await context.route("**/api/ballot/attachments", lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)))
    page = await context.new_page()
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws))
    await page.goto(str(client.make_url(f"/b/{codes[voter].code}")))

    # the identity digits: an ID number may end in X; too few digits get a word, not silence
    await page.wait_for_selector("#last4")
    await page.fill("#last4", "12a")
    assert await page.input_value("#last4") == "12"                     # only digits and X stay
    await page.click("#last4-x")
    assert await page.input_value("#last4") == "12X"
    await page.click("#last4-submit")
    await wait_for_js(page, "document.getElementById('last4-feedback').textContent.includes('只输入了 3 位')")
    assert await page.get_attribute("#last4-feedback", "class") == "error"
    await page.fill("#last4", phone_last4(identity))
    await page.click("#last4-submit")
    await page.wait_for_selector(".matter")

    # voting period in Beijing time (the browser's clock is in New York)
    period = await page.inner_text("#voting-period")
    same_year = beijing(times["opens_at"])[:5] == beijing(times["closes_at"])[:5]
    assert period == (f"投票时间：{beijing(times['opens_at'])} 至 {beijing(times['closes_at'], year=not same_year)}"
                      "（北京时间）")
    # each matter's threshold in words, the quorum, the rules and who will see the vote
    assert "过半数同意" in await page.inner_text('[data-matter="M1"] .threshold')
    assert "四分之三以上同意" in await page.inner_text('[data-matter="M2"] .threshold')
    assert "当选" in await page.inner_text('[data-matter="E1"] .threshold')
    assert "三分之二以上" in await page.inner_text("#quorum-text")
    assert PRIVACY in await page.inner_text("#who-sees")
    await page.click("#ballot-rules summary")
    assert "能否改票" in await page.inner_text("#ballot-rules")
    if wechat:   # the real service has no attachments list here: the section stays hidden
        await wait_for_js(page, "!document.getElementById('attachments') || document.getElementById('attachments').hidden")
        assert not await page.is_visible("#attachments")
    else:
        await page.wait_for_selector("#attachments .file-link")
        link = page.locator("#attachments .file-link")
        assert await link.inner_text() == "管理规约（草案）"
        assert await link.get_attribute("href") == f"/api/public/meetings/{community_id}/{meeting_id}/attachments/a1"
        assert "PDF，240 KB" in await page.inner_text("#attachments")
    # a clean place for the WeChat notices opt-in, empty for now
    assert await page.evaluate("document.getElementById('notify-optin').hidden && "
                               "document.getElementById('notify-optin').children.length === 0")

    # live turnout over a WebSocket (also inside WeChat, where EventSource is not used)
    await wait_for_js(page, "!document.getElementById('live-line').hidden", timeout=10_000)
    before = await page.inner_text("#live-line")
    assert "目前已有 0 户参与表决" in before
    assert any(ws.url.endswith("/api/ballot/live/ws") for ws in sockets)
    other = next(v for v in sorted(codes) if v != voter)
    token = await ballot_token(db_pool, client, community_id, meeting_id, other)
    assert (await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    await wait_for_js(page, "document.getElementById('live-line').textContent.includes('目前已有 1 户')",
                      timeout=15_000)

    # "下一步" with nothing chosen names the unanswered matters by title, never by id
    await page.click("#to-confirm")
    hint = await page.inner_text("#unanswered")
    assert f"“{TITLES['M1']}”" in hint and f"“{TITLES['M2']}”" in hint and "还有 2 项没有选择" in hint
    assert "M1" not in hint and TITLES["E1"] not in hint       # no pick in an election is an abstention
    assert await page.get_attribute('[data-matter="M1"]', "class") == "card matter missing"
    assert await no_sideways_scroll(page)
    await screenshot(page, f"ballot_unanswered_{size}{'_wechat' if wechat else ''}.png")
    await page.click('[data-matter="M1"] button[data-choice="yes"]')
    await page.click("#to-confirm")
    hint = await page.inner_text("#unanswered")
    assert "还有 1 项没有选择" in hint and TITLES["M1"] not in hint and TITLES["M2"] in hint
    await page.click('[data-matter="M2"] button[data-choice="no"]')
    assert await page.is_hidden("#unanswered")
    await page.click("#to-confirm")
    await page.wait_for_selector(".summary")
    assert TITLES["M2"] in await page.inner_text(".summary")
    await context.close()


async def test_before_voting_opens_the_page_says_when_it_starts(browser, client, db_pool, staff_headers,  # noqa: F811
                                                                imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=8,
                                                  seed=43, state="noticed")
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    times = await _meeting_times(db_pool, community_id, meeting_id)
    context = await phone_context(browser, "small", wechat=True)
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/b/{codes[voter].code}")))
    await page.fill("#last4", phone_last4(identity))
    await page.click("#last4-submit")
    await page.wait_for_selector("#not-started")
    assert await page.inner_text("#opens-at") == f"投票开始时间：{beijing(times['opens_at'])}（北京时间）"
    assert await page.inner_text("#closes-at") == f"投票截止时间：{beijing(times['closes_at'])}（北京时间）"
    ahead = await page.inner_text("#matters-ahead")
    assert all(title in ahead for title in TITLES.values()) and "四分之三以上同意" in ahead
    assert await page.query_selector(".matter") is None          # nothing to vote on yet
    assert await no_sideways_scroll(page)
    await screenshot(page, "before_opening_small_wechat.png")

    # voting opens: the live stream says so and the waiting page becomes the ballot by itself
    staff = await staff_headers("district_admin")
    await backdate_notice(db_pool, community_id, meeting_id)
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/open", headers=staff)
    assert resp.status in (200, 409), await resp.text()           # (or the app's scheduler opened it first)
    await page.wait_for_selector(".matter", timeout=20_000)
    # voting ends while the ballot is on screen: the page turns into the after-close page
    assert (await close_now(client, community_id, meeting_id, staff, json={})).status == 200
    await page.wait_for_selector("#closed", timeout=20_000)
    assert "投票已经结束" in await page.inner_text("#closed")
    await context.close()
