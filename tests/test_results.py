"""Signed results, the exported record, publication with objections, and the public endpoints."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import stat
import zipfile

import pytest

from server.ballot.merkle import verify_inclusion
from server.ballot.signing import public_key_from_raw, verify_signed
from server.ballot.weights import subject_id
from server.cli import main as evote
from server.devtools.demo_data import generate_register_rows
from server.record import read_bundle
from server.record.verify import verify_bundle
from server.record.writer import write_directory
from server.services import counting, result_keys
from server.services import results as results_service
from tests.helpers_live import wait_for_js
from tests.helpers_meetings import ballot_token, bearer, cast, close_now, open_meeting
from tests.helpers_register import ONE_RESOLUTION, import_lines
from tests.helpers_results import voted_meeting


async def _audit_actions(db_pool, community_id: str) -> list[str]:
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT action FROM audit_log WHERE community_id = $1 ORDER BY seq", community_id)
    return [r["action"] for r in rows]


async def test_close_signs_the_result_and_the_record_recounts_to_it(client, db_pool, settings, staff_headers,
                                                                    imported_community, tmp_path, capsys):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community)
    m = v.m
    resp = await client.get(f"{m.base}/result", headers=m.headers)
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["status"] == "unpublished" and doc["receipt_count"] == len(v.receipts)
    async with db_pool.acquire() as conn:
        live = await counting.compute_result(conn, m.community_id, m.meeting_id)
    assert doc["result"] == live
    assert "meeting.result_signed" in await _audit_actions(db_pool, m.community_id)

    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)
    assert set(files) == {"meeting.json", "register.csv", "ballots.csv", "receipts.csv", "result.json",
                          "result.sig.json", "public_key.pem"}
    out = write_directory(tmp_path / "record", files)
    # evote tally on the record prints result.json exactly
    assert evote(["tally", str(out)]) == 0
    assert capsys.readouterr().out == files["result.json"].decode()
    bundle = read_bundle(out)
    assert bundle.tally() == live
    assert len(bundle.submissions) == len(v.receipts)
    # the signature is by the community's published key
    signed = json.loads(files["result.sig.json"])
    keys = await (await client.get(f"/api/public/communities/{m.community_id}/keys")).json()
    [key] = keys["keys"]
    payload = verify_signed(signed, public_key_from_raw(base64.b64decode(key["public_key"])))
    assert payload["result"] == live and payload["key_id"] == key["key_id"]
    assert payload["receipts"]["leaves"] == len(v.receipts)
    assert payload["audit_head"]["chain"] == m.community_id and payload["audit_head"]["seq"] > 0
    report = verify_bundle(out, key["public_key_pem"].encode())
    assert report.ballots == len(v.receipts)


async def test_the_record_holds_no_names_phones_id_numbers_or_owner_ids(client, db_pool, staff_headers,
                                                                        imported_community):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=30)
    files = await results_service.export_files(db_pool, v.m.community_id, v.m.meeting_id)
    text = b"\n".join(files.values()).decode("utf-8")
    rows = generate_register_rows(30, seed=7)  # what imported_community imported
    assert rows == v.m.register_rows
    for row in rows:
        for secret in (row["owner_name"], row["phone"], row["id_number"]):
            if secret and secret != "某房地产开发有限公司":
                assert secret not in text, secret
        assert f",{row['owner_id']}," not in text and f",{row['owner_id']}\n" not in text
    register = files["register.csv"].decode().splitlines()
    # units, buildings and areas are public; owners are pseudonyms, the developer stays one id
    assert register[0] == "unit_id,building,kind,area,area_source,holder,owner_id,representative"
    developer_ids = {line.split(",")[6] for line in register[1:] if line.split(",")[5] == "developer"}
    assert len(developer_ids) <= 1
    assert all(line.split(",")[6].startswith("P") for line in register[1:])


async def test_publication_objections_and_finalize(client, db_pool, staff_headers, imported_community):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=24)
    m = v.m
    # nothing public before publication (the record not even to staff: it is the published record)
    for path, headers in (("/result", None), ("/record.zip", m.headers), (f"/receipts/{v.receipts[0]}/proof", None)):
        resp = await client.get(v.public + path, headers=headers)
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "result_not_published"
    # who asks is checked before whether it exists: an anonymous caller learns nothing
    assert (await client.get(v.public + "/record.zip")).status == 401
    assert (await client.get(f"/r/{m.community_id}/{m.meeting_id}")).status == 404
    # objections need a published result
    resp = await client.post(f"{m.base}/objections", headers=m.headers, json={"text": "x", "on_behalf_of": "1-0001"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_published"
    # an auditor may not publish
    auditor = await staff_headers("auditor", communities=[m.community_id])
    assert (await client.post(f"{m.base}/publish", headers=auditor, json={})).status == 403
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={"objection_days": 0})
    assert resp.status == 422

    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={"objection_days": 5})
    assert resp.status == 200, await resp.text()
    doc = await resp.json()
    assert doc["status"] == "preliminary" and doc["objection_ends_at"]
    assert (await client.post(f"{m.base}/publish", headers=m.headers)).status == 409
    meeting = await (await client.get(m.base, headers=m.headers)).json()
    assert meeting["state"] == "published"

    public = await (await client.get(v.public + "/result")).json()
    assert public["status"] == "preliminary" and public["signed"]["payload"]["result"]["meeting_id"] == m.meeting_id

    # objections: recorded by staff for an owner, or by an owner with a ballot token
    resp = await client.post(f"{m.base}/objections", headers=m.headers,
                             json={"text": "3 号楼的面积登记有误", "on_behalf_of": "3-0002 业主"})
    assert resp.status == 201, await resp.text()
    first = await resp.json()
    owner_token = next(iter(v.tokens.values()))
    resp = await client.post(f"{m.base}/objections", headers=bearer(owner_token), json={"text": "我的票没看到"})
    assert resp.status == 201, await resp.text()
    second = await resp.json()
    assert second["submitted_by"].startswith("voter:")
    resp = await client.post(f"{m.base}/objections", json={"text": "匿名"})
    assert resp.status == 401

    # finalize: refused during the period ...
    resp = await client.post(f"{m.base}/finalize", headers=m.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "objection_period_running"
    async with db_pool.acquire() as conn:  # TEST ONLY: let the objection period run out
        await conn.execute("""UPDATE meeting_result SET objection_ends_at = clock_timestamp() - interval '1 second'
                               WHERE community_id = $1 AND meeting_id = $2""", m.community_id, m.meeting_id)
    resp = await client.post(f"{m.base}/objections", headers=m.headers, json={"text": "晚了", "on_behalf_of": "x"})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "objection_period_over"
    # ... and while an objection is unanswered
    resp = await client.post(f"{m.base}/finalize", headers=m.headers)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "objections_unanswered"
    for objection in (first, second):
        resp = await client.post(f"{m.base}/objections/{objection['objection_id']}/response", headers=m.headers,
                                 json={"response": "经核查，登记面积与不动产登记簿一致，结果不变。"})
        assert resp.status == 200, await resp.text()
    resp = await client.post(f"{m.base}/objections/{first['objection_id']}/response", headers=m.headers,
                             json={"response": "再答一次"})
    assert resp.status == 409
    resp = await client.post(f"{m.base}/objections/999/response", headers=m.headers, json={"response": "x"})
    assert resp.status == 404
    resp = await client.post(f"{m.base}/finalize", headers=m.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "final"
    assert (await client.post(f"{m.base}/finalize", headers=m.headers)).status == 409

    public = await (await client.get(v.public + "/result")).json()
    assert public["status"] == "final"
    assert [o["response"] is not None for o in public["objections"]] == [True, True]
    assert "submitted_by" not in public["objections"][0]  # who objected is not public
    actions = await _audit_actions(db_pool, m.community_id)
    for action in ("meeting.publish", "result.objection", "result.objection_response", "meeting.finalize"):
        assert action in actions


async def test_publish_before_close_is_refused(client, db_pool, staff_headers, imported_community):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12, close=False)
    resp = await client.post(f"{v.m.base}/publish", headers=v.m.headers, json={})
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "meeting_not_closed"


async def test_public_page_record_download_and_receipt_proofs(client, db_pool, staff_headers, imported_community,
                                                              tmp_path):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=30)
    m = v.m
    assert (await client.post(f"{m.base}/publish", headers=m.headers, json={})).status == 200
    page = await client.get(f"/r/{m.community_id}/{m.meeting_id}")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    public = await (await client.get(v.public + "/result")).json()
    for text in ("查验我的选票", "表决通过《管理规约》", "选举第一届业主委员会委员", "当选委员", "候补委员",
                 public["key_id"], public["receipts_root"], "evote verify", "record.zip", 'name="viewport"'):
        assert text in html, text
    for asset in ("/static/results/verify.js", "/static/results/results.css"):
        assert (await client.get(asset)).status == 200

    assert (await client.get(v.public + "/record.zip")).status == 401   # tests/test_record_access.py
    archive = await client.get(v.public + "/record.zip", headers=m.headers)
    assert archive.status == 200 and archive.content_type == "application/zip"
    path = tmp_path / "record.zip"
    path.write_bytes(await archive.read())
    assert zipfile.ZipFile(io.BytesIO(path.read_bytes())).namelist()[0].startswith(f"{m.community_id}-")
    verify_bundle(path)

    root = bytes.fromhex(public["receipts_root"])
    for receipt in v.receipts:
        resp = await client.get(f"{v.public}/receipts/{receipt}/proof")
        assert resp.status == 200, await resp.text()
        proof = await resp.json()
        assert proof["root"] == public["receipts_root"] and proof["tree_size"] == len(v.receipts)
        assert verify_inclusion(bytes.fromhex(receipt), proof["leaf_index"], proof["tree_size"],
                                [bytes.fromhex(h) for h in proof["proof"]], root)
    unknown = await client.get(f"{v.public}/receipts/{'0' * 64}/proof")
    assert unknown.status == 404
    assert (await unknown.json())["error"]["message"] == "没有找到这个回执码，请核对后重试"
    assert (await client.get(f"{v.public}/receipts/not-a-receipt/proof")).status == 422


async def test_key_rotation_keeps_old_records_verifiable(client, db_pool, settings, staff_headers,
                                                         imported_community, tmp_path):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    m = v.m
    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)
    old_kid = json.loads(files["result.sig.json"])["key_id"]
    key_file = settings.data_dir / "keys" / f"result-{m.community_id}-{old_kid}.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600  # no master key: a 0600 file, not the database
    prep = await staff_headers("prep_group", communities=[m.community_id])
    assert (await client.post(f"/api/admin/communities/{m.community_id}/keys/rotate", headers=prep)).status == 403
    resp = await client.post(f"/api/admin/communities/{m.community_id}/keys/rotate", headers=m.headers)
    assert resp.status == 201, await resp.text()
    rotated = await resp.json()
    assert rotated["retired_key_id"] == old_kid and rotated["key_id"] != old_kid
    keys = (await (await client.get(f"/api/public/communities/{m.community_id}/keys")).json())["keys"]
    by_id = {k["key_id"]: k for k in keys}
    assert by_id[old_kid]["retired_at"] and not by_id[old_kid]["active"] and by_id[rotated["key_id"]]["active"]
    out = write_directory(tmp_path / "old", files)
    verify_bundle(out, by_id[old_kid]["public_key_pem"].encode())
    assert "result_key.rotate" in await _audit_actions(db_pool, m.community_id)


async def test_with_a_master_key_the_private_key_is_encrypted_in_the_database(db_pool, settings, make_community):
    community_id = await make_community()
    enc_settings = settings.replace(master_key="correct horse battery staple")
    async with db_pool.acquire() as conn, conn.transaction():
        key = await result_keys.active_key(conn, enc_settings, community_id, actor="test")
    async with db_pool.acquire() as conn:
        row = await conn.fetchrow("SELECT private_key_enc, key_file FROM community_key WHERE community_id = $1",
                                  community_id)
        assert row["key_file"] is None and len(row["private_key_enc"]) > 32
        assert not (settings.data_dir / "keys" / f"result-{community_id}-{key.key_id}.pem").exists()
        async with conn.transaction():
            again = await result_keys.active_key(conn, enc_settings, community_id, actor="test")
        assert again.key_id == key.key_id
        with pytest.raises(result_keys.ResultKeyError):
            async with conn.transaction():
                await result_keys.active_key(conn, settings.replace(master_key="wrong"), community_id, actor="t")


async def test_receipts_listed_to_owners_are_the_leaves(client, db_pool, staff_headers, imported_community):
    """What the owner page shows (GET /api/ballot/receipts) is what the proof endpoint finds."""
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    assert (await client.post(f"{v.m.base}/publish", headers=v.m.headers, json={})).status == 200
    voter, token = next(iter(v.tokens.items()))
    resp = await client.get("/api/ballot/receipts", headers=bearer(token))
    assert resp.status == 200, f"owner receipts endpoint after publication: {resp.status} {await resp.text()}"
    listed = json.dumps(await resp.json())
    mine = [r for r in v.receipts if r in listed]
    assert mine
    for receipt in mine:
        assert (await client.get(f"{v.public}/receipts/{receipt}/proof")).status == 200



CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
async def test_owner_confirms_a_receipt_on_the_public_page_in_a_browser(client, db_pool, staff_headers,
                                                                        imported_community):
    playwright_api = pytest.importorskip("playwright.async_api")
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=20)
    m = v.m
    assert (await client.post(f"{m.base}/publish", headers=m.headers, json={})).status == 200
    root = (await (await client.get(v.public + "/result")).json())["receipts_root"]
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")
            await page.goto(str(client.make_url(f"/r/{m.community_id}/{m.meeting_id}")))
            await page.fill("#receipt", v.receipts[3].upper())
            await page.click("#check-button")
            await wait_for_js(page,
                "(t => t !== '' && t.indexOf('正在') < 0)(document.getElementById('check-result').textContent)")
            assert "您的选票已计入" in await page.text_content("#check-result")
            await page.fill("#receipt", "ab" * 32)
            await page.click("#check-button")
            await wait_for_js(page,
                "(t => t !== '' && t.indexOf('正在') < 0)(document.getElementById('check-result').textContent)")
            assert "没有找到这个回执码" in await page.text_content("#check-result")
            # The page's JavaScript check agrees with the Python one on every receipt's proof.
            for receipt in v.receipts:
                proof = await (await client.get(f"{v.public}/receipts/{receipt}/proof")).json()
                js_root = await page.evaluate(
                    """async ([leaf, index, size, path]) => {
                        const hex = h => Uint8Array.from(h.match(/../g).map(b => parseInt(b, 16)));
                        const r = await window.evoteRootFromProof(hex(leaf), index, size, path.map(hex));
                        return r && Array.from(r).map(b => b.toString(16).padStart(2, '0')).join('');
                    }""", [receipt, proof["leaf_index"], proof["tree_size"], proof["proof"]])
                assert js_root == root
        finally:
            await browser.close()


async def test_the_record_of_joint_owners_names_the_same_subjects_in_register_and_ballots(
        client, db_pool, staff_headers, make_community, tmp_path):
    community = await import_lines(db_pool, make_community)
    m = await open_meeting(db_pool, client, staff_headers, None, matters=ONE_RESOLUTION, community=community)
    assert m.voter_ids == ["A", "A+B", "C"]
    for voter, choice in (("A+B", "yes"), ("A", "no"), ("C", "yes")):
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        resp = await cast(client, token, [{"matter_id": "M1", "choice": choice}])
        assert resp.status == 201, await resp.text()
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    files = await results_service.export_files(db_pool, m.community_id, m.meeting_id)

    # the register's owner sets, as the public would group them ...
    register = list(csv.DictReader(io.StringIO(files["register.csv"].decode())))
    owners_of_unit: dict[str, set[str]] = {}
    for row in register:
        owners_of_unit.setdefault(row["unit_id"], set()).add(row["owner_id"])
    owner_sets = {subject_id(owners) for owners in owners_of_unit.values()}
    # ... are exactly the voters of ballots.csv: one joint pseudonym "P…+P…" for A and B
    ballots = list(csv.DictReader(io.StringIO(files["ballots.csv"].decode())))
    voters = {row["voter_id"] for row in ballots}
    assert voters == owner_sets and len(voters) == 3
    [joint] = [v for v in voters if "+" in v]
    assert joint == subject_id(owners_of_unit["1-101"]) == subject_id(owners_of_unit["2-201"])
    assert all(part.startswith("P") and part not in ("A", "B") for part in joint.split("+"))
    # the recount of the record is the signed result: A+B (180.75) and C (120) for, A (90) against
    result = json.loads(files["result.json"])
    [matter] = result["matters"]
    assert result["totals"] == {"area": "390.75", "persons": 3}
    assert (matter["yes"], matter["no"]) == ({"area": "300.75", "persons": 2}, {"area": "90.00", "persons": 1})
    assert matter["outcome"] == "passed"
    out = write_directory(tmp_path / "record", files)
    async with db_pool.acquire() as conn:
        assert read_bundle(out).tally() == result == await counting.compute_result(conn, m.community_id, m.meeting_id)
