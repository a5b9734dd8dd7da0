"""Admin API of the canvass list: the units not voted yet, per building (organisers only, audited)."""
from __future__ import annotations

from aiohttp import web

from server.auth.staff import ORGANISER_ROLES, require_staff
from server.errors import ValidationFailed
from server.services import canvass as canvass_service
from server.web.handlers.common import json_response, pool

MAX_BUILDING = 64   # as a register's building names


async def canvass(request: web.Request) -> web.Response:
    community_id, meeting_id = request.match_info["community_id"], request.match_info["meeting_id"]
    principal = await require_staff(request, community_id=community_id, roles=ORGANISER_ROLES)
    building = request.query.get("building")
    if building is not None and not 1 <= len(building) <= MAX_BUILDING:
        raise ValidationFailed(f"楼栋名称应为 1–{MAX_BUILDING} 个字", fields={"building": "格式不正确"})
    doc = await canvass_service.canvass_list(pool(request), community_id=community_id, meeting_id=meeting_id,
                                             building=building, actor=principal.actor)
    return json_response(doc, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/admin/communities/{community_id}/meetings/{meeting_id}/canvass", canvass)
