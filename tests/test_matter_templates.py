"""Matter templates: the art. 278 item fixes the threshold; a matter cannot disagree with its category."""
from __future__ import annotations

import pytest

from server.ballot.matter_templates import MATTER_TEMPLATES, template_problem
from server.ballot.rules import MAJORITY, THREE_QUARTERS
from tests.helpers_meetings import meeting_body

EXPECTED_CATEGORIES = {1: MAJORITY, 2: MAJORITY, 3: MAJORITY, 4: MAJORITY, 5: MAJORITY,
                       6: THREE_QUARTERS, 7: THREE_QUARTERS, 8: THREE_QUARTERS, 9: MAJORITY}


async def test_templates_cover_every_item_with_its_threshold_in_words(client, staff_headers, make_community):
    resp = await client.get("/api/admin/matter-templates")
    assert resp.status == 401
    headers = await staff_headers("auditor", communities=[await make_community()])
    resp = await client.get("/api/admin/matter-templates", headers=headers)
    assert resp.status == 200
    templates = (await resp.json())["templates"]
    assert {t["category"] for t in templates} == set(range(1, 10))
    for t in templates:
        assert set(t) >= {"key", "category", "title", "description", "threshold", "kind", "threshold_text"}
        assert t["threshold"] == EXPECTED_CATEGORIES[t["category"]], t
        assert t["threshold_text"].startswith("四分之三以上" if t["threshold"] == THREE_QUARTERS else "过半数")
        assert t["kind"] in ("resolution", "election")
    assert len({t["key"] for t in templates}) == len(templates)
    elections = [t for t in templates if t["kind"] == "election"]
    assert {t["body"] for t in elections} == {"committee", "supervisory"} and {t["category"] for t in elections} == {3}


@pytest.mark.parametrize("matter, code", [
    ({"title": "筹集维修资金", "category": 6, "threshold": "majority"}, "threshold_mismatch"),
    ({"title": "管理规约", "category": 2, "threshold": "three_quarters"}, "threshold_mismatch"),
    ({"title": "x", "category": 2, "threshold": "most"}, "bad_threshold"),
    ({"title": "筹集维修资金", "template": "raise_maintenance_funds", "category": 5}, "category_mismatch"),
    ({"title": "x", "template": "no-such"}, "unknown_template"),
    ({"title": "x", "template": "elect_committee", "kind": "resolution"}, "kind_mismatch"),
])
async def test_a_matter_inconsistent_with_its_category_is_refused(client, staff_headers, make_community, matter,
                                                                  code):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings",
                             json=meeting_body(matters=[matter]), headers=headers)
    assert resp.status == 422, await resp.text()
    error = (await resp.json())["error"]
    assert error["code"] == code and error["message"]
    # nothing was written
    resp = await client.get(f"/api/admin/communities/{community_id}/meetings", headers=headers)
    assert (await resp.json())["meetings"] == []


async def test_a_template_fills_in_category_kind_and_body(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    body = meeting_body(matters=[
        {"template": "raise_maintenance_funds", "title": "筹集电梯维修资金", "threshold": "three_quarters"},
        {"template": "elect_supervisory", "title": "选举监事会", "seats": 3},
    ])
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    m1, m2 = (await resp.json())["matters"]
    assert (m1["category"], m1["threshold"], m1["kind"]) == (6, THREE_QUARTERS, "resolution")
    assert (m2["category"], m2["kind"], m2["body"], m2["threshold"]) == (3, "election", "supervisory", MAJORITY)
    base = f"/api/admin/communities/{community_id}/meetings/{body['meeting_id']}/matters/{m1['matter_id']}"
    # an edit that would make the three-quarters item a majority one is refused, the category stays
    resp = await client.patch(base, json={"category": 5, "template": "raise_maintenance_funds"}, headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "category_mismatch"
    resp = await client.patch(base, json={"title": "筹集维修资金", "threshold": "majority"}, headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "threshold_mismatch"
    resp = await client.patch(base, json={"title": "筹集维修资金（修订）", "threshold": "three_quarters"},
                              headers=headers)
    assert resp.status == 200 and (await resp.json())["category"] == 6


def test_every_template_agrees_with_itself_and_a_wrong_threshold_is_caught():
    for t in MATTER_TEMPLATES:
        assert template_problem({"kind": t.kind, "category": t.category, "template": t.key,
                                 "threshold": t.threshold}) is None
        wrong = MAJORITY if t.threshold == THREE_QUARTERS else THREE_QUARTERS
        problem = template_problem({"kind": t.kind, "category": t.category, "threshold": wrong})
        assert problem is not None and problem[0] == "threshold_mismatch"
