"""The public results page printed on A4 in headless Chromium (Playwright page.pdf): few pages, no forms,
the objection deadline in Beijing time, a date, signature and seal block; and the page on a phone."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers_documents import pdf_text, render_png
from tests.helpers_live import chromium_path
from tests.helpers_results import voted_meeting

CHROMIUM = chromium_path()
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "documents"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="/usr/bin/chromium is missing "
                                "(apt-get update && apt-get install -y chromium)")


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        yield browser
        await browser.close()


async def test_the_results_page_prints_on_a_few_a4_pages(browser, client, db_pool, staff_headers,
                                                        imported_community):
    pytest.importorskip("pypdfium2")
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=40)
    m = v.m
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={"objection_days": 7})
    assert resp.status == 200, await resp.text()
    ends = datetime.fromisoformat((await resp.json())["objection_ends_at"]).astimezone(UTC) + timedelta(hours=8)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/r/{m.community_id}/{m.meeting_id}")))
    shown = await page.inner_text("#objection-ends")
    assert shown.startswith(ends.strftime("%Y-%m-%d %H:%M")) and shown.endswith("（北京时间）"), shown
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "results-page-phone.png"), full_page=True)
    assert not await page.is_visible("#print-sign")         # the signature block is for paper only
    body = await page.pdf(format="A4", print_background=True)
    pages = pdf_text(body)
    for n in range(len(pages)):
        render_png(body, n, ARTIFACTS / f"results-page-print-{n + 1}.png")
    text = "\n".join(pages)
    flat = "".join(text.split())
    assert len(pages) <= 2, len(pages)
    for fact in ("表决结果公告", "表决通过《管理规约》", "筹集电梯维修资金", "选举第一届业主委员会委员",
                 "异议期至", ends.strftime("%Y-%m-%d%H:%M"), "（北京时间）", "盖章", "负责人签名", "公告日期",
                 "结果公示页面"):
        assert fact in flat, fact
    assert "UTC" not in text
    assert "查验我的选票" not in flat and "下载完整会议记录" not in flat      # the forms stay on screen
    await context.close()
