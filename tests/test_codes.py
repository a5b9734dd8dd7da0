"""Ballot codes: generation, hashing only, issuing (HTTP ZIP/PDF and CLI), reissue, QR, sheets."""
from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import os
import sys
import zipfile
from pathlib import Path

import pytest

from server.ballot import codes as core
from server.printing.qr import qr_png, qr_svg
from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity
from tests.helpers_register import ONE_RESOLUTION, import_lines

# WeChat's scene parameter: at most 32 visible characters from this set.
WECHAT_SCENE_CHARSET = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$&'()*+,/:;=?@-._~")


def test_codes_are_long_random_and_fit_wechat_scene():
    codes = {core.generate_code() for _ in range(2000)}
    assert len(codes) == 2000
    for code in list(codes)[:200]:
        assert len(code) == core.CODE_LENGTH <= 32
        assert set(code) <= WECHAT_SCENE_CHARSET
        assert not set(code) & set("ILOU")
    # every symbol gets used (no bias to a subset)
    assert set("".join(codes)) == set(core.ALPHABET)


def test_normalize_code_reads_what_people_type():
    code = core.generate_code()
    assert core.normalize_code(code) == code
    assert core.normalize_code(" " + "-".join(code[i:i + 4] for i in range(0, 20, 4)).lower() + " ") == code
    assert core.normalize_code("O" * 20) == "0" * 20
    assert core.normalize_code("IL" * 10) == "1" * 20
    for bad in ("", "ABC", code + "0", "U" * 20, "!" * 20, 5, None):
        assert core.normalize_code(bad) is None


def test_identity_matches_phone_or_id_number_and_never_an_empty_record():
    assert core.identity_matches("5678", phone="138-1234-5678", id_number="")
    assert core.identity_matches("123x", phone="", id_number="35050219900101123X")
    assert not core.identity_matches("1234", phone="", id_number="")
    assert not core.identity_matches("0000", phone="13812345678", id_number="350502199001011234")


@pytest.mark.parametrize("url, usable", [
    ("https://vote.example.cn", True), ("http://192.168.1.20:8080", True), ("http://evote.test", True),
    ("", False), ("http://127.0.0.1:8080", False), ("http://127.5.0.1", False), ("http://localhost:8080", False),
    ("http://LOCALHOST.", False), ("http://vote.localhost", False), ("http://[::1]:8080", False),
    ("http://0.0.0.0:8080", False), ("ftp://vote.example.cn", False), ("vote.example.cn", False),
])
def test_a_qr_address_only_the_server_reaches_is_not_usable(url, usable):
    assert (core.public_url_problem(url) is None) is usable


def test_qr_png_and_svg():
    url = "https://vote.example.cn/b/" + core.generate_code()
    png = qr_png(url)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    from PIL import Image
    image = Image.open(io.BytesIO(png))
    assert image.size[0] == image.size[1] >= 200
    svg = qr_svg(url)
    assert svg.startswith("<svg") and "<path" in svg
    # the URL changes the symbol
    assert qr_png(url + "X") != png


async def test_issue_refuses_a_draft_meeting(client, imported_community, db_pool, staff_headers):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=5,
                                                  state="draft")
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes",
                             json={"test": True}, headers=headers)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "meeting_not_noticed"
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/nope/codes", json={"test": True},
                             headers=headers)
    assert (await resp.json())["error"]["code"] == "meeting_not_found"


