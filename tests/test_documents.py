"""Printed documents (docs/documents.md): each PDF rendered back with pdfium, its text and QR codes checked
on a meeting with a matter for one building, a committee election with an alternate place and a matter
that misses quorum (tests/helpers_documents.py); the refusals while a document does not apply yet."""
from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from server.ballot.codes import code_url
from server.printing.code_sheets import code_groups
from tests.helpers_documents import (
    ALTERNATES,
    ATTACHED_PDF,
    ATTACHED_TEXT,
    CANDIDATE_NAMES,
    ELECTED,
    RULES_TEXT,
    paper_trail_meeting,
    pdf_qr_codes,
    pdf_text,
    render_png,
    vote_and_close,
)

pytest.importorskip("pypdfium2")
pytest.importorskip("zxingcpp")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "documents"
BEIJING_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d（北京时间）")


async def _pdf(client, url: str, headers: dict) -> bytes:
    resp = await client.get(url, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/pdf"
    body = await resp.read()
    assert body.startswith(b"%PDF")
    return body


async def _refused(client, url: str, headers: dict, status: int, code: str) -> None:
    resp = await client.get(url, headers=headers)
    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"]["code"] == code


def _flat(pages: list[str]) -> str:
    return "".join("".join(page.split()) for page in pages)


async def test_notice_and_extension_notice(client, db_pool, staff_headers, make_community, settings):
    trail = await paper_trail_meeting(db_pool, client, staff_headers, make_community, max_extensions=1,
                                      max_extension_days=7)
    m = trail.m
    resp = await client.put(f"/api/admin/communities/{m.community_id}/contact", headers=m.headers,
                            json={"contact": "筹备组 王女士 0595-22000000，物业服务中心一楼"})
    assert resp.status == 200, await resp.text()
    body = await _pdf(client, f"{trail.print_base}/notice.pdf", m.headers)
    pages = pdf_text(body)
    for page in range(len(pages)):
        render_png(body, page, ARTIFACTS / f"notice-{page + 1}.png")
    text, flat = "\n".join(pages), _flat(pages)
    for fact in ("业主大会会议公告", "测试小区", "业主大会筹备组", "表决通过《管理规约》", "第2类", "第6类",
                 "四分之三以上", "过半数", "1栋业主", "全体业主", "周建国", "韩雪梅", "应选5人", "候补1名",
                 "以手机投票为准", "不能改票", "视为弃权", "谁能看到每户如何表决", f"投票网址：{settings.public_url}/b/",
                 "王女士0595-22000000", "盖章", f"第1/{len(pages)}页"):
        assert fact in flat, fact
    assert "UTC" not in text and BEIJING_TIME.search(text)
    # the attached drafts: where to read them, and their hashes
    for title, filename, data in (("业主大会议事规则（草案）", "议事规则.txt", ATTACHED_TEXT.encode()),
                                  ("管理规约（草案）", "管理规约.pdf", ATTACHED_PDF)):
        assert f"{title}（{filename}）" in flat and hashlib.sha256(data).hexdigest() in flat
    assert f"/api/public/meetings/{m.community_id}/{m.meeting_id}/attachments/" in flat
    # the voting period in Beijing time, as noticed
    opens = datetime.fromisoformat(m.document["opens_at"]).astimezone(UTC) + timedelta(hours=8)
    assert opens.strftime("%Y-%m-%d %H:%M") in text
    # no extension yet; then one, with its reason and new close
    await _refused(client, f"{trail.print_base}/extension.pdf", m.headers, 409, "no_extension")
    new_close = datetime.fromisoformat(m.document["closes_at"]) + timedelta(days=3)
    resp = await client.post(f"{m.base}/extensions", headers=m.headers,
                             json={"closes_at": new_close.isoformat(), "reason": "参与表决人数不足，延长投票时间"})
    assert resp.status == 201, await resp.text()
    body = await _pdf(client, f"{trail.print_base}/extension.pdf", m.headers)
    pages = pdf_text(body)
    text = "\n".join(pages)
    assert "业主大会会议延期公告" in text and "参与表决人数不足，延长投票时间" in text
    assert (new_close.astimezone(UTC) + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") + "（北京时间）" in text
    assert "UTC" not in text
    # the results of an open meeting do not exist yet
    await _refused(client, f"{trail.print_base}/results.pdf", m.headers, 409, "result_not_ready")
    await _refused(client, f"{trail.print_base}/committee.pdf", m.headers, 409, "committee_not_formed")
    await _refused(client, f"{trail.print_base}/ballots.pdf", m.headers, 404, "document_kind_unknown")
    await _refused(client, f"{trail.print_base}/notice", m.headers, 404, "document_kind_unknown")
    await _refused(client, f"{trail.print_base}/notice.zip", m.headers, 404, "document_kind_unknown")


async def test_a_draft_has_no_notice_and_staff_of_other_communities_are_refused(client, staff_headers,
                                                                                make_community):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings", headers=headers, json={
        "meeting_id": "draft-1", "title": "草稿会议",
        "matters": [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}]})
    assert resp.status == 201, await resp.text()
    base = f"/api/admin/communities/{community_id}/meetings/draft-1/print"
    await _refused(client, f"{base}/notice.pdf", headers, 409, "meeting_not_noticed")
    await _refused(client, f"{base}/sheets.pdf", headers, 409, "meeting_not_noticed")
    await _refused(client, f"/api/admin/communities/{community_id}/meetings/nope/print/notice.pdf", headers, 404,
                   "meeting_not_found")
    stranger = await staff_headers("prep_group", communities=[await make_community()])
    assert (await client.get(f"{base}/notice.pdf", headers=stranger)).status == 403
    assert (await client.get(f"{base}/notice.pdf")).status == 401
    resp = await client.put(f"/api/admin/communities/{community_id}/contact", headers=headers,
                            json={"contact": "x" * 201})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "bad_contact"


