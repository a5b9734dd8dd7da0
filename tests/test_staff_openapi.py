"""The staff API document (miniapp_api_spec/staff-openapi.yaml): valid OpenAPI, served at
/api/admin/openapi.yaml, describing every route of the app under /api/staff and /api/admin (a route
added later fails here until it is documented), and the live app fuzzed against it by schemathesis
as a district admin on a seeded community, with NUL and lone-surrogate strings: never a 5xx, and
every answer as documented."""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path

import yaml

from tests.helpers_codes import issue_codes
from tests.helpers_meetings import meeting_body, open_meeting

SPEC = Path(__file__).resolve().parent.parent / "miniapp_api_spec" / "staff-openapi.yaml"
STAFF_PREFIXES = ("/api/staff/", "/api/admin/")
METHODS = ("get", "post", "put", "patch", "delete")
# Documented, not fuzzed: a never-ending event stream and a WebSocket upgrade (tests/test_live.py covers them).
NOT_FOR_SCHEMATHESIS = {"/api/admin/communities/{community_id}/meetings/{meeting_id}/live/stream",
                        "/api/admin/communities/{community_id}/meetings/{meeting_id}/live/ws"}
# Run after the others: they end the fuzzing account's session or the seeded meeting.
RUN_LAST = ("POST /api/admin/communities/{community_id}/meetings/{meeting_id}/void", "POST /api/staff/logout")
# Characters that must be refused at the edge wherever they appear in a JSON body.
POISON = ("\x00", "\ud800", "\udfff", "a\udc80b")
# Examples per operation: bounded so the run stays well under a minute; EVOTE_FUZZ_EXAMPLES raises it for
# a longer search by hand (e.g. 100).
MAX_EXAMPLES = int(os.environ.get("EVOTE_FUZZ_EXAMPLES", "8"))


def _document() -> dict:
    return yaml.safe_load(SPEC.read_text("utf-8"))


