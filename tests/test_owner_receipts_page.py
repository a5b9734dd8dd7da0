"""The short receipt on the owner page: kept by the voting subject across a reissued code, seen and
checked on another phone, and the page after the close (the meeting, its outcome, the results page)."""
from __future__ import annotations

import re

from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity
from tests.helpers_live import wait_for_js
from tests.helpers_meetings import close_now
from tests.helpers_owner_page import (
    beijing,
    browser,  # noqa: F401  (fixture)
    needs_chromium,
    no_sideways_scroll,
    phone_context,
    screenshot,
)

pytestmark = needs_chromium
SHORT = re.compile(r"^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$")
TITLES = {"M1": "表决通过《管理规约》", "M2": "筹集电梯维修资金", "E1": "选举第一届业主委员会委员"}


async def _sign_in(page, url: str, last4: str) -> None:
    await page.goto(url)
    await page.wait_for_selector("#last4")
    await page.fill("#last4", last4)
    await page.click("#last4-submit")


async def test_short_receipt_survives_a_reissue_and_is_checked_on_another_phone_after_the_close(
        browser, client, db_pool, staff_headers, imported_community):  # noqa: F811
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=10,
                                                  seed=47)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    last4 = phone_last4(await voter_identity(db_pool, community_id, meeting_id, voter))

    # phone A votes and is shown one short receipt for the whole ballot
    phone_a = await phone_context(browser, "phone")
    page = await phone_a.new_page()
    await _sign_in(page, str(client.make_url(f"/b/{codes[voter].code}")), last4)
    await page.wait_for_selector(".matter")
    await page.click('[data-matter="M1"] button[data-choice="yes"]')
    await page.click('[data-matter="M2"] button[data-choice="abstain"]')
    await page.check('[data-matter="E1"] input[data-candidate="C1"]')
    await page.click("#to-confirm")
    await page.click("#submit-votes")
    await page.wait_for_selector("#done")
    shorts = await page.eval_on_selector_all(".short-receipt", "els => els.map(e => e.textContent)")
    assert len(shorts) == 1 and SHORT.match(shorts[0])
    short = shorts[0]
    covered = await page.inner_text(".matters-covered")
    assert covered == "包含事项：" + "、".join(TITLES.values())
    async with db_pool.acquire() as conn:
        stored = await conn.fetchval("SELECT short_code FROM ballot_receipt WHERE community_id = $1 AND "
                                     "meeting_id = $2 AND voter_id = $3", community_id, meeting_id, voter)
        when = await conn.fetchval("SELECT received_at FROM ballot_receipt WHERE community_id = $1 AND "
                                   "meeting_id = $2 AND voter_id = $3", community_id, meeting_id, voter)
    assert stored == short.replace("-", "")
    assert await page.inner_text(".ballot-item .small") == f"提交时间：{beijing(when)}（北京时间）"
    assert await no_sideways_scroll(page)
    await screenshot(page, "receipt_after_voting_phone.png")

    # the phone is lost: the committee reissues the code; the old page keeps what it had
    staff = await staff_headers("district_admin")
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(f"{base}/codes/{voter}/reissue", json={"reason": "手机遗失"}, headers=staff)
    assert resp.status == 201, await resp.text()
    new_code = (await resp.json())["code"]
    await page.reload()
    await page.wait_for_selector(".error")
    assert "作废" in await page.inner_text(".error")
    assert await page.inner_text(".short-receipt") == short

    # phone B (another browser, WeChat, small screen) signs in with the new code: the same receipt
    phone_b = await phone_context(browser, "small", wechat=True)
    page_b = await phone_b.new_page()
    await _sign_in(page_b, str(client.make_url(f"/b/{new_code}")), last4)
    await page_b.wait_for_selector("#done")
    assert "已经投过票" in await page_b.inner_text("#done")
    assert await page_b.inner_text(".short-receipt") == short
    await wait_for_js(page_b, "document.querySelector('.receipt-check').textContent.includes('公布后')")
    assert await no_sideways_scroll(page_b)
    await screenshot(page_b, "receipt_new_code_small_wechat.png")

    # voting ends and the result is published
    assert (await close_now(client, community_id, meeting_id, staff, json={})).status == 200
    async with db_pool.acquire() as conn:
        times = await conn.fetchrow("SELECT opens_at, closes_at, title FROM meeting WHERE community_id = $1 "
                                    "AND meeting_id = $2", community_id, meeting_id)
    closed = await phone_b.new_page()                    # a new tab: signing in is over
    await closed.goto(str(client.make_url(f"/b/{new_code}")))
    await closed.wait_for_selector("#closed")
    await closed.wait_for_selector("#not-published")
    assert "正在计票" in await closed.inner_text("#outcome")
    assert await closed.query_selector("#results-link") is None   # no results page before publication
    await screenshot(closed, "closed_before_publication_small_wechat.png")
    resp = await client.post(f"{base}/publish", headers=staff, json={"objection_days": 5})
    assert resp.status == 200, await resp.text()

    await closed.reload()
    await closed.wait_for_selector("#outcome dl")
    text = await closed.inner_text("#app")
    assert "补发" not in text                           # nothing to reissue once voting is over
    assert times["title"] in await closed.inner_text("#closed")
    same_year = beijing(times["opens_at"])[:5] == beijing(times["closes_at"])[:5]
    assert await closed.inner_text("#closed-period") == (
        f"投票时间：{beijing(times['opens_at'])} 至 {beijing(times['closes_at'], year=not same_year)}（北京时间）")
    outcomes = await closed.eval_on_selector_all("#outcome dt", "els => els.map(e => e.textContent)")
    assert outcomes == list(TITLES.values())
    words = await closed.eval_on_selector_all("#outcome dd", "els => els.map(e => e.dataset.outcome)")
    assert len(words) == 3 and all(w in ("passed", "failed", "no_quorum", "elected", "runoff") for w in words)
    href = await closed.get_attribute("#results-link", "href")
    assert href.startswith(f"/r/{community_id}/{meeting_id}#code=") and f"receipt={short}" in href
    # the receipt this phone kept is checked against the signed record
    await wait_for_js(closed, "document.querySelector('.receipt-check').textContent === '您的选票已计入'",
                      timeout=15_000)
    # and the receipt written down on paper: typed in lower case without the hyphen
    await closed.fill("#check-code", short.replace("-", "").lower())
    await closed.click("#check-form button")
    await wait_for_js(closed, "document.getElementById('check-code-result').textContent.includes('已计入')",
                      timeout=15_000)
    await closed.fill("#check-code", "ZZZZZ-ZZZZZ" if short != "ZZZZZ-ZZZZZ" else "00000-00000")
    await closed.click("#check-form button")
    await wait_for_js(closed, "document.getElementById('check-code-result').textContent.includes('没有找到')",
                      timeout=15_000)
    assert await no_sideways_scroll(closed)
    await screenshot(closed, "closed_published_small_wechat.png")

    # the results page, from the link: the receipt box is filled in and the check passes
    await closed.click("#results-link")
    await closed.wait_for_selector("#receipt")
    assert await closed.input_value("#receipt") == short
    assert "北京时间" in await closed.inner_text(".status-line") and "UTC" not in await closed.inner_text("header")
    await closed.click("#check-button")
    await wait_for_js(closed, "document.getElementById('check-result').textContent.includes('您的选票已计入')",
                      timeout=15_000)
    assert "3 个事项" in await closed.inner_text("#check-result")
    await screenshot(closed, "results_page_short_receipt_small_wechat.png")
    # phone A, still on the reissued code's page: after the close it shows the meeting, not "已作废"
    await page.reload()
    await page.wait_for_selector("#outcome dl")
    assert await page.inner_text(".short-receipt") == short and "补发" not in await page.inner_text("#app")
    await wait_for_js(page, "document.querySelector('.receipt-check').textContent === '您的选票已计入'",
                      timeout=15_000)
    await phone_a.close()
    await phone_b.close()

    # a third phone that never voted here: the results page checks the short code typed by hand
    stranger = await phone_context(browser, "phone")
    results = await stranger.new_page()
    await results.goto(str(client.make_url(f"/r/{community_id}/{meeting_id}")))
    await results.fill("#receipt", short.lower())
    await results.click("#check-button")
    await wait_for_js(results, "document.getElementById('check-result').textContent.includes('您的选票已计入')",
                      timeout=15_000)
    await stranger.close()
