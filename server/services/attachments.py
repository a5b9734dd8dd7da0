"""A meeting's attached documents: upload and delete while it is a draft (audited), read them.

What may be attached is decided by the pure :mod:`server.ballot.attachments` (PDF or UTF-8 text
by content, ≤ 10 MiB).  Uploads and deletions lock the meeting row like every draft change, so a
notice waits for them; the database refuses any change after the notice (migration 0085), when
the attachments' sha256 go into the notice's audit entry (:func:`notice_detail`) and, after the
close, into the record (meeting.json; the files under ``attachments/`` of record.zip).

Readers: the community's staff (any role) always; the signed-in owner for their meeting; anyone
once the notice is out (a draft's attachments are not public: the same 404 as none).
"""
from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from server.auth.ballot import BallotPrincipal
from server.ballot.attachments import AttachmentProblem, check_file, clean_filename, record_name
from server.errors import ApiError, Conflict, NotFound, PayloadTooLarge, ValidationFailed
from server.repositories import attachments as repo
from server.repositories import meetings as meetings_repo
from server.services import audit

MAX_ATTACHMENTS = 20          # per meeting
MAX_TITLE = 200


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "unsupported_media_type", "只能上传 PDF 文件或 UTF-8 编码的纯文本文件"


@dataclass(frozen=True)
class AttachmentFile:
    """One attachment's bytes and what to send with them."""

    attachment_id: int
    filename: str
    media_type: str
    sha256: str
    content: bytes


def attachment_document(row: asyncpg.Record | dict) -> dict:
    """An attachment as the API shows it (and as meeting.json lists it, without the upload fields)."""
    return {"attachment_id": row["attachment_id"], "title": row["title"], "filename": row["filename"],
            "media_type": row["media_type"], "size": row["size"], "sha256": row["sha256"]}


def _staff_document(row: asyncpg.Record) -> dict:
    return {**attachment_document(row), "uploaded_by": row["uploaded_by"],
            "uploaded_at": row["uploaded_at"].isoformat()}


def _refusal(problem: AttachmentProblem) -> ApiError:
    if problem.code == "file_too_large":
        return PayloadTooLarge(str(problem), code=problem.code)
    if problem.code in ("unsupported_media_type", "extension_mismatch"):
        return UnsupportedMediaType(str(problem), code=problem.code)
    return ValidationFailed(str(problem), code=problem.code, fields={"file": str(problem)})


def _title(title: str | None, filename: str) -> str:
    text = (title or "").strip() or (filename.rsplit(".", 1)[0] if "." in filename[1:] else filename)
    if len(text) > MAX_TITLE:
        raise ValidationFailed(f"附件标题最长 {MAX_TITLE} 个字", fields={"title": f"最多 {MAX_TITLE}"})
    return text


async def _draft(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> None:
    meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id, lock="update")
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    if meeting["state"] != "draft":
        raise Conflict("会议通知已发布，附件已随通知冻结，不能再增加或删除", code="meeting_not_draft",
                       fields={"state": meeting["state"]})


async def upload(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, data: bytes, filename: str,
                 title: str | None, actor: str) -> dict:
    """Attach a file to a draft meeting; refused after the notice (409 meeting_not_draft)."""
    try:
        name = clean_filename(filename)
        checked = check_file(data, name)
    except AttachmentProblem as problem:
        raise _refusal(problem) from None
    heading = _title(title, name)
    async with pool.acquire() as conn, conn.transaction():
        await _draft(conn, community_id, meeting_id)
        if await repo.count(conn, community_id, meeting_id) >= MAX_ATTACHMENTS:
            raise Conflict(f"每次会议最多 {MAX_ATTACHMENTS} 个附件", code="too_many_attachments")
        row = await repo.insert(conn, community_id=community_id, meeting_id=meeting_id, title=heading,
                                filename=name, media_type=checked.media_type, size=checked.size,
                                sha256=checked.sha256, content=data, uploaded_by=actor)
        doc = attachment_document(row)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.attachment.add",
                           detail={"meeting_id": meeting_id, **doc})
    return doc


async def delete(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, attachment_id: int,
                 actor: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _draft(conn, community_id, meeting_id)
        row = await repo.delete(conn, community_id, meeting_id, attachment_id)
        if row is None:
            raise NotFound("找不到该附件", code="attachment_not_found")
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.attachment.remove",
                           detail={"meeting_id": meeting_id, **attachment_document(row)})


async def _existing(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, public: bool) -> None:
    noticed = await repo.meeting_noticed(conn, community_id, meeting_id)
    if noticed is None or (public and not noticed):   # a draft (or one voided as a draft) is not public
        raise NotFound("找不到该会议", code="meeting_not_found")


async def list_for_staff(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    async with pool.acquire() as conn:
        await _existing(conn, community_id, meeting_id, public=False)
        rows = await repo.list_meta(conn, community_id, meeting_id)
    return {"meeting_id": meeting_id, "attachments": [_staff_document(r) for r in rows]}


async def list_for_owner(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    async with pool.acquire() as conn:
        rows = await repo.list_meta(conn, principal.community_id, principal.meeting_id)
    return {"meeting_id": principal.meeting_id, "attachments": [attachment_document(r) for r in rows]}


async def read(pool: asyncpg.Pool, community_id: str, meeting_id: str, attachment_id: int, *,
               public: bool = False) -> AttachmentFile:
    """One attachment's file; ``public``: only once the meeting's notice is out."""
    async with pool.acquire() as conn:
        await _existing(conn, community_id, meeting_id, public=public)
        row = await repo.get(conn, community_id, meeting_id, attachment_id)
    if row is None:
        raise NotFound("找不到该附件", code="attachment_not_found")
    return AttachmentFile(row["attachment_id"], row["filename"], row["media_type"], row["sha256"],
                          bytes(row["content"]))


async def notice_detail(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[dict]:
    """What the notice's audit entry records of the attachments it freezes (with their sha256)."""
    return [attachment_document(r) for r in await repo.list_meta(conn, community_id, meeting_id)]


async def record_attachments(conn: asyncpg.Connection, community_id: str,
                             meeting_id: str) -> tuple[list[dict], dict[str, bytes]]:
    """meeting.json's ``attachments`` list and the files of the record (``attachments/{id}.pdf``)."""
    rows = await repo.list_with_content(conn, community_id, meeting_id)
    return ([attachment_document(r) for r in rows],
            {record_name(r["attachment_id"], r["media_type"]): bytes(r["content"]) for r in rows})
