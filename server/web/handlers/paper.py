"""Staff API of paper ballots: print (with codes), enter twice, review mismatches (docs/paper-and-proxy.md)."""
from __future__ import annotations

import asyncio
from urllib.parse import quote

from aiohttp import web

from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import ValidationFailed
from server.printing.paper_ballots import ballots_pdf
from server.services import paper as paper_service
from server.web.handlers.common import effects, field, int_path, json_response, pool, read_json, settings

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/paper"
MAX_VOTERS = 2000


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


async def print_ballots(request: web.Request) -> web.Response:
    """Issue codes (or reissue for the listed owners) and return their paper ballots as one PDF."""
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    voter_ids = field(data, "voter_ids", list, required=False, max_length=MAX_VOTERS)
    building = field(data, "building", str, required=False, max_length=100)
    if voter_ids is not None and (not voter_ids or not all(isinstance(v, str) and v for v in voter_ids)):
        raise ValidationFailed("voter_ids 应为业主编号列表", fields={"voter_ids": "业主编号列表"})
    job = await paper_service.paper_ballots(
        pool(request), community_id=community_id, meeting_id=meeting_id, actor=principal.actor,
        public_url=settings(request).public_url, voter_ids=voter_ids, building=building)
    body = await asyncio.to_thread(ballots_pdf, job.title, job.documents, job.codes, closes_at=job.closes_at,
                                   rules=job.rules, matters_for=job.documents_for)
    return web.Response(body=body, content_type="application/pdf", headers={
        "Content-Disposition": "attachment; filename=\"paper-ballots.pdf\"; "
                               f"filename*=UTF-8''{quote(meeting_id + '-paper-ballots.pdf')}",
        "Cache-Control": "no-store", "X-Ballots": str(len(job.codes))})


async def enter(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    scan_ref = field(data, "scan_ref", str, required=False, default="", max_length=paper_service.MAX_SCAN_REF)
    result = await paper_service.enter(
        pool(request), effects(request), principal, community_id=community_id, meeting_id=meeting_id,
        code=data.get("code"), voter_id=data.get("voter_id"), votes_raw=data.get("votes"),
        paper_date=paper_service.parse_paper_date(data.get("paper_date")), scan_ref=scan_ref.strip())
    return json_response(result, status=201)


async def list_sheets(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await paper_service.list_sheets(pool(request), community_id=community_id,
                                                         meeting_id=meeting_id,
                                                         status=request.query.get("status") or None))


async def resolve(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    paper_id = int_path(request, "paper_id", "paper_not_found", "找不到该纸质选票")
    data = await read_json(request)
    result = await paper_service.resolve(
        pool(request), effects(request), principal, community_id=community_id, meeting_id=meeting_id,
        paper_id=paper_id, decision=field(data, "decision", str), note=field(data, "note", str, max_length=500))
    return json_response(result)


def setup(app: web.Application) -> None:
    app.router.add_post(_BASE + "/ballots", print_ballots)
    app.router.add_post(_BASE + "/entries", enter)
    app.router.add_get(_BASE, list_sheets)
    app.router.add_post(_BASE + "/{paper_id}/resolve", resolve)
