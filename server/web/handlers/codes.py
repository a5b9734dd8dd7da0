"""Admin API of ballot codes: issue all (ZIP or PDF download), reissue one, unlock one, status."""
from __future__ import annotations

import asyncio
import base64
import dataclasses
from urllib.parse import quote

from aiohttp import web

from server import appkeys
from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import Conflict, ValidationFailed
from server.printing.code_sheets import building_pdf
from server.printing.qr import qr_png, qr_svg
from server.services import codes as codes_service
from server.services import notifications
from server.web.handlers.common import field, json_response, pool, read_json, settings

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/codes"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


def _download(data: bytes, content_type: str, filename: str) -> web.Response:
    return web.Response(body=data, content_type=content_type, headers={
        "Content-Disposition": f"attachment; filename=\"codes\"; filename*=UTF-8''{quote(filename)}",
        "Cache-Control": "no-store"})


async def issue(request: web.Request) -> web.Response:
    """Issue codes; the answer (a ZIP, or one PDF) is the only copy of the plaintext codes."""
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    replace = field(data, "replace_existing", bool, required=False, default=False)
    test = field(data, "test", bool, required=False, default=False)
    fmt = field(data, "format", str, required=False, default="zip")
    if fmt not in ("zip", "pdf"):
        raise ValidationFailed("format 只能是 zip 或 pdf", fields={"format": "zip 或 pdf"})
    result = await codes_service.issue_codes(pool(request), community_id=community_id, meeting_id=meeting_id,
                                             actor=principal.actor, public_url=settings(request).public_url,
                                             replace_existing=replace, test=test)
    if not result.codes:
        raise Conflict("本次会议的选票二维码已全部发放。补发请对单户操作，或选择全部重新发放。",
                       code="codes_already_issued", fields={"skipped": result.skipped})
    result = await _with_miniprogram_codes(request, result)
    if fmt == "pdf":
        body = await asyncio.to_thread(lambda: building_pdf(result.context or result.meeting_title, "全部楼栋",
                                                            result.codes, signoff=True))
        return _download(body, "application/pdf", f"{meeting_id}-codes.pdf")
    body = await asyncio.to_thread(lambda: codes_service.zip_files(codes_service.output_files(result)))
    return _download(body, "application/zip", f"{meeting_id}-codes.zip")


async def _with_miniprogram_codes(request: web.Request,
                                  result: codes_service.IssueResult) -> codes_service.IssueResult:
    """With EVOTE_SHEET_QR=miniprogram, each code's sheet carries the mini-program code WeChat draws for it
    (scene = the ballot code); a code WeChat could not draw keeps the web address QR."""
    if settings(request).sheet_qr != "miniprogram":
        return result
    images = await notifications.miniprogram_codes(pool(request), request.app[appkeys.WECHAT], settings(request),
                                                   [c.code for c in result.codes])
    return dataclasses.replace(result, codes=[dataclasses.replace(c, qr_png=images.get(c.code))
                                              for c in result.codes])


async def reissue(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    voter_id = request.match_info["voter_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    reason = field(data, "reason", str, required=False, default="", max_length=200)
    _, code = await codes_service.reissue_code(pool(request), community_id=community_id, meeting_id=meeting_id,
                                               voter_id=voter_id, actor=principal.actor,
                                               public_url=settings(request).public_url, reason=reason)
    png = await asyncio.to_thread(qr_png, code.url)
    wxacode: dict = {}
    if settings(request).sheet_qr == "miniprogram":
        images = await notifications.miniprogram_codes(pool(request), request.app[appkeys.WECHAT],
                                                       settings(request), [code.code])
        if code.code in images:
            wxacode = {"miniprogram_png_base64": base64.b64encode(images[code.code]).decode("ascii")}
    return json_response({
        "voter_id": code.voter_id, "building": code.building, "units": list(code.units),
        "masked_name": code.masked_name, "representative": code.representative, "serial": code.serial,
        "code": code.code, "url": code.url,
        "qr_svg": qr_svg(code.url), "qr_png_base64": base64.b64encode(png).decode("ascii"), **wxacode,
    }, status=201, headers={"Cache-Control": "no-store"})


async def unlock(request: web.Request) -> web.Response:
    """Unlock a voter's code after failed sign-ins (organiser roles; a reason is required and audited)."""
    community_id, meeting_id = _ids(request)
    voter_id = request.match_info["voter_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    reason = field(data, "reason", str, required=False, default="", max_length=200).strip()
    if not reason:
        raise ValidationFailed("请填写解锁原因（例如：已当面核实业主身份）", fields={"reason": "必填"})
    return json_response(await codes_service.unlock_code(pool(request), community_id=community_id,
                                                         meeting_id=meeting_id, voter_id=voter_id,
                                                         actor=principal.actor, reason=reason))


async def status(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await codes_service.code_status(pool(request), community_id=community_id,
                                                         meeting_id=meeting_id))


def setup(app: web.Application) -> None:
    app.router.add_post(_BASE, issue)
    app.router.add_get(_BASE, status)
    app.router.add_post(_BASE + "/{voter_id}/reissue", reissue)
    app.router.add_post(_BASE + "/{voter_id}/unlock", unlock)
