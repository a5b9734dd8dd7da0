"""A voting subject changing hands during voting: staff record it (with its evidence) and list them."""
from __future__ import annotations

import asyncio
import base64

from aiohttp import web

from server.auth.staff import WRITER_ROLES, require_staff
from server.printing.code_sheets import building_pdf
from server.printing.qr import qr_png, qr_svg
from server.services import transfers as transfers_service
from server.services.codes import IssuedCode
from server.web.handlers.common import field, json_response, pool, read_json, settings

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/transfers"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


def _code_doc(title: str, code: IssuedCode, sheet: bool) -> dict:
    """The new owner's code, its QR and (unless ``sheet`` is false) its printable sheet, the code sheet
    of one subject: shown once, like a reissued code."""
    png = qr_png(code.url)
    pdf = building_pdf(title, code.building, [code]) if sheet else None
    return {"voter_id": code.voter_id, "building": code.building, "units": list(code.units),
            "masked_name": code.masked_name, "serial": code.serial, "code": code.code, "url": code.url,
            "qr_svg": qr_svg(code.url), "qr_png_base64": base64.b64encode(png).decode("ascii"),
            "sheet_pdf_base64": base64.b64encode(pdf).decode("ascii") if pdf else None}


async def record(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    transfer = transfers_service.parse_request(data)
    sheet = field(data, "sheet", bool, required=False, default=True)
    result = await transfers_service.record_transfer(
        pool(request), community_id=community_id, meeting_id=meeting_id, actor=principal.actor,
        public_url=settings(request).public_url, request=transfer, settings=settings(request))
    doc = result.transfer
    code = None
    if result.code is not None:
        # QR and PDF rendering is CPU-bound: off the event loop
        code = await asyncio.to_thread(_code_doc, result.meeting_title, result.code, sheet)
    return json_response({**doc, "message": transfers_service.summary(doc),
                          "code": code}, status=201, headers={"Cache-Control": "no-store"})


async def list_transfers(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id)
    return json_response(await transfers_service.list_transfers(pool(request), community_id=community_id,
                                                                meeting_id=meeting_id, role=principal.role))


def setup(app: web.Application) -> None:
    app.router.add_post(_BASE, record)
    app.router.add_get(_BASE, list_transfers)
