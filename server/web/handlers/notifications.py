"""WeChat subscribe messages: the owner's choices, and a meeting's counts for staff."""
from __future__ import annotations

from aiohttp import web

from server.auth.ballot import require_ballot
from server.auth.staff import require_staff
from server.services import notifications as service
from server.web.handlers.common import json_response, pool, read_json, settings


async def my_choices(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await service.owner_choices(pool(request), settings(request), principal))


async def choose(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    data = await read_json(request)
    return json_response(await service.record_choices(pool(request), settings(request), principal, data))


async def meeting_counts(request: web.Request) -> web.Response:
    community_id, meeting_id = request.match_info["community_id"], request.match_info["meeting_id"]
    await require_staff(request, community_id=community_id)
    return json_response(await service.meeting_summary(pool(request), community_id, meeting_id))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/ballot/notifications", my_choices)
    app.router.add_post("/api/ballot/notifications", choose)
    app.router.add_get("/api/admin/communities/{community_id}/meetings/{meeting_id}/notifications",
                       meeting_counts)