async def test_code_sheets_and_sign_off_lists(client, db_pool, staff_headers, make_community, settings):
    trail = await paper_trail_meeting(db_pool, client, staff_headers, make_community)
    m = trail.m
    await _refused(client, f"{trail.print_base}/sheets.pdf", m.headers, 409, "codes_not_issued")
    resp = await client.post(f"{m.base}/codes", headers=m.headers, json={"test": True})
    assert resp.status == 200, await resp.text()
    files = zipfile.ZipFile(io.BytesIO(await resp.read()))
    codes = {row["voter_id"]: row for row in csv.DictReader(io.StringIO(files.read("codes.csv").decode("utf-8-sig")))}
    assert sorted(files.namelist()) == sorted(
        ["codes.csv", *(f"sheets/{b}.pdf" for b in "123"), *(f"qr/{v}-1.png" for v in codes)])
    # building 1: A1 (its first unit is 1-0101), A2, A3 — one page of sheets, then the sign-off list
    sheet = files.read("sheets/1.pdf")
    render_png(sheet, 0, ARTIFACTS / "sheets-1.png")
    render_png(sheet, 1, ARTIFACTS / "signoff-1.png")
    pages = pdf_text(sheet)
    assert len(pages) == 2
    flat = _flat(pages[:1])
    for fact in ("1栋·第1/1页", f"网址：{settings.public_url}/b/", "投票时间", "（北京时间）", "联系："):
        assert "".join(fact.split()) in flat, fact
    for voter in ("A1", "A2", "A3"):
        code = codes[voter]["code"]
        groups = code_groups(code)
        assert len(groups) == 5
        # every group of four whole on one line, the groups in order
        lines = [line.strip() for line in pages[0].splitlines()]
        assert all(any(group in line for line in lines) for group in groups), code
        assert "".join(groups) in flat
    scanned = pdf_qr_codes(sheet, [0])
    assert sorted(scanned) == sorted(code_url(settings.public_url, codes[v]["code"]) for v in ("A1", "A2", "A3"))
    signoff = _flat(pages[1:])
    for fact in ("选票二维码签收表·1栋", "1栋签收表·第1/1页", "签收人签名", "签收日期", "选票单编号",
                 "1-001-1", "1-002-1", "1-003-1", "王*", "李*", "张*"):
        assert fact in signoff, fact
    assert all(code["code"] not in signoff for code in codes.values())
    # the sign-off lists of the live codes, printable again at any time (never the codes)
    body = await _pdf(client, f"{trail.print_base}/sheets.pdf", m.headers)
    pages = pdf_text(body)
    flat = _flat(pages)
    assert len(pages) == 3 and "选票二维码签收表·2栋" in flat and "3-001-1" in flat
    assert all(code["code"] not in flat for code in codes.values())
    assert pdf_qr_codes(body) == []
    # a reissued code: a new serial on the list
    resp = await client.post(f"{m.base}/codes/A2/reissue", headers=m.headers, json={"reason": "遗失"})
    assert resp.status == 201, await resp.text()
    flat = _flat(pdf_text(await _pdf(client, f"{trail.print_base}/sheets.pdf", m.headers)))
    assert "1-002-2" in flat and "1-002-1" not in flat


