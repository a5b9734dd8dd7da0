"""The organisers' console (/admin/) in headless Chromium, screen by screen, against the real app.

Each test signs in through the page and works only through the page (the setup of a register or an
open meeting uses the test helpers); every refusal checked is the server's Chinese message shown on
the page.  Screenshots of every screen, phone and desktop: test-artifacts/console/.
"""
from __future__ import annotations

import csv
import io
import zipfile

from server.devtools.fixtures import end_voting_and_close
from tests import helpers_meetings
from tests.helpers_codes import make_meeting, person_voter, voter_identity, wrong_last4
from tests.helpers_console import (
    browser,
    confirm,
    go,
    needs_chromium,
    new_page,
    no_page_errors,
    ready,
    reloads,
    shoot,
    sign_in,
    text,
    wait_message,
    wait_text,
)
from tests.helpers_live import wait_for_js
from tests.helpers_register import HEADER, JOINT_LINES

pytestmark = needs_chromium
__all__ = ["browser"]


async def test_sign_in_and_the_communities_in_scope(browser, client, make_community, make_staff):
    mine = await make_community(street_id="s-east")
    neighbour = await make_community(street_id="s-east")
    elsewhere = await make_community(street_id="s-west")
    prep, prep_password = await make_staff("prep_group", communities=[mine])
    street, street_password = await make_staff("street_admin", street_id="s-east")

    page = await new_page(browser, "phone")
    await page.goto(str(client.make_url("/admin/")))
    await ready(page, "login")
    await shoot(page, "01-login")
    await page.fill("input[name=username]", prep)
    await page.fill("input[name=password]", "not-the-password")
    await page.click("#login-submit")
    message = await wait_text(page, "[data-testid=login-error]", "密码")
    assert "用户名或密码" in message or "密码错误" in message, message
    await page.fill("input[name=password]", prep_password)
    await page.click("#login-submit")
    await ready(page, "communities")
    listed = await page.eval_on_selector_all("[data-community]", "els => els.map(e => e.dataset.community)")
    assert listed == [mine]
    assert "筹备组" in await text(page, "#who")
    await shoot(page, "02-communities-prep-group")
    # the token lives in sessionStorage only; signing out forgets it
    assert await page.evaluate("!!sessionStorage.getItem('evote.staff') && !localStorage.length")
    await page.click("#logout")
    await ready(page, "login")
    assert await page.evaluate("sessionStorage.getItem('evote.staff') === null")

    await sign_in(page, client, street, street_password)
    listed = await page.eval_on_selector_all("[data-community]", "els => els.map(e => e.dataset.community)")
    assert sorted(listed) == sorted([mine, neighbour]) and elsewhere not in listed
    # a community outside the scope: the server's refusal, in Chinese
    await go(page, f"#/c/{elsewhere}/register")
    assert "权限" in await text(page, "main") or "无权" in await text(page, "main")
    no_page_errors(page)


def _csv(lines) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


async def test_register_preview_lists_every_problem_then_imports(browser, client, db_pool, make_community,
                                                                 make_staff):
    community_id = await make_community()
    username, password = await make_staff("prep_group", communities=[community_id])
    page = await new_page(browser)
    await sign_in(page, client, username, password)
    await page.click(f"[data-community='{community_id}']")
    await ready(page)
    await page.click("[data-tab=register]")
    await ready(page, "register")
    assert "还没有导入" in await text(page, "[data-testid=register-versions]")
    async with page.expect_download() as template:
        await page.click("[data-testid=template]")
    assert (await template.value).suggested_filename.endswith(".xlsx")

    bad = list(JOINT_LINES)
    bad[4] = bad[4].replace(",90,", ",九十,")            # line 6 of the file: an area that is not a number
    bad[5] = bad[5].replace(",dwelling,", ",castle,")    # line 7: an unknown kind
    await page.set_input_files("input[name=register-file]", files=[
        {"name": "名册.csv", "mimeType": "text/csv", "buffer": _csv(bad)}])
    await page.click("[data-testid=check]")
    await page.wait_for_selector("[data-testid=problems]")
    problems = await text(page, "[data-testid=problems]")
    assert "第 6 行" in problems and "第 7 行" in problems
    assert "未导入" in await text(page, "[data-testid=register-msg]") or "没有导入" in await text(
        page, "[data-testid=register-msg]")
    await shoot(page, "03-register-problems")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM register_version WHERE community_id = $1",
                                   community_id) == 0

    # fixed and chosen again: the check passes, nothing is written until 确认导入
    await page.set_input_files("input[name=register-file]", files=[
        {"name": "名册.csv", "mimeType": "text/csv", "buffer": _csv(JOINT_LINES)}])
    await page.click("[data-testid=check]")
    await wait_text(page, "[data-testid=register-msg]", "检查通过")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM register_version WHERE community_id = $1",
                                   community_id) == 0
    await shoot(page, "04-register-checked")
    await page.click("[data-testid=import]")
    await wait_text(page, "[data-testid=register-msg]", "已导入第 1 版")
    totals = await wait_text(page, "[data-testid=register-totals]", "390.75")
    assert "3" in totals
    await shoot(page, "05-register-imported")
    no_page_errors(page)


