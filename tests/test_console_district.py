"""The console's 工作进度 and 筹备 screens in Chromium: a street admin watches a community move through its
stages on the street board while the preparatory group is drafted and posted, the register posted, and a
meeting noticed and opened — each stage derived from what was recorded."""
from __future__ import annotations

from tests.conftest import unique_id
from tests.helpers_console import (
    browser,  # noqa: F401  (fixture)
    go,
    needs_chromium,
    new_page,
    no_page_errors,
    reloads,
    shoot,
    sign_in,
    wait_text,
)
from tests.helpers_meetings import backdate_notice, meeting_body
from tests.helpers_register import ONE_RESOLUTION, import_lines

pytestmark = needs_chromium


async def stage_on_board(page, campaign_id: str, community_id: str) -> str:
    await go(page, f"#/d/{campaign_id}?r={unique_id('r')}", "board")
    return await page.inner_text(f"[data-stage-of='{community_id}']")


async def test_a_street_board_follows_a_community_through_its_stages(browser, client, db_pool, staff_headers,  # noqa: F811
                                                                     make_community, make_staff):
    cid, _ = await import_lines(db_pool, make_community)
    district = await staff_headers("district_admin")
    campaign_id = unique_id("plan")
    resp = await client.post("/api/admin/campaigns", headers=district, json={
        "campaign_id": campaign_id, "name": "测试街道老旧小区组建业主大会", "district_id": "test-district",
        "starts_on": "2026-01-01", "batches": [{"name": "第一批", "due_on": "2026-06-30", "share_percent": 50,
                                                "one_per_shequ": True},
                                               {"name": "第二批", "due_on": "2027-06-30", "share_percent": 50}]})
    assert resp.status == 201, await resp.text()
    other = unique_id("c")
    rows = ["小区编号,小区名称,街道编号,街道名称,社区编号,社区名称,户数,批次",
            f"{cid},幸福里小区,test-street,测试街道,{campaign_id}-q,幸福社区,3,1",
            f"{other},和平小区,test-street,测试街道,{campaign_id}-q,幸福社区,40,2"]
    resp = await client.post(f"/api/admin/campaigns/{campaign_id}/communities", data="\n".join(rows).encode(),
                             headers=district | {"Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    username, password = await make_staff("street_admin", street_id="test-street")
    page = await new_page(browser, "desktop")
    await sign_in(page, client, username, password)
    await page.click("[data-testid=to-boards]")
    await page.wait_for_selector(f"[data-campaign='{campaign_id}']")
    await shoot(page, "district-campaigns")
    await page.click(f"[data-campaign='{campaign_id}']")
    await wait_text(page, "[data-testid=done-count]", "已完成组建 0 个")
    assert await page.inner_text(f"[data-stage-of='{cid}']") == "未启动"
    overdue = await page.inner_text("[data-testid=overdue]")
    assert "测试小区" in overdue and "成立筹备组" in overdue    # batch 1 was due 2026-06-30 (an existing community keeps its name)
    await shoot(page, "district-board-start")

    # 筹备: the group is drafted (a lawful five), posted; its posting ends with no objection
    await go(page, f"#/c/{cid}/prep", "prep")
    names = ["陈主任", "业主甲", "业主乙", "业主丙", "林书记"]
    for i, name in enumerate(names):
        await page.locator("[data-member-row] input[name=m-name]").nth(i).fill(name)
    await page.locator("[data-member-row] input[name=m-unit]").nth(1).fill("1-101")
    # four rows are too few: the server's rule is shown as it came
    await page.locator("[data-member-row] button").nth(4).click()
    await page.click("[data-testid=group-save]")
    await wait_text(page, "[data-testid=prep-group-msg]", "5 人以上")
    await shoot(page, "prep-refused")
    await page.click("text=添加成员")
    row = page.locator("[data-member-row]").nth(4)
    await row.locator("input[name=m-name]").fill("林书记")
    await row.locator("select[name=m-side]").select_option("residents_committee")
    await reloads(page, "[data-testid=group-save]", "prep")
    assert "草稿" in await page.inner_text("[data-testid=prep-group]")
    await reloads(page, "[data-testid=group-post]", "prep", confirmed=True)
    assert await page.inner_text("[data-group-state]") == "公示中"
    await shoot(page, "prep-posted")
    async with db_pool.acquire() as conn:      # TEST ONLY: the 7-day posting is over
        await conn.execute("""UPDATE prep_group SET posted_from = now() - interval '7 days 1 minute',
                                     posted_until = now() - interval '1 minute' WHERE community_id = $1""", cid)
    assert await stage_on_board(page, campaign_id, cid) == "筹备组已成立"

    # the register is posted and its posting ends
    await go(page, f"#/c/{cid}/prep?r=1", "prep")
    assert await page.inner_text("[data-group-state]") == "已成立"
    await reloads(page, "[data-testid=posting-start]", "prep")
    assert "公示中" in await page.inner_text("[data-testid=register-posting]")
    await shoot(page, "prep-register-posting")
    async with db_pool.acquire() as conn:
        await conn.execute("""UPDATE register_posting SET starts_at = now() - interval '8 days',
                                     ends_at = now() - interval '1 minute' WHERE community_id = $1""", cid)
    assert await stage_on_board(page, campaign_id, cid) == "业主名册已公示"

    # a meeting is noticed, then opened
    body = meeting_body(matters=ONE_RESOLUTION)
    base = f"/api/admin/communities/{cid}/meetings"
    assert (await client.post(base, json=body, headers=district)).status == 201
    resp = await client.post(f"{base}/{body['meeting_id']}/notice", headers=district)
    assert resp.status == 200, await resp.text()
    assert await stage_on_board(page, campaign_id, cid) == "已发布会议公告"
    await backdate_notice(db_pool, cid, body["meeting_id"])
    resp = await client.post(f"{base}/{body['meeting_id']}/open", headers=district)
    assert resp.status in (200, 409)          # the app's scheduler may have opened it first
    assert await stage_on_board(page, campaign_id, cid) == "投票中"
    stages = await page.inner_text("[data-testid=stages]")
    assert "投票中" in stages
    await shoot(page, "district-board-voting")
    page_phone = await new_page(browser, "phone")
    await sign_in(page_phone, client, username, password)
    await go(page_phone, f"#/d/{campaign_id}", "board")
    await shoot(page_phone, "district-board-phone")
    no_page_errors(page)
    no_page_errors(page_phone)
