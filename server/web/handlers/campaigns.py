"""Admin API of the district level: 社区, campaigns and their boards, management choices, subsidies."""
from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import quote

from aiohttp import web

from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import ValidationFailed
from server.printing.spreadsheets import board_xlsx, subsidy_xlsx
from server.services import campaigns as service
from server.services import staff as staff_service
from server.services import subsidies
from server.services.input_dates import iso_date
from server.web.handlers.common import field, json_response, pool, read_json, settings
from server.web.handlers.register import _read_upload

CAMPAIGN = "/api/admin/campaigns/{campaign_id}"
DISTRICT_ADMIN = frozenset({"district_admin"})
ADMINS = frozenset({"district_admin", "street_admin"})
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _today(request: web.Request) -> dt.date | None:
    raw = request.query.get("today")
    if raw is None:
        return None
    try:
        return iso_date(raw, "today")
    except ValueError:
        raise ValidationFailed("today 应为日期（如 2022-03-30）", fields={"today": raw[:20]}) from None


def _xlsx(body: bytes, filename: str) -> web.Response:
    return web.Response(body=body, content_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename=\"report.xlsx\"; filename*=UTF-8''{quote(filename)}"})


async def list_shequs(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=ADMINS | {"shequ_admin"})
    street = principal.street_id if principal.role == "street_admin" else request.query.get("street_id")
    return json_response({"shequs": await staff_service.list_shequs(pool(request), street)})


async def create_shequ(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=ADMINS)
    data = await read_json(request)
    doc = await staff_service.create_shequ(
        pool(request), principal, shequ_id=field(data, "shequ_id", str, max_length=64),
        street_id=field(data, "street_id", str, max_length=64), name=field(data, "name", str, max_length=100))
    return json_response(doc, status=201)


async def assign_shequ(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=ADMINS)
    data = await read_json(request)
    doc = await staff_service.assign_shequ(pool(request), principal, community_id=community_id,
                                           shequ_id=field(data, "shequ_id", str, required=False, max_length=64))
    return json_response(doc)


async def create_campaign(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=DISTRICT_ADMIN)
    return json_response(await service.create_campaign(pool(request), actor=principal.actor,
                                                       data=await read_json(request)), status=201)


async def list_campaigns(request: web.Request) -> web.Response:
    await require_staff(request, roles=service.BOARD_ROLES)
    return json_response({"campaigns": await service.list_campaigns(pool(request))})


async def get_campaign(request: web.Request) -> web.Response:
    await require_staff(request, roles=service.BOARD_ROLES)
    return json_response(await service.get_campaign(pool(request), request.match_info["campaign_id"]))


async def import_communities(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=DISTRICT_ADMIN)
    data, filename = await _read_upload(request, settings(request).max_upload_bytes)
    return json_response(await service.import_communities(pool(request), actor=principal.actor,
                                                          campaign_id=request.match_info["campaign_id"],
                                                          data=data, filename=filename))


async def board(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=service.BOARD_ROLES)
    return json_response(await service.board(pool(request), principal, request.match_info["campaign_id"],
                                             street_id=request.query.get("street_id"), today=_today(request)))


async def board_report(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=service.BOARD_ROLES)
    campaign_id = request.match_info["campaign_id"]
    doc = await service.board(pool(request), principal, campaign_id, street_id=request.query.get("street_id"),
                              today=_today(request))
    return _xlsx(await asyncio.to_thread(board_xlsx, doc), f"{campaign_id}-通报-{doc['today']}.xlsx")


async def subsidy_report(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=service.BOARD_ROLES)
    return json_response(await subsidies.subsidy_report(pool(request), principal, request.match_info["campaign_id"],
                                                        street_id=request.query.get("street_id")))


async def subsidy_workbook(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=service.BOARD_ROLES)
    campaign_id = request.match_info["campaign_id"]
    doc = await subsidies.subsidy_report(pool(request), principal, campaign_id,
                                         street_id=request.query.get("street_id"))
    return _xlsx(await asyncio.to_thread(subsidy_xlsx, doc), f"{campaign_id}-补助.xlsx")


async def record_management(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    doc = await subsidies.record_management(pool(request), actor=principal.actor, community_id=community_id,
                                            data=await read_json(request))
    return json_response(doc, status=201)


async def management_history(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response({"choices": await subsidies.management_history(pool(request), community_id)})


async def add_recipient(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=ADMINS | {"shequ_admin"})
    doc = await subsidies.add_recipient(pool(request), actor=principal.actor, community_id=community_id,
                                        data=await read_json(request))
    return json_response(doc, status=201)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/admin/shequs", list_shequs)
    app.router.add_post("/api/admin/shequs", create_shequ)
    app.router.add_post("/api/admin/communities/{community_id}/shequ", assign_shequ)
    app.router.add_get("/api/admin/campaigns", list_campaigns)
    app.router.add_post("/api/admin/campaigns", create_campaign)
    app.router.add_get(CAMPAIGN, get_campaign)
    app.router.add_post(CAMPAIGN + "/communities", import_communities)
    app.router.add_get(CAMPAIGN + "/board", board)
    app.router.add_get(CAMPAIGN + "/board.xlsx", board_report)
    app.router.add_get(CAMPAIGN + "/subsidies", subsidy_report)
    app.router.add_get(CAMPAIGN + "/subsidies.xlsx", subsidy_workbook)
    app.router.add_get("/api/admin/communities/{community_id}/management", management_history)
    app.router.add_post("/api/admin/communities/{community_id}/management", record_management)
    app.router.add_post("/api/admin/communities/{community_id}/subsidy-recipients", add_recipient)