async def test_a_meeting_is_drafted_from_templates_and_its_notice_published(browser, client, make_staff,
                                                                           imported_community):
    community_id, rows = await imported_community(24, seed=5)
    username, password = await make_staff("prep_group", communities=[community_id])
    page = await new_page(browser)
    await sign_in(page, client, username, password)
    await go(page, f"#/c/{community_id}/new", "new-meeting")
    await page.fill("input[name=title]", "2027 年第一次业主大会")
    await page.fill("input[name=meeting_id]", "am-2027-1")
    await shoot(page, "06-meeting-new")
    await page.click("[data-testid=create-meeting]")
    await ready(page, "meeting-prepare")

    # a three-quarters matter from its template: the category comes from the template
    templates = await page.eval_on_selector_all("select[name=template] option", "os => os.map(o => o.value)")
    assert len(templates) >= 10          # the prompt and a template for each of the nine items of art. 278
    await page.select_option("select[name=template]", "common_parts_use")
    info = await text(page, "[data-testid=template-info]")
    assert "第 8 项" in info and "四分之三" in info
    await page.fill("input[name=matter-title]", "利用小区广场设置快递柜")
    await reloads(page, "[data-testid=add-matter-submit]", "meeting-prepare")
    matter = await wait_text(page, "[data-matter=M1]", "利用小区广场设置快递柜")
    assert "四分之三" in matter
    # an election of the committee, five seats; candidates come from vetted nominations
    await page.select_option("select[name=template]", "elect_committee")
    await page.fill("input[name=matter-title]", "选举第一届业主委员会")
    await page.fill("input[name=matter-seats]", "5")
    await reloads(page, "[data-testid=add-matter-submit]", "meeting-prepare")
    await page.wait_for_selector("[data-matter=E1]")
    owners = list(dict.fromkeys(r["owner_id"] for r in rows if r["holder"] == "owner" and r["kind"] == "dwelling"))
    for owner in owners[:6]:
        await page.click("[data-testid=nominate] summary")
        await page.fill("input[name=nominate-owner]", owner)
        await reloads(page, "[data-testid=nominate-submit]", "meeting-prepare")
    await page.wait_for_selector("[data-testid=nomination-list]")
    await shoot(page, "07-meeting-nominations")
    for _ in range(6):
        await reloads(page, "[data-qualify]", "meeting-prepare")
    refused = await page.query_selector_all("[data-qualify]")
    assert refused == []
    for _ in range(6):
        await reloads(page, "[data-attach]", "meeting-prepare")
    assert len(await page.query_selector_all("[data-testid=candidates-E1] tbody tr")) == 6
    await shoot(page, "08-meeting-draft")

    # the voting starts tomorrow: the notice is refused with the 15-day rule, in the server's words
    tomorrow = await page.evaluate("new Date(Date.now() + 8 * 3600e3 + 86400e3).toISOString().slice(0, 16)")
    await page.fill("input[name=opens_at]", tomorrow)
    await reloads(page, "[data-testid=save-settings]", "meeting-prepare")
    await page.click("[data-testid=publish-notice]")
    await page.wait_for_selector("#confirm[open]")
    await page.click("#confirm-ok")
    refusal = await wait_text(page, "#confirm-error", "15")
    assert "15 日" in refusal
    await shoot(page, "09-notice-refused")
    await page.click("#confirm-cancel")
    later = await page.evaluate("new Date(Date.now() + 8 * 3600e3 + 17 * 86400e3).toISOString().slice(0, 16)")
    await page.fill("input[name=opens_at]", later)
    await reloads(page, "[data-testid=save-settings]", "meeting-prepare")
    await page.click("[data-testid=publish-notice]")
    await confirm(page)
    await wait_for_js(page, "document.querySelector('[data-meeting-state]') && "
                            "document.querySelector('[data-meeting-state]').dataset.meetingState === 'noticed'")
    await shoot(page, "10-notice-published")
    no_page_errors(page)


