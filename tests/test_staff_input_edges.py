"""Staff inputs that gave 500 when the staff API was first fuzzed (tests/test_staff_openapi.py), each
now a 4xx with a stable code: one regression test per finding."""
from __future__ import annotations

import pytest

from server.errors import ValidationFailed
from server.services import transfers
from tests.helpers_meetings import meeting_body, open_meeting


async def _refused(resp, status: int, code: str | None = None) -> dict:
    body = await resp.json()
    assert resp.status == status, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


async def test_a_multipart_part_with_a_malformed_header_is_400(client, staff_headers, imported_community):
    """aiohttp's multipart reader raised InvalidHeader (a control character in a part's name)."""
    headers = await staff_headers("district_admin")
    community_id, _rows = await imported_community(3)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"x\x07y\"\r\n\r\n{{}}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\"\r\n\r\n"
            f"unit_id\r\n--{boundary}--\r\n").encode()
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=body,
                             headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert "x\x07y" not in await resp.text()
    await _refused(resp, 400, "malformed_body")


@pytest.mark.parametrize("value", ["²", "١٢", "0", "-1", "99999999999"])
async def test_integer_query_parameters_take_ascii_digits_in_range(client, staff_headers, imported_community, value):
    """``"²".isdigit()`` is true but ``int("²")`` fails: ?version= and ?due_soon_days= gave 500."""
    headers = await staff_headers("district_admin")
    community_id, _rows = await imported_community(3)
    base = f"/api/admin/communities/{community_id}"
    for path in (f"{base}/register/totals?version={value}", f"{base}/register/subjects?version={value}"):
        body = await _refused(await client.get(path, headers=headers), 422)
        assert body["error"]["fields"] == {"version": "1–2147483647"}
    resp = await client.get(f"{base}/deadlines?due_soon_days={value}", headers=headers)
    if value == "0":
        assert resp.status == 200, await resp.text()
    else:
        assert (await _refused(resp, 422))["error"]["fields"] == {"due_soon_days": "0–365"}
    resp = await client.get(f"{base}/register/totals?version=1", headers=headers)
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("value", [[], {}, ["none"]])
async def test_a_seal_status_that_is_not_text_is_422(client, staff_headers, imported_community, value):
    """``status not in SEAL_STATES`` with a list raised TypeError (unhashable)."""
    headers = await staff_headers("district_admin")
    community_id, _rows = await imported_community(3)
    resp = await client.post(f"/api/admin/communities/{community_id}/committees/1/seal", json={"seal_status": value},
                             headers=headers)
    await _refused(resp, 422)


@pytest.mark.parametrize("kind", [[], {"a": 1}, 5])
def test_a_transfer_evidence_kind_that_is_not_text_is_422(kind):
    with pytest.raises(ValidationFailed) as refused:
        transfers.parse_evidence({"kind": kind, "reference": "合同 1", "date": "2026-03-01"})
    assert refused.value.code == "bad_evidence_kind"


@pytest.mark.parametrize("field", ["matter_id", "candidate_id"])
@pytest.mark.parametrize("value", [[], {"a": 1}])
async def test_matter_and_candidate_ids_that_are_not_text_are_422(client, staff_headers, imported_community, field,
                                                                  value):
    """Ids were collected into a set before their type was checked (TypeError: unhashable)."""
    headers = await staff_headers("district_admin")
    community_id, _rows = await imported_community(3)
    matter = {"kind": "election", "title": "选举业主委员会", "category": 3, "body": "other", "seats": 1,
              "candidates": [{"name": "王芳"}]}
    if field == "matter_id":
        matter["matter_id"] = value
    else:
        matter["candidates"][0]["candidate_id"] = value
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings", headers=headers,
                             json=meeting_body(matters=[matter]))
    body = await _refused(resp, 422)
    assert field in body["error"]["fields"], body


async def test_a_paper_entry_keying_a_list_as_matter_id_invalid_is_422(client, db_pool, staff_headers,
                                                                       imported_community):
    """``item.get("matter_id") not in definition.matters`` with a list raised TypeError."""
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    resp = await client.post(f"{m.base}/paper/entries", headers=m.headers, json={
        "voter_id": m.voter_ids[0], "votes": [{"matter_id": ["M1"], "choice": "invalid"}]})
    await _refused(resp, 422, "unknown_matter")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM paper_ballot WHERE community_id = $1", m.community_id) == 0


async def test_a_last_event_id_with_a_non_ascii_digit_gets_a_snapshot(client, db_pool, staff_headers,
                                                                      imported_community):
    """``"²".isdigit()`` passed the resume check and ``int("²")`` failed inside the stream."""
    from tests.test_live import SSE, live_url

    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    url = live_url(m.community_id, m.meeting_id, "/stream")
    resp = await client.get(url, headers=m.headers)
    first = await SSE(resp).next()
    resp.close()
    epoch = first["id"].partition(".")[0]
    for seq in ("²", "١", "1²"):
        resp = await client.get(url, headers={**m.headers, "Last-Event-ID": f"{epoch}.{seq}"})
        assert resp.status == 200
        event = await SSE(resp).next()
        assert event["event"] == "snapshot", event
        resp.close()


def test_a_building_named_with_a_superscript_digit_sorts_in_the_canvass_list():
    """The canvass list's natural order read "²" as a number (isdigit) and int() failed."""
    from server.services.canvass import natural_key

    names = ["10", "²", "2", "١", "3-²"]
    assert sorted(names, key=natural_key) == ["١", "2", "3-²", "10", "²"]


def test_district_inputs_of_another_type_are_422():
    """Found when the district routes joined the document: ``areas: -1`` (not iterable), a side,
    employment or management mode that was a list (looked up in a dict), a date beyond 2100."""
    from server.services import campaigns, prep_groups, subsidies

    plan = {"campaign_id": "lc-2022", "name": "计划", "district_id": "d", "starts_on": "2022-03-30",
            "batches": [{"due_on": "2022-06-30", "share_percent": 30}]}
    assert campaigns.parse_plan(plan)["campaign_id"] == "lc-2022"
    for change in ({"areas": -1}, {"areas": {"a": 1}}, {"starts_on": "9999-12-31"}):
        with pytest.raises(ValidationFailed):
            campaigns.parse_plan(plan | change)
    with pytest.raises(ValidationFailed) as refused:
        campaigns.parse_plan(plan | {"starts_on": "2101-01-01"})
    assert refused.value.code == "value_out_of_range"
    for member in ({"name": "王芳", "side": []}, {"name": "王芳", "side": "owner", "employment": {"a": 1}}):
        with pytest.raises(ValidationFailed):
            prep_groups.parse_members([member])
    with pytest.raises(ValidationFailed):
        subsidies._choice(["property_company"], subsidies.MODES, "mode")
