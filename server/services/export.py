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

from dataclasses import dataclass
from typing import Any

import asyncpg

from server.ballot.tally import ELECTION, Matter, Rules, Submission
from server.ballot.weights import RegisterRow
from server.record.format import meeting_document
from server.record.signed import pseudonym, unsigned_record_files
from server.repositories import register as register_repo
from server.services.counting import rules_from_json


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


def record_files(inputs: RecordInputs) -> dict[str, bytes]:
    """meeting.json, register.csv, ballots.csv (server.record's writer) and receipts.csv."""
    meeting = meeting_document(inputs.meeting_id, inputs.title, inputs.rules, inputs.matters,
                               inputs.community_id, inputs.community_name)
    return unsigned_record_files(meeting, inputs.register_rows, inputs.submissions, inputs.receipts)


async def stored_files(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, bytes]:
    rows = await conn.fetch(
        """SELECT name, content FROM meeting_record_file WHERE community_id = $1 AND meeting_id = $2
            ORDER BY name""", community_id, meeting_id)
    if not rows:
        raise RecordNotFound(meeting_id)
    return {row["name"]: bytes(row["content"]) for row in rows}
