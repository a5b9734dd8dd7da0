"""Printed documents (docs/documents.md): GET .../print/{kind}.pdf and .../print/filing.zip for the
community's staff, and the contact line printed on them (PUT /api/admin/communities/{c}/contact)."""
from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from server.auth.staff import WRITER_ROLES, require_staff
from server.services import documents as documents_service
from server.web.handlers.common import json_response, pool, read_json, settings

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/print"


def _download(body: bytes, content_type: str, name: str) -> web.Response:
    return web.Response(body=body, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename=\"document\"; filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


async def print_document(request: web.Request) -> web.Response:
    """``{kind}.pdf`` for every kind, ``filing.zip`` for the filing package's sources."""
    community_id, meeting_id = request.match_info["community_id"], request.match_info["meeting_id"]
    await require_staff(request, community_id=community_id)
    name = request.match_info["file"]
    if name == "filing.zip":
        body = await documents_service.filing_zip(pool(request), settings(request), community_id, meeting_id)
        return _download(body, "application/zip", documents_service.filename(meeting_id, "filing", "zip"))
    kind = documents_service.check_kind(name.removesuffix(".pdf") if name.endswith(".pdf") else f"{name}?")
    body = await documents_service.render(pool(request), settings(request), community_id, meeting_id, kind)
    return _download(body, "application/pdf", documents_service.filename(meeting_id, kind))


async def set_contact(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    return json_response(await documents_service.set_contact(pool(request), community_id,
                                                             data.get("contact") if isinstance(data, dict) else None,
                                                             actor=principal.actor))


def setup(app: web.Application) -> None:
    app.router.add_get(_BASE + "/{file}", print_document)
    app.router.add_put("/api/admin/communities/{community_id}/contact", set_contact)
