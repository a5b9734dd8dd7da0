"""The public meeting record built from the database (evote-bundle/1 plus the signature extension).

:func:`load_record_inputs` reads a closed meeting (frozen register version,
matters, every submission with its receipt) and turns owner ids into
pseudonyms; :func:`record_files` builds the files with server.record.signed
(the bundle in canonical form and ``receipts.csv``).  The signing service
(server/services/results.py) stores the files it signed in
``meeting_record_file``; :func:`stored_files` reads them back for export,
``record.zip`` and the proof endpoint, so what is downloaded is byte for byte
what was signed.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from server.ballot.receipts import format_cast_at
from server.ballot.tally import Matter, Rules, Submission
from server.ballot.weights import RegisterRow
from server.record.format import meeting_document
from server.record.signed import pseudonym, unsigned_record_files
from server.repositories import export as repo
from server.repositories import register as register_repo
from server.repositories import window as window_repo
from server.services import counting as counting_service


class RecordNotFound(LookupError):
    pass


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
    # The voting window as it finally stood, and the extension notices that moved its close.
    window: dict[str, str | None] | None = None
    extensions: tuple[dict[str, str], ...] = ()


def _legal_time(moment: datetime | None) -> str | None:
    return format_cast_at(moment) if moment is not None else None


async def load_record_inputs(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                             pseudonym_key: bytes) -> RecordInputs:
    meeting = await repo.record_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise RecordNotFound(meeting_id)
    matters = tuple(await counting_service.load_matters(conn, community_id, meeting_id))
    candidate_position = {(m.id, cid): i for m in matters for i, (cid, _) in enumerate(m.candidates)}

    def alias(owner_id: str) -> str:
        return pseudonym(pseudonym_key, owner_id)

    rows = await register_repo.register_rows(conn, community_id, meeting["register_version"])
    register_rows = tuple(replace(r, owner_id=alias(r.owner_id)) for r in rows)

    # Every submission with its choices, in receive order: the counting service's loader.
    loaded = await counting_service.load_submissions(conn, community_id, meeting_id)
    receipt_of = {r["ballot_id"]: bytes(r["receipt"]) for r in await repo.submission_receipts(
        conn, community_id, meeting_id)}

    def in_record(s: Submission) -> Submission:
        """Pseudonymous, its choices in the order of the matter's candidates."""
        choices = sorted(s.choices, key=lambda choice: candidate_position.get((s.matter_id, choice[0]), -1))
        return replace(s, voter_id=alias(s.voter_id), choices=tuple(choices))

    submissions = tuple(in_record(s) for s in loaded)
    receipts = tuple((s.ballot_id, receipt_of[s.ballot_id]) for s in submissions)
    window = {"opens_at": _legal_time(meeting["opens_at"]), "closes_at": _legal_time(meeting["closes_at"])}
    extensions = tuple({"published_at": format_cast_at(e["published_at"]), "reason": e["reason"],
                        "closes_at": format_cast_at(e["closes_at"])}
                       for e in await window_repo.list_extensions(conn, community_id, meeting_id))
    return RecordInputs(community_id, meeting["community_name"], meeting_id, meeting["title"],
                        counting_service.rules_from_json(meeting["rules"]), matters, register_rows, submissions,
                        receipts, dict(meeting), window, extensions)


def record_files(inputs: RecordInputs) -> dict[str, bytes]:
    """meeting.json, register.csv, ballots.csv (server.record's writer) and receipts.csv."""
    meeting = meeting_document(inputs.meeting_id, inputs.title, inputs.rules, inputs.matters,
                               inputs.community_id, inputs.community_name,
                               window=inputs.window, extensions=list(inputs.extensions))
    return unsigned_record_files(meeting, inputs.register_rows, inputs.submissions, inputs.receipts)


async def stored_files(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, bytes]:
    rows = await repo.stored_files(conn, community_id, meeting_id)
    if not rows:
        raise RecordNotFound(meeting_id)
    return {row["name"]: bytes(row["content"]) for row in rows}
