"""A meeting's attached documents (the drafts owners vote on): what may be attached, pure.

Only two kinds, told by the content, never by what the uploader claims: a PDF (it starts with
``%PDF-`` and has an ``%%EOF`` mark near its end) or plain text in UTF-8 (a byte-order mark
allowed; no NUL or other control character but tab, line feed, carriage return and form feed).
At most :data:`MAX_ATTACHMENT_BYTES`.  A file's name is kept for people (no path, no control
character) and its extension must agree with the content.  In a record the file is stored as
``attachments/{attachment_id}.pdf`` or ``.txt`` (:func:`record_name`), listed in meeting.json
with its sha256 (docs/bundle-format.md).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ATTACHMENTS_FOLDER",
    "ATTACHMENT_KEYS",
    "MAX_ATTACHMENT_BYTES",
    "MEDIA_TYPES",
    "AttachmentProblem",
    "CheckedFile",
    "check_file",
    "clean_filename",
    "record_name",
]

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024   # 10 MiB, as the database allows (migration 0085)
PDF = "application/pdf"
TEXT = "text/plain"
MEDIA_TYPES = {PDF: ".pdf", TEXT: ".txt"}
# Extensions a file of each kind may carry (a text without an extension is taken as .txt).
_EXTENSIONS = {PDF: (".pdf",), TEXT: (".txt", ".text", ".md", "")}
ATTACHMENTS_FOLDER = "attachments"
# The keys of each entry of meeting.json's ``meeting.attachments``, in order.
ATTACHMENT_KEYS = ("attachment_id", "title", "filename", "media_type", "size", "sha256")
MAX_FILENAME = 200
# Text may hold tab, LF, FF and CR; no other C0 control character, no DEL.
_TEXT_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f]")


class AttachmentProblem(ValueError):
    """Why a file cannot be attached; ``code`` is stable, the message Chinese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class CheckedFile:
    media_type: str
    size: int
    sha256: str


def clean_filename(name: str) -> str:
    """The file's own name as people gave it: no folders, no control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    if not base or base in (".", ".."):
        raise AttachmentProblem("bad_filename", "文件名不能为空")
    if len(base) > MAX_FILENAME:
        raise AttachmentProblem("bad_filename", f"文件名最长 {MAX_FILENAME} 个字")
    return base


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower() if dot > 0 else ""


def _media_type(data: bytes) -> str:
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-2048:]:
            raise AttachmentProblem("bad_pdf", "PDF 文件不完整（没有文件结束标记 %%EOF），请重新导出后上传")
        return PDF
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise AttachmentProblem(
            "unsupported_media_type", "只能上传 PDF 文件或 UTF-8 编码的纯文本文件（Word、图片等请先另存为 PDF）"
        ) from None
    if _TEXT_CONTROL.search(text):
        raise AttachmentProblem("unsupported_media_type", "文本文件含有控制字符，不是纯文本；请另存为 PDF 或 UTF-8 纯文本")
    if not text.strip():
        raise AttachmentProblem("empty_file", "文件内容为空")
    return TEXT


def check_file(data: bytes, filename: str) -> CheckedFile:
    """What ``data`` is (PDF or text), its size and sha256; raises :class:`AttachmentProblem`."""
    if not data:
        raise AttachmentProblem("empty_file", "文件内容为空")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise AttachmentProblem("file_too_large", f"文件超过 {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    media_type = _media_type(data)
    if _extension(filename) not in _EXTENSIONS[media_type]:
        kind = "PDF" if media_type == PDF else "纯文本"
        raise AttachmentProblem("extension_mismatch",
                                f"文件内容是{kind}，但文件名“{filename}”的扩展名与之不符；请改为 {MEDIA_TYPES[media_type]}")
    return CheckedFile(media_type, len(data), hashlib.sha256(data).hexdigest())


def record_name(attachment_id: int, media_type: str) -> str:
    """Where a record keeps an attached file: ``attachments/3.pdf``."""
    return f"{ATTACHMENTS_FOLDER}/{attachment_id}{MEDIA_TYPES[media_type]}"
