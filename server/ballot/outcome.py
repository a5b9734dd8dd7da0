"""The decisions of a counted meeting and the ``evote-result/2`` document.

Pure and exact: integers only.  From the figures of each matter (counted by
:mod:`server.ballot.tally`) and the matter's electorate: quorum, the threshold,
the ranking of an election with its seats, alternates and runoffs, and the
result document of bundle-format.md, with areas printed with the register's
decimals (2, or 3 when any area of the register has a third).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.ballot.amounts import format_area
from server.ballot.definitions import RESOLUTION, Matter, Rules
from server.ballot.rules import passes, quorum_met
from server.ballot.weights import Electorate, MatterElectorate

__all__ = [
    "RESULT_FORMAT",
    "ElectionDecision",
    "Figure",
    "MatterFigures",
    "build_result",
    "decide_election",
    "matter_result",
    "rank_key",
]

RESULT_FORMAT = "evote-result/2"


@dataclass(frozen=True, slots=True)
class Figure:
    """An area (milli-m²) and a number of persons."""

    area: int = 0
    persons: int = 0

    def as_json(self, places: int = 2) -> dict[str, Any]:
        """``{"area": "…", "persons": n}`` with the area printed with ``places`` (2 or 3) decimals."""
        return {"area": format_area(self.area, places), "persons": self.persons}


@dataclass(frozen=True, slots=True)
class MatterFigures:
    """The aggregate figures of one matter from the counted submissions.

    ``by_choice`` (resolutions) maps yes/no/abstain to figures (explicit
    choices only); ``candidates`` (elections) maps each candidate id, in list
    order, to its yes figures.  ``invalid`` counts the counted submissions that
    were invalid (a resolution marked invalid; an election ballot that is blank
    or has more yes marks than seats), whichever rule applies: under
    ``invalid_ballot = abstain`` they are in ``participating`` and support
    nothing, under ``not_counted`` they are not.  ``spoiled`` is the part of
    ``invalid`` that had more yes marks than seats.
    """

    matter_id: str
    participating: Figure
    by_choice: Mapping[str, Figure] = field(default_factory=dict)
    candidates: Mapping[str, Figure] = field(default_factory=dict)
    spoiled: Figure = Figure()
    invalid: Figure = Figure()


def rank_key(figure: Figure, rank_by: str) -> tuple[int, int]:
    """Sort key, larger ranks higher: (persons, area) or (area, persons)."""
    if rank_by == "persons_then_area":
        return (figure.persons, figure.area)
    if rank_by == "area_then_persons":
        return (figure.area, figure.persons)
    raise ValueError(f"unknown rank_by {rank_by!r}")


@dataclass(frozen=True, slots=True)
class ElectionDecision:
    """Who passed, who fills which place, and who must go to a runoff (另行选举)."""

    passed: frozenset[str]
    ranked: tuple[str, ...]  # passing candidates in rank order
    elected: tuple[str, ...]
    alternates: tuple[str, ...]
    runoff_needed: tuple[str, ...]


def decide_election(matter: Matter, figures: MatterFigures, quorum: bool, rank_by: str) -> ElectionDecision:
    """Rank passing candidates and fill seats, then alternate places.

    A candidate passes when quorum is met and its yes figures meet the matter's
    threshold against the participating figures.  Passing candidates are ranked
    by ``rank_by`` (descending); candidates tied on both figures form a group,
    listed in candidate-list order.  Groups fill places in rank order.  A group
    that straddles the last seat, or the last alternate place, goes to
    ``runoff_needed`` and no place from that group on is filled: a tie across
    the last seat leaves every alternate place empty too, since the runoff
    decides who gets the seat and who is left for the alternate list.  Too few
    passing candidates simply leave places empty.
    """
    if not quorum:
        return ElectionDecision(frozenset(), (), (), (), ())
    threshold = matter.threshold
    part = figures.participating
    passing = [
        candidate_id
        for candidate_id in matter.candidate_ids
        if passes(threshold, figures.candidates[candidate_id].area, figures.candidates[candidate_id].persons,
                  part.area, part.persons)
    ]
    keys = {candidate_id: rank_key(figures.candidates[candidate_id], rank_by) for candidate_id in passing}
    ranked = sorted(passing, key=lambda candidate_id: keys[candidate_id], reverse=True)  # stable: ties keep list order

    groups: list[list[str]] = []
    for candidate_id in ranked:
        if groups and keys[groups[-1][0]] == keys[candidate_id]:
            groups[-1].append(candidate_id)
        else:
            groups.append([candidate_id])

    seats, last_place = matter.seats, matter.seats + matter.alternates
    elected: list[str] = []
    alternates: list[str] = []
    runoff: list[str] = []
    filled = 0
    for group in groups:
        end = filled + len(group)
        if filled >= last_place:
            break
        straddles_last_seat = filled < seats < end
        straddles_last_alternate = filled < last_place < end
        if straddles_last_seat or straddles_last_alternate:
            runoff = group
            break
        (elected if end <= seats else alternates).extend(group)
        filled = end
    return ElectionDecision(frozenset(passing), tuple(ranked), tuple(elected), tuple(alternates), tuple(runoff))



def matter_result(
    matter: Matter, figures: MatterFigures, electorate: Electorate | MatterElectorate, rank_by: str
) -> dict[str, Any]:
    """The result object of one matter, keys in the order of bundle-format.md.

    ``electorate`` is the matter's own (:meth:`Electorate.for_scope`), or the
    meeting's, from which the matter's is taken.
    """
    voters = electorate.for_scope(matter.scope) if isinstance(electorate, Electorate) else electorate
    places = voters.places
    part = figures.participating
    quorum = quorum_met(part.area, part.persons, voters.total_area, voters.total_persons)
    threshold = matter.threshold
    head: dict[str, Any] = {
        "id": matter.id,
        "kind": matter.kind,
        "category": matter.category,
        "threshold": threshold,
        "electorate": Figure(voters.total_area, voters.total_persons).as_json(places),
        "participating": part.as_json(places),
        "invalid": figures.invalid.as_json(places),
    }
    if matter.kind == RESOLUTION:
        yes = figures.by_choice["yes"]
        if not quorum:
            outcome = "no_quorum"  # no decision, which is not "rejected"
        elif passes(threshold, yes.area, yes.persons, part.area, part.persons):
            outcome = "passed"
        else:
            outcome = "failed"
        return head | {
            "yes": yes.as_json(places),
            "no": figures.by_choice["no"].as_json(places),
            "abstain": figures.by_choice["abstain"].as_json(places),
            "quorum_met": quorum,
            "outcome": outcome,
        }

    decision = decide_election(matter, figures, quorum, rank_by)
    if not quorum:
        outcome = "no_quorum"
    elif decision.elected:
        outcome = "elected"
    else:
        outcome = "failed"
    return head | {
        "quorum_met": quorum,
        "candidates": [
            {
                "id": candidate_id,
                "yes": figures.candidates[candidate_id].as_json(places),
                "passed": candidate_id in decision.passed,
            }
            for candidate_id in matter.candidate_ids
        ],
        "elected": list(decision.elected),
        "alternates": list(decision.alternates),
        "runoff_needed": list(decision.runoff_needed),
        "outcome": outcome,
    }


def build_result(
    meeting_id: str,
    rules: Rules,
    matters: Sequence[Matter],
    electorate: Electorate,
    figures: Mapping[str, MatterFigures],
    electorates: Mapping[str, MatterElectorate] | None = None,
) -> dict[str, Any]:
    """The ``evote-result/2`` document; matters in the order given (meeting.json order).

    ``electorates`` (per matter id) saves recomputing each matter's electorate
    from ``electorate``; :class:`server.ballot.tally.MeetingTally` keeps them.
    """
    return {
        "format": RESULT_FORMAT,
        "meeting_id": meeting_id,
        "totals": Figure(electorate.total_area, electorate.total_persons).as_json(electorate.places),
        "matters": [
            matter_result(
                matter,
                figures[matter.id],
                electorate if electorates is None else electorates[matter.id],
                rules.rank_by,
            )
            for matter in matters
        ],
    }
