"""The 微信提醒 section of the owner page, in Chromium: an owner signed in through the mini program ticks
the messages they want and the choice is recorded; one signed in in a plain browser is told how to get
them; the reminder then reaches that owner through the (fake) WeChat API."""
from __future__ import annotations

from datetime import timedelta

import pytest
import pytest_asyncio

from server.app import create_app
from server.services import notifications
from tests import fake_wechat
from tests.helpers_codes import issue_codes, person_voter, phone_last4, voter_identity
from tests.helpers_live import wait_for_js
from tests.helpers_meetings import open_meeting
from tests.helpers_owner_page import (
    browser,  # noqa: F401  (fixture)
    needs_chromium,
    phone_context,
    screenshot,
)
from tests.test_notifications import TEMPLATES

pytestmark = needs_chromium


@pytest_asyncio.fixture
async def wechat_server(aiohttp_server):
    return await aiohttp_server(fake_wechat.make_app())


async def signed_in_page(browser, client, code: str, last4: str, size: str, wechat: bool):  # noqa: F811
    context = await phone_context(browser, size, wechat=wechat)
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/b/{code}")))
    await page.wait_for_selector("#last4")
    await page.fill("#last4", last4)
    await page.click("#last4-submit")
    return context, page


@pytest.mark.parametrize("size,wechat", [("phone", False), ("small", True)])
async def test_owner_opts_in_on_the_page(browser,  # noqa: F811
                                          aiohttp_client, settings, wechat_server, db_pool, staff_headers,
                                         imported_community, size, wechat):
    wx = settings.replace(wechat_base_url=str(wechat_server.make_url("")).rstrip("/"),
                          wechat_appid=fake_wechat.APPID, wechat_secret=fake_wechat.SECRET,
                          wechat_templates=TEMPLATES, notify_interval_s=0)
    client = await aiohttp_client(create_app(wx))
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8,
                           closes_in=timedelta(days=1))
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = await person_voter(db_pool, m.community_id, m.meeting_id, codes)
    identity = await voter_identity(db_pool, m.community_id, m.meeting_id, voter)
    context, page = await signed_in_page(browser, client, codes[voter].code, phone_last4(identity), size, wechat)
    await page.wait_for_selector(".matter")
    await wait_for_js(page, "!document.getElementById('notify-optin').hidden")
    text = await page.inner_text("#notify-optin")
    assert "微信提醒" in text and "在微信小程序中打开选票" in text          # not bound: told how
    await screenshot(page, f"notify-unbound-{size}.png")
    await context.close()

    # the same owner, once their code knows their WeChat user (a sign-in through the mini program)
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE ballot_code SET wechat_openid = 'openid-page' WHERE community_id = $1 "
                           "AND meeting_id = $2 AND voter_id = $3 AND revoked_at IS NULL",
                           m.community_id, m.meeting_id, voter)
    context, page = await signed_in_page(browser, client, codes[voter].code, phone_last4(identity), size, wechat)
    await page.wait_for_selector("#notify-reminder")
    labels = await page.inner_text("#notify-optin")
    assert "投票提醒" in labels and "表决结果公告" in labels
    await page.check("#notify-reminder")
    await page.check("#notify-result_published")
    await page.click("#notify-save")
    await wait_for_js(page, "document.getElementById('notify-message').textContent.includes('已保存')")
    assert "已订阅" in await page.inner_text("#notify-optin")
    await screenshot(page, f"notify-saved-{size}.png")
    async with db_pool.acquire() as conn:
        kinds = [r["kind"] for r in await conn.fetch(
            "SELECT kind FROM notification_optin WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 "
            "AND state = 'waiting' ORDER BY kind", m.community_id, m.meeting_id, voter)]
    assert kinds == ["reminder", "result_published"]
    await context.close()
    # the owner has not voted and the close is within two days: the reminder goes out
    async with __import__("aiohttp").ClientSession() as session:
        from server.auth.wechat import WeChatClient
        client_wx = WeChatClient(session, base_url=wx.wechat_base_url, appid=wx.wechat_appid, secret=wx.wechat_secret)
        result = await notifications.run_once(db_pool, client_wx, wx)
    assert result.sent == 1
    assert [msg["touser"] for msg in wechat_server.app[fake_wechat.SENT]] == ["openid-page"]
