"""The owner API document: valid OpenAPI, served, covers every owner and public route of the app (and no
other), and the live app conforms (schemathesis; the owner WebSocket is documented but not fuzzed)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from tests.helpers_codes import issue_codes, make_meeting, person_voter, phone_last4, voter_identity

SPEC = Path(__file__).resolve().parent.parent / "miniapp_api_spec" / "openapi.yaml"
# Documented (as a WebSocket upgrade, message formats in its description) but not called by
# schemathesis: an OpenAPI 3.0 operation cannot describe the frames (tests/test_live.py covers them).
NOT_FOR_SCHEMATHESIS = {"/api/ballot/live/ws"}
OWNER_PREFIXES = ("/api/ballot/", "/api/public/")
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


def _owner_operations(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every owner-facing and public route of the app (HEAD is implied by GET)."""
    operations = set()
    for resource in app.router.resources():
        path = resource.canonical
        if not path.startswith(OWNER_PREFIXES):
            continue
        path = path.replace("{cid}", "{community_id}").replace("{mid}", "{meeting_id}")
        operations |= {(route.method, path) for route in resource if route.method not in ("HEAD", "*")}
    return operations


async def test_the_document_is_served_and_covers_every_owner_route(client):
    resp = await client.get("/api/openapi.yaml")
    assert resp.status == 200
    assert await resp.text() == SPEC.read_text("utf-8")
    resp = await client.get("/api/openapi.json")
    assert (await resp.json())["paths"].keys() == yaml.safe_load(SPEC.read_text("utf-8"))["paths"].keys()
    resp = await client.get("/api/docs")
    assert resp.status == 200 and "/api/openapi.yaml" in await resp.text()
    paths = yaml.safe_load(SPEC.read_text("utf-8"))["paths"]
    documented = {(method.upper(), path) for path, item in paths.items() for method in item
                  if method in ("get", "post", "put", "patch", "delete")}
    app_operations = _owner_operations(client.app)
    assert {path for _, path in app_operations} >= CORE_ROUTES, sorted(CORE_ROUTES - {p for _, p in app_operations})
    # Every owner-facing and public route of the app is described (a new one fails here until it is) ...
    missing = sorted(app_operations - documented)
    assert not missing, f"owner / public routes missing from miniapp_api_spec/openapi.yaml: {missing}"
    # ... and the document describes no route the app does not have.
    stale = sorted(documented - app_operations)
    assert not stale, f"documented in openapi.yaml but not routes of the app: {stale}"


def test_the_owner_websocket_is_documented_as_an_upgrade_with_its_messages():
    op = yaml.safe_load(SPEC.read_text("utf-8"))["paths"]["/api/ballot/live/ws"]["get"]
    assert "101" in op["responses"] and op.get("x-websocket") is True
    for text in ("WebSocket", "snapshot", "update", "heartbeat", "pong", "last_event_id", "4000",
                 "ballot_login_required"):
        assert text in op["description"], text


def _run_schemathesis(base_url: str, token: str, max_examples: int) -> dict:
    """Every operation, bounded examples; responses must match the schema and never be 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_path(str(SPEC))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    seen: dict = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in NOT_FOR_SCHEMATHESIS:
            continue
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
    assert len(seen) == sum(len(item) for path, item in documented.items() if path not in NOT_FOR_SCHEMATHESIS)
    assert all(statuses for statuses in seen.values()), seen
    # the authenticated reads really were exercised with a valid token
    assert 200 in seen["GET /api/ballot/meeting"] and 200 in seen["GET /api/ballot/status"]
    for label in ("GET /api/ballot/candidates", "GET /api/ballot/nominations", "GET /api/ballot/proxies"):
        assert 200 in seen[label], (label, seen[label])
    assert 201 in seen["POST /api/ballot/nominations"], seen["POST /api/ballot/nominations"]
