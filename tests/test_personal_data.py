"""Owners' phone and ID numbers at rest: keyed hashes of the last four, masked forms, the phone encrypted only
under a master key; nothing in clear in any answer, file, log line or database row after an import."""
from __future__ import annotations

import base64
import io
import logging
import os
import stat
import zipfile

import pytest
from cryptography.exceptions import InvalidTag

from server.ballot import identity
from server.ballot.codes import identity_matches
from server.services import codes as codes_service
from server.services import personal_data
from server.services import register as register_service
from tests.helpers_codes import issue_codes
from tests.helpers_meetings import open_meeting
from tests.helpers_register import HEADER, ONE_RESOLUTION, remember_register

# Numbers written as registers give them (a phone with hyphens, an ID number ending in x).
PHONE_A, ID_A = "139-8765-4321", "35050219800101555x"
PHONE_C = "13655501234"
ID_D = "350502199212127788"
LINES = (
    f"1-101,1,dwelling,80,registry,owner,A,1,张三丰,{PHONE_A},{ID_A}",
    "1-101,1,dwelling,80,registry,owner,B,0,李四,,",
    f"1-102,1,dwelling,90,registry,owner,C,1,王五,{PHONE_C},",
    f"2-201,2,dwelling,100,registry,owner,D,1,赵六,,{ID_D}",
)
# A transfer's new owner (of C's subject, during voting): written as the staff member types them.
NEW_OWNER = {"name": "钱七", "phone": "136 0000 4444", "id_number": "35050219900101432x"}
CLEAR = ("13987654321", PHONE_A, "35050219800101555X", ID_A, PHONE_C, ID_D,
         "13600004444", NEW_OWNER["phone"], "35050219900101432X", NEW_OWNER["id_number"])


def _csv(lines=LINES) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def _no_clear(text: str, where: str) -> None:
    for value in CLEAR:
        assert value not in text, f"{value} in {where}"


# ---------------------------------------------------------------- the pure core

def test_hashes_are_bound_to_kind_owner_and_community_and_accept_x_in_either_case():
    key = b"k" * 32
    p = identity.protect_identity(key, None, community_id="c", version=1, owner_id="A", phone=PHONE_A,
                                  id_number=ID_A)
    assert (p.phone_masked, p.id_masked, p.phone_enc) == ("139********", "350***************", None)
    assert p.phone_hmac != identity.protect_identity(key, None, community_id="c", version=1, owner_id="B",
                                                     phone=PHONE_A, id_number="").phone_hmac
    assert p.phone_hmac != identity.last4_digest(key, identity.PHONE, "c2", "A", "4321")
    assert p.id_hmac == identity.last4_digest(key, identity.ID_NUMBER, "c", "A", "555X")
    for given, expected in (("4321", True), ("555x", True), ("555X", True), ("5555", False), ("0000", False)):
        got = identity.identity_matches_digests(key, given, community_id="c", owner_id="A",
                                                phone_hmac=p.phone_hmac, id_hmac=p.id_hmac)
        assert got is expected == identity_matches(given, phone=PHONE_A, id_number=ID_A), given
    # another key, or nothing on record, never matches
    assert not identity.identity_matches_digests(b"x" * 32, "4321", community_id="c", owner_id="A",
                                                 phone_hmac=p.phone_hmac, id_hmac=p.id_hmac)
    empty = identity.protect_identity(key, None, community_id="c", version=1, owner_id="B", phone="", id_number="")
    assert (empty.phone_hmac, empty.id_hmac, empty.phone_masked, empty.id_masked) == (None, None, "", "")
    assert not identity.identity_matches_digests(key, "0000", community_id="c", owner_id="B",
                                                 phone_hmac=None, id_hmac=None)


def test_sealed_phone_opens_only_for_its_row_and_key(settings):
    keys = personal_data.identity_keys(settings.replace(master_key="m1"))
    assert keys.phone_aead is not None
    sealed = identity.seal_phone(keys.phone_aead, "c", 1, "A", PHONE_A)
    assert PHONE_A.encode() not in sealed
    assert identity.open_phone(keys.phone_aead, "c", 1, "A", sealed) == PHONE_A
    with pytest.raises(InvalidTag):
        identity.open_phone(keys.phone_aead, "c", 1, "B", sealed)
    other = personal_data.identity_keys(settings.replace(master_key="m2"))
    assert other.key_id != keys.key_id
    with pytest.raises(InvalidTag):
        identity.open_phone(other.phone_aead, "c", 1, "A", sealed)


