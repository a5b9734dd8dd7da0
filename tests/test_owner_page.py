"""The owner web page /b/{code} in headless Chromium: identity, vote on every matter, receipts."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from server.services.rule_statements import rule_statements
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity, wrong_last4
from tests.helpers_live import wait_for_js
from tests.helpers_meetings import close_now
from tests.helpers_scope import owner_phone, scoped_meeting

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PRIVACY_STATEMENT = "本小区业主、业主大会筹备组/业委会工作人员和审计人员可以查阅每户的表决情况；其他人只能看到汇总结果。"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (apt-get install chromium)")


@pytest.fixture
async def browser():
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        yield browser
        await browser.close()


async def _readable_chinese(context) -> None:
    """Test-only: give headless Chromium a CJK font (the one the PDF sheets use) for the screenshot.

    Phones have their own; a bare server image may have none, and the screenshot would show boxes.
    """
    from server.printing.code_sheets import font_path

    await context.route("**/__test-font/cjk.otf", lambda route: route.fulfill(path=font_path()))
    await context.add_init_script("""document.addEventListener('DOMContentLoaded', function () {
        var s = document.createElement('style');
        s.textContent = "@font-face { font-family: 'Noto Sans CJK SC'; src: url('/__test-font/cjk.otf'); }";
        document.head.appendChild(s); });""")


async def _setup(db_pool, client, staff_headers, imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=10,
                                                  seed=21)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    return community_id, meeting_id, codes[voter].code, voter, identity


async def test_owner_votes_on_every_matter_and_sees_receipts(browser, client, db_pool, staff_headers,
                                                             imported_community):
    community_id, meeting_id, code, voter, identity = await _setup(db_pool, client, staff_headers,
                                                                   imported_community)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                        locale="zh-CN")
    await _readable_chinese(context)
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/b/{code}")))
    # first a wrong answer: the page shows the server's message
    await page.fill("#last4", wrong_last4(identity))
    await page.click("#last4-submit")
    await page.wait_for_selector(".error")
    assert "还可以再试 4 次" in await page.inner_text(".error")
    await page.fill("#last4", phone_last4(identity))
    await page.click("#last4-submit")
    await page.wait_for_selector(".matter")
    matters = await page.eval_on_selector_all(".matter", "els => els.map(e => e.dataset.matter)")
    assert matters == ["M1", "M2", "E1"]
    # "下一步" is never greyed out and silent: until every resolution has a choice it is marked incomplete
    assert "incomplete" in await page.get_attribute("#to-confirm", "class")
    await page.click('[data-matter="M1"] button[data-choice="yes"]')
    await page.click('[data-matter="M2"] button[data-choice="no"]')
    await page.check('[data-matter="E1"] input[data-candidate="C1"]')
    await page.check('[data-matter="E1"] input[data-candidate="C3"]')
    assert "已选 2 人" in await page.inner_text('[data-matter="E1"] .counter')
    await page.click("#to-confirm")
    summary = await page.inner_text(".summary")
    assert "赞成" in summary and "反对" in summary and "王芳、张敏" in summary
    # before submitting, the owner reads who will be able to see how their unit voted
    assert await page.is_visible("#privacy-note")
    assert PRIVACY_STATEMENT in await page.inner_text("#privacy-note")
    note_box = await page.locator("#privacy-note").bounding_box()
    submit_box = await page.locator("#submit-votes").bounding_box()
    assert note_box and submit_box and note_box["y"] < submit_box["y"]   # above the submit button
    ARTIFACTS.mkdir(exist_ok=True)
    await page.evaluate("document.fonts.ready")
    await page.screenshot(path=str(ARTIFACTS / "owner_page_privacy.png"), full_page=True)
    await page.click("#submit-votes")
    await page.wait_for_selector("#done")
    assert "您的投票已提交" in await page.inner_text("#done")
    shown = await page.eval_on_selector_all(".receipt", "els => els.map(e => e.textContent)")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.evaluate("document.fonts.ready")
    await page.screenshot(path=str(ARTIFACTS / "owner_page.png"), full_page=True)

    async with db_pool.acquire() as conn:
        rows = await conn.fetch(
            """SELECT s.matter_id, c.candidate_id, c.choice, encode(s.receipt, 'hex') AS receipt, s.channel
                 FROM submission s JOIN submission_choice c USING (community_id, meeting_id, ballot_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $3
                ORDER BY s.matter_id, c.candidate_id""", community_id, meeting_id, voter)
    assert [(r["matter_id"], r["candidate_id"], r["choice"]) for r in rows] == [
        ("E1", "C1", "yes"), ("E1", "C3", "yes"), ("M1", "", "yes"), ("M2", "", "no")]
    assert {r["channel"] for r in rows} == {"electronic"}
    assert sorted(shown) == sorted({r["receipt"] for r in rows})

    # the same phone later (new tab, token gone): straight in, no identity check, sees it voted
    page2 = await context.new_page()
    await page2.goto(str(client.make_url(f"/b/{code}")))
    await page2.wait_for_selector("#done")
    assert "已经投过票" in await page2.inner_text("#done")
    assert await page2.query_selector("#last4") is None
    # before publication the page says when the receipts can be checked
    await wait_for_js(page2,
        "document.querySelectorAll('.receipt-check').length === 1 && [...document.querySelectorAll('.receipt-check')]"
        ".every(e => e.textContent.includes('公布后'))")

    # the committee closes and publishes; sign-in is over, but this phone kept its receipts and
    # checks each against the signed record's receipt tree
    staff = await staff_headers("district_admin")
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    assert (await close_now(client, community_id, meeting_id, staff, json={})).status == 200
    resp = await client.post(f"{base}/publish", headers=staff, json={"objection_days": 5})
    assert resp.status == 200, await resp.text()
    page3 = await context.new_page()
    await page3.goto(str(client.make_url(f"/b/{code}")))
    await page3.wait_for_selector("#closed")
    assert "投票已经结束" in await page3.inner_text("#closed")
    await wait_for_js(page3,
        "[...document.querySelectorAll('.receipt-check')].filter(e => e.textContent === '您的选票已计入').length === 1",
        timeout=10_000)
    # after publication the owner, with their code, may download the full record ...
    await page3.wait_for_selector("#record-download")
    async with page3.expect_download() as download_info:
        await page3.click("#record-download")
    names = zipfile.ZipFile(await (await download_info.value).path()).namelist()
    assert any(name.endswith("/ballots.csv") for name in names), names
    # ... and from the results page too, where the code arrives in the address's #fragment
    async with context.expect_page() as new_page:
        await page3.click("#results-link", modifiers=["Shift"])   # (a new window, like a long press)
    results = await new_page.value
    await results.wait_for_selector("#record-code")
    assert "code=" not in results.url                             # removed from the address bar
    assert (await results.input_value("#record-code")).replace("-", "").upper() == code.upper()
    async with results.expect_download() as download_info:
        await results.click("#record-button")
    names = zipfile.ZipFile(await (await download_info.value).path()).namelist()
    assert any(name.endswith("/register.csv") for name in names), names
    await context.close()

    # a stranger on the results page: the note, and no download without a code
    stranger = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                         locale="zh-CN")
    await _readable_chinese(stranger)
    page4 = await stranger.new_page()
    await page4.goto(str(client.make_url(f"/r/{community_id}/{meeting_id}")))
    assert "只供本小区业主（凭选票码）" in await page4.inner_text("#record-note")
    await page4.click("#record-button")
    await wait_for_js(page4, "document.getElementById('record-result').textContent.includes('选票码')")
    await page4.fill("#record-code", "0" * 20)
    await page4.click("#record-button")
    await wait_for_js(page4, "document.getElementById('record-result').textContent.includes('作废')")
    await page4.evaluate("document.fonts.ready")
    await page4.locator("#record").screenshot(path=str(ARTIFACTS / "results_page_record.png"))
    await stranger.close()


async def test_another_phone_must_confirm_identity_and_bad_codes_are_explained(browser, client, db_pool,
                                                                                staff_headers, imported_community):
    _, _, code, _, identity = await _setup(db_pool, client, staff_headers, imported_community)
    first = await browser.new_context()
    page = await first.new_page()
    await page.goto(str(client.make_url(f"/b/{code}")))
    await page.fill("#last4", phone_last4(identity))
    await page.click("#last4-submit")
    await page.wait_for_selector(".matter")
    await first.close()
    other = await browser.new_context()
    page = await other.new_page()
    await page.goto(str(client.make_url(f"/b/{code}")))
    await page.wait_for_selector("#last4")
    await page.goto(str(client.make_url("/b/" + "0" * 20)))
    await page.wait_for_selector(".error")
    assert "二维码无效" in await page.inner_text(".error")
    await page.goto(str(client.make_url("/b/")))
    await page.wait_for_selector("#code-input")
    await other.close()


@pytest.mark.parametrize("rules", [{}, {"duplicate_policy": "first_received", "invalid_ballot": "not_counted"}])
async def test_owner_reads_the_rules_before_submitting_and_sees_only_their_matters(browser, client, db_pool,
                                                                                  staff_headers, make_community,
                                                                                  rules):
    m = await scoped_meeting(db_pool, client, staff_headers, make_community, rules=rules)
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1,
                                        locale="zh-CN")
    await _readable_chinese(context)
    page = await context.new_page()
    await page.goto(str(client.make_url(f"/b/{codes['B1'].code}")))
    await page.fill("#last4", owner_phone("B1")[-4:])
    await page.click("#last4-submit")
    await page.wait_for_selector(".matter")
    # B1 lives in building 2: the matter of building 1 is not on the ballot, the one of building 2 says so
    matters = await page.eval_on_selector_all(".matter", "els => els.map(e => e.dataset.matter)")
    assert matters == ["M1", "E2"]
    assert "本项仅由 2 楼栋的业主表决" in await page.inner_text('[data-matter="E2"] .scope')
    await page.click('[data-matter="M1"] button[data-choice="yes"]')
    await page.check('[data-matter="E2"] input[data-candidate="K1"]')
    await page.click("#to-confirm")

    # before the submit button: the duplicate policy, changing a vote and blank ballots, in plain Chinese
    await page.wait_for_selector("#rules-note")
    shown = await page.eval_on_selector_all("#rules-note dd", "els => els.map(e => [e.dataset.rule, e.textContent])")
    expected = rule_statements(m.document["rules"])
    assert shown == [[r["key"], r["text"]] for r in expected]
    titles = await page.eval_on_selector_all("#rules-note dt", "els => els.map(e => e.textContent)")
    assert titles == ["手机投票与纸质票重复时", "能否改票", "空白票、无效票"]
    note = await page.inner_text("#rules-note")
    if rules:
        assert "两种票同等对待，以先收到的一张为准" in note and "不计入：视为没有参加该议题的表决" in note
    else:
        assert "以手机投票为准，纸质票不计入" in note and "视为弃权" in note
    assert "不能改票" in note and "提交后不能修改" in await page.inner_text(".card .hint")
    above = await page.evaluate("""() => {
        const rules = document.getElementById('rules-note'), submit = document.getElementById('submit-votes');
        return !!(rules.compareDocumentPosition(submit) & Node.DOCUMENT_POSITION_FOLLOWING); }""")
    assert above, "the rules are stated above the submit button"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.evaluate("document.fonts.ready")
    name = "owner_page_rules.png" if not rules else "owner_page_rules_first_received.png"
    await (await page.query_selector("#rules-note")).screenshot(path=str(ARTIFACTS / name))
    await page.click("#submit-votes")
    await page.wait_for_selector("#done")
    async with db_pool.acquire() as conn:
        voted = await conn.fetch("SELECT matter_id FROM submission WHERE community_id = $1 AND meeting_id = $2 "
                                 "AND voter_id = 'B1' ORDER BY matter_id", m.community_id, m.meeting_id)
    assert [r["matter_id"] for r in voted] == ["E2", "M1"]
    await context.close()
