"""The dashboard page in headless Chromium (Debian's chromium driven by Playwright; never a downloaded browser).

A vote cast through the API shows on the open page within a second: the test
waits for the DOM with a one-second timeout (Playwright polls), it does not time
anything itself.  A screenshot is saved to test-artifacts/dashboard.png.

The page is also shown documents of a small pure count (server.live.count, no
database) served by a stand-in for the live endpoints: a register with three
decimals and a matter scoped to two buildings, before any vote, with invalid
ballots, and after the close without quorum; screenshots at desktop and phone
sizes go to test-artifacts/dashboard_{open,closed}_{desktop,phone}.png.
"""
from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from server.ballot.tally import Rules, Submission
from server.live.count import LiveCount
from server.live.views import NO_QUORUM_ENDED, NOBODY_ENDED, NOBODY_YET, RESULTS, YES_MET
from server.web.handlers.live import DASHBOARD_STATIC
from tests import helpers_meetings
from tests.helpers_console import browser, needs_chromium
from tests.helpers_live import Voting, wait_for_js
from tests.test_live_views import ELECTORATE, MATTERS

ROOT = Path(__file__).resolve().parent.parent
pytestmark = needs_chromium
__all__ = ["browser"]


async def test_the_dashboard_follows_votes_live(browser, client, db_pool, staff_headers, imported_community):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=60)
    voting = await Voting(client, db_pool, m).load()
    for voter in voting.voters[:20]:  # some votes before the page opens
        await voting.vote(voter, [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
                                  {"matter_id": "E1", "marks": {"C1": "yes", "C2": "yes", "C3": "no"}}])
    headers = await staff_headers("prep_group", communities=[m.community_id])
    token = headers["Authorization"].split(" ", 1)[1]

    # a browser far from Beijing: the page still shows Beijing time
    page = await browser.new_page(viewport={"width": 1280, "height": 1400}, timezone_id="America/New_York")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    url = str(client.make_url(f"/dashboard/{m.community_id}/{m.meeting_id}"))
    await page.goto(f"{url}#token={token}")
    await wait_for_js(page, "document.getElementById('connection').dataset.state === 'live'", timeout=15000)
    assert await page.text_content("#turnout-persons") == "20"
    updated = await page.text_content("#updated-at")
    beijing_hours = {(datetime.now(UTC) + timedelta(hours=8, seconds=-s)).strftime("%H") for s in (0, 30)}
    assert re.fullmatch(r"更新于 (\d\d):\d\d:\d\d（北京时间）", updated), updated
    assert updated[4:6] in beijing_hours, updated
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
    await wait_for_js(page, "document.getElementById('turnout-persons').textContent === '21'", timeout=1000)

    # Enough more votes for quorum on both axes: the gauges turn to met and M1 passes.
    for voter in voting.voters[21:]:
        await voting.vote(voter, [{"matter_id": "M1", "choice": "yes"}])
    total = len(voting.voters)
    await wait_for_js(page, f"document.getElementById('turnout-persons').textContent === '{total}'",
                                 timeout=5000)
    await wait_for_js(page, "document.querySelector('[data-testid=status-M1]').textContent.includes('通过')",
                                 timeout=5000)
    assert await page.locator(".gauge.met").count() == 2
    await page.wait_for_timeout(600)  # let the gauges' 0.4 s animation finish before the screenshot
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    assert errors == []


