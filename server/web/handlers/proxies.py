"""Proxies (书面委托) and guardians: staff register and revoke; the proxy votes with their own token."""
from __future__ import annotations

from aiohttp import web

from server.auth.ballot import read_ballot_token, require_ballot
from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import ValidationFailed
from server.services import casting
from server.services import proxies as proxies_service
from server.web.handlers.common import effects, field, int_path, json_response, pool, read_json, settings

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/proxies"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


async def register(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    matters = field(data, "matters", list, required=False, max_length=200)
    if matters is not None and not all(isinstance(m, str) for m in matters):
        raise ValidationFailed("matters 应为议题编号列表", code="bad_matters", fields={"matters": "议题编号列表"})
    doc = await proxies_service.register_authorization(
        pool(request), community_id=community_id, meeting_id=meeting_id, actor=principal.actor,
        owner_voter_id=field(data, "owner_voter_id", str, max_length=200),
        proxy_voter_id=field(data, "proxy_voter_id", str, max_length=200),
        kind=field(data, "kind", str, required=False, default="proxy"), matters=matters,
        valid_until=proxies_service.parse_valid_until(data.get("valid_until")),
        document_ref=field(data, "document_ref", str, max_length=300),
        note=field(data, "note", str, required=False, default="", max_length=500),
        cap=settings(request).proxy_cap)
    return json_response(doc, status=201)


async def revoke(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    authorization_id = int_path(request, "authorization_id", "authorization_not_found", "找不到该委托")
    data = await read_json(request) if request.can_read_body else {}
    return json_response(await proxies_service.revoke_authorization(
        pool(request), community_id=community_id, meeting_id=meeting_id, actor=principal.actor,
        authorization_id=authorization_id, reason=field(data, "reason", str, required=False, default="",
                                                        max_length=500)))


async def list_authorizations(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await proxies_service.list_for_meeting(pool(request), community_id=community_id,
                                                                meeting_id=meeting_id))


async def held(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await proxies_service.held_by(pool(request), principal))


async def proxy_votes(request: web.Request) -> web.Response:
    principal = read_ballot_token(request)   # the session is checked inside the transaction
    data = await read_json(request)
    key = casting.check_idempotency_key(data.get("idempotency_key", request.headers.get("Idempotency-Key")))
    result = await proxies_service.cast_for_owner(pool(request), effects(request), principal,
                                                  owner_voter_id=data.get("on_behalf_of"), votes_raw=data.get("votes"),
                                                  idempotency_key=key)
    return json_response({**result.as_dict(), "on_behalf_of": data.get("on_behalf_of")},
                         status=201 if result.created else 200)


def setup(app: web.Application) -> None:
    app.router.add_post(_BASE, register)
    app.router.add_get(_BASE, list_authorizations)
    app.router.add_post(_BASE + "/{authorization_id}/revoke", revoke)
    app.router.add_get("/api/ballot/proxies", held)
    app.router.add_post("/api/ballot/proxy-votes", proxy_votes)
