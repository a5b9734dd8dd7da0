"""Owner (ballot token) API: the meeting, my status, my receipts, and casting votes."""
from __future__ import annotations

from aiohttp import web

from server.auth.ballot import read_ballot_token, require_ballot
from server.services import casting, owner_ballot
from server.web.handlers.common import effects, json_response, pool, read_json


async def meeting(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await owner_ballot.owner_meeting(pool(request), principal))


async def status(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await owner_ballot.owner_status(pool(request), principal))


async def receipts(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await owner_ballot.owner_receipts(pool(request), principal))


async def votes(request: web.Request) -> web.Response:
    # Signature and claims here; the session (revocation) is checked inside the casting transaction.
    principal = read_ballot_token(request)
    data = await read_json(request)
    key = casting.check_idempotency_key(data.get("idempotency_key", request.headers.get("Idempotency-Key")))
    result = await casting.cast_votes(pool(request), effects(request), principal, votes_raw=data.get("votes"),
                                      idempotency_key=key)
    return json_response(result.as_dict(), status=201 if result.created else 200)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ballot/meeting", meeting)
    app.router.add_get("/api/ballot/status", status)
    app.router.add_get("/api/ballot/receipts", receipts)
    app.router.add_post("/api/ballot/votes", votes)
