"""A meeting's attached documents: staff upload, list, read and delete; owners and the public read.

- POST   /api/admin/communities/{c}/meetings/{m}/attachments          multipart: file, optional title (draft only)
- GET    /api/admin/communities/{c}/meetings/{m}/attachments
- GET    /api/admin/communities/{c}/meetings/{m}/attachments/{id}     the file
- DELETE /api/admin/communities/{c}/meetings/{m}/attachments/{id}     (draft only)
- GET    /api/ballot/attachments, /api/ballot/attachments/{id}        the signed-in owner's meeting
- GET    /api/public/meetings/{c}/{m}/attachments/{id}                once the notice is out
"""
from __future__ import annotations

from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web

from server.auth.ballot import require_ballot
from server.auth.staff import WRITER_ROLES, require_staff
from server.ballot.attachments import MAX_ATTACHMENT_BYTES
from server.errors import BadRequest, PayloadTooLarge
from server.services import attachments as attachments_service
from server.web.handlers.common import int_path, json_response, pool

_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}/attachments"
MAX_TITLE_BYTES = 1024


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


def _attachment_id(request: web.Request) -> int:
    return int_path(request, "attachment_id", "attachment_not_found", "找不到该附件")


async def _read_part(part: BodyPartReader, limit: int, too_large: str) -> bytes:
    chunks, size = [], 0
    while chunk := await part.read_chunk(1 << 16):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large, code="file_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _filename(part: BodyPartReader) -> str:
    """The uploaded file's name: browsers send it as UTF-8, some clients percent-encoded
    (``filename*=utf-8''%E7%AE%A1...``), which aiohttp leaves encoded."""
    name = part.filename or ""
    if "%" in name:
        try:
            return unquote(name, errors="strict")
        except UnicodeDecodeError:
            return name
    return name


async def _read_upload(request: web.Request) -> tuple[bytes, str, str | None]:
    """(file bytes, its name, title) from a multipart form: field ``file``, optional field ``title``."""
    if not request.content_type.startswith("multipart/"):
        raise BadRequest("请以表单（multipart/form-data）上传，文件字段名为 file", code="multipart_required")
    data, filename, title = None, "", None
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file" and data is None:
            data = await _read_part(part, MAX_ATTACHMENT_BYTES,
                                    f"文件超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
            filename = _filename(part)
        elif part.name == "title":
            raw = await _read_part(part, MAX_TITLE_BYTES, "附件标题过长")
            try:
                title = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest("附件标题不是 UTF-8 文字", code="bad_title") from None
    if data is None:
        raise BadRequest("缺少文件（表单字段 file）", code="file_missing")
    return data, filename or "附件.txt", title


def _file_response(item: attachments_service.AttachmentFile, cache: str) -> web.Response:
    content_type = item.media_type + ("; charset=utf-8" if item.media_type == "text/plain" else "")
    return web.Response(body=item.content, headers={
        "Content-Type": content_type,
        "Content-Disposition": f"inline; filename=\"attachment\"; filename*=UTF-8''{quote(item.filename)}",
        "ETag": f'"{item.sha256}"', "Cache-Control": cache, "X-Attachment-SHA256": item.sha256})


async def upload(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data, filename, title = await _read_upload(request)
    doc = await attachments_service.upload(pool(request), community_id=community_id, meeting_id=meeting_id,
                                           data=data, filename=filename, title=title, actor=principal.actor)
    return json_response(doc, status=201)


async def list_(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await attachments_service.list_for_staff(pool(request), community_id, meeting_id))


async def read(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    item = await attachments_service.read(pool(request), community_id, meeting_id, _attachment_id(request))
    return _file_response(item, "private, no-cache")


async def delete(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    await attachments_service.delete(pool(request), community_id=community_id, meeting_id=meeting_id,
                                     attachment_id=_attachment_id(request), actor=principal.actor)
    return web.Response(status=204)


async def owner_list(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    return json_response(await attachments_service.list_for_owner(pool(request), principal))


async def owner_read(request: web.Request) -> web.Response:
    principal = await require_ballot(request)
    item = await attachments_service.read(pool(request), principal.community_id, principal.meeting_id,
                                          _attachment_id(request))
    return _file_response(item, "private, no-cache")


async def public_read(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    item = await attachments_service.read(pool(request), community_id, meeting_id, _attachment_id(request),
                                          public=True)
    return _file_response(item, "public, max-age=300")


def setup(app: web.Application) -> None:
    app.router.add_post(_BASE, upload)
    app.router.add_get(_BASE, list_)
    app.router.add_get(_BASE + "/{attachment_id}", read)
    app.router.add_delete(_BASE + "/{attachment_id}", delete)
    app.router.add_get("/api/ballot/attachments", owner_list)
    app.router.add_get("/api/ballot/attachments/{attachment_id}", owner_read)
    app.router.add_get("/api/public/meetings/{community_id}/{meeting_id}/attachments/{attachment_id}", public_read)
