"""Admin API of the owner register: import, versions, totals, the (masked) owner list."""
from __future__ import annotations

import asyncio
import tempfile
from typing import IO

from aiohttp import BodyPartReader, web

from server.auth.staff import WRITER_ROLES, require_staff
from server.ballot.amounts import format_area
from server.ballot.masking import mask_name, masked_for_role
from server.errors import BadRequest, PayloadTooLarge
from server.repositories import register as register_repo
from server.services import register as register_service
from server.services import register_template
from server.web.handlers.common import int_query, json_response, pool, settings

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class _Upload:
    """An uploaded file spooled as it arrives: in memory up to 1 MiB, then a temporary file."""

    def __init__(self, file: IO[bytes], limit: int):
        self.limit = limit
        self.size = 0
        self.file = file
        self.name = "upload"

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"文件超过 {self.limit // (1024 * 1024)} MB", code="file_too_large")
        self.file.write(chunk)


async def _spool_upload(request: web.Request, upload: _Upload) -> None:
    """The uploaded file: multipart field ``file``, or the raw body (text/csv or xlsx)."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "file":
                while chunk := await part.read_chunk(1 << 16):
                    upload.write(chunk)
                upload.name = part.filename or "upload"
                return
        raise BadRequest("缺少文件（表单字段 file）", code="file_missing")
    async for chunk in request.content.iter_chunked(1 << 16):
        upload.write(chunk)
    upload.name = request.query.get("filename",
                                    "upload.xlsx" if "sheet" in request.content_type else "upload.csv")


async def _read_upload(request: web.Request, limit: int) -> tuple[bytes, str]:
    """A small uploaded file (≤ ``limit`` bytes) as bytes, and its name; read as the register's is."""
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        upload = _Upload(spool, limit)
        await _spool_upload(request, upload)
        spool.seek(0)
        return spool.read(), upload.name


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "") in ("1", "true", "yes")


async def import_register(request: web.Request) -> web.Response:
    """Import a register file (all or nothing), or with ``?preview=1`` only check it and say what an
    import would find (every problem by line and column, warnings, totals), writing nothing."""
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        upload = _Upload(spool, settings(request).max_upload_bytes)
        await _spool_upload(request, upload)
        if not upload.size:
            raise BadRequest("上传的文件为空", code="empty_file")
        if _flag(request, "preview"):
            doc = await register_service.preview_register(pool(request), community_id=community_id,
                                                          data=spool, filename=upload.name,
                                                          settings=settings(request))
            return json_response(doc)
        result = await register_service.import_register(pool(request), community_id=community_id,
                                                        data=spool, filename=upload.name,
                                                        actor=principal.actor, settings=settings(request))
    return json_response(result.as_dict(), status=201)


async def template(request: web.Request) -> web.Response:
    """The register template (.xlsx): Chinese headers, an example row, a sheet explaining each column."""
    await require_staff(request)
    body = await asyncio.to_thread(register_template.template_xlsx)
    return web.Response(body=body, content_type=XLSX_TYPE, headers={
        "Content-Disposition": "attachment; filename=\"register-template.xlsx\"; "
                               "filename*=UTF-8''%E4%B8%9A%E4%B8%BB%E7%99%BB%E8%AE%B0%E5%86%8C%E6%A8%A1%E6%9D%BF.xlsx",
        "Cache-Control": "no-store"})


def _version_param(request: web.Request) -> int | None:
    return int_query(request, "version", default=None, min_value=1)


async def totals(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    doc = await register_service.register_totals(pool(request), community_id, _version_param(request))
    return json_response(doc)


async def versions(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    async with pool(request).acquire() as conn:
        rows = await register_repo.list_versions(conn, community_id)
    return json_response({"versions": [dict(r) for r in rows]})


def _masked_owner(owner_id: str, owner, role: str) -> dict:
    """An owner as staff see them: the masked forms stored at import (the numbers are not stored),
    none of them for an auditor."""
    return {"owner_id": owner_id, "name": mask_name(owner["name"]) if owner else "",
            "phone": masked_for_role(owner["phone_masked"], role) if owner else "",
            "id_number": masked_for_role(owner["id_masked"], role) if owner else "",
            "recognised_by_possession": bool(owner and owner["recognised_by_possession"])}


async def subjects(request: web.Request) -> web.Response:
    """Voting subjects (owner sets) with their weights and owners; names, phones and ID numbers masked.

    ``owner_id`` is the subject id (its owners' ids joined with "+"); the name, phone and ID
    number shown at the top level are the representative's, who casts the subject's ballot.
    """
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id)
    async with pool(request).acquire() as conn:
        version, electorate = await register_service.load_electorate(conn, community_id, _version_param(request))
        owners = {r["owner_id"]: r for r in await register_repo.owners(conn, community_id, version)}
    places = electorate.places
    listed = []
    for subject in electorate.subjects.values():
        representative = _masked_owner(subject.representative, owners.get(subject.representative),
                                       principal.role)
        listed.append({
            "owner_id": subject.id, "subject_id": subject.id, "area": format_area(subject.area, places),
            "persons": 1, "units": list(subject.units), "buildings": list(subject.buildings),
            "building_areas": {b: format_area(a, places) for b, a in zip(subject.buildings, subject.building_areas)},
            "representative": subject.representative,
            "name": representative["name"], "phone": representative["phone"],
            "id_number": representative["id_number"],
            "recognised_by_possession": representative["recognised_by_possession"],
            "owners": [_masked_owner(owner_id, owners.get(owner_id), principal.role) for owner_id in subject.owners],
        })
    return json_response({"community_id": community_id, "register_version": version, "area_places": places,
                          "subjects": listed})


def setup(app: web.Application) -> None:
    base = "/api/admin/communities/{community_id}/register"
    app.router.add_post(base, import_register)
    app.router.add_get(base + "/versions", versions)
    app.router.add_get(base + "/totals", totals)
    app.router.add_get(base + "/subjects", subjects)
    app.router.add_get("/api/admin/register-template.xlsx", template)