async def test_issue_over_http_returns_sheets_csv_and_qr_and_stores_only_hashes(
        client, imported_community, db_pool, staff_headers, settings):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=30,
                                                  seed=4)
    headers = await staff_headers("prep_group", communities=[community_id])
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes"
    # the test app's QR address is loopback: refused unless the body says it is a test
    resp = await client.post(base, headers=headers)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "public_url_not_usable" and "EVOTE_PUBLIC_URL" in error["message"]
    assert "手机" in error["message"] and "测试" in error["message"]
    resp = await client.post(base, json={"test": True}, headers=headers)
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/zip"
    assert resp.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    names = archive.namelist()
    rows = list(csv.DictReader(io.StringIO(archive.read("codes.csv").decode("utf-8-sig"))))
    async with db_pool.acquire() as conn:
        electorate = await conn.fetch("SELECT voter_id, building FROM electorate WHERE community_id=$1", community_id)
        stored = await conn.fetch("SELECT voter_id, serial, code_hash, issued_by FROM ballot_code "
                                  "WHERE community_id=$1", community_id)
        audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE community_id=$1 AND action='codes.issue'",
                                    community_id)
    assert sorted(r["voter_id"] for r in rows) == sorted(r["voter_id"] for r in electorate)
    buildings = {r["building"] for r in electorate}
    assert {n for n in names if n.startswith("sheets/")} == {f"sheets/{b}.pdf" for b in buildings}
    assert len([n for n in names if n.startswith("qr/")]) == len(rows)
    by_voter = {r["voter_id"]: r for r in rows}
    for r in stored:
        code = by_voter[r["voter_id"]]["code"]
        assert bytes(r["code_hash"]) == hashlib.sha256(code.encode()).digest()
        assert by_voter[r["voter_id"]]["url"] == f"{settings.public_url}/b/{code}"
        assert r["serial"] == 1 and r["issued_by"].startswith("staff:")
    # the plaintext appears nowhere in the database row
    assert all(by_voter[r["voter_id"]]["code"].encode() not in bytes(r["code_hash"]) for r in stored)
    # names in the CSV are masked
    assert all(set(r["masked_name"][1:]) <= {"*"} for r in rows)
    assert audit == 1
    pdf = archive.read(f"sheets/{sorted(buildings)[0]}.pdf")
    assert pdf.startswith(b"%PDF") and b"NotoSansSC" in pdf
    # a second issue has nothing to do and says so
    resp = await client.post(base, json={"test": True}, headers=headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "codes_already_issued"
    # the status list has no code material
    resp = await client.get(base, headers=headers)
    doc = await resp.json()
    text = await resp.text()
    assert doc["issued"] == doc["voters"] == len(rows) and doc["redeemed"] == 0
    assert not any(r["code"] in text for r in rows)


async def test_replace_all_reissues_every_code_and_the_old_ones_stop_working(
        client, imported_community, db_pool, staff_headers):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=8,
                                                  seed=9)
    old = await issue_codes(db_pool, community_id, meeting_id)
    headers = await staff_headers("committee", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes",
                             json={"replace_existing": True, "format": "pdf", "test": True}, headers=headers)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    body = await resp.read()
    assert body.startswith(b"%PDF")
    # 8 owners a page
    assert body.count(b"/Type /Page\n") + body.count(b"/Type /Page>") + body.count(b"/Type /Page ") >= 1
    for issued in old.values():
        r = await client.post("/api/ballot/redeem", json={"code": issued.code, "last4": "0000"})
        assert (await r.json())["error"]["code"] == "code_invalid"
    async with db_pool.acquire() as conn:
        live = await conn.fetch("SELECT serial FROM ballot_code WHERE community_id=$1 AND revoked_at IS NULL",
                                community_id)
    assert len(live) == len(old) and {r["serial"] for r in live} == {2}


