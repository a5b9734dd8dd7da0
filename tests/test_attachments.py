"""Attached documents: PDF or UTF-8 text only, frozen at the notice, read by staff, owners and (after the
notice) everyone; their sha256 in the notice and in the record; record.zip carries them and
`evote verify` checks them."""
from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import asyncpg
import pytest
from aiohttp import FormData

from server import appkeys
from server.ballot.attachments import MAX_ATTACHMENT_BYTES, AttachmentProblem, check_file, clean_filename
from server.record.verify import VerifyFailed, verify_bundle
from tests.helpers_meetings import (
    backdate_notice,
    ballot_token,
    bearer,
    cast,
    close_now,
    meeting_body,
    vet_inline_candidates_for_tests,
)

PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
TEXT = "业主大会议事规则（草案）\n第一条 本规则依据《民法典》制定。\n".encode()


def form(data: bytes, filename: str, title: str | None = None) -> FormData:
    body = FormData()
    body.add_field("file", data, filename=filename, content_type="application/octet-stream")
    if title is not None:
        body.add_field("title", title)
    return body


# ---------------------------------------------------------------- the pure check

def test_content_decides_the_kind_and_the_extension_must_agree():
    assert check_file(PDF, "规约.pdf").media_type == "application/pdf"
    checked = check_file(TEXT, "规则.txt")
    assert (checked.media_type, checked.size, checked.sha256) == ("text/plain", len(TEXT),
                                                                  hashlib.sha256(TEXT).hexdigest())
    assert check_file(b"\xef\xbb\xbf" + TEXT, "规则").media_type == "text/plain"   # BOM, no extension
    for data, name, code in [
        (b"", "a.txt", "empty_file"),
        (b"   \n", "a.txt", "empty_file"),
        (b"%PDF-1.4 truncated", "a.pdf", "bad_pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "a.png", "unsupported_media_type"),
        (b"PK\x03\x04 word document", "a.docx", "unsupported_media_type"),
        ("文本\x00".encode(), "a.txt", "unsupported_media_type"),
        (TEXT, "规则.pdf", "extension_mismatch"),
        (PDF, "规约.txt", "extension_mismatch"),
        (b"x" * (MAX_ATTACHMENT_BYTES + 1), "a.txt", "file_too_large"),
    ]:
        with pytest.raises(AttachmentProblem) as caught:
            check_file(data, name)
        assert caught.value.code == code, (name, caught.value)
    assert clean_filename("C:\\Users\\张三\\管理规约.pdf") == "管理规约.pdf"
    assert clean_filename("../../etc/规则\r\n.txt") == "规则.txt"
    with pytest.raises(AttachmentProblem):
        clean_filename("/")


# ---------------------------------------------------------------- through the app

async def _draft(client, db_pool, staff_headers, imported_community, units: int = 20):
    community_id, _ = await imported_community(units)
    headers = await staff_headers("prep_group", communities=[community_id])
    body = meeting_body(matters=[{"matter_id": "M1", "template": "management_statute", "title": "表决通过《管理规约》"}])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    await vet_inline_candidates_for_tests(db_pool, community_id, body["meeting_id"])
    return community_id, body["meeting_id"], headers


async def test_upload_list_read_delete_while_a_draft_and_the_notice_freezes_them(client, db_pool, staff_headers,
                                                                               imported_community):
    community_id, meeting_id, headers = await _draft(client, db_pool, staff_headers, imported_community)
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(base + "/attachments", data=form(PDF, "管理规约（草案）.pdf", "管理规约（草案）"),
                             headers=headers)
    assert resp.status == 201, await resp.text()
    statute = await resp.json()
    assert statute == {"attachment_id": statute["attachment_id"], "title": "管理规约（草案）",
                       "filename": "管理规约（草案）.pdf", "media_type": "application/pdf", "size": len(PDF),
                       "sha256": hashlib.sha256(PDF).hexdigest()}
    resp = await client.post(base + "/attachments", data=form(TEXT, "议事规则.txt"), headers=headers)
    rules = await resp.json()
    assert resp.status == 201 and rules["title"] == "议事规则" and rules["media_type"] == "text/plain"
    spare = await (await client.post(base + "/attachments", data=form(TEXT, "旧稿.txt"), headers=headers)).json()

    # refusals: wrong kinds, too large, not a form, an auditor; nothing is written
    for data, name, status, code in [(b"\x89PNG\r\n\x1a\n\x00\x00", "图.png", 415, "unsupported_media_type"),
                                     (TEXT, "x.pdf", 415, "extension_mismatch"),
                                     (b"a" * (MAX_ATTACHMENT_BYTES + 1), "big.txt", 413, "file_too_large")]:
        resp = await client.post(base + "/attachments", data=form(data, name), headers=headers)
        assert resp.status == status and (await resp.json())["error"]["code"] == code
    resp = await client.post(base + "/attachments", json={"file": "x"}, headers=headers)
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "multipart_required"
    auditor = await staff_headers("auditor", communities=[community_id])
    assert (await client.post(base + "/attachments", data=form(TEXT, "a.txt"), headers=auditor)).status == 403

    # a draft's attachment can be deleted; the listing and the files
    assert (await client.delete(f"{base}/attachments/{spare['attachment_id']}", headers=headers)).status == 204
    assert (await client.delete(f"{base}/attachments/{spare['attachment_id']}", headers=headers)).status == 404
    assert (await client.delete(f"{base}/attachments/abc", headers=headers)).status == 404
    listed = (await (await client.get(base + "/attachments", headers=auditor)).json())["attachments"]
    assert [a["attachment_id"] for a in listed] == [statute["attachment_id"], rules["attachment_id"]]
    assert listed[0]["uploaded_by"].startswith("staff:")
    resp = await client.get(f"{base}/attachments/{rules['attachment_id']}", headers=auditor)
    assert resp.status == 200 and await resp.read() == TEXT
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "filename*=UTF-8''%E8%AE%AE" in resp.headers["Content-Disposition"]
    # a draft's attachments are not public
    public = f"/api/public/meetings/{community_id}/{meeting_id}/attachments/{statute['attachment_id']}"
    assert (await client.get(public)).status == 404

    # the notice records their hashes, and freezes them
    resp = await client.post(base + "/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    assert [a["sha256"] for a in (await resp.json())["attachments"]] == [statute["sha256"], rules["sha256"]]
    async with db_pool.acquire() as conn:
        detail = json.loads(await conn.fetchval(
            "SELECT detail FROM audit_log WHERE community_id=$1 AND action='meeting.notice'", community_id))
        actions = [r["action"] for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE community_id=$1 AND action LIKE 'meeting.attachment.%' ORDER BY seq",
            community_id)]
    assert [(a["attachment_id"], a["sha256"]) for a in detail["attachments"]] == [
        (statute["attachment_id"], statute["sha256"]), (rules["attachment_id"], rules["sha256"])]
    assert actions == ["meeting.attachment.add"] * 3 + ["meeting.attachment.remove"]
    resp = await client.post(base + "/attachments", data=form(TEXT, "晚到.txt"), headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_not_draft"
    resp = await client.delete(f"{base}/attachments/{statute['attachment_id']}", headers=headers)
    assert resp.status == 409
    async with db_pool.acquire() as conn:   # the database refuses too, whatever the code path
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("DELETE FROM meeting_attachment WHERE community_id=$1", community_id)
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("UPDATE meeting_attachment SET title='x' WHERE community_id=$1", community_id)

    # public once noticed
    resp = await client.get(public)
    assert resp.status == 200 and await resp.read() == PDF and resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["ETag"] == f'"{statute["sha256"]}"'


async def test_owners_read_them_and_the_record_carries_them_for_evote_verify(client, db_pool, staff_headers,
                                                                           imported_community, tmp_path):
    community_id, meeting_id, headers = await _draft(client, db_pool, staff_headers, imported_community, units=12)
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    ids = []
    for data, name in ((PDF, "管理规约.pdf"), (TEXT, "说明.txt")):
        resp = await client.post(base + "/attachments", data=form(data, name), headers=headers)
        ids.append((await resp.json())["attachment_id"])
    assert (await client.post(base + "/notice", headers=headers)).status == 200
    await backdate_notice(db_pool, community_id, meeting_id)
    resp = await client.post(base + "/open", headers=headers)
    assert resp.status in (200, 409)

    async with db_pool.acquire() as conn:
        voters = [r["voter_id"] for r in await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id=$1 AND meeting_id=$2 ORDER BY voter_id",
            community_id, meeting_id)]
    token = await ballot_token(db_pool, client, community_id, meeting_id, voters[0])
    resp = await client.get("/api/ballot/attachments", headers=bearer(token))
    assert resp.status == 200
    owner_list = (await resp.json())["attachments"]
    assert [a["attachment_id"] for a in owner_list] == ids and "uploaded_by" not in owner_list[0]
    resp = await client.get(f"/api/ballot/attachments/{ids[1]}", headers=bearer(token))
    assert resp.status == 200 and await resp.read() == TEXT
    assert (await client.get(f"/api/ballot/attachments/{ids[1]}")).status == 401
    assert (await client.get("/api/ballot/attachments/999999", headers=bearer(token))).status == 404
    for voter in voters:
        voter_token = await ballot_token(db_pool, client, community_id, meeting_id, voter)
        assert (await cast(client, voter_token, [{"matter_id": "M1", "choice": "yes"}])).status == 201
    assert (await close_now(client, community_id, meeting_id, headers)).status == 200
    assert (await client.post(base + "/publish", json={}, headers=headers)).status == 200

    public = await (await client.get(f"/api/public/meetings/{community_id}/{meeting_id}/result")).json()
    listed = public["meeting"]["meeting"]["attachments"]
    assert [(a["attachment_id"], a["sha256"]) for a in listed] == [
        (ids[0], hashlib.sha256(PDF).hexdigest()), (ids[1], hashlib.sha256(TEXT).hexdigest())]
    assert list(listed[0]) == ["attachment_id", "title", "filename", "media_type", "size", "sha256"]

    resp = await client.get(f"/api/public/meetings/{community_id}/{meeting_id}/record.zip", headers=headers)
    assert resp.status == 200
    path = tmp_path / "record.zip"
    path.write_bytes(await resp.read())
    names = zipfile.ZipFile(path).namelist()
    folder = f"{community_id}-{meeting_id}"
    assert f"{folder}/attachments/{ids[0]}.pdf" in names and f"{folder}/attachments/{ids[1]}.txt" in names
    report = verify_bundle(path)
    assert (report.attachments_listed, report.attachments_checked) == (2, 2)
    assert "附件 2/2" in report.summary()

    # a changed draft in the archive is caught; one left out is fine; one not listed is refused
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(path).extractall(unpacked)
    record = unpacked / folder
    assert verify_bundle(record).attachments_checked == 2
    (record / "attachments" / f"{ids[1]}.txt").write_bytes(TEXT + "第二条 （私自添加）\n".encode())
    with pytest.raises(VerifyFailed, match="sha256"):
        verify_bundle(record)
    (record / "attachments" / f"{ids[1]}.txt").unlink()
    assert verify_bundle(record).attachments_checked == 1
    (record / "attachments" / "99.txt").write_bytes(TEXT)
    with pytest.raises(VerifyFailed, match="attachments"):
        verify_bundle(record)
    shutil.rmtree(record / "attachments")
    assert verify_bundle(record).attachments_checked == 0

    # evote export writes them into the directory too
    from server.commands.export import export_meeting
    files = await export_meeting(db_pool, client.app[appkeys.SETTINGS], community_id, meeting_id,
                                 tmp_path / "export")
    assert f"attachments/{ids[0]}.pdf" in files
    assert (tmp_path / "export" / "attachments" / f"{ids[0]}.pdf").read_bytes() == PDF
    assert verify_bundle(tmp_path / "export").attachments_checked == 2


async def test_an_upload_racing_the_notice_is_either_in_the_notice_or_refused(client, db_pool, staff_headers,
                                                                             imported_community):
    import asyncio

    community_id, meeting_id, headers = await _draft(client, db_pool, staff_headers, imported_community, units=8)
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    upload, notice = await asyncio.gather(client.post(base + "/attachments", data=form(PDF, "规约.pdf"), headers=headers),
                                          client.post(base + "/notice", headers=headers))
    assert notice.status == 200, await notice.text()
    noticed = [a["attachment_id"] for a in (await notice.json())["attachments"]]
    if upload.status == 201:
        assert noticed == [(await upload.json())["attachment_id"]]
    else:
        assert upload.status == 409 and noticed == []
    async with db_pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM meeting_attachment WHERE community_id=$1", community_id)
    assert stored == len(noticed)
    # a meeting voided while still a draft never makes its attachments public
    community_id, meeting_id, headers = await _draft(client, db_pool, staff_headers, imported_community, units=8)
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    attached = await (await client.post(base + "/attachments", data=form(TEXT, "a.txt"), headers=headers)).json()
    assert (await client.post(base + "/void", json={"reason": "筹备组决定不再召开"}, headers=headers)).status == 200
    public = f"/api/public/meetings/{community_id}/{meeting_id}/attachments/{attached['attachment_id']}"
    assert (await client.get(public)).status == 404
