"""Dates and times in staff input lie within 2000-01-01 … 2100-12-31 (server/services/input_dates.py):
one check behind every date parser, 422 value_out_of_range naming the field outside it."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from server.errors import ValidationFailed
from server.services import paper, proxies, transfers
from server.services.election_input import parse_date
from server.services.input_dates import iso_date, iso_datetime
from server.services.meeting_input import parse_time
from tests.conftest import unique_id
from tests.helpers_meetings import meeting_body, open_meeting

OUT_OF_RANGE = ["9999-12-31", "1999-12-31", "0001-01-01", "2101-01-01"]


def _refused(call) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        call()
    assert caught.value.code == "value_out_of_range" and caught.value.status == 422
    assert "2000-01-01 至 2100-12-31" in caught.value.message
    return caught.value


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_every_date_parser_refuses_years_outside_the_range(text):
    assert _refused(lambda: iso_date(text, "on")).fields == {"on": "2000-01-01 至 2100-12-31"}
    _refused(lambda: iso_datetime(text + "T09:00:00+08:00", "opens_at"))
    _refused(lambda: parse_time(text + "T09:00:00+08:00", "closes_at"))
    _refused(lambda: parse_date(text, "term_end", "任期结束日期"))
    _refused(lambda: paper.parse_paper_date(text))
    _refused(lambda: proxies.parse_valid_until(text + "T18:00:00+08:00"))
    _refused(lambda: transfers.parse_evidence({"kind": "sale_contract", "reference": "合同 1", "date": text}))


def test_the_bounds_themselves_are_accepted_and_bad_text_stays_a_format_error():
    assert iso_date("2000-01-01", "on") == date(2000, 1, 1)
    assert iso_date("2100-12-31", "on") == date(2100, 12, 31)
    assert parse_time("2100-12-31T23:59:59+08:00", "closes_at").year == 2100
    with pytest.raises(ValueError):
        iso_date("2026-02-30", "on")
    with pytest.raises(ValidationFailed) as caught:
        paper.parse_paper_date("not a date")
    assert caught.value.code == "bad_paper_date"


async def test_the_staff_api_refuses_out_of_range_dates(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    headers = m.headers

    async def refused(resp, field: str):
        body = await resp.json()
        assert resp.status == 422, body
        assert body["error"]["code"] == "value_out_of_range" and field in body["error"]["fields"], body

    resp = await client.post("/api/admin/communities", headers=headers, json={
        "community_id": unique_id("c"), "name": "测试小区", "street_id": "test-street",
        "prep_group_formed_on": "9999-12-31"})
    await refused(resp, "prep_group_formed_on")
    resp = await client.post("/api/admin/communities", headers=headers, json={
        "community_id": unique_id("c"), "name": "测试小区", "street_id": "test-street",
        "prep_group_formed_on": "2026-03-01"})
    assert resp.status == 201, await resp.text()

    body = meeting_body()
    body["closes_at"] = "9999-12-31T00:00:00+08:00"
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings", headers=headers, json=body)
    await refused(resp, "closes_at")
    resp = await client.get(f"/api/admin/communities/{m.community_id}/deadlines?on=9999-12-31", headers=headers)
    await refused(resp, "on")

    resp = await client.post(f"{m.base}/proxies", headers=headers, json={
        "owner_voter_id": m.voter_ids[0], "proxy_voter_id": m.voter_ids[1], "document_ref": "委托书/2026-001.pdf",
        "valid_until": "9999-12-31T18:00:00+08:00"})
    await refused(resp, "valid_until")
    resp = await client.post(f"{m.base}/paper/entries", headers=headers, json={
        "voter_id": m.voter_ids[2], "votes": [{"matter_id": "M1", "choice": "yes"}], "paper_date": "9999-12-31"})
    await refused(resp, "paper_date")
    resp = await client.post(f"{m.base}/extensions", headers=headers, json={
        "closes_at": (datetime(2101, 1, 2, tzinfo=UTC)).isoformat(), "reason": "业主要求延长"})
    await refused(resp, "closes_at")
    async with db_pool.acquire() as conn:
        written = await conn.fetchval(
            "SELECT count(*) FROM proxy_authorization WHERE community_id = $1", m.community_id)
        papers = await conn.fetchval("SELECT count(*) FROM paper_ballot WHERE community_id = $1", m.community_id)
    assert (written, papers) == (0, 0)
