"""The community's public notice page (/p/{community}) in Chromium at phone sizes: the preparatory group's
posted list with an objection filed from it, and the register posting where an owner sees their own record
after their room and last four digits and asks for a correction."""
from __future__ import annotations

import pytest

from tests.helpers_live import wait_for_js
from tests.helpers_owner_page import (
    browser,  # noqa: F401  (fixture)
    needs_chromium,
    phone_context,
    screenshot,
)
from tests.helpers_register import PHONES, import_lines
from tests.test_before_the_vote import LAWFUL, admin

pytestmark = needs_chromium


@pytest.mark.parametrize("size,wechat", [("phone", False), ("small", True)])
async def test_owners_read_the_notices_object_and_ask_for_a_correction(browser, client, db_pool,  # noqa: F811
                                                                       staff_headers, make_community, size, wechat):
    cid, _ = await import_lines(db_pool, make_community)
    headers = await staff_headers("district_admin")
    context = await phone_context(browser, size, wechat=wechat)
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/p/{cid}")))
    await wait_for_js(page, "!document.getElementById('nothing').hidden")     # nothing posted yet

    assert (await client.post(f"{admin(cid)}/prep-group", json={"members": LAWFUL}, headers=headers)).status == 201
    assert (await client.post(f"{admin(cid)}/prep-group/post", json={}, headers=headers)).status == 200
    assert (await client.post(f"{admin(cid)}/register-posting", json={}, headers=headers)).status == 201
    await page.reload()
    await page.wait_for_selector("#members")
    assert await page.inner_text("#community-name") == "测试小区"
    members = await page.inner_text("#members")
    assert "陈主任" in members and "组长" in members and "业主代表" in members
    # an objection from the page, refused without a name, then filed
    await page.fill("#objection-text", "业主3 并非本小区业主")
    await page.click("#objection-submit")
    await wait_for_js(page, "document.getElementById('objection-message').textContent.includes('姓名')")
    await page.fill("#objection-name", "黄女士")
    await page.click("#objection-submit")
    await wait_for_js(page, "document.getElementById('objection-message').textContent.includes('异议已提交')")
    group = await (await client.get(f"{admin(cid)}/prep-group", headers=headers)).json()
    assert [(o["filed_by"], o["text"]) for o in group["objections"]] == [("public:黄女士", "业主3 并非本小区业主")]

    # the register: per building without names; the owner's own record after room + last four
    register = await page.inner_text("#register")
    assert "1 栋" in register and "张三" not in register and "李四" not in register
    await page.fill("#lookup-unit", "1-101")
    await page.fill("#lookup-last4", "0000")
    await page.click("#lookup-submit")
    await wait_for_js(page, "document.getElementById('lookup-message').textContent.includes('不符')")
    await page.fill("#lookup-last4", PHONES["A"][-4:])
    await page.click("#lookup-submit")
    await page.wait_for_selector("#my-record")
    record = await page.inner_text("#my-record")
    assert "张三" in record and "1-102" in record and "李*" in record and "不动产登记" in record
    await page.fill("#correction-text", "1-102 面积应为 95 平方米")
    await page.click("#correction-submit")
    await wait_for_js(page, "document.getElementById('correction-message').textContent.includes('更正申请已提交')")
    await screenshot(page, f"notice-page-{size}.png")
    listed = await (await client.get(f"{admin(cid)}/register-posting/corrections", headers=headers)).json()
    assert [(c["unit_id"], c["status"]) for c in listed["corrections"]] == [("1-101", "open")]
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await context.close()