async def test_the_real_dashboard_stops_saying_live_once_the_meeting_closes(browser, client, db_pool, staff_headers,
                                                                            imported_community):
    """The whole path: the app's stream carries the close; nobody voted on the three-quarters M2."""
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=24)
    voting = await Voting(client, db_pool, m).load()
    await voting.vote(voting.voters[0], [{"matter_id": "M1", "choice": "yes"}])   # M2: nobody
    headers = await staff_headers("prep_group", communities=[m.community_id])
    token = headers["Authorization"].split(" ", 1)[1]
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    page = await browser.new_page(viewport=SIZES["desktop"])
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(str(client.make_url(f"/dashboard/{m.community_id}/{m.meeting_id}")) + f"#token={token}")
    await wait_for_js(page, "document.getElementById('connection').dataset.state === 'live'", timeout=15000)
    assert await page.text_content("#connection-text") == "实时更新中"
    assert await page.text_content("[data-testid=need-M2]") == NOBODY_YET
    assert YES_MET not in await page.text_content("[data-matter=M2]")
    assert await page.text_content("[data-testid=need-M1]") == YES_MET       # one voter, who said yes

    resp = await helpers_meetings.end_voting_and_close(
        db_pool, m.community_id, m.meeting_id, lambda: client.post(f"{m.base}/close", headers=m.headers))
    assert resp.status == 200, await resp.text()
    await wait_for_js(page, "document.getElementById('connection').dataset.state === 'ended'", timeout=10000)
    body = await page.text_content("body")
    assert "实时更新中" not in body and "实时看板" not in body
    assert await page.text_content("#connection-text") == "投票已结束"
    assert await page.is_visible("#outcome")
    assert (await page.text_content("[data-testid=outcome-M2]")).endswith("未达参与表决法定比例")
    assert await page.text_content("[data-testid=status-M2]") == "未达参与表决法定比例"   # no "目前："
    assert await page.text_content("[data-testid=need-M2]") == NOBODY_ENDED
    assert YES_MET not in await page.text_content("#matters")
    await page.wait_for_timeout(600)
    await page.screenshot(path=str(artifacts / "dashboard_real_closed_desktop.png"), full_page=True)
    await page.set_viewport_size(SIZES["phone"])
    await page.screenshot(path=str(artifacts / "dashboard_real_closed_phone.png"), full_page=True)
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
    await wait_for_js(page, "document.getElementById('login-error').textContent.length > 0", timeout=10000)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
    await wait_for_js(page, "document.getElementById('connection').dataset.state === 'live'", timeout=15000)
    assert await page.text_content("#turnout-persons") == "0"


# --------------------------------------------------------------------------
# The page over documents of a pure count (no database)
# --------------------------------------------------------------------------

SIZES = {"desktop": {"width": 1280, "height": 1000}, "phone": {"width": 390, "height": 844}}
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class StandIn:
    """The live endpoints the page uses, serving whatever document ``show`` was last given."""

    def __init__(self) -> None:
        self.doc: dict = {}
        self.seq = 0

    def show(self, doc: dict) -> None:
        self.seq += 1
        self.doc = dict(doc, type="update", seq=self.seq, event_id=f"test.{self.seq}",
                        generated_at=datetime.now(UTC).isoformat())

    def app(self) -> web.Application:
        async def page(request: web.Request) -> web.FileResponse:
            return web.FileResponse(DASHBOARD_STATIC / "index.html")

        async def snapshot(request: web.Request) -> web.Response:
            return web.json_response(self.doc)

        async def stream(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
            await resp.prepare(request)
            await resp.write(b"retry: 2000\n\n")
            sent = 0
            try:
                while request.transport is not None and not request.transport.is_closing():
                    if self.seq != sent:
                        sent = self.seq
                        data = json.dumps(self.doc, ensure_ascii=False)
                        await resp.write(f"id: test.{sent}\nevent: update\ndata: {data}\n\n".encode())
                    await asyncio.sleep(0.05)
            except (ConnectionError, asyncio.CancelledError):
                pass
            return resp

        app = web.Application()
        base = "/api/admin/communities/{cid}/meetings/{mid}/live"
        app.router.add_get(base, snapshot)
        app.router.add_get(base + "/stream", stream)
        app.router.add_get("/dashboard/{cid}/{mid}", page)
        app.router.add_static("/static/dashboard/", DASHBOARD_STATIC)
        return app


def documents(count: LiveCount, state: str) -> dict:
    meta = {"community_id": "c1", "meeting_id": "m1", "title": "海滨小区首次业主大会", "state": state,
            "show_live_results": False, "opens_at": None, "closes_at": None}
    return count.documents(meta, ended=state not in ("noticed", "open"))[RESULTS]


async def screenshots(browser, url: str, name: str, check) -> None:
    """Open the page at both sizes, run ``check(page)``, save a full-page screenshot of each."""
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    for size, viewport in SIZES.items():
        context = await browser.new_context(viewport=viewport, is_mobile=size == "phone",
                                            device_scale_factor=2 if size == "phone" else 1)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(url)
        await page.wait_for_selector("#board:not([hidden])", timeout=10000)
        await check(page)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], size
        await page.wait_for_timeout(500)  # the gauges' 0.4 s animation
        await page.screenshot(path=str(artifacts / f"dashboard_{name}_{size}.png"), full_page=True)
        assert errors == []
        await context.close()