def test_without_a_master_key_the_identity_key_is_a_0600_file_kept_across_loads(settings, tmp_path):
    own = settings.replace(data_dir=tmp_path / "data")
    first = personal_data.identity_keys(own)
    path = personal_data.key_file_path(own)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert first.phone_aead is None and personal_data.identity_keys(own) == first
    # a master key derives another key, whatever the data directory
    derived = personal_data.identity_keys(own.replace(master_key="secret"))
    assert derived.hmac_key != first.hmac_key
    assert derived.key_id == personal_data.identity_keys(settings.replace(master_key="secret")).key_id


# ---------------------------------------------------------------- nothing in clear after an import

async def _search_database(db_pool, values) -> list[str]:
    """Every table (any column, as text) holding one of ``values``."""
    found = []
    async with db_pool.acquire() as conn:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_type = 'BASE TABLE'")]
        for table in tables:
            for value in values:
                hit = await conn.fetchval(f'SELECT count(*) FROM "{table}" t WHERE t::text LIKE $1',
                                          f"%{value}%")
                if hit:
                    found.append(f"{table}: {value}")
    return found


async def test_no_answer_file_log_line_or_row_holds_a_full_number(client, db_pool, staff_headers, make_community,
                                                                  caplog):
    caplog.set_level(logging.DEBUG)
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    admin = f"/api/admin/communities/{community_id}/register"
    resp = await client.post(f"{admin}?filename=r.csv", data=_csv(), headers={**headers, "Content-Type": "text/csv"})
    assert resp.status == 201, await resp.text()
    remember_register(community_id, _csv())
    answers = [await resp.text()]
    resp = await client.get(f"{admin}/subjects", headers=headers)
    doc = await resp.json()
    by_id = {s["subject_id"]: s for s in doc["subjects"]}
    assert (by_id["A+B"]["phone"], by_id["A+B"]["id_number"]) == ("139********", "350***************")
    assert [(o["owner_id"], o["phone"]) for o in by_id["A+B"]["owners"]] == [("A", "139********"), ("B", "")]
    assert (by_id["D"]["phone"], by_id["D"]["id_number"]) == ("", "350***************")
    answers.append(await resp.text())
    for path in ("/totals", "/versions"):
        answers.append(await (await client.get(admin + path, headers=headers)).text())

    m = await open_meeting(db_pool, client, staff_headers, None, matters=ONE_RESOLUTION, community=(community_id, []))
    resp = await client.post(f"{m.base}/codes", json={"test": True}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    files = zipfile.ZipFile(io.BytesIO(await resp.read()))
    pdfium = pytest.importorskip("pypdfium2")
    for name in files.namelist():
        data = files.read(name)
        if name.endswith(".csv"):
            answers.append(data.decode("utf-8-sig"))
        elif name.endswith(".pdf"):
            pdf = pdfium.PdfDocument(data)
            answers.append("\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf))))
    resp = await client.post(f"{m.base}/paper/ballots", json={"voter_ids": m.voter_ids}, headers=m.headers)
    assert resp.status == 200, await resp.text()
    pdf = pdfium.PdfDocument(await resp.read())
    paper_text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "张**" in paper_text
    answers += [paper_text, await (await client.get(f"{m.base}/codes", headers=m.headers)).text()]

    # Every owner signs in with the last four of what is on record (ID numbers' X in either case);
    # the paper sheets reissued the codes, so replace them all to know them.
    issued = await codes_service.issue_codes(db_pool, community_id=community_id, meeting_id=m.meeting_id,
                                             actor="test", public_url="http://evote.test", replace_existing=True)
    codes = {c.voter_id: c for c in issued.codes}
    for voter, last4 in (("A+B", "4321"), ("C", "1234"), ("D", "7788")):
        resp = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": last4})
        assert resp.status == 200, await resp.text()
        answers.append(await resp.text())
    resp = await client.post("/api/ballot/redeem", json={"code": codes["A+B"].code, "last4": "555x"})
    assert resp.status == 200, await resp.text()
    resp = await client.post("/api/ballot/redeem", json={"code": codes["C"].code, "last4": "4321"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "identity_mismatch"

    # C's subject changes hands during voting: its new owner is kept like a register owner and signs in
    # with their last four (the ID number's x in either case); the answer, its code sheet and the listing
    # show masked forms only.
    resp = await client.post(f"{m.base}/transfers", headers=m.headers, json={
        "voter_id": "C", "new_owner": NEW_OWNER, "sheet": True,
        "evidence": {"kind": "sale_contract", "reference": "买卖合同 2026-017", "date": "2026-03-01"}})
    assert resp.status == 201, await resp.text()
    transfer = await resp.json()
    assert transfer["new_owner"] == {"name": "钱*", "phone": "136********", "id_number": "350***************"}
    answers.append(await resp.text())
    pdf = pdfium.PdfDocument(base64.b64decode(transfer["code"]["sheet_pdf_base64"]))
    sheet_text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert "钱*" in sheet_text
    answers += [sheet_text, await (await client.get(f"{m.base}/transfers", headers=m.headers)).text()]
    for last4, device in (("4444", "new-owner-1"), ("432x", "new-owner-2"), ("432X", "new-owner-3")):
        resp = await client.post("/api/ballot/redeem", json={"code": transfer["code"]["code"], "last4": last4,
                                                              "device_id": device})
        assert resp.status == 200, await resp.text()
        answers.append(await resp.text())
    resp = await client.post("/api/ballot/redeem", json={"code": transfer["code"]["code"], "last4": "1234"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "identity_mismatch"

    for i, text in enumerate(answers):
        _no_clear(text, f"answer {i}")
    assert caplog.records, "the app logged nothing: the log check would prove nothing"
    for record in caplog.records:
        _no_clear(record.getMessage() + repr(getattr(record, "__dict__", {})), f"log {record.name}")
    assert await _search_database(db_pool, CLEAR) == []
    assert await _search_database(db_pool, ["张三丰"]) == ["owner: 张三丰"]   # the search does find what is there
    assert await _search_database(db_pool, ["钱七"]) == ["transfer_new_owner: 钱七"]   # ... in transfer tables too
    assert await _search_database(db_pool, ["买卖合同 2026-017"]) == ["audit_log: 买卖合同 2026-017",
                                                                  "subject_transfer: 买卖合同 2026-017"]
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT owner_id, phone, id_number, phone_enc, identity_key_id FROM owner"
                                " WHERE community_id = $1 ORDER BY owner_id", community_id)
    assert all(r["phone"] == r["id_number"] == "" and r["phone_enc"] is None for r in rows)
    assert [r["identity_key_id"] is not None for r in rows] == [True, False, True, True]
    async with db_pool.acquire() as conn:
        new_owner = await conn.fetchrow("SELECT phone, id_number, phone_enc, identity_key_id, phone_masked, id_masked"
                                        " FROM transfer_new_owner WHERE community_id = $1", community_id)
    assert tuple(new_owner) == ("", "", None, rows[0]["identity_key_id"], "136********", "350***************")


async def test_with_a_master_key_the_phone_is_kept_encrypted_and_another_key_cannot_check(
        client, db_pool, settings, staff_headers, make_community):
    community_id = await make_community()
    keyed = settings.replace(master_key="correct horse battery staple")
    await register_service.import_register(db_pool, community_id=community_id, data=_csv(), filename="r.csv",
                                           actor="test", settings=keyed)
    remember_register(community_id, _csv())
    async with db_pool.acquire() as conn:
        sealed = await conn.fetchval("SELECT phone_enc FROM owner WHERE community_id = $1 AND owner_id = 'A'",
                                     community_id)
        assert sealed is not None and b"4321" not in bytes(sealed)
        assert await personal_data.notification_phone(conn, keyed, community_id=community_id, version=1,
                                                       owner_id="A") == PHONE_A
        assert await personal_data.notification_phone(conn, settings, community_id=community_id, version=1,
                                                       owner_id="A") is None
        assert await personal_data.notification_phone(conn, keyed, community_id=community_id, version=1,
                                                       owner_id="D") is None
    assert await _search_database(db_pool, CLEAR) == []
    # The app runs without that master key: its identity key differs, so it cannot check these owners'
    # digits; it says so (503) and does not count the attempt against the owner.
    m = await open_meeting(db_pool, client, staff_headers, None, matters=ONE_RESOLUTION, community=(community_id, []))
    codes = await issue_codes(db_pool, community_id, m.meeting_id)
    resp = await client.post("/api/ballot/redeem", json={"code": codes["C"].code, "last4": "1234"})
    assert resp.status == 503 and (await resp.json())["error"]["code"] == "identity_check_unavailable"
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT failed_attempts FROM ballot_code WHERE community_id = $1 AND voter_id = 'C'",
                                   community_id) == 0


async def test_the_database_refuses_a_number_in_clear(client, db_pool, make_community):
    """Once the start-up step ran (the app's start), the owner table cannot take a clear number."""
    community_id = await make_community()
    await register_service.import_register(db_pool, community_id=community_id, data=_csv(), filename="r.csv",
                                           actor="test")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT convalidated FROM pg_constraint WHERE conname = 'owner_identity_not_in_clear'")
        assert await conn.fetchval("SELECT convalidated FROM pg_constraint"
                                   " WHERE conname = 'transfer_new_owner_identity_not_in_clear'")
        with pytest.raises(Exception, match="owner_identity_not_in_clear"):
            await conn.execute("UPDATE owner SET phone = '13800000000' WHERE community_id = $1 AND owner_id = 'A'",
                               community_id)
