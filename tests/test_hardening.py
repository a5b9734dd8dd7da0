"""Hostile input at the edge: no 5xx, stable 4xx codes; headers of every response; quiet logs;
CSV cells that spreadsheets would run as formulas; an idempotency key reused with another body."""
from __future__ import annotations

import asyncio
import logging
import socket

import asyncpg
import asyncpg.exceptions._base as asyncpg_base
import pytest
from aiohttp import web

from server.ballot.text_checks import spreadsheet_safe
from server.services.codes import output_files_csv
from server.web.handlers.common import field
from server.web.middleware import code_digest, error_middleware, install_security_headers
from tests.helpers_meetings import ballot_token, bearer, cast, meeting_body, open_meeting

ALL_YES = [{"matter_id": "M1", "choice": "yes"}, {"matter_id": "M2", "choice": "no"},
           {"matter_id": "E1", "marks": {"C1": "yes", "C2": "yes", "C3": "no"}}]
JSON = {"Content-Type": "application/json"}


async def _code(resp, status: int | tuple) -> str:
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status in statuses, (resp.status, await resp.text())
    return (await resp.json())["error"]["code"]


# ---------------------------------------------------------------- no 5xx for any input

@pytest.mark.parametrize("path", ["/api/ballot/redeem", "/api/ballot/votes"])
async def test_deep_json_and_huge_integers_are_refused(client, db_pool, staff_headers, imported_community, path):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    headers = {**JSON, **bearer(token)}
    deep = "[" * 1000 + "]" * 1000
    resp = await client.post(path, data='{"votes": ' + deep + ', "code": ' + deep + "}", headers=headers)
    assert await _code(resp, 400) == "too_deep"
    huge = "9" * 5000
    resp = await client.post(path, data='{"code": ' + huge + ', "votes": [{"matter_id": "M1", "choice": ' + huge
                             + "}]}", headers=headers)
    assert await _code(resp, 422) == "value_out_of_range"
    resp = await client.post(path, data='{"code": 1e999, "votes": 1e999}', headers=headers)
    assert await _code(resp, 422) == "value_out_of_range"
    resp = await client.post(path, data='{"code": NaN, "votes": NaN}', headers=headers)
    assert await _code(resp, 400) == "invalid_json"


@pytest.mark.parametrize("bad", ["a\\u0000b", "a\\ud800b", "\\udfff"])
async def test_nul_and_lone_surrogates_in_bodies_are_refused(client, db_pool, staff_headers, imported_community, bad):
    resp = await client.post("/api/staff/login", data='{"username": "' + bad + '", "password": "x"}', headers=JSON)
    assert await _code(resp, 400) == "invalid_characters"
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    headers = {**JSON, **bearer(token)}
    resp = await client.post("/api/ballot/votes", data='{"idempotency_key": "' + bad + '", "votes": '
                             '[{"matter_id": "M1", "choice": "yes"}]}', headers=headers)
    assert await _code(resp, 400) == "invalid_characters"
    resp = await client.post("/api/ballot/votes", data='{"idempotency_key": "k1", "votes": '
                             '[{"matter_id": "' + bad + '", "choice": "yes"}]}', headers=headers)
    assert await _code(resp, 400) == "invalid_characters"
    resp = await client.post("/api/ballot/redeem", data='{"code": "' + bad + '", "last4": "1234"}', headers=JSON)
    assert await _code(resp, 400) == "invalid_characters"


@pytest.mark.parametrize("path", ["/api/public/meetings/a%00b/x/turnout", "/api/public/meetings/x/a%00/turnout",
                                  "/b/abc%00def", "/api/public/meetings/x/y/turnout?a=%00"])
async def test_nul_in_paths_and_queries_is_refused(client, path):
    resp = await client.get(path)
    assert resp.status < 500
    assert await _code(resp, (400, 404)) in ("invalid_characters", "not_found")


async def test_integers_beyond_the_database_and_far_dates_are_422(client, staff_headers, imported_community):
    headers = await staff_headers("district_admin")
    community_id, _rows = await imported_community(5)
    base = f"/api/admin/communities/{community_id}/meetings"
    for opens_at, closes_at in (("9999-12-31T23:59:59-12:00", "9999-12-31T23:59:59-12:00"),
                                ("9999-12-31T00:00:00+08:00", "9999-12-31T23:59:59+08:00"),
                                ("0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00+14:00")):
        body = meeting_body() | {"opens_at": opens_at, "closes_at": closes_at}
        resp = await client.post(base, json=body, headers=headers)
        # outside 2000–2100 (server/services/input_dates.py), whether or not the database could hold it
        assert resp.status == 422, (opens_at, resp.status, await resp.text())
        assert (await resp.json())["error"]["code"] == "value_out_of_range"
    body = meeting_body(max_extensions=2 ** 40, max_extension_days=2 ** 40)
    resp = await client.post(base, json=body, headers=headers)
    assert 400 <= resp.status < 500, await resp.text()
    with pytest.raises(Exception) as refused:
        field({"n": 2 ** 31}, "n", int)
    assert getattr(refused.value, "code", None) == "value_out_of_range"
    assert field({"n": 2 ** 31 - 1}, "n", int) == 2 ** 31 - 1


def _failing_app(exc: BaseException) -> web.Application:
    async def fail(_request):
        raise exc
    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/x", fail)
    install_security_headers(app, public_url="http://example.test")
    return app


