"""The dashboard page in headless Chromium (Debian's chromium driven by Playwright; never a downloaded browser).

A vote cast through the API shows on the open page within a second: the test
waits for the DOM with a one-second timeout (Playwright polls), it does not time
anything itself.  A screenshot is saved to test-artifacts/dashboard.png.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests import helpers_meetings
from tests.helpers_live import Voting, chromium_path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="/usr/bin/chromium is missing "
                                "(apt-get update && apt-get install -y chromium)")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def test_the_dashboard_follows_votes_live(browser, client, db_pool, staff_headers, imported_community):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=60)
    voting = await Voting(client, db_pool, m).load()
    for voter in voting.voters[:20]:  # some votes before the page opens
        await voting.vote(voter, [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
                                  {"matter_id": "E1", "marks": {"C1": "yes", "C2": "yes", "C3": "no"}}])
    headers = await staff_headers("prep_group", communities=[m.community_id])
    token = headers["Authorization"].split(" ", 1)[1]

    page = await browser.new_page(viewport={"width": 1280, "height": 1400})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = str(client.make_url(f"/dashboard/{m.community_id}/{m.meeting_id}"))
    await page.goto(f"{url}#token={token}")
    await page.wait_for_function("document.getElementById('connection').dataset.state === 'live'", timeout=15000)
    assert await page.text_content("#turnout-persons") == "20"
    assert "#token=" not in page.url  # the token does not stay in the address bar or history
    # Two gauges with the 2/3 line, matter cards with status and distance, building bars, channels.
    assert await page.locator(".gauge .line23").count() == 2
    assert "未达参与表决法定比例" in await page.text_content("[data-testid=status-M1]")
    assert (await page.text_content("[data-testid=need-M1]")).startswith("赞成")
    assert await page.locator(".building").count() >= 2
    assert "电子投票 20 户" in await page.text_content("#channels")
    assert await page.locator("table.candidates tr").count() == 8  # header + 7 candidates

    # A vote through the API: the page shows it within a second.
    await voting.vote(voting.voters[20], [{"matter_id": "M1", "choice": "yes"}])
    await page.wait_for_function("document.getElementById('turnout-persons').textContent === '21'", timeout=1000)

    # Enough more votes for quorum on both axes: the gauges turn to met and M1 passes.
    for voter in voting.voters[21:]:
        await voting.vote(voter, [{"matter_id": "M1", "choice": "yes"}])
    total = len(voting.voters)
    await page.wait_for_function(f"document.getElementById('turnout-persons').textContent === '{total}'",
                                 timeout=5000)
    await page.wait_for_function("document.querySelector('[data-testid=status-M1]').textContent.includes('通过')",
                                 timeout=5000)
    assert await page.locator(".gauge.met").count() == 2
    await page.wait_for_timeout(600)  # let the gauges' 0.4 s animation finish before the screenshot
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert errors == []


async def test_the_dashboard_asks_for_a_login_without_a_token(browser, client, db_pool, staff_headers,
                                                              imported_community, make_staff):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=20)
    username, password = await make_staff("committee", communities=[m.community_id])
    page = await browser.new_page()
    await page.goto(str(client.make_url(f"/dashboard/{m.community_id}/{m.meeting_id}")))
    await page.wait_for_selector("#login:not([hidden])", timeout=10000)
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", "wrong-password")
    await page.click("button[type=submit]")
    await page.wait_for_function("document.getElementById('login-error').textContent.length > 0", timeout=10000)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await page.wait_for_function("document.getElementById('connection').dataset.state === 'live'", timeout=15000)
    assert await page.text_content("#turnout-persons") == "0"