async def test_reissue_one_voter_over_http(client, imported_community, db_pool, staff_headers, make_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=10,
                                                  seed=6)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    headers = await staff_headers("prep_group", communities=[community_id])
    url = f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes/{voter}/reissue"
    resp = await client.post(url, json={"reason": "业主遗失"}, headers=headers)
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert doc["serial"] == 2 and core.normalize_code(doc["code"]) == doc["code"] != codes[voter].code
    assert doc["url"].endswith("/b/" + doc["code"])
    assert base64.b64decode(doc["qr_png_base64"]).startswith(b"\x89PNG")
    assert doc["qr_svg"].startswith("<svg")
    old = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": phone_last4(identity)})
    assert old.status == 404
    new = await client.post("/api/ballot/redeem", json={"code": doc["code"], "last4": phone_last4(identity)})
    assert new.status == 200
    async with db_pool.acquire() as conn:
        entry = await conn.fetchrow("SELECT actor, detail FROM audit_log WHERE community_id=$1 "
                                    "AND action='codes.reissue'", community_id)
    assert entry["actor"].startswith("staff:") and voter in entry["detail"]
    # unknown voter, an auditor, another community's staff
    resp = await client.post(url.replace(voter, "nobody"), headers=headers)
    assert (await resp.json())["error"]["code"] == "voter_not_found"
    auditor = await staff_headers("auditor", communities=[community_id])
    assert (await client.post(url, headers=auditor)).status == 403
    stranger = await staff_headers("prep_group", communities=[await make_community()])
    assert (await client.post(url, headers=stranger)).status == 403
    assert (await client.post(url)).status == 401


