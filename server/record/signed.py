"""The signed record: the files beside the bundle and how the record's files are built.

A signed record (docs/verification.md) is the bundle (meeting.json,
register.csv, ballots.csv) plus ``receipts.csv``, ``result.json``,
``result.sig.json`` and, for convenience, ``public_key.pem``; a meeting with
paper or proxy ballots adds server.record.extension's files.  The signing
service (server/services/results.py) loads the meeting (server/services/export.py),
builds the files here, signs their hashes and stores them; ``record.zip`` and
``evote export`` serve the stored bytes.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from server.ballot.tally import Submission
from server.ballot.weights import RegisterRow
from server.record.format import BALLOTS_FILE, MEETING_FILE, REGISTER_FILE
from server.record.writer import bundle_files, csv_text

__all__ = [
    "HASHED_FILES",
    "PUBLIC_KEY_FILE",
    "RECEIPTS_FILE",
    "RECEIPT_COLUMNS",
    "RECORD_FILES",
    "RESULT_FILE",
    "SIGNATURE_FILE",
    "pseudonym",
    "receipts_csv",
    "unsigned_record_files",
    "zip_bytes",
]

RECEIPTS_FILE = "receipts.csv"
RESULT_FILE = "result.json"
SIGNATURE_FILE = "result.sig.json"
PUBLIC_KEY_FILE = "public_key.pem"
RECEIPT_COLUMNS = ("ballot_id", "receipt")
# The files whose sha256 the signed payload lists (the signature file itself and
# the informational public key are not among them).
HASHED_FILES = (MEETING_FILE, REGISTER_FILE, BALLOTS_FILE, RECEIPTS_FILE, RESULT_FILE)
RECORD_FILES = (*HASHED_FILES, SIGNATURE_FILE, PUBLIC_KEY_FILE)


def pseudonym(key: bytes, owner_id: str) -> str:
    """The record's id of an owner: stable within a meeting, unlinkable across meetings."""
    return "P" + hmac.new(key, owner_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def receipts_csv(receipts: Iterable[tuple[str, bytes]]) -> bytes:
    """receipts.csv: ``ballot_id,receipt`` (64 hex characters), in the order given."""
    return csv_text(RECEIPT_COLUMNS, ((ballot_id, receipt.hex()) for ballot_id, receipt in receipts)).encode("utf-8")


def unsigned_record_files(meeting: Mapping[str, Any], register_rows: Iterable[RegisterRow],
                          submissions: Iterable[Submission],
                          receipts: Sequence[tuple[str, bytes]]) -> dict[str, bytes]:
    """The record's files before signing: the bundle's three (canonical form) and receipts.csv."""
    files = bundle_files(meeting, register_rows, submissions)
    files[RECEIPTS_FILE] = receipts_csv(receipts)
    return files


def zip_bytes(folder: str, files: Mapping[str, bytes]) -> bytes:
    """The record as a .zip with one folder (what record.zip serves); fixed timestamps, so stable."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        # extension files beyond RECORD_FILES (e.g. proxies.csv, paper.csv) follow, sorted
        for name in RECORD_FILES + tuple(sorted(set(files) - set(RECORD_FILES))):
            if name in files:
                info = zipfile.ZipInfo(f"{folder}/{name}", date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, files[name])
    return buffer.getvalue()
