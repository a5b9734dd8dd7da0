"""The owner API document: valid OpenAPI, served, covers every owner route, and the live app conforms (schemathesis)."""
from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import yaml

from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity

SPEC = Path(__file__).resolve().parent.parent / "miniapp_api_spec" / "openapi.yaml"
# Routes an OpenAPI 3.0 document cannot describe (WebSocket).
NOT_IN_SPEC = {"/api/ballot/live/ws"}
CORE_ROUTES = {"/api/ballot/redeem", "/api/ballot/meeting", "/api/ballot/status", "/api/ballot/receipts",
               "/api/ballot/votes", "/api/public/meetings/{community_id}/{meeting_id}/result",
               "/api/public/meetings/{community_id}/{meeting_id}/receipts/{receipt}/proof",
               "/api/public/communities/{community_id}/keys"}


def test_the_document_is_valid_openapi_with_chinese_descriptions_and_error_codes():
    from openapi_spec_validator import validate

    doc = yaml.safe_load(SPEC.read_text("utf-8"))
    validate(doc)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            text = op["summary"] + op.get("description", "")
            assert any("\u4e00" <= ch <= "\u9fff" for ch in text), (method, path)
            assert any(code.startswith(("4", "5")) for code in op["responses"]), (method, path)
    redeem = doc["paths"]["/api/ballot/redeem"]["post"]["description"]
    for code in ("code_invalid", "identity_required", "identity_mismatch", "code_locked", "wechat_code_invalid"):
        assert code in redeem
    assert doc["components"]["securitySchemes"]["ballotToken"]["scheme"] == "bearer"


async def test_the_document_is_served_and_covers_every_owner_route(client):
    resp = await client.get("/api/openapi.yaml")
    assert resp.status == 200
    assert await resp.text() == SPEC.read_text("utf-8")
    resp = await client.get("/api/openapi.json")
    assert (await resp.json())["paths"].keys() == yaml.safe_load(SPEC.read_text("utf-8"))["paths"].keys()
    resp = await client.get("/api/docs")
    assert resp.status == 200 and "/api/openapi.yaml" in await resp.text()
    documented = set(yaml.safe_load(SPEC.read_text("utf-8"))["paths"])
    owner_routes = set()
    for resource in client.app.router.resources():
        path = resource.canonical
        if path.startswith(("/api/ballot/", "/api/public/")) and path not in NOT_IN_SPEC:
            owner_routes.add(path.replace("{cid}", "{community_id}").replace("{mid}", "{meeting_id}"))
    # The owner routes of sign-in, casting and the public results must be described ...
    assert CORE_ROUTES <= owner_routes, sorted(CORE_ROUTES - owner_routes)
    assert CORE_ROUTES <= documented, sorted(CORE_ROUTES - documented)
    # ... and owner routes added since (other modules) are reported until someone documents them.
    missing = sorted(owner_routes - documented)
    if missing:
        warnings.warn(f"owner routes not yet in miniapp_api_spec/openapi.yaml: {missing}")


def _run_schemathesis(base_url: str, token: str, max_examples: int) -> dict:
    """Every operation, bounded examples; responses must match the schema and never be 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                                   status_code_conformance)

    schema = schemathesis.openapi.from_path(str(SPEC))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    seen: dict = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        statuses: list[int] = []

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            headers = {"Authorization": f"Bearer {token}"} if operation.path.startswith("/api/ballot/") else {}
            response = case.call(base_url=base_url, headers=headers)
            statuses.append(response.status_code)
            case.validate_response(response, checks=checks)

        check()
        seen[label] = statuses
    return seen


async def test_schemathesis_against_the_live_app(client, db_pool, staff_headers, imported_community):
    community_id, meeting_id = await make_meeting(db_pool, client, staff_headers, imported_community, units=8,
                                                  seed=31)
    codes = await issue_codes(db_pool, community_id, meeting_id)
    voter = await person_voter(db_pool, community_id, meeting_id, codes)
    identity = await voter_identity(db_pool, community_id, meeting_id, voter)
    resp = await client.post("/api/ballot/redeem", json={"code": codes[voter].code, "last4": phone_last4(identity)})
    token = (await resp.json())["token"]
    base_url = str(client.make_url("")).rstrip("/")
    # schemathesis is synchronous (requests): run it in a thread so this loop keeps serving the app.
    seen = await asyncio.to_thread(_run_schemathesis, base_url, token, 25)
    documented = yaml.safe_load(SPEC.read_text("utf-8"))["paths"]
    assert len(seen) == sum(len(item) for item in documented.values())
    assert all(statuses for statuses in seen.values()), seen
    # the authenticated reads really were exercised with a valid token
    assert 200 in seen["GET /api/ballot/meeting"] and 200 in seen["GET /api/ballot/status"]