@pytest.mark.parametrize("exc", [
    asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg_base.InternalClientError("cannot switch to state 15; another operation (9) is in progress"),
    asyncpg_base.InterfaceError("pool is closing"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    ConnectionRefusedError(111, "Connect call failed"),
    TimeoutError(),
])
async def test_lost_database_connections_are_503_with_retry_after(aiohttp_client, exc):
    client = await aiohttp_client(_failing_app(exc))
    resp = await client.get("/x")
    assert resp.status == 503
    assert resp.headers["Retry-After"].isdigit()
    assert (await resp.json())["error"]["code"] == "unavailable"


@pytest.mark.parametrize("exc", [
    asyncpg_base.DataError("invalid input for query argument $1: 99999999999 (value out of int32 range)"),
    asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
    asyncpg.exceptions.DatetimeFieldOverflowError("date/time field value out of range"),
    OverflowError("date value out of range"),
])
async def test_values_the_database_cannot_hold_are_422(aiohttp_client, exc):
    client = await aiohttp_client(_failing_app(exc))
    resp = await client.get("/x")
    assert await _code(resp, 422) == "value_out_of_range"


async def test_health_503_carries_retry_after(aiohttp_client):
    from server.errors import ServiceUnavailable
    client = await aiohttp_client(_failing_app(ServiceUnavailable("数据库暂时不可用", code="database_unavailable")))
    resp = await client.get("/x")
    assert resp.status == 503 and resp.headers["Retry-After"]


# ---------------------------------------------------------------- headers

async def test_every_response_has_the_security_headers(client):
    for path in ("/api/health", "/static/owner/app.js", "/b/ABCD-EFGH", "/no/such/page"):
        resp = await client.get(path)
        headers = resp.headers
        csp = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in \
            csp.split("script-src")[1].split(";")[0], path
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"]
        assert headers["Server"] == "evote"
        assert "Strict-Transport-Security" not in headers
    resp = await client.post("/api/staff/login", json={"username": "nobody", "password": "x"})
    assert resp.headers["Cache-Control"] == "no-store"
    resp = await client.post("/api/ballot/redeem", json={"code": "x"})
    assert resp.headers["Cache-Control"] == "no-store"


async def test_hsts_only_behind_https(aiohttp_client):
    app = _failing_app(ValueError())
    install_security_headers(app, public_url="https://vote.example.test")
    resp = await (await aiohttp_client(app)).get("/nothing")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_an_over_long_header_is_refused_without_echoing_it(client):
    secret = "SECRETTOKEN" + "x" * 10_000
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port, family=socket.AF_INET)
    writer.write(f"GET /api/health HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {secret}\r\n\r\n".encode())
    await writer.drain()
    answer = (await asyncio.wait_for(reader.read(65536), 10)).decode("latin-1")
    writer.close()
    status = int(answer.split(" ", 2)[1])
    assert 400 <= status < 500
    assert "SECRETTOKEN" not in answer and "xxxxxxxx" not in answer
    assert "aiohttp" not in answer.split("\r\n\r\n")[0].lower()


def test_served_pages_have_no_inline_script():
    import re
    from pathlib import Path

    static = Path(__file__).resolve().parents[1] / "server" / "web" / "static"
    for page in static.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (page, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), page
        assert "javascript:" not in text, page


# ---------------------------------------------------------------- logs

async def test_ballot_codes_are_logged_as_a_hash_prefix(client, caplog):
    code = "QZ7K-M4PX-T9WB"
    with caplog.at_level(logging.INFO, logger="evote.http"):
        await client.get(f"/b/{code}")
        await client.get(f"/b/{code}/extra")
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'path', '')}" for r in caplog.records)
    assert code not in logged and "QZ7K" not in logged
    assert code_digest(code) in logged


# ---------------------------------------------------------------- CSV

def test_formula_cells_are_neutralised():
    assert spreadsheet_safe("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    for lead in "=+-@\t\r":
        assert spreadsheet_safe(lead + "1") == "'" + lead + "1"
    assert spreadsheet_safe("1-101") == "1-101" and spreadsheet_safe(None) == "" and spreadsheet_safe(3) == "3"


def test_codes_csv_neutralises_formula_cells():
    class Code:
        def csv_row(self):
            return ["=cmd|' /C calc'!A0", "+1", "@SUM(A1)", "-2", "ok"]

    class Result:
        codes = (Code(),)

    [(name, data)] = output_files_csv(Result())  # type: ignore[arg-type]
    line = data.decode("utf-8-sig").splitlines()[1]
    assert name == "codes.csv"
    assert line.startswith("'=cmd") and ",'+1,'@SUM(A1),'-2,ok" in line


# ---------------------------------------------------------------- idempotency

async def test_an_idempotency_key_reused_with_another_choice_is_409(client, db_pool, staff_headers, imported_community):
    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
    first = await cast(client, token, ALL_YES, idempotency_key="k-1")
    assert first.status == 201
    same = await cast(client, token, ALL_YES, idempotency_key="k-1")
    assert same.status == 200 and await same.json() == await first.json()
    changed = [dict(ALL_YES[0], choice="no"), *ALL_YES[1:]]
    resp = await cast(client, token, changed, idempotency_key="k-1")
    assert await _code(resp, 409) == "idempotency_key_reused"
    marks = [*ALL_YES[:2], {"matter_id": "E1", "marks": {"C1": "no", "C2": "yes", "C3": "no"}}]
    resp = await cast(client, token, marks, idempotency_key="k-1")
    assert await _code(resp, 409) == "idempotency_key_reused"
