"""The public meeting record built from the database (evote-bundle/1 plus the signature extension).

:func:`load_record_inputs` reads a closed meeting (frozen register version,
matters, every submission with its receipt) and turns owner ids into
pseudonyms; :func:`record_files` (pure) writes the files with
``server.record.bundle.bundle_files`` and adds ``receipts.csv``.  The signing service
(server/services/results.py) stores the files it signed in
``meeting_record_file``; :func:`stored_files` reads them back for export,
``record.zip`` and the proof endpoint, so what is downloaded is byte for byte
what was signed.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from server.ballot.tally import ELECTION, Matter, Rules, Submission
from server.ballot.weights import RegisterRow
from server.record.bundle import BALLOTS_FILE, MEETING_FILE, REGISTER_FILE, bundle_files, meeting_document
from server.repositories import register as register_repo
from server.services.counting import rules_from_json

RECEIPTS_FILE = "receipts.csv"
RESULT_FILE = "result.json"
SIGNATURE_FILE = "result.sig.json"
PUBLIC_KEY_FILE = "public_key.pem"
RECEIPT_COLUMNS = ("ballot_id", "receipt")
# The files whose sha256 the signed payload lists (the signature file itself and
# the informational public key are not among them).
HASHED_FILES = (MEETING_FILE, REGISTER_FILE, BALLOTS_FILE, RECEIPTS_FILE, RESULT_FILE)
RECORD_FILES = (*HASHED_FILES, SIGNATURE_FILE, PUBLIC_KEY_FILE)


class RecordNotFound(LookupError):
    pass


def pseudonym(key: bytes, owner_id: str) -> str:
    """The record's id of an owner: stable within a meeting, unlinkable across meetings."""
    return "P" + hmac.new(key, owner_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class RecordInputs:
    community_id: str
    community_name: str
    meeting_id: str
    title: str
    rules: Rules
    matters: tuple[Matter, ...]
    register_rows: tuple[RegisterRow, ...]     # owner ids already pseudonymous
    submissions: tuple[Submission, ...]        # voter ids already pseudonymous
    receipts: tuple[tuple[str, bytes], ...]    # (ballot_id, receipt) in submission order
    meeting_row: dict[str, Any]


async def load_record_inputs(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             pseudonym_key: bytes) -> RecordInputs:
    meeting = await conn.fetchrow(
        """SELECT m.meeting_id, m.title, m.state, m.rules::text AS rules, m.register_version,
                  m.total_area, m.total_persons, m.opens_at, m.closes_at, m.noticed_at, m.opened_at,
                  m.closed_at, c.name AS community_name
             FROM meeting m JOIN community c ON c.community_id = m.community_id
            WHERE m.community_id = $1 AND m.meeting_id = $2""", community_id, meeting_id)
    if meeting is None:
        raise RecordNotFound(meeting_id)
    matter_rows = await conn.fetch(
        """SELECT matter_id, kind, title, category, seats, alternates FROM matter
            WHERE community_id = $1 AND meeting_id = $2 ORDER BY position""", community_id, meeting_id)
    candidate_rows = await conn.fetch(
        """SELECT matter_id, candidate_id, name FROM candidate
            WHERE community_id = $1 AND meeting_id = $2 ORDER BY matter_id, position""",
        community_id, meeting_id)
    candidates: dict[str, list[tuple[str, str]]] = {}
    for row in candidate_rows:
        candidates.setdefault(row["matter_id"], []).append((row["candidate_id"], row["name"]))
    matters = tuple(
        Matter(row["matter_id"], row["title"], row["kind"], row["category"],
               seats=(row["seats"] or 0) if row["kind"] == ELECTION else 0,
               alternates=(row["alternates"] or 0) if row["kind"] == ELECTION else 0,
               candidates=tuple(candidates.get(row["matter_id"], ())) if row["kind"] == ELECTION else ())
        for row in matter_rows)
    candidate_position = {(m.id, cid): i for m in matters for i, (cid, _) in enumerate(m.candidates)}

    def alias(owner_id: str) -> str:
        return pseudonym(pseudonym_key, owner_id)

    rows = await register_repo.register_rows(conn, community_id, meeting["register_version"])
    register_rows = tuple(
        RegisterRow(r.unit_id, r.building, r.kind, r.area, r.area_source, r.holder, alias(r.owner_id),
                    r.representative) for r in rows)

    sub_rows = await conn.fetch(
        """SELECT ballot_id::text AS ballot_id, voter_id, matter_id, channel, received_at, receipt
             FROM submission WHERE community_id = $1 AND meeting_id = $2
            ORDER BY received_at, ballot_id""", community_id, meeting_id)
    choice_rows = await conn.fetch(
        """SELECT ballot_id::text AS ballot_id, candidate_id, choice FROM submission_choice
            WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)
    choices: dict[str, list[tuple[str, str]]] = {}
    for row in choice_rows:
        choices.setdefault(row["ballot_id"], []).append((row["candidate_id"], row["choice"]))
    submissions = []
    receipts = []
    for row in sub_rows:
        picked = sorted(choices.get(row["ballot_id"], ()),
                        key=lambda c, m=row["matter_id"]: candidate_position.get((m, c[0]), -1))
        submissions.append(Submission(row["ballot_id"], alias(row["voter_id"]), row["matter_id"], row["channel"],
                                      row["received_at"], tuple(picked)))
        receipts.append((row["ballot_id"], bytes(row["receipt"])))
    return RecordInputs(community_id, meeting["community_name"], meeting_id, meeting["title"],
                        rules_from_json(meeting["rules"]), matters, register_rows, tuple(submissions), tuple(receipts),
                        dict(meeting))


def receipts_csv(receipts: Sequence[tuple[str, bytes]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RECEIPT_COLUMNS)
    writer.writerows((ballot_id, receipt.hex()) for ballot_id, receipt in receipts)
    return buffer.getvalue().encode("utf-8")


def record_files(inputs: RecordInputs) -> dict[str, bytes]:
    """meeting.json, register.csv, ballots.csv (server.record.bundle's writer) and receipts.csv."""
    meeting = meeting_document(inputs.meeting_id, inputs.title, inputs.rules, inputs.matters,
                               inputs.community_id, inputs.community_name)
    files = bundle_files(meeting, inputs.register_rows, inputs.submissions)
    files[RECEIPTS_FILE] = receipts_csv(inputs.receipts)
    return files


async def stored_files(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, bytes]:
    rows = await conn.fetch(
        """SELECT name, content FROM meeting_record_file WHERE community_id = $1 AND meeting_id = $2
            ORDER BY name""", community_id, meeting_id)
    if not rows:
        raise RecordNotFound(meeting_id)
    return {row["name"]: bytes(row["content"]) for row in rows}


def write_directory(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def zip_bytes(folder: str, files: dict[str, bytes]) -> bytes:
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