async def test_codes_issue_reissue_and_unlock(browser, client, db_pool, make_staff, staff_headers,
                                              imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=12,
                                                  state="noticed", seed=11)
    username, password = await make_staff("prep_group", communities=[community_id])
    page = await new_page(browser)
    await sign_in(page, client, username, password)
    await go(page, f"#/c/{community_id}/m/{meeting_id}/codes", "meeting-codes")
    await shoot(page, "11-codes")
    async with page.expect_download() as download_info:
        await page.click("[data-testid=issue-codes]")
        # the QR address of a test server is a loopback one: refused unless it is a test
        await page.wait_for_selector("#confirm[open]")
        assert "测试" in await text(page, "#confirm-text")
        await page.click("#confirm-ok")
    download = await download_info.value
    with zipfile.ZipFile(await download.path()) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("codes.csv").decode("utf-8-sig"))))
    codes = {r["voter_id"]: r["code"] for r in rows}
    assert codes
    await wait_text(page, "[data-testid=flash]", "已发放并下载")
    await ready(page, "meeting-codes")
    await wait_text(page, "[data-testid=codes-status]", f"已发放 {len(codes)} 户")

    # an owner guesses wrong five times: locked; staff unlock after checking who they are
    voter = await person_voter(db_pool, community_id, meeting_id, {v: None for v in codes})
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    for _ in range(5):
        await client.post("/api/ballot/redeem", json={"code": codes[voter], "last4": wrong_last4(identity)})
    await go(page, f"#/c/{community_id}/m/{meeting_id}/codes?r=1", "meeting-codes")
    await wait_text(page, "[data-testid=codes-status]", "被锁定 1 户")
    await shoot(page, "12-codes-locked")
    await reloads(page, f"[data-unlock='{voter}']", "meeting-codes", confirmed=True)
    await wait_text(page, "[data-testid=flash]", f"已解锁 {voter}")
    await wait_text(page, "[data-testid=codes-status]", "被锁定 0 户")
    # a lost sheet: reissued, the new code shown once
    await page.click(f"[data-reissue='{voter}']")
    await confirm(page)
    new_code = await wait_message(page, "[data-testid=new-code]")
    assert new_code and new_code != codes[voter]
    await shoot(page, "13-codes-reissued")
    resp = await client.post("/api/ballot/redeem", json={"code": codes[voter], "last4": wrong_last4(identity)})
    assert resp.status in (401, 403, 404, 410)
    no_page_errors(page)


async def test_closing_publishing_objections_and_the_final_result(browser, client, db_pool, make_staff,
                                                                  staff_headers, imported_community):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=20)
    voting = await helpers_live_voting(client, db_pool, m)
    username, password = await make_staff("prep_group", communities=[m.community_id])
    page = await new_page(browser)
    await sign_in(page, client, username, password)
    await go(page, f"#/c/{m.community_id}/m/{m.meeting_id}/closing", "meeting-closing")
    # closing before the noticed time is refused, in the server's words
    await page.click("[data-testid=close-meeting]")
    await page.wait_for_selector("#confirm[open]")
    await page.click("#confirm-ok")
    assert "投票" in await wait_message(page, "#confirm-error")
    await page.click("#confirm-cancel")
    await shoot(page, "14-closing-open")

    async def close_in_the_console():
        await page.click("[data-testid=close-meeting]")
        await confirm(page)
        await wait_for_js(page, "document.querySelector('[data-meeting-state]') && "
                                "document.querySelector('[data-meeting-state]').dataset.meetingState === 'closed'")
    await end_voting_and_close(db_pool, m.community_id, m.meeting_id, close_in_the_console)
    await page.wait_for_selector("[data-testid=result], [data-testid=result-msg]")
    for _ in range(40):                 # the close hook signs the result within moments
        if await page.query_selector("[data-testid=result-table]"):
            break
        await page.wait_for_timeout(250)
        await go(page, f"#/c/{m.community_id}/m/{m.meeting_id}/closing?n={_}", "meeting-closing")
    assert voting == len(m.voter_ids[:12])
    await shoot(page, "15-result-closed")
    await page.fill("input[name=objection-days]", "3")
    await page.click("[data-testid=publish-result]")
    await confirm(page)
    await wait_for_js(page, "!!document.querySelector('[data-result-status=preliminary]')")
    # an objection handed in on paper, registered for the owner, then answered
    await page.click("[data-testid=objections] details summary")
    await page.fill("input[name=objection-owner]", "1 栋业主")
    await page.fill("textarea[name=objection-text]", "我家的纸质票没有计入")
    await page.click("[data-testid=add-objection]")
    await wait_text(page, "[data-testid=objection-list]", "纸质票")
    await page.click("[data-testid=finalize-result]")
    await page.click("#confirm-ok")
    assert "异议期" in await wait_text(page, "#confirm-error", "异议期")
    await page.click("#confirm-cancel")
    await shoot(page, "16-result-published")
    await page.click("[data-respond]")
    await confirm(page, "已核对：该户纸质票已于第二次录入后计入。")
    await wait_text(page, "[data-testid=objection-list]", "已核对")
    async with db_pool.acquire() as conn:   # TEST ONLY: let the objection period run out
        await conn.execute("UPDATE meeting_result SET objection_ends_at = clock_timestamp() - interval '1 second' "
                           "WHERE community_id = $1 AND meeting_id = $2", m.community_id, m.meeting_id)
    await page.click("[data-testid=finalize-result]")
    await confirm(page)
    await wait_for_js(page, "!!document.querySelector('[data-result-status=final]')")
    await shoot(page, "17-result-final")
    no_page_errors(page)