async def test_the_dashboard_before_any_vote_and_after_a_close_without_quorum(browser, aiohttp_client):
    stand_in = StandIn()
    client = await aiohttp_client(stand_in.app())
    url = str(client.make_url("/dashboard/c1/m1")) + "#token=test"
    count = LiveCount("m1", Rules(allow_revision=True), MATTERS, ELECTORATE)
    stand_in.show(documents(count, "open"))

    async def before_any_vote(page) -> None:
        await wait_for_js(page, "document.getElementById('connection').dataset.state === 'live'",
                                     timeout=10000)
        assert await page.text_content("#connection-text") == "实时更新中"
        # A three-quarters matter nobody voted on has not reached its approval line.
        assert await page.text_content("[data-testid=need-M2]") == NOBODY_YET
        assert YES_MET not in await page.text_content("#matters")
        assert await page.text_content("[data-testid=scope-S1]") == "仅 3 栋、5 栋"
        electorate = await page.text_content("[data-testid=electorate-S1]")
        assert "仅 3 栋、5 栋的业主" in electorate and "3 户 / 365.625 m²" in electorate
        assert "5 户 / 595.875 m²" in await page.text_content("[data-testid=electorate-M1]")
        assert "2/3 线 397.250" in await page.text_content("#gauge-area .detail")
        assert await page.is_hidden("#outcome")

    await screenshots(browser, url, "open", before_any_vote)

    # Votes, invalid ballots among them; then the close, with M2 short of quorum.
    ballots = [("A", "M1", "yes"), ("B+C", "M1", "invalid"), ("D", "M1", "abstain"), ("E", "M1", "yes"),
               ("F", "M1", "yes"), ("A", "M2", "yes"), ("A", "S1", "yes"), ("F", "S1", "invalid"), ("B+C", "S1", "yes")]
    for n, (voter, matter, choice) in enumerate(ballots, 1):
        count.take(Submission(f"b{n}", voter, matter, "paper" if choice == "invalid" else "electronic",
                              T0 + timedelta(seconds=n), (("", choice),)), "electronic")
    stand_in.show(documents(count, "closed"))

    async def after_the_close(page) -> None:
        await wait_for_js(page, "document.getElementById('connection').dataset.state === 'ended'",
                                     timeout=10000)
        assert await page.text_content("#connection-text") == "投票已结束"
        assert "实时更新中" not in await page.text_content("body")
        assert await page.text_content("[data-testid=status-M2]") == "未达参与表决法定比例"  # no "目前："
        assert await page.text_content("[data-testid=need-M2]") == NO_QUORUM_ENDED
        assert await page.text_content("[data-testid=status-M1]") == "通过"
        assert await page.text_content("[data-testid=outcome-M2]") == "M2　筹集维修资金：未达参与表决法定比例"
        assert "仅 3 栋、5 栋" in await page.text_content("[data-testid=outcome-S1]")
        figures = await page.text_content("[data-testid=figures-M1]")
        assert "弃权 1 户 · 无效票 1 户（90.000 m²）" in figures
        assert "无效票 0 户" in await page.text_content("[data-testid=figures-E1]")

    await screenshots(browser, url, "closed", after_the_close)
