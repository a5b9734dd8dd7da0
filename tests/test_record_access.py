"""Who may see how a unit voted: the unit-level record (record.zip) is for the community's staff and
owners only; anonymous callers get the signed result, aggregates, keys, the receipt root and proofs."""
from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import yaml

from server.services import codes as codes_service
from tests.helpers_codes import issue_codes, person_voter, phone_last4, voter_identity
from tests.helpers_meetings import ballot_token, bearer, close_now, open_meeting
from tests.helpers_results import voted_meeting

PROOF_KEYS = {"receipt", "leaf_index", "tree_size", "proof", "root", "algorithm", "key_id"}
PUBLIC_RESULT_KEYS = {"community_id", "meeting_id", "status", "status_name", "published_at", "objection_ends_at",
                      "finalized_at", "key_id", "receipts_root", "receipt_count", "meeting", "signed", "objections"}
UNIT_LEVEL_KEYS = {"ballot_id", "voter_id", "owner_id", "choice", "marks", "unit_id", "cast_at"}
SPEC = Path(__file__).resolve().parent.parent / "miniapp_api_spec" / "openapi.yaml"
CHINESE = re.compile("[\u4e00-\u9fff]")


async def _published(db_pool, client, staff_headers, imported_community, *, units: int = 16):
    """A meeting voted, with codes issued before the close (one redeemed for a real token, one
    reissued), closed and published."""
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=units, close=False)
    m = v.m
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    redeemed_voter = await person_voter(db_pool, m.community_id, m.meeting_id, codes)
    identity = await voter_identity(db_pool, m.community_id, m.meeting_id, redeemed_voter)
    resp = await client.post("/api/ballot/redeem", json={"code": codes[redeemed_voter].code,
                                                         "last4": phone_last4(identity)})
    assert resp.status == 200, await resp.text()
    redeemed_token = (await resp.json())["token"]
    reissued_voter = next(voter for voter in sorted(codes) if voter != redeemed_voter)
    _, new_code = await codes_service.reissue_code(db_pool, community_id=m.community_id, meeting_id=m.meeting_id,
                                                   voter_id=reissued_voter, actor="test", public_url="http://t")
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()
    resp = await client.post(f"{m.base}/publish", headers=m.headers, json={})
    assert resp.status == 200, await resp.text()
    return v, codes, redeemed_voter, redeemed_token, reissued_voter, new_code.code


def _error(doc: dict) -> tuple[str, str]:
    return doc["error"]["code"], doc["error"]["message"]


async def _zip_names(resp) -> list[str]:
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "application/zip"
    assert "no-store" in resp.headers["Cache-Control"]
    return [name.split("/", 1)[1] for name in zipfile.ZipFile(io.BytesIO(await resp.read())).namelist()]