async def helpers_live_voting(client, db_pool, m) -> int:
    """Twelve owners vote yes on every resolution through the owner API; returns how many voted."""
    from tests.helpers_live import Voting

    voting = await Voting(client, db_pool, m).load()
    resolutions = [x["matter_id"] for x in m.document["matters"] if x["kind"] == "resolution"]
    for voter in voting.voters[:12]:
        await voting.vote(voter, [{"matter_id": mid, "choice": "yes"} for mid in resolutions])
    return 12


async def test_proxies_an_extension_and_voiding(browser, client, db_pool, make_staff, staff_headers,
                                                imported_community):
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=20,
                                            max_extensions=1, max_extension_days=7)
    owner, proxy = m.voter_ids[0], m.voter_ids[1]
    username, password = await make_staff("prep_group", communities=[m.community_id])
    page = await new_page(browser)
    await sign_in(page, client, username, password)
    await go(page, f"#/c/{m.community_id}/m/{m.meeting_id}/voting", "meeting-voting")
    await page.click("[data-testid=proxies] details summary")
    await page.fill("input[name=proxy-owner]", owner)
    await page.fill("input[name=proxy-proxy]", proxy)
    await page.fill("input[name=proxy-ref]", "委托书 2027-001（筹备组办公室存档）")
    await page.click("[data-testid=proxies] details button")
    listed = await wait_text(page, "[data-testid=proxy-list]", owner)
    assert proxy in listed and "有效" in listed
    await shoot(page, "18-voting-proxy")
    await page.click("[data-testid=proxy-list] button")
    await confirm(page, "业主本人到场撤回委托")
    await wait_text(page, "[data-testid=proxy-list]", "已撤销")

    await go(page, f"#/c/{m.community_id}/m/{m.meeting_id}/closing", "meeting-closing")
    later = await page.evaluate("(() => { const v = document.querySelector('input[name=extension-closes-at]').value; "
                                "const d = new Date(v + ':00Z'); d.setUTCDate(d.getUTCDate() + 3); "
                                "return d.toISOString().slice(0, 16); })()")
    await page.fill("input[name=extension-closes-at]", later)
    await reloads(page, "[data-testid=extend]", "meeting-closing", reason="参与表决人数不足三分之二", confirmed=True)
    assert "参与表决人数不足三分之二" in await text(page, "[data-testid=extension]")
    # a second extension is beyond the meeting's rules: the server says so in the dialog
    await page.click("[data-testid=extend]")
    await page.fill("#confirm-input", "再延一次")
    await page.click("#confirm-ok")
    assert "延期" in await wait_message(page, "#confirm-error")
    await page.click("#confirm-cancel")
    await shoot(page, "19-closing-extended")
    await reloads(page, "[data-testid=void-meeting]", "meeting-closing", reason="会议通知张贴位置不符合议事规则",
                  confirmed=True)
    await state_voided(page)
    assert "会议通知张贴位置不符合议事规则" in await text(page, "main")
    await shoot(page, "20-meeting-voided")
    no_page_errors(page)


async def state_voided(page) -> None:
    await wait_for_js(page, "!!document.querySelector('[data-meeting-state=voided]')")