def _documented(doc: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def _staff_operations(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every route of the app under /api/staff and /api/admin (HEAD is implied by GET)."""
    operations = set()
    for resource in app.router.resources():
        path = resource.canonical
        if not path.startswith(STAFF_PREFIXES):
            continue
        path = path.replace("{cid}", "{community_id}").replace("{mid}", "{meeting_id}")
        operations |= {(route.method, path) for route in resource if route.method not in ("HEAD", "*")}
    return operations


def test_the_document_is_valid_openapi_with_chinese_summaries_and_error_answers():
    from openapi_spec_validator import validate

    doc = _document()
    validate(doc)
    operation_ids = []
    for path, item in doc["paths"].items():
        assert path.startswith(STAFF_PREFIXES), path
        for method, op in item.items():
            operation_ids.append(op["operationId"])
            assert any("\u4e00" <= ch <= "\u9fff" for ch in op["summary"]), (method, path)
            assert any(code.startswith(("4", "5")) for code in op["responses"]), (method, path)
            for name in [p.strip("{}") for p in path.split("/") if p.startswith("{")]:
                declared = [p if "$ref" not in p else doc["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                            for p in op.get("parameters", [])]
                assert any(p["in"] == "path" and p["name"] == name for p in declared), (method, path, name)
    assert len(operation_ids) == len(set(operation_ids))
    assert doc["components"]["securitySchemes"]["staffToken"]["scheme"] == "bearer"
    login = doc["paths"]["/api/staff/login"]["post"]["description"]
    assert "login_locked" in login and "bad_credentials" in login
    # the limits people meet are stated where they read them
    assert "2000-01-01 至 2100-12-31" in doc["info"]["description"]


async def test_the_document_is_served_and_covers_every_staff_route(client):
    resp = await client.get("/api/admin/openapi.yaml")
    assert resp.status == 200 and resp.content_type == "application/yaml"
    assert await resp.text() == SPEC.read_text("utf-8")
    resp = await client.get("/api/admin/openapi.json")
    assert resp.status == 200 and (await resp.json()) == _document()
    docs_page = await (await client.get("/api/docs")).text()
    assert "/api/admin/openapi.yaml" in docs_page
    documented = _documented(_document())
    app_operations = _staff_operations(client.app)
    assert ("POST", "/api/staff/login") in app_operations and len(app_operations) > 50
    # Every staff route of the app is described (a new one fails here until it is) ...
    missing = sorted(app_operations - documented)
    assert not missing, f"staff routes missing from miniapp_api_spec/staff-openapi.yaml: {missing}"
    # ... and the document describes no route the app does not have.
    stale = sorted(documented - app_operations)
    assert not stale, f"documented in staff-openapi.yaml but not routes of the app: {stale}"


def test_the_coverage_check_names_a_missing_route():
    """The comparison above sees a route that is not in the document (and names it)."""
    from aiohttp import web

    async def handler(request):
        return web.Response()

    app = web.Application()
    app.router.add_get("/api/admin/communities/{cid}/meetings/{mid}/new-thing", handler)
    app.router.add_post("/api/staff/login", handler)
    missing = sorted(_staff_operations(app) - _documented(_document()))
    assert missing == [("GET", "/api/admin/communities/{community_id}/meetings/{meeting_id}/new-thing")]


def _poisoned(value, char: str, target: int, counter: list[int]):
    """``value`` with ``char`` put into its ``target``-th string (keys and values, depth first)."""
    if isinstance(value, str):
        counter[0] += 1
        return value + char if counter[0] - 1 == target else value
    if isinstance(value, list):
        return [_poisoned(v, char, target, counter) for v in value]
    if isinstance(value, dict):
        return {_poisoned(k, char, target, counter): _poisoned(v, char, target, counter) for k, v in value.items()}
    return value


def _run_schemathesis(base_url: str, tokens: dict, seeded: dict, max_examples: int) -> dict:
    """Every operation, bounded examples; answers must match the document and never be 5xx.

    Path parameters are often the seeded community, meetings, matters and voters (else schemathesis'
    random strings only meet 404s); a drawn share of JSON bodies carries a NUL or a lone surrogate in
    one of its strings (schemathesis itself never draws lone surrogates: they cannot be sent as UTF-8
    text, but JSON carries them as \\ud800 escapes).
    """
    import requests
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    config = schemathesis.config.SchemathesisConfig()
    config.projects.default.generation.update(allow_x00=True)
    schema = schemathesis.openapi.from_path(str(SPEC), config=config)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if op.path not in NOT_FOR_SCHEMATHESIS]
    operations.sort(key=lambda op: RUN_LAST.index(f"{op.method.upper()} {op.path}")
                    if f"{op.method.upper()} {op.path}" in RUN_LAST else -1)
    seen: dict = {}
    timings: dict = {}
    failures: list[str] = []
    session = requests.Session()
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        statuses: list[int] = []
        token = tokens["logout"] if operation.path == "/api/staff/logout" else tokens["admin"]

        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(), data=st.data())
        def check(case, data):
            for name in case.path_parameters or {}:
                if name in seeded and data.draw(st.integers(0, 3), label=f"seed {name}"):
                    case.path_parameters[name] = data.draw(st.sampled_from(seeded[name]), label=name)
            headers = {"Authorization": f"Bearer {token}"}
            if (case.media_type == "application/json" and isinstance(case.body, (dict, list))
                    and data.draw(st.integers(0, 2), label="poison") == 0):
                # sent by hand: schemathesis re-validates (and UTF-8 encodes) the bodies it sends itself
                char = data.draw(st.sampled_from(POISON), label="char")
                kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
                body = _poisoned(case.body, char, data.draw(st.integers(0, 8), label="where"), [0])
                kwargs.pop("json", None)
                kwargs["data"] = json.dumps(body).encode("ascii")     # lone surrogates as \udxxx escapes
                kwargs["headers"] = {**kwargs.get("headers", {}), "Content-Type": "application/json"}
                response = session.request(**kwargs, timeout=30)
            else:
                response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
            statuses.append(response.status_code)
            case.validate_response(response, checks=checks)

        started = time.monotonic()
        try:
            check()
        except BaseException as exc:      # every operation runs; the failures are reported together
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{label}: {exc}"[:3000])
        timings[label] = time.monotonic() - started
        seen[label] = statuses
    return {"statuses": seen, "timings": timings, "failures": failures}


async def _login(client, make_staff) -> str:
    username, password = await make_staff("district_admin")
    resp = await client.post("/api/staff/login", json={"username": username, "password": password})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


async def test_schemathesis_against_the_live_staff_api(client, db_pool, make_staff, staff_headers,
                                                       imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    await issue_codes(db_pool, m.community_id, m.meeting_id)
    draft = meeting_body(meeting_id=f"d-{secrets.token_hex(3)}")
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings", json=draft, headers=m.headers)
    assert resp.status == 201, await resp.text()
    seeded = {"community_id": [m.community_id], "meeting_id": [m.meeting_id, draft["meeting_id"]],
              "matter_id": ["M1", "M2", "E1"], "voter_id": m.voter_ids[:3], "candidate_id": ["C1", "C2"],
              "nomination_id": ["1"], "committee_id": ["1"], "paper_id": ["1"], "authorization_id": ["1"],
              "objection_id": ["1"], "member_no": ["1"], "street_id": ["test-street"], "action": ["revoke"]}
    tokens = {"admin": await _login(client, make_staff), "logout": await _login(client, make_staff)}
    base_url = str(client.make_url("")).rstrip("/")
    # schemathesis is synchronous (requests): run it in a thread so this loop keeps serving the app.
    started = time.monotonic()
    run = await asyncio.to_thread(_run_schemathesis, base_url, tokens, seeded, MAX_EXAMPLES)
    elapsed = time.monotonic() - started
    assert not run["failures"], "\n\n".join(run["failures"])
    seen = run["statuses"]
    slowest = sorted(run["timings"].items(), key=lambda kv: -kv[1])[:3]
    print(f"schemathesis: {len(seen)} operations, {sum(map(len, seen.values()))} requests in {elapsed:.1f} s; "
          f"slowest {[(label, round(s, 1)) for label, s in slowest]}")
    documented = _documented(_document())
    assert len(seen) == len([op for op in documented if op[1] not in NOT_FOR_SCHEMATHESIS])
    assert all(statuses for statuses in seen.values()), seen
    # the seeded resources were really reached, not only refused
    base = "/api/admin/communities/{community_id}/meetings/{meeting_id}"
    for label in ("GET /api/staff/me", "GET /api/admin/communities/{community_id}",
                  f"GET {base}", f"GET {base}/codes", f"GET {base}/live", f"GET {base}/proxies",
                  "GET /api/admin/communities/{community_id}/register/subjects"):
        assert 200 in seen[label], (label, seen[label])
    assert 200 in seen["POST /api/staff/logout"], seen["POST /api/staff/logout"]