async def test_anonymous_callers_get_401_and_other_communities_403(client, db_pool, staff_headers,
                                                                   imported_community):
    v, *_ = await _published(db_pool, client, staff_headers, imported_community)
    m = v.m
    record = v.public + "/record.zip"
    resp = await client.get(record)
    assert resp.status == 401
    code, message = _error(await resp.json())
    assert code == "record_login_required" and CHINESE.search(message) and "业主" in message
    # the same for HEAD, a meeting that does not exist and one that is not published yet: nothing is told
    assert (await client.head(record)).status == 401
    assert (await client.get(f"/api/public/meetings/{m.community_id}/no-such-meeting/record.zip")).status == 401
    # junk credentials
    for headers in ({"X-Ballot-Code": "not a code"}, {"X-Ballot-Code": "0" * 20}):
        resp = await client.get(record, headers=headers)
        assert resp.status == 401 and _error(await resp.json())[0] == "record_code_invalid"
    resp = await client.get(record, params={"code": "x" * 500})
    assert resp.status == 401 and _error(await resp.json())[0] == "record_code_invalid"
    resp = await client.get(record, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status == 401

    # staff and owners of another community
    other = await voted_meeting(db_pool, client, staff_headers, imported_community, units=10, close=False)
    other_codes = await issue_codes(db_pool, other.m.community_id, other.m.meeting_id)
    for role in ("prep_group", "committee", "auditor"):
        headers = await staff_headers(role, communities=[other.m.community_id])
        resp = await client.get(record, headers=headers)
        assert resp.status == 403, (role, await resp.text())
        assert _error(await resp.json())[0] == "community_forbidden"
    other_code = next(iter(other_codes.values())).code
    for kwargs in ({"headers": {"X-Ballot-Code": other_code}}, {"params": {"code": other_code}},
                   {"headers": bearer(next(iter(other.tokens.values())))}):
        resp = await client.get(record, **kwargs)
        assert resp.status == 403, (kwargs, await resp.text())
        code, message = _error(await resp.json())
        assert code == "record_forbidden" and CHINESE.search(message)


async def test_the_communitys_staff_auditors_and_owners_may_read_it(client, db_pool, staff_headers,
                                                                    imported_community):
    v, codes, redeemed_voter, redeemed_token, reissued_voter, new_code = await _published(
        db_pool, client, staff_headers, imported_community)
    m = v.m
    record = v.public + "/record.zip"
    expected = {"meeting.json", "register.csv", "ballots.csv", "receipts.csv", "result.json", "result.sig.json",
                "public_key.pem"}
    for role in ("district_admin", "prep_group", "committee", "auditor"):
        communities = [] if role == "district_admin" else [m.community_id]
        headers = await staff_headers(role, communities=communities)
        assert set(await _zip_names(await client.get(record, headers=headers))) == expected, role
    # owners, after the close: by their ballot token (the meeting is closed and published) ...
    voter, token = next(iter(v.tokens.items()))
    assert set(await _zip_names(await client.get(record, headers=bearer(token)))) == expected
    assert set(await _zip_names(await client.get(record, headers=bearer(redeemed_token)))) == expected
    # ... or by their ballot code, in the header or the address, typed in any case or grouped by four
    code = codes[redeemed_voter].code
    grouped = "-".join(code[i:i + 4] for i in range(0, len(code), 4)).lower()
    for kwargs in ({"headers": {"X-Ballot-Code": code}}, {"params": {"code": code}},
                   {"params": {"code": grouped}}):
        assert set(await _zip_names(await client.get(record, **kwargs))) == expected, kwargs
    # a reissued voter's new code works, the old one does not
    assert set(await _zip_names(await client.get(record, params={"code": new_code}))) == expected
    for kwargs in ({"headers": {"X-Ballot-Code": codes[reissued_voter].code}},
                   {"params": {"code": codes[reissued_voter].code}}):
        resp = await client.get(record, **kwargs)
        assert resp.status == 401
        code_, message = _error(await resp.json())
        assert code_ == "record_code_invalid" and "作废" in message

    # a token of a later meeting of the same community: an owner of the community may read its records
    later = await open_meeting(db_pool, client, staff_headers, imported_community,
                               community=(m.community_id, m.register_rows))
    later_token = await ballot_token(db_pool, client, m.community_id, later.meeting_id, later.voter_ids[0])
    assert set(await _zip_names(await client.get(record, headers=bearer(later_token)))) == expected

    # every read is audited, with who read it
    async with db_pool.acquire() as conn:
        actors = [r["actor"] for r in await conn.fetch(
            """SELECT actor FROM audit_log WHERE community_id = $1 AND action = 'record.read'
                ORDER BY seq""", m.community_id)]
    assert f"voter:{redeemed_voter}" in actors and f"voter:{reissued_voter}" in actors
    assert sum(a.startswith("staff:") for a in actors) == 4


async def test_a_token_revoked_by_a_reissue_no_longer_reads_the_record(client, db_pool, staff_headers,
                                                                       imported_community):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12, close=False)
    m = v.m
    codes = await issue_codes(db_pool, m.community_id, m.meeting_id)
    voter = await person_voter(db_pool, m.community_id, m.meeting_id, codes)
    identity = await voter_identity(db_pool, m.community_id, m.meeting_id, voter)
    resp = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": phone_last4(identity)})
    token = (await resp.json())["token"]
    await codes_service.reissue_code(db_pool, community_id=m.community_id, meeting_id=m.meeting_id,
                                     voter_id=voter, actor="test", public_url="http://t")
    assert (await close_now(client, m.community_id, m.meeting_id, m.headers)).status == 200
    assert (await client.post(f"{m.base}/publish", headers=m.headers, json={})).status == 200
    resp = await client.get(v.public + "/record.zip", headers=bearer(token))
    assert resp.status == 401 and _error(await resp.json())[0] == "ballot_session_revoked"