async def test_concurrent_reissues_leave_exactly_one_live_code(imported_community, db_pool, client, staff_headers):
    from server.services import codes as codes_service

    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=4,
                                                  seed=8)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = next(iter(codes))
    await asyncio.gather(*(codes_service.reissue_code(db_pool, community_id=community_id, meeting_id=meeting_id,
                                                      voter_id=voter, actor="t", public_url="http://x")
                           for _ in range(4)))
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT serial, revoked_at FROM ballot_code WHERE community_id=$1 AND voter_id=$2 "
                                "ORDER BY serial", community_id, voter)
    assert [r["serial"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["revoked_at"] is None for r in rows] == [False] * 4 + [True]


async def _evote(*args: str, env: dict) -> tuple[int, str, str]:
    exe = Path(sys.executable).with_name("evote")
    proc = await asyncio.create_subprocess_exec(str(exe), *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_cli_issue_and_reissue_write_sheets_csv_and_qr(imported_community, db_pool, database_url, tmp_path,
                                                             data_dir, client, staff_headers):
    import json

    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=20,
                                                  seed=12)
    env = {**os.environ, "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(data_dir),
           "EVOTE_PUBLIC_URL": "https://vote.example.cn"}
    status, out, err = await _evote("codes", "issue", meeting_id, "--community", community_id,
                                    "--out", str(tmp_path / "codes"), env=env)
    assert status == 0, err
    summary = json.loads(out)
    assert summary["issued"] == summary["files"] - 1 - len(summary["buildings"]) > 0
    assert "secret" in err and "%" in err          # warning and the tqdm bar
    rows = list(csv.DictReader(io.StringIO((tmp_path / "codes" / "codes.csv").read_text("utf-8-sig"))))
    assert len(rows) == summary["issued"]
    assert all(r["url"] == f"https://vote.example.cn/b/{r['code']}" for r in rows)
    assert sorted(p.stem for p in (tmp_path / "codes" / "sheets").iterdir()) == sorted(summary["buildings"])
    assert len(list((tmp_path / "codes" / "qr").iterdir())) == len(rows)
    # the same directory is never overwritten; a bad meeting exits 2 naming it
    status, _, err = await _evote("codes", "issue", meeting_id, "--community", community_id,
                                  "--out", str(tmp_path / "codes"), env=env)
    assert status == 2 and "empty directory" in err
    status, _, err = await _evote("codes", "issue", "no-such", "--community", community_id,
                                  "--out", str(tmp_path / "x"), env=env)
    assert status == 2 and "no-such" in err and "meeting_not_found" in err
    # a loopback (or unset) QR address: the CLI warns and refuses without --test
    loopback = {**env, "EVOTE_PUBLIC_URL": "http://127.0.0.1:8080"}
    status, _, err = await _evote("codes", "issue", meeting_id, "--community", community_id,
                                  "--out", str(tmp_path / "loop"), env=loopback)
    assert status == 2 and "public_url_not_usable" in err and "警告" in err and "--test" in err
    assert not (tmp_path / "loop").exists()
    status, out, err = await _evote("codes", "issue", meeting_id, "--community", community_id, "--replace",
                                    "--test", "--out", str(tmp_path / "loop"), env=loopback)
    assert status == 0 and "警告" in err, err
    rows = list(csv.DictReader(io.StringIO((tmp_path / "loop" / "codes.csv").read_text("utf-8-sig"))))
    assert rows and all(r["url"].startswith("http://127.0.0.1:8080/b/") for r in rows)
    voter = rows[0]["voter_id"]
    status, out, err = await _evote("codes", "reissue", meeting_id, "--community", community_id,
                                    "--voter", voter, "--out", str(tmp_path / "re"), env=env)
    assert status == 0, err
    new = list(csv.DictReader(io.StringIO((tmp_path / "re" / "codes.csv").read_text("utf-8-sig"))))
    assert [r["voter_id"] for r in new] == [voter] and new[0]["code"] != rows[0]["code"]
    async with db_pool.acquire() as conn:
        live = await conn.fetchval("SELECT code_hash FROM ballot_code WHERE community_id=$1 AND voter_id=$2 "
                                   "AND revoked_at IS NULL", community_id, voter)
    assert bytes(live) == hashlib.sha256(new[0]["code"].encode()).digest()


@pytest.mark.parametrize("units", [[], ["1-101"], [f"P{i}" for i in range(30)]])
def test_sheet_pdf_renders_any_number_of_units(units):
    from server.printing.code_sheets import building_pdf
    from server.services.codes import IssuedCode

    code = core.generate_code()
    pdf = building_pdf("首次业主大会", "1号楼", [IssuedCode("o1", "1号楼", tuple(units), "张*", 1, code,
                                                           "http://x/b/" + code)] * 9)
    assert pdf.startswith(b"%PDF") and len(pdf) > 5000


async def test_one_code_per_joint_subject_held_by_its_representative(client, db_pool, staff_headers,
                                                                    make_community):
    community = await import_lines(db_pool, make_community)
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, None, community=community,
                                                  matters=ONE_RESOLUTION)
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes",
                             json={"test": True}, headers=headers)
    assert resp.status == 200, await resp.text()
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    rows = {r["voter_id"]: r for r in csv.DictReader(io.StringIO(archive.read("codes.csv").decode("utf-8-sig")))}
    # A and B jointly: ONE code for both their units, in the name of A (their representative); A alone has his own
    assert sorted(rows) == ["A", "A+B", "C"]
    assert (rows["A+B"]["units"], rows["A+B"]["masked_name"], rows["A+B"]["building"]) == ("1-101 2-201", "张*", "1")
    assert (rows["A"]["units"], rows["A"]["masked_name"]) == ("1-102", "张*")
    assert "qr/A+B-1.png" in archive.namelist()
    async with db_pool.acquire() as conn:
        live = await conn.fetch("SELECT voter_id FROM ballot_code WHERE community_id = $1 AND revoked_at IS NULL",
                                community_id)
    assert sorted(r["voter_id"] for r in live) == ["A", "A+B", "C"]
    # the sheet names the joint owners' representative
    from server.services.codes import IssuedCode

    joint = IssuedCode("A+B", "1", ("1-101", "2-201"), "张*", 1, rows["A+B"]["code"], rows["A+B"]["url"], "A")
    assert joint.joint and not IssuedCode("A", "1", ("1-102",), "张*", 1, "x", "u", "A").joint
    # reissuing the joint subject's code
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings/{meeting_id}/codes/A+B/reissue",
                             json={"reason": "遗失"}, headers=headers)
    assert resp.status == 201, await resp.text()
    doc = await resp.json()
    assert (doc["voter_id"], doc["representative"], doc["units"], doc["serial"]) == ("A+B", "A", ["1-101", "2-201"], 2)
