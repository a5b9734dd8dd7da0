"""The public meeting record built from the database (evote-bundle/2 plus the signature extension).

:func:`load_record_inputs` reads a closed meeting (frozen register version,
matters, every submission with its receipt) and turns owner ids into
pseudonyms; :func:`record_files` builds the files with server.record's writer
(the bundle in canonical form and ``receipts.csv``).  The signing service
(server/services/results.py) stores the files it signed in
``meeting_record_file``; :func:`stored_files` reads them back for export,
``record.zip`` and the proof endpoint, so what is downloaded is byte for byte
what was signed.

Pseudonyms: each owner id of register.csv becomes ``pseudonym(key, owner_id)``;
a voting subject (ballots.csv ``voter_id``, an owner set "A+B") becomes the
subject id of its owners' pseudonyms (:func:`subject_pseudonym`), so the
record's register groups into exactly the subjects its ballots name.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from server.ballot.receipts import format_cast_at
from server.ballot.tally import Matter, Rules, Submission
from server.ballot.weights import SUBJECT_SEPARATOR, RegisterRow, subject_id
from server.record.format import meeting_document
from server.record.signed import pseudonym, unsigned_record_files
from server.repositories import export as repo
from server.repositories import register as register_repo
from server.repositories import window as window_repo
from server.services import attachments as attachments_service
from server.services import counting as counting_service


class RecordNotFound(LookupError):
    pass


def subject_pseudonym(key: bytes, voter_id: str) -> str:
    """The record's id of a voting subject: the subject id of its owners' pseudonyms.

    ``"A+B"`` becomes ``subject_id([pseudonym(A), pseudonym(B)])`` (sorted again: the
    pseudonyms' order is not the owners'), which is what the record's register.csv,
    whose owner ids are pseudonyms, groups into.
    """
    return subject_id(pseudonym(key, owner_id) for owner_id in voter_id.split(SUBJECT_SEPARATOR))


@dataclass(frozen=True)
class RecordInputs:
    community_id: str
    community_name: str
    meeting_id: str
    title: str
    rules: Rules
    matters: tuple[Matter, ...]
    register_rows: tuple[RegisterRow, ...]     # owner ids already pseudonymous
    submissions: tuple[Submission, ...]        # voter ids already pseudonymous (subject_pseudonym)
    receipts: tuple[tuple[str, bytes], ...]    # (ballot_id, receipt) in submission order
    meeting_row: dict[str, Any]
    # The voting window as it finally stood (None without both times), and the extension notices
    # (延期公告) that moved its close, in publication order.
    window: dict[str, str] | None = None
    extensions: tuple[dict[str, str], ...] = ()
    # The documents noticed with the meeting (meeting.json lists them with their sha256).
    attachments: tuple[dict[str, Any], ...] = ()


def _window(opens_at: datetime | None, closes_at: datetime | None) -> dict[str, str] | None:
    if opens_at is None or closes_at is None:
        return None
    return {"opens_at": format_cast_at(opens_at), "closes_at": format_cast_at(closes_at)}


async def load_record_inputs(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             pseudonym_key: bytes) -> RecordInputs:
    meeting = await repo.record_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise RecordNotFound(meeting_id)
    matters = tuple(await counting_service.load_matters(conn, community_id, meeting_id))
    candidate_position = {(m.id, cid): i for m in matters for i, (cid, _) in enumerate(m.candidates)}

    rows = await register_repo.register_rows(conn, community_id, meeting["register_version"])
    register_rows = tuple(replace(r, owner_id=pseudonym(pseudonym_key, r.owner_id)) for r in rows)

    # Every submission with its choices, in receive order: the counting service's loader.
    loaded = await counting_service.load_submissions(conn, community_id, meeting_id)
    receipt_of = {r["ballot_id"]: bytes(r["receipt"]) for r in await repo.submission_receipts(
        conn, community_id, meeting_id)}

    def in_record(s: Submission) -> Submission:
        """Pseudonymous, its choices in the order of the matter's candidates."""
        choices = sorted(s.choices, key=lambda choice: candidate_position.get((s.matter_id, choice[0]), -1))
        return replace(s, voter_id=subject_pseudonym(pseudonym_key, s.voter_id), choices=tuple(choices))

    submissions = tuple(in_record(s) for s in loaded)
    receipts = tuple((s.ballot_id, receipt_of[s.ballot_id]) for s in submissions)
    window = _window(meeting["opens_at"], meeting["closes_at"])
    extensions = tuple({"published_at": format_cast_at(e["published_at"]), "reason": e["reason"],
                        "closes_at": format_cast_at(e["closes_at"])}
                       for e in await window_repo.list_extensions(conn, community_id, meeting_id))
    listed, _ = await attachments_service.record_attachments(conn, community_id, meeting_id)
    return RecordInputs(community_id, meeting["community_name"], meeting_id, meeting["title"],
                        counting_service.rules_from_json(meeting["rules"]), matters, register_rows, submissions,
                        receipts, dict(meeting), window, extensions, tuple(listed))


def record_files(inputs: RecordInputs) -> dict[str, bytes]:
    """meeting.json, register.csv, ballots.csv (server.record's writer) and receipts.csv."""
    meeting = meeting_document(inputs.meeting_id, inputs.title, inputs.rules, inputs.matters,
                               inputs.community_id, inputs.community_name,
                               window=inputs.window, extensions=list(inputs.extensions),
                               attachments=list(inputs.attachments))
    return unsigned_record_files(meeting, inputs.register_rows, inputs.submissions, inputs.receipts)


async def stored_files(conn: asyncpg.Connection, community_id: str, meeting_id: str, *,
                       with_attachments: bool = False) -> dict[str, bytes]:
    """The files stored when the result was signed; ``with_attachments``: and the attached documents
    (``attachments/{id}.pdf``, frozen since the notice, bound to the record by their sha256 in meeting.json)."""
    rows = await repo.stored_files(conn, community_id, meeting_id)
    if not rows:
        raise RecordNotFound(meeting_id)
    files = {row["name"]: bytes(row["content"]) for row in rows}
    if with_attachments:
        _, attached = await attachments_service.record_attachments(conn, community_id, meeting_id)
        files.update(attached)
    return files