def _keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in _keys_anywhere(item)}
    if isinstance(value, list):
        return {k for item in value for k in _keys_anywhere(item)}
    return set()


async def test_anonymous_answers_hold_no_choices_or_voters(client, db_pool, staff_headers, imported_community):
    v, *_ = await _published(db_pool, client, staff_headers, imported_community, units=20)
    m = v.m
    resp = await client.get(v.public + "/record.zip", headers=m.headers)
    archive = zipfile.ZipFile(io.BytesIO(await resp.read()))
    files = {name.split("/", 1)[1]: archive.read(name).decode() for name in archive.namelist()}
    ballots = list(csv.DictReader(io.StringIO(files["ballots.csv"])))
    register = list(csv.DictReader(io.StringIO(files["register.csv"])))
    # voters' pseudonyms in the record ("P" + 16 hex) and their ids in the database (ballot ids are
    # plain numbers: they are looked for as keys below, not as text)
    secrets = ({row["voter_id"] for row in ballots} | {row["owner_id"] for row in register} | set(m.voter_ids))
    secrets = {s for s in secrets if len(s) >= 7}   # not the developer's short id
    assert len(secrets) > 20

    result = await client.get(v.public + "/result")
    assert result.status == 200
    result_doc = await result.json()
    assert set(result_doc) == PUBLIC_RESULT_KEYS
    # the signed document carries the files' hashes, never their content
    assert set(result_doc["signed"]["payload"]["files"]) >= {"register.csv", "ballots.csv", "receipts.csv"}
    texts = [json.dumps(result_doc, ensure_ascii=False)]
    assert not _keys_anywhere(result_doc) & UNIT_LEVEL_KEYS, _keys_anywhere(result_doc) & UNIT_LEVEL_KEYS
    for receipt in v.receipts:
        proof = await client.get(f"{v.public}/receipts/{receipt}/proof")
        assert proof.status == 200
        doc = await proof.json()
        assert set(doc) == PROOF_KEYS
        texts.append(json.dumps(doc))
    page = await client.get(f"/r/{m.community_id}/{m.meeting_id}")
    texts.append(await page.text())
    for text in texts:
        for secret in secrets:
            assert secret not in text, secret
        # no row of the unit-level files either
        assert "ballot_id,voter_id" not in text and "unit_id,building" not in text
    # the page says who may download the record, and where an owner types the code
    html = texts[-1]
    for text in ("只供本小区业主（凭选票码）、业主大会筹备组/业委会工作人员和审计人员下载", 'id="record-code"',
                 "record.zip", "/static/results/record.js"):
        assert text in html, text
    assert (await client.get("/static/results/record.js")).status == 200
    # the signed hashes are on the page: anyone given the files by an owner can check them
    for name, digest in result_doc["signed"]["payload"]["files"].items():
        assert digest in html, name
    # the public key, the receipt root and the keys stay public
    assert result_doc["receipts_root"] in html
    assert (await client.get(f"/api/public/communities/{m.community_id}/keys")).status == 200


def test_the_api_document_describes_who_may_read_what():
    doc = yaml.safe_load(SPEC.read_text("utf-8"))
    schemas = doc["components"]["schemas"]
    # the public answers are described field by field, with nothing else allowed
    assert set(schemas["ReceiptProof"]["properties"]) == PROOF_KEYS
    assert set(schemas["PublicResult"]["properties"]) == PUBLIC_RESULT_KEYS
    assert schemas["ReceiptProof"]["additionalProperties"] is False
    assert schemas["PublicResult"]["additionalProperties"] is False
    record = doc["paths"]["/api/public/meetings/{community_id}/{meeting_id}/record.zip"]["get"]
    assert {"401", "403", "404"} <= set(record["responses"])
    assert {name for item in record["security"] for name in item} == {"staffToken", "ballotToken", "ballotCode",
                                                                      "ballotCodeQuery"}
    for code in ("record_login_required", "record_code_invalid", "record_forbidden", "community_forbidden",
                 "result_not_published", "X-Ballot-Code", "审计"):
        assert code in record["description"], code
    schemes = doc["components"]["securitySchemes"]
    assert (schemes["ballotCode"]["in"], schemes["ballotCode"]["name"]) == ("header", "X-Ballot-Code")
    assert (schemes["ballotCodeQuery"]["in"], schemes["ballotCodeQuery"]["name"]) == ("query", "code")
