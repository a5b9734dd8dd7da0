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
# Values of the wrong type or range put in place of one field of a body: a list or an object where a
# text is looked up in a table, an integer beyond any column, a digit Python's int() refuses.
CONFUSION = ([], {}, ["x"], {"a": 1}, 2 ** 40, -1, 0, True, None, "²", "١٢", "", " ", "9" * 30, 1.5)
# Query and path texts that look like numbers, dates or ids but are not quite.
TRICKY_TEXT = ("²", "١٢", "0", "-1", "99999999999999999999", "1e3", " 1", "9999-12-31", "2026-02-30", "")
# Examples per operation: bounded so the run stays well under a minute; EVOTE_FUZZ_EXAMPLES raises it for
# a longer search by hand (e.g. 100).
MAX_EXAMPLES = int(os.environ.get("EVOTE_FUZZ_EXAMPLES", "6"))


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


def _cases(operation):
    """Cases that follow the document and cases that break it (wrong types, missing fields, ...)."""
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    return st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))


def _confused(value, replacement, target: int, counter: list[int]):
    """``value`` with its ``target``-th field (object members, depth first) replaced by ``replacement``."""
    if isinstance(value, list):
        return [_confused(v, replacement, target, counter) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            counter[0] += 1
            out[key] = replacement if counter[0] - 1 == target else _confused(item, replacement, target, counter)
        return out
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
        @given(case=_cases(operation), data=st.data())
        def check(case, data):
            for name in case.path_parameters or {}:
                # seeded unless drawn 3: Hypothesis' simplest examples (0) reach the seeded resources
                if name in seeded and data.draw(st.integers(0, 3), label=f"seed {name}") != 3:
                    case.path_parameters[name] = data.draw(st.sampled_from(seeded[name]), label=name)
            for name in case.query or {}:
                if data.draw(st.integers(0, 3), label=f"tricky {name}") == 0:
                    case.query[name] = data.draw(st.sampled_from(TRICKY_TEXT), label=name)
            headers = {"Authorization": f"Bearer {token}"}
            mutation = data.draw(st.integers(0, 5), label="mutation")
            if (case.media_type == "application/json" and isinstance(case.body, (dict, list))
                    and mutation < 3):
                # sent by hand: schemathesis re-validates (and UTF-8 encodes) the bodies it sends itself
                where = data.draw(st.integers(0, 8), label="where")
                if mutation == 0:
                    body = _poisoned(case.body, data.draw(st.sampled_from(POISON), label="char"), where, [0])
                else:
                    body = _confused(case.body, data.draw(st.sampled_from(CONFUSION), label="value"), where, [0])
                kwargs = case.as_transport_kwargs(base_url=base_url, headers=headers)
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
              "objection_id": ["1"], "member_no": ["1"], "street_id": ["test-street"], "action": ["revoke"],
              "attachment_id": ["1"], "campaign_id": ["c-2022"], "objection_no": ["1"], "posting_no": ["1"],
              "correction_no": ["1"], "file": ["notice.pdf", "sheets.pdf", "filing.zip"]}
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


# ---------------------------------------------------------------- a systematic sweep beside the random one

WRONG_VALUES = ([], {"a": 1}, 2 ** 40, "²", -1)
DRAFT_ONLY = {"updateMeeting", "addMatter", "updateMatter", "addCandidates", "attachNominees"}


def _field_paths(example) -> list[tuple]:
    """Where a value can be replaced: every member of the body, of its objects and of the first object
    of its lists (one level down)."""
    paths: list[tuple] = []
    for key, value in example.items():
        paths.append((key,))
        if isinstance(value, dict):
            paths += [(key, inner) for inner in value]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            paths += [(key, 0, inner) for inner in value[0]]
    return paths


def _replaced(example, path: tuple, value):
    body = json.loads(json.dumps(example))
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


async def test_every_body_field_of_the_wrong_type_or_range_is_a_4xx(client, db_pool, make_staff, staff_headers,
                                                                     imported_community):
    """Each documented example body, one field at a time replaced by a value of another type or range
    (a list or an object where text is looked up in a table, 2⁴⁰, a digit int() refuses): never a 5xx.
    Each integer or date query parameter likewise with texts that look like numbers but are not."""
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=8)
    draft = meeting_body(meeting_id=f"d-{secrets.token_hex(3)}")
    resp = await client.post(f"/api/admin/communities/{m.community_id}/meetings", json=draft, headers=m.headers)
    assert resp.status == 201, await resp.text()
    headers = {"Authorization": f"Bearer {await _login(client, make_staff)}"}
    ids = {"community_id": m.community_id, "matter_id": "M1", "voter_id": m.voter_ids[0], "candidate_id": "C1",
           "nomination_id": "1", "committee_id": "1", "paper_id": "1", "authorization_id": "1", "objection_id": "1",
           "member_no": "1", "street_id": "test-street", "username": "nobody-here", "action": "roles",
           "attachment_id": "1", "campaign_id": "c-2022", "objection_no": "1", "posting_no": "1",
           "correction_no": "1", "file": "notice.pdf"}
    text = json.dumps(_document()).replace("O-0001", m.voter_ids[0]).replace("O-0002", m.voter_ids[1])
    doc = json.loads(text)
    sent, server_errors = 0, []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            meeting = draft["meeting_id"] if op["operationId"] in DRAFT_ONLY else m.meeting_id
            url = path.format(**ids, meeting_id=meeting)
            example = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
            if example is not None:
                for field in _field_paths(example):
                    for value in WRONG_VALUES:
                        body = _replaced(example, field, value)
                        resp = await client.request(method.upper(), url, json=body, headers=headers)
                        sent += 1
                        if resp.status >= 500:
                            server_errors.append((method.upper(), url, body, resp.status, await resp.text()))
            queries = [p for p in op.get("parameters", []) if "$ref" in p or p.get("in") == "query"]
            for parameter in queries:
                if "$ref" in parameter:
                    parameter = doc["components"]["parameters"][parameter["$ref"].rsplit("/", 1)[1]]
                if parameter["in"] != "query" or path.endswith("/live/stream"):
                    continue
                for value in TRICKY_TEXT:
                    resp = await client.request(method.upper(), url, params={parameter["name"]: value},
                                                headers=headers)
                    sent += 1
                    if resp.status >= 500:
                        server_errors.append((method.upper(), url, parameter["name"], value, resp.status))
    print(f"sweep: {sent} requests")
    assert sent > 500
    assert not server_errors, server_errors
