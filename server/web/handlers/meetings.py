"""Admin API of meetings: drafting, the notice, opening and closing, voiding, extensions, transitions."""
from __future__ import annotations

from aiohttp import web

from server.auth.staff import WRITER_ROLES, require_staff
from server.services import meetings as meetings_service
from server.services import voting_window
from server.web.handlers.common import effects, json_response, pool, read_json

BASE = "/api/admin/communities/{community_id}/meetings"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


async def create(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await meetings_service.create_meeting(pool(request), community_id=community_id, data=data,
                                                actor=principal.actor)
    return json_response(doc, status=201)


async def list_(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response({"meetings": await meetings_service.list_meetings(pool(request), community_id)})


async def get_one(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await meetings_service.get_meeting(pool(request), community_id, meeting_id))


async def update(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await meetings_service.update_meeting(pool(request), community_id=community_id, meeting_id=meeting_id,
                                                data=data, actor=principal.actor)
    return json_response(doc)


async def add_matter(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await meetings_service.add_matter(pool(request), community_id=community_id, meeting_id=meeting_id,
                                            data=data, actor=principal.actor)
    return json_response(doc, status=201)


async def update_matter(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await meetings_service.update_matter(pool(request), community_id=community_id, meeting_id=meeting_id,
                                               matter_id=request.match_info["matter_id"], data=data,
                                               actor=principal.actor)
    return json_response(doc)


async def remove_matter(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    await meetings_service.remove_matter(pool(request), community_id=community_id, meeting_id=meeting_id,
                                         matter_id=request.match_info["matter_id"], actor=principal.actor)
    return web.Response(status=204)


async def add_candidates(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await meetings_service.add_candidates(pool(request), community_id=community_id, meeting_id=meeting_id,
                                                matter_id=request.match_info["matter_id"], data=data,
                                                actor=principal.actor)
    return json_response(doc, status=201)


async def remove_candidate(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    await meetings_service.remove_candidate(pool(request), community_id=community_id, meeting_id=meeting_id,
                                            matter_id=request.match_info["matter_id"],
                                            candidate_id=request.match_info["candidate_id"], actor=principal.actor)
    return web.Response(status=204)


async def notice(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    doc = await meetings_service.publish_notice(pool(request), effects(request), community_id=community_id,
                                                meeting_id=meeting_id, actor=principal.actor)
    return json_response(doc)


async def open_(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    doc = await meetings_service.open_meeting(pool(request), effects(request), community_id=community_id,
                                              meeting_id=meeting_id, actor=principal.actor)
    return json_response(doc)


async def close(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    doc = await meetings_service.close_meeting(pool(request), effects(request), community_id=community_id,
                                               meeting_id=meeting_id, actor=principal.actor)
    return json_response(doc)


async def void(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}   # no body: the reason is missing
    doc = await voting_window.void_meeting(pool(request), effects(request), community_id=community_id,
                                           meeting_id=meeting_id, data=data, actor=principal.actor)
    return json_response(doc)


async def extend(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}   # no body: the reason is missing
    doc = await voting_window.extend_meeting(pool(request), effects(request), community_id=community_id,
                                             meeting_id=meeting_id, data=data, actor=principal.actor)
    return json_response(doc, status=201)


async def transitions(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    rows = await meetings_service.transitions(pool(request), community_id, meeting_id)
    return json_response({"meeting_id": meeting_id, "transitions": rows})


async def matter_templates(request: web.Request) -> web.Response:
    await require_staff(request)
    return json_response(meetings_service.matter_templates())


def setup(app: web.Application) -> None:
    one = BASE + "/{meeting_id}"
    app.router.add_get("/api/admin/matter-templates", matter_templates)
    app.router.add_post(BASE, create)
    app.router.add_get(BASE, list_)
    app.router.add_get(one, get_one)
    app.router.add_patch(one, update)
    app.router.add_post(one + "/matters", add_matter)
    app.router.add_patch(one + "/matters/{matter_id}", update_matter)
    app.router.add_delete(one + "/matters/{matter_id}", remove_matter)
    app.router.add_post(one + "/matters/{matter_id}/candidates", add_candidates)
    app.router.add_delete(one + "/matters/{matter_id}/candidates/{candidate_id}", remove_candidate)
    app.router.add_post(one + "/notice", notice)
    app.router.add_post(one + "/open", open_)
    app.router.add_post(one + "/close", close)
    app.router.add_post(one + "/void", void)
    app.router.add_post(one + "/extensions", extend)
    app.router.add_get(one + "/transitions", transitions)
