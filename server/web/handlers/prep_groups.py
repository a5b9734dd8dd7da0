"""Before the vote: the preparatory group and its posting, the register's public posting, and the
temporary management committee (admin and public API)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from server.auth.ballot import require_ballot
from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import Forbidden, NotFound, ValidationFailed
from server.printing.prep_group_list import prep_group_pdf
from server.repositories import communities as community_repo
from server.services import prep_groups as service
from server.services import register_posting as posting
from server.web.handlers.common import field, int_path, json_response, pool, read_json, settings

ADMIN = "/api/admin/communities/{community_id}"
PUBLIC = "/api/public/communities/{community_id}"
STREET_ROLES = frozenset({"district_admin", "street_admin"})


def _cid(request: web.Request) -> str:
    return request.match_info["community_id"]


async def _community_exists(request: web.Request) -> None:
    async with pool(request).acquire() as conn:
        if await community_repo.get_community(conn, _cid(request)) is None:
            raise NotFound("小区不存在", code="community_not_found")


# --- 筹备组 ---

async def get_group(request: web.Request) -> web.Response:
    await require_staff(request, community_id=_cid(request))
    return json_response(await service.get_group(pool(request), _cid(request)))


async def draft_group(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=WRITER_ROLES)
    return json_response(await service.draft_group(pool(request), actor=principal.actor, community_id=_cid(request),
                                                   data=await read_json(request)), status=201)


async def post_group(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    return json_response(await service.post_group(pool(request), actor=principal.actor, community_id=_cid(request),
                                                  data=data))


async def group_pdf(request: web.Request) -> web.Response:
    await require_staff(request, community_id=_cid(request))
    group = await service.get_group(pool(request), _cid(request))
    async with pool(request).acquire() as conn:
        community = await community_repo.get_community(conn, _cid(request))
    name = community["name"] if community is not None else _cid(request)
    body = await asyncio.to_thread(prep_group_pdf, name, group)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": f"inline; filename=\"prep-group.pdf\"; filename*=UTF-8''{quote('筹备组名单公示.pdf')}"})


async def resolve_objection(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=STREET_ROLES)
    number = int_path(request, "objection_no", "objection_not_open", "没有这条异议")
    return json_response(await service.resolve_objection(pool(request), actor=principal.actor,
                                                         community_id=_cid(request), objection_no=number,
                                                         data=await read_json(request)))


async def public_group(request: web.Request) -> web.Response:
    return json_response(await service.get_group(pool(request), _cid(request), public=True))


async def object_publicly(request: web.Request) -> web.Response:
    """An objection from an owner signed in with a ballot code of this community, or from the public
    (a name is asked for, as on a paper objection)."""
    data = await read_json(request)
    if request.headers.get("Authorization"):
        principal = await require_ballot(request)
        if principal.community_id != _cid(request):
            raise Forbidden("选票二维码不属于本小区", code="community_forbidden")
        filed_by = f"voter:{principal.voter_id}"
    else:
        await _community_exists(request)
        filed_by = "public:" + field(data, "name", str, max_length=50).strip()
        if filed_by == "public:":
            raise ValidationFailed("请留下姓名", fields={"name": "必填"})
    return json_response(await service.object_to_group(pool(request), community_id=_cid(request),
                                                       filed_by=filed_by, text=data.get("text")), status=201)


# --- 业主名册公示 ---

async def start_posting(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    return json_response(await posting.start_posting(pool(request), actor=principal.actor,
                                                     community_id=_cid(request), data=data), status=201)


async def corrections(request: web.Request) -> web.Response:
    await require_staff(request, community_id=_cid(request))
    return json_response(await posting.list_corrections(pool(request), _cid(request)))


async def resolve_correction(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=WRITER_ROLES)
    posting_no = int_path(request, "posting_no", "posting_not_found", "没有这次公示")
    correction_no = int_path(request, "correction_no", "correction_not_open", "没有这条更正申请")
    return json_response(await posting.resolve_correction(
        pool(request), actor=principal.actor, community_id=_cid(request), posting_no=posting_no,
        correction_no=correction_no, data=await read_json(request)))


async def posting_rule(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=STREET_ROLES)
    data = await read_json(request)
    return json_response(await posting.set_required(pool(request), actor=principal.actor,
                                                    community_id=_cid(request), required=data.get("required")))


async def public_posting(request: web.Request) -> web.Response:
    return json_response(await posting.public_list(pool(request), _cid(request)))


async def my_record(request: web.Request) -> web.Response:
    return json_response(await posting.owner_record(pool(request), settings(request), community_id=_cid(request),
                                                    data=await read_json(request)))


async def file_correction(request: web.Request) -> web.Response:
    return json_response(await posting.file_correction(pool(request), settings(request), community_id=_cid(request),
                                                       data=await read_json(request)), status=201)


# --- 临时物业管理委员会 ---

async def temporary(request: web.Request) -> web.Response:
    await require_staff(request, community_id=_cid(request))
    return json_response(await service.temporary_committees(pool(request), _cid(request)))


async def create_temporary(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=STREET_ROLES)
    return json_response(await service.create_temporary(pool(request), actor=principal.actor,
                                                        community_id=_cid(request), data=await read_json(request)),
                         status=201)


async def convene(request: web.Request) -> web.Response:
    principal = await require_staff(request, community_id=_cid(request), roles=WRITER_ROLES)
    data = await read_json(request)
    return json_response(await service.convene(pool(request), actor=principal.actor, community_id=_cid(request),
                                               meeting_id=field(data, "meeting_id", str, max_length=64)))


NOTICE_STATIC = Path(__file__).resolve().parent.parent / "static" / "notice"


async def notice_page(request: web.Request) -> web.StreamResponse:
    """The community's public notices (公示): the preparatory group's list and the register posting."""
    return web.FileResponse(NOTICE_STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def setup(app: web.Application) -> None:
    app.router.add_get("/p/{community_id}", notice_page)
    app.router.add_static("/static/notice/", NOTICE_STATIC, append_version=False)
    app.router.add_get(ADMIN + "/prep-group", get_group)
    app.router.add_post(ADMIN + "/prep-group", draft_group)
    app.router.add_post(ADMIN + "/prep-group/post", post_group)
    app.router.add_get(ADMIN + "/prep-group.pdf", group_pdf)
    app.router.add_post(ADMIN + "/prep-group/objections/{objection_no}/resolve", resolve_objection)
    app.router.add_get(PUBLIC + "/prep-group", public_group)
    app.router.add_post(PUBLIC + "/prep-group/objections", object_publicly)
    app.router.add_post(ADMIN + "/register-posting", start_posting)
    app.router.add_get(ADMIN + "/register-posting/corrections", corrections)
    app.router.add_post(ADMIN + "/register-posting/{posting_no}/corrections/{correction_no}/resolve",
                        resolve_correction)
    app.router.add_post(ADMIN + "/register-posting/rule", posting_rule)
    app.router.add_get(PUBLIC + "/register-posting", public_posting)
    app.router.add_post(PUBLIC + "/register-posting/my-record", my_record)
    app.router.add_post(PUBLIC + "/register-posting/corrections", file_correction)
    app.router.add_get(ADMIN + "/temporary-committee", temporary)
    app.router.add_post(ADMIN + "/temporary-committee", create_temporary)
    app.router.add_post(ADMIN + "/temporary-committee/convene", convene)
