"""The live documents, built from counted figures: pure (no database, no network).

A live meeting (server.live.meeting) keeps its counts up to date and calls these
to turn them into the two views it publishes: ``results`` (organisers, or
everyone when the meeting shows live results) and ``turnout`` (owners and the
public).  Documents carry areas as strings with two decimals and persons as
integers; percentages are display only, rounded down; every decision uses the
exact integer rules of server.ballot.rules.
"""
from __future__ import annotations

from typing import Any

from server.ballot.amounts import format_area
from server.ballot.rules import (
    THRESHOLD_NAMES,
    THRESHOLD_PERCENT,
    Shortfall,
    quorum_shortfall,
    yes_shortfall_converts,
    yes_shortfall_new_voters,
)
from server.ballot.tally import ELECTION, Figure, Matter, MatterFigures, Rules, decide_election
from server.ballot.weights import Electorate

RESULTS = "results"  # organisers, or everyone when the meeting shows live results
TURNOUT = "turnout"  # owners and the public

STATUS_TEXT = {
    "passed": "通过",
    "failed": "未通过",
    "no_quorum": "未达参与表决法定比例",
    "elected": "已选出",
}


def percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with two decimals, rounded down ("66.66"); display only."""
    if whole <= 0:
        return "0.00"
    hundredths = part * 10000 // whole
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def figure(area: int, persons: int) -> dict[str, Any]:
    return {"area": format_area(area), "persons": persons}


def quorum_line(total_area: int, total_persons: int) -> dict[str, Any]:
    """The smallest participation that meets 2/3 on each axis."""
    return figure(-(-2 * total_area // 3), -(-2 * total_persons // 3))


def shortfall_doc(short: Shortfall, text_missing: str, text_met: str) -> dict[str, Any]:
    doc = figure(short.area, short.persons)
    doc["met"] = short.met
    doc["text"] = text_met if short.met else text_missing.format(persons=short.persons, area=format_area(short.area))
    return doc


def quorum_shortfall_doc(part_area: int, part_persons: int, total_area: int, total_persons: int) -> dict[str, Any]:
    return shortfall_doc(quorum_shortfall(part_area, part_persons, total_area, total_persons),
                         "还需 {persons} 户 / {area} m² 参与", "参与已达法定比例")


def yes_shortfall_doc(threshold: str, yes_area: int, yes_persons: int, part_area: int, part_persons: int,
                      allow_revision: bool) -> dict[str, Any]:
    doc = {"new_voters": shortfall_doc(yes_shortfall_new_voters(threshold, yes_area, yes_persons, part_area,
                                                                part_persons),
                                       "赞成还差 {persons} 户 / {area} m²", "赞成已达通过比例")}
    if allow_revision:
        doc["converts"] = shortfall_doc(yes_shortfall_converts(threshold, yes_area, yes_persons, part_area,
                                                               part_persons),
                                        "改投赞成还差 {persons} 户 / {area} m²", "赞成已达通过比例")
    return doc


def participation_view(part: Figure, quorum: bool, electorate: Electorate) -> dict[str, Any]:
    """How far a matter's participation is, on both axes: shared by the turnout and results views."""
    return {
        "participating": figure(part.area, part.persons),
        "participating_share": {"area": percent(part.area, electorate.total_area),
                                "persons": percent(part.persons, electorate.total_persons)},
        "quorum_met": quorum,
        "quorum_shortfall": quorum_shortfall_doc(part.area, part.persons, electorate.total_area,
                                                 electorate.total_persons),
    }


