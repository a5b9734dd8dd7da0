"""Counting a meeting from the database with the pure engine (server.ballot.tally).

``load_counted_inputs(conn, community_id, meeting_id)`` reads everything the
engine needs in its own shapes; ``compute_result`` runs ``tally()`` on it and
returns the ``evote-result/2`` document.  The live tally, the results/signing
code and the bundle export all count through here, so a live figure, a
published result and ``evote tally`` on the exported bundle agree.

The electorate is the frozen one (table ``electorate``, copied at notice by
:func:`electorate_records`), not a recomputation from the register:
``total_area``/``total_persons``/``area_places`` are the meeting's frozen
figures, and each row is one voting subject (an owner set) with its
representative, its counted units and its area in each building, rebuilt here
as the same :class:`~server.ballot.weights.Subject` the register gave.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from server.ballot.tally import Matter, Rules, Submission, tally
from server.ballot.weights import BuildingTotals, Electorate, Subject
from server.errors import Conflict, NotFound
from server.repositories import meetings as repo


@dataclass(frozen=True)
class CountingInputs:
    community_id: str
    meeting_id: str
    state: str
    rules: Rules
    matters: list[Matter]
    electorate: Electorate
    submissions: list[Submission]   # every submission (electronic and paper), in receive order


def rules_from_json(raw: Any) -> Rules:
    """A meeting's stored rules (jsonb as a dict, or its text) as :class:`Rules`."""
    return Rules.from_json(json.loads(raw) if isinstance(raw, (str, bytes)) else dict(raw or {}))


async def load_matters(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[Matter]:
    candidates: dict[str, list[tuple[str, str]]] = {}
    for c in await repo.list_candidates(conn, community_id, meeting_id):
        candidates.setdefault(c["matter_id"], []).append((c["candidate_id"], c["name"]))
    return [Matter(id=m["matter_id"], title=m["title"], kind=m["kind"], category=m["category"],
                   seats=m["seats"] or 0, alternates=m["alternates"] or 0,
                   candidates=tuple(candidates.get(m["matter_id"], ())), scope=tuple(m["scope"]))
            for m in await repo.list_matters(conn, community_id, meeting_id)]


def electorate_records(community_id: str, meeting_id: str, electorate: Electorate,
                       unit_buildings: Mapping[str, str]) -> list[tuple]:
    """The rows of table ``electorate`` for a meeting's voting subjects (repositories.meetings.copy_electorate).

    ``unit_buildings`` maps each unit of the register to its building (to count each
    subject's units per building).
    """
    records = []
    for s in electorate.subjects.values():
        units_in = dict.fromkeys(s.buildings, 0)
        for unit in s.units:
            units_in[unit_buildings[unit]] += 1
        records.append((community_id, meeting_id, s.id, s.representative, s.area, s.buildings[0], list(s.units),
                        list(s.buildings), list(s.building_areas), list(units_in.values())))
    return records


def subject_from_row(row: asyncpg.Record | dict) -> Subject:
    """One frozen voting subject as the pure engine knows it."""
    return Subject(row["voter_id"], row["area"], tuple(row["units"]), tuple(row["buildings"]),
                   row["representative"], tuple(row["building_areas"]))


def electorate_from_rows(rows: list, *, total_area: int, total_persons: int, places: int,
                         where: str = "") -> Electorate:
    """The frozen electorate from its rows and the meeting's frozen totals and places."""
    subjects: dict[str, Subject] = {}
    buildings: dict[str, list[int]] = {}
    for r in rows:
        subject = subjects[r["voter_id"]] = subject_from_row(r)
        for building, area, units in zip(subject.buildings, subject.building_areas, r["building_units"]):
            figures = buildings.setdefault(building, [0, 0, 0])
            figures[0] += area
            figures[1] += 1
            figures[2] += units
    if sum(s.area for s in subjects.values()) != total_area or len(subjects) != total_persons:
        # The electorate and the totals are frozen together at notice; a mismatch is a corrupt record.
        raise RuntimeError(f"meeting {where}: frozen electorate does not match its totals")
    return Electorate(subjects=subjects, total_area=total_area, total_persons=total_persons,
                      by_building={b: BuildingTotals(*f) for b, f in buildings.items()}, places=places)


async def load_electorate(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                          total_area: int, total_persons: int, places: int | None = None) -> Electorate:
    """The frozen electorate of a noticed (or later) meeting; ``places`` read from the meeting when not given."""
    if places is None:
        places = await repo.area_places(conn, community_id, meeting_id)
        if places is None:
            raise RuntimeError(f"meeting {community_id}/{meeting_id}: no frozen area places (not noticed?)")
    return electorate_from_rows(await repo.electorate_rows(conn, community_id, meeting_id),
                                total_area=total_area, total_persons=total_persons, places=places,
                                where=f"{community_id}/{meeting_id}")


def submission_from_row(row: asyncpg.Record) -> Submission:
    """A stored submission (a row of repositories.meetings.all_submissions) for the core.

    art. 137: the server's receive time is the legal vote time.
    """
    return Submission(ballot_id=str(row["ballot_id"]), voter_id=row["voter_id"], matter_id=row["matter_id"],
                      channel=row["channel"], cast_at=row["received_at"],
                      choices=tuple(zip(row["candidate_ids"], row["choices"])))


async def load_submissions(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[Submission]:
    return [submission_from_row(r) for r in await repo.all_submissions(conn, community_id, meeting_id)]


async def load_counted_inputs(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> CountingInputs:
    """Matters, rules, frozen electorate and every submission of a noticed (or later) meeting.

    Run it inside a REPEATABLE READ transaction if you need the pieces to be one
    consistent snapshot while votes are being cast.
    """
    meeting = await repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    if meeting["state"] == "draft":
        raise Conflict("会议通知尚未发布，还没有表决名单", code="meeting_not_noticed")
    return CountingInputs(
        community_id=community_id, meeting_id=meeting_id, state=meeting["state"],
        rules=rules_from_json(meeting["rules"]),
        matters=await load_matters(conn, community_id, meeting_id),
        electorate=await load_electorate(conn, community_id, meeting_id, meeting["total_area"],
                                         meeting["total_persons"], meeting["area_places"]),
        submissions=await load_submissions(conn, community_id, meeting_id))


def result_from_inputs(inputs: CountingInputs) -> dict[str, Any]:
    return tally(inputs.meeting_id, inputs.rules, inputs.matters, inputs.electorate, inputs.submissions)


async def compute_result(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, Any]:
    """The evote-result/2 document of the meeting's committed submissions (one snapshot)."""
    if conn.is_in_transaction():
        return result_from_inputs(await load_counted_inputs(conn, community_id, meeting_id))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        inputs = await load_counted_inputs(conn, community_id, meeting_id)
    return result_from_inputs(inputs)