async def test_result_announcement_committee_and_filing(client, db_pool, staff_headers, make_community, settings):
    trail = await paper_trail_meeting(db_pool, client, staff_headers, make_community)
    m = trail.m
    await vote_and_close(db_pool, client, trail)
    await _refused(client, f"{trail.print_base}/results.pdf", m.headers, 409, "result_not_published")
    await _refused(client, f"{trail.print_base}/filing.pdf", m.headers, 409, "result_not_published")
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={"objection_days": 7})
    assert resp.status == 200, await resp.text()
    published = await resp.json()
    body = await _pdf(client, f"{trail.print_base}/results.pdf", m.headers)
    for page in range(min(3, len(pdf_text(body)))):
        render_png(body, page, ARTIFACTS / f"results-{page + 1}.png")
    pages = pdf_text(body)
    text, flat = "\n".join(pages), _flat(pages)
    assert "UTC" not in text
    for fact in ("表决结果公告", "测试小区", "表决通过《管理规约》", "筹集1号楼电梯维修资金", "续聘物业服务企业",
                 "表决范围：1栋业主", "表决范围：全体业主",
                 # M1: everyone took part (600 m², 6 persons = 100 %), the 2/3 line is 400 m² and 4 persons
                 "600.00m²（100.00%）", "6人（100.00%）", "400.00m²，已达到", "4人，已达到",
                 # M2: building 1 only — A1's 100 m² there, A2 90, A3 80
                 "270.00m²", "3人（100.00%）",
                 # M3: 220 m² of 600 (36.67 %), 2 of 6 persons (33.33 %): no decision, not "rejected"
                 "220.00m²（36.67%）", "2人（33.33%）", "未达到", "表决结果：未达参与表决法定比例（不构成决定）",
                 "表决结果：通过", "表决结果：已选出", "异议期", "盖章", "签名密钥编号", "公钥指纹"):
        assert fact in flat, fact
    assert "表决结果：未通过" not in flat
    names = CANDIDATE_NAMES
    assert f"当选：{'、'.join(names[c] for c in ELECTED)}" in flat
    assert f"候补：{'、'.join(names[c] for c in ALTERNATES)}" in flat
    ends = datetime.fromisoformat(published["objection_ends_at"]).astimezone(UTC) + timedelta(hours=8)
    assert ends.strftime("%Y-%m-%d %H:%M") + "（北京时间）" in text
    assert published["key_id"] in flat
    assert pdf_qr_codes(body) == [f"{settings.public_url}/r/{m.community_id}/{m.meeting_id}"]
    # the committee formation notice: offices once the first meeting chose them
    committees = (await (await client.get(f"/api/admin/communities/{m.community_id}/committees",
                                          headers=m.headers)).json())["committees"]
    committee = next(c for c in committees if c["meeting_id"] == m.meeting_id)
    assert committee["formed"], committee
    flat = _flat(pdf_text(await _pdf(client, f"{trail.print_base}/committee.pdf", m.headers)))
    assert "业主委员会成立公告" in flat and "主任：待首次会议选举" in flat and "候补委员" in flat
    members = {member["name"]: member["member_no"] for member in committee["members"]}
    held_on = committee["elected_on"]
    resp = await client.post(f"/api/admin/communities/{m.community_id}/committees/{committee['committee_id']}"
                             "/first-meeting", headers=m.headers,
                             json={"held_on": held_on, "chair": members[names["K1"]],
                                   "vice_chairs": [members[names["K4"]]]})
    assert resp.status == 200, await resp.text()
    body = await _pdf(client, f"{trail.print_base}/committee.pdf", m.headers)
    render_png(body, 0, ARTIFACTS / "committee-1.png")
    flat = _flat(pdf_text(body))
    assert f"主任：{names['K1']}" in flat and f"副主任：{names['K4']}" in flat
    assert all(names[c] in flat for c in ELECTED + ALTERNATES) and "任期" in flat
    # the filing package: one PDF, and a zip of its sources
    body = await _pdf(client, f"{trail.print_base}/filing.pdf", m.headers)
    pages = pdf_text(body)
    for page in range(4):
        render_png(body, page, ARTIFACTS / f"filing-{page + 1}.png")
    flat = _flat(pages)
    for fact in ("业主大会、业主委员会备案材料", "一、业主委员会成立情况报告", "二、业主委员会委员名单",
                 "三、业主大会通过的管理规约、议事规则", "表决结果公告", "".join(RULES_TEXT.split()),
                 "业主大会议事规则（草案）（会议附件）", "".join(ATTACHED_TEXT.split()), "管理规约.pdf",
                 "未达参与表决法定比例（不构成决定）"):
        assert fact in flat, fact
    resp = await client.get(f"{trail.print_base}/filing.zip", headers=m.headers)
    assert resp.status == 200 and resp.content_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    names_in_zip = set(archive.namelist())
    assert {"备案材料.pdf", "01-成立公告.pdf", "02-委员名单.csv", "04-表决结果公告.pdf", "05-签名结果/result.json",
            "05-签名结果/result.sig.json", "README.txt"} <= names_in_zip
    rules = sorted(n for n in names_in_zip if n.startswith("03-规约和规则/"))
    assert len(rules) == 3, rules
    contents = {name: archive.read(name) for name in rules}
    assert ATTACHED_PDF in contents.values() and ATTACHED_TEXT.encode() in contents.values()
    assert any(RULES_TEXT in data.decode("utf-8", "replace") for data in contents.values())
    members_csv = archive.read("02-委员名单.csv").decode("utf-8-sig")
    assert f"{names['K1']}" in members_csv and "主任" in members_csv and "候补委员" in members_csv


async def test_cli_writes_documents_and_refuses_what_does_not_apply(client, db_pool, staff_headers, make_community,
                                                                   settings, tmp_path):
    from server.commands._runtime import CommandFailed
    from server.commands.documents import write_documents

    trail = await paper_trail_meeting(db_pool, client, staff_headers, make_community)
    m = trail.m
    written = await write_documents(db_pool, settings, community_id=m.community_id, meeting_id=m.meeting_id,
                                    kind="notice", out=tmp_path / "out")
    assert [Path(p).name for p in written] == [f"{m.meeting_id}-会议公告.pdf"]
    data = await asyncio.to_thread(Path(written[0]).read_bytes)
    assert "业主大会会议公告" in "".join(pdf_text(data))
    with pytest.raises(CommandFailed, match="result_not_ready"):
        await write_documents(db_pool, settings, community_id=m.community_id, meeting_id=m.meeting_id,
                              kind="results", out=tmp_path / "out")