def matter_view(matter: Matter, result: dict[str, Any], figures: MatterFigures, electorate: Electorate, rules: Rules,
                title: str, candidate_names: dict[tuple[str, str], str]) -> dict[str, Any]:
    """One matter for the results view: the result object plus shares and distances."""
    part = figures.participating
    doc = {
        "id": matter.id, "title": title, "kind": matter.kind, "category": matter.category,
        "threshold": matter.threshold, "threshold_text": THRESHOLD_NAMES[matter.threshold],
        "threshold_percent": THRESHOLD_PERCENT[matter.threshold],
        **participation_view(part, result["quorum_met"], electorate),
        "outcome": result["outcome"],
        "status_text": STATUS_TEXT.get(result["outcome"], "未选出" if matter.kind == ELECTION else "未通过"),
    }
    if matter.kind != ELECTION:
        yes = figures.by_choice["yes"]
        doc.update({
            "yes": result["yes"], "no": result["no"], "abstain": result["abstain"],
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes.area, yes.persons, part.area, part.persons,
                                               rules.allow_revision),
        })
        return doc
    # Standing as if participation were already met, so organisers see who leads.
    if_quorum = decide_election(matter, figures, True, rules.rank_by)
    candidates = []
    for candidate_id in matter.candidate_ids:
        yes = figures.candidates[candidate_id]
        if candidate_id in if_quorum.elected:
            standing, standing_text = "elected", "当选"
        elif candidate_id in if_quorum.alternates:
            standing, standing_text = "alternate", "候补"
        elif candidate_id in if_quorum.runoff_needed:
            standing, standing_text = "runoff", "需另行选举"
        elif candidate_id in if_quorum.passed:
            standing, standing_text = "passing", "达到票数但无席位"
        else:
            standing, standing_text = "short", "未达票数"
        candidates.append({
            "id": candidate_id, "name": candidate_names.get((matter.id, candidate_id), candidate_id),
            "yes": figure(yes.area, yes.persons),
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "passed": candidate_id in if_quorum.passed and result["quorum_met"],
            "standing": standing, "standing_text": standing_text,
            "rank": if_quorum.ranked.index(candidate_id) + 1 if candidate_id in if_quorum.ranked else None,
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes.area, yes.persons, part.area, part.persons,
                                               rules.allow_revision),
        })
    doc.update({
        "seats": matter.seats, "alternates_count": matter.alternates,
        "spoiled": figure(figures.spoiled.area, figures.spoiled.persons),
        "candidates": candidates,
        "elected": result["elected"], "alternates": result["alternates"], "runoff_needed": result["runoff_needed"],
        "standing_provisional": not result["quorum_met"],
    })
    return doc


def building_rows(electorate: Electorate, building_of: dict[str, str], voted: set[str],
                  shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """Turnout per building, sorted by how much the building's non-voters could still bring.

    The axis that is relatively further from its 2/3 line decides the order
    (cross-multiplied: short_area/total_area vs short_persons/total_persons):
    buildings with the most non-voting area (or persons) first, the other axis
    breaking ties, then the building name.
    """
    totals: dict[str, list[int]] = {}
    for voter_id, subject in electorate.subjects.items():
        entry = totals.setdefault(building_of[voter_id], [0, 0, 0, 0])
        entry[0] += subject.area
        entry[1] += 1
        if voter_id in voted:
            entry[2] += subject.area
            entry[3] += 1
    return building_rows_from_totals(totals, electorate, shortfall)


def building_rows_from_totals(totals: dict[str, list[int]], electorate: Electorate,
                              shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """:func:`building_rows` from per-building [area, persons, voted area, voted persons]."""
    by_area = shortfall.area * max(electorate.total_persons, 1) >= shortfall.persons * max(electorate.total_area, 1)
    sort_by = "area" if by_area else "persons"
    keyed: list[tuple[tuple[int, int], str, dict[str, Any]]] = []
    for building, (area, persons, v_area, v_persons) in totals.items():
        remaining = (area - v_area, persons - v_persons) if by_area else (persons - v_persons, area - v_area)
        keyed.append((remaining, building, {
            "building": building,
            "totals": figure(area, persons),
            "voted": figure(v_area, v_persons),
            "remaining": figure(area - v_area, persons - v_persons),
            "share": {"area": percent(v_area, area), "persons": percent(v_persons, persons)},
        }))
    keyed.sort(key=lambda k: (-k[0][0], -k[0][1], k[1]))
    rows = []
    for rank, (_, _, row) in enumerate(keyed, 1):
        row["rank"] = rank
        rows.append(row)
    return rows, sort_by
