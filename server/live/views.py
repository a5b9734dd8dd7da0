"""The live documents, built from counted figures: pure (no database, no network).

A live count (server.live.count) keeps its figures up to date and calls these
to turn them into the two views a live meeting publishes: ``results``
(organisers, or everyone when the meeting shows live results) and ``turnout``
(owners and the public).  Documents carry areas as strings with the register's
decimals (two, or three when an area of the register has a third: the places
of the ``evote-result/2`` document) and persons as integers; a distance still
to go is rounded UP to what those decimals show (``area_ceiling``), never down.
Percentages are display only, rounded down; every decision uses the exact
integer rules of server.ballot.rules.

Each matter is measured against its own electorate (the register's, or the
scope's for a matter scoped to some buildings); the meeting's turnout against
the whole register.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from server.ballot.amounts import area_ceiling, format_area
from server.ballot.rules import (
    THRESHOLD_NAMES,
    THRESHOLD_PERCENT,
    Shortfall,
    passes,
    quorum_shortfall,
    yes_shortfall_converts,
    yes_shortfall_new_voters,
)
from server.ballot.tally import ELECTION, Figure, Matter, MatterFigures, Rules, decide_election
from server.ballot.weights import Electorate, MatterElectorate, Subject

RESULTS = "results"  # organisers, or everyone when the meeting shows live results
TURNOUT = "turnout"  # owners and the public

STATUS_TEXT = {
    "passed": "通过",
    "failed": "未通过",
    "no_quorum": "未达参与表决法定比例",
    "elected": "已选出",
}
# Meeting states during which ballots are still taken; any other (closed, published, …) has ended.
VOTING_STATES = frozenset({"draft", "noticed", "open"})
# Building names that already say what they are ("3号楼", "A座") are shown as they are.
_BUILDING_SUFFIXES = ("栋", "楼", "座", "幢", "号", "区")
NO_BUILDING = ""  # a subject whose units name no building (not in a frozen electorate)

QUORUM_TEXTS = ("还需 {persons} 户 / {area} m² 参与", "参与已达法定比例")
QUORUM_TEXTS_ENDED = ("参与未达法定比例（差 {persons} 户 / {area} m²），未作出决定", "参与已达法定比例")
YES_MET = "赞成已达通过比例"
NOBODY_YET = "尚无人参与表决"
NOBODY_ENDED = "无人参与表决，未作出决定"
NO_QUORUM_ENDED = "未达参与表决法定比例，未作出决定"
YES_MISSED_ENDED = "赞成未达通过比例"


def voting_ended(state: str) -> bool:
    """Whether a meeting in ``state`` takes no more ballots (closed, published, or voided)."""
    return state not in VOTING_STATES


def percent(part: int, whole: int) -> str:
    """``part / whole`` as a percentage with two decimals, rounded down ("66.66"); display only."""
    if whole <= 0:
        return "0.00"
    hundredths = part * 10000 // whole
    return f"{hundredths // 100}.{hundredths % 100:02d}"


def figure(area: int, persons: int, places: int = 2) -> dict[str, Any]:
    """``{"area": "…", "persons": n}``; ``area`` must be shown exactly by ``places`` decimals."""
    return {"area": format_area(area, places), "persons": persons}


def building_label(building: str) -> str:
    """How a building is named on a page: "3 栋", "3号楼" as it is, or "未注明楼栋"."""
    if building == NO_BUILDING:
        return "未注明楼栋"
    return building if building.endswith(_BUILDING_SUFFIXES) else f"{building} 栋"


def scope_text(scope: Iterable[str]) -> str:
    """"仅 3 栋、5 栋" for a scoped matter; "" for one of the whole community."""
    scope = tuple(scope)
    return "仅 " + "、".join(building_label(b) for b in scope) if scope else ""


def quorum_line(total_area: int, total_persons: int, places: int = 2) -> dict[str, Any]:
    """The smallest participation that meets 2/3 on each axis (an area rounded up to ``places``)."""
    return figure(area_ceiling(-(-2 * total_area // 3), places), -(-2 * total_persons // 3), places)


def shortfall_doc(short: Shortfall, text_missing: str, text_met: str, places: int = 2, *,
                  met: bool | None = None) -> dict[str, Any]:
    """A distance: its figures (the area rounded up to ``places``), whether it is met, and a text.

    ``met`` overrides what the figures say (a line that cannot count as reached).
    """
    area = area_ceiling(short.area, places)
    doc = figure(area, short.persons, places)
    doc["met"] = short.met if met is None else met
    doc["text"] = text_met if doc["met"] else text_missing.format(persons=short.persons,
                                                                 area=format_area(area, places))
    return doc


def quorum_shortfall_doc(part_area: int, part_persons: int, total_area: int, total_persons: int,
                         places: int = 2, *, ended: bool = False) -> dict[str, Any]:
    missing, met = QUORUM_TEXTS_ENDED if ended else QUORUM_TEXTS
    return shortfall_doc(quorum_shortfall(part_area, part_persons, total_area, total_persons), missing, met, places)


def _fixed(short: Shortfall, text: str, places: int, *, met: bool) -> dict[str, Any]:
    doc = figure(area_ceiling(short.area, places), short.persons, places)
    doc.update(met=met, text=text)
    return doc


def yes_shortfall_doc(threshold: str, yes: Figure, part: Figure, allow_revision: bool, places: int = 2, *,
                      quorum: bool = True, ended: bool = False) -> dict[str, Any]:
    """How far the yes side is from ``threshold``: ``new_voters`` (and ``converts`` while revision can help).

    The approval line is never said to be reached when nobody took part (three quarters of
    nothing is nothing, which the bare formula calls met) or, once voting has ended, when
    participation missed its line (no decision was made).  After the end there is nothing left to
    gain: the text says where the matter stands, and ``converts`` is left out.
    """
    new = yes_shortfall_new_voters(threshold, yes.area, yes.persons, part.area, part.persons)
    if part.persons == 0:
        # Nobody yet: at least one person, and some area, must take part and vote yes.
        need = Shortfall(max(new.area, 1), max(new.persons, 1))
        text = NOBODY_ENDED if ended else NOBODY_YET
        doc = {"new_voters": _fixed(need, text, places, met=False)}
        if allow_revision and not ended:
            doc["converts"] = _fixed(need, text, places, met=False)
        return doc
    if ended:
        reached = quorum and passes(threshold, yes.area, yes.persons, part.area, part.persons)
        text = YES_MET if reached else (YES_MISSED_ENDED if quorum else NO_QUORUM_ENDED)
        return {"new_voters": _fixed(new, text, places, met=reached)}
    doc = {"new_voters": shortfall_doc(new, "赞成还差 {persons} 户 / {area} m²", YES_MET, places)}
    if allow_revision:
        converts = yes_shortfall_converts(threshold, yes.area, yes.persons, part.area, part.persons)
        doc["converts"] = shortfall_doc(converts, "改投赞成还差 {persons} 户 / {area} m²", YES_MET, places)
    return doc


def participation_view(part: Figure, quorum: bool, voters: MatterElectorate | Electorate, *,
                       ended: bool = False) -> dict[str, Any]:
    """How far a matter's participation is against its own electorate, on both axes.

    Shared by the turnout and results views.  ``voters`` is the matter's electorate (the
    register's, or its scope's); a meeting-level :class:`Electorate` stands for the whole register.
    """
    places = voters.places
    return {
        "electorate": figure(voters.total_area, voters.total_persons, places),
        "participating": figure(part.area, part.persons, places),
        "participating_share": {"area": percent(part.area, voters.total_area),
                                "persons": percent(part.persons, voters.total_persons)},
        "quorum_met": quorum,
        "quorum_line": quorum_line(voters.total_area, voters.total_persons, places),
        "quorum_shortfall": quorum_shortfall_doc(part.area, part.persons, voters.total_area,
                                                 voters.total_persons, places, ended=ended),
    }


def matter_head(matter: Matter, title: str) -> dict[str, Any]:
    """What both views say of a matter before its figures: id, title, kind and scope."""
    return {"id": matter.id, "title": title, "kind": matter.kind,
            "scope": list(matter.scope), "scope_text": scope_text(matter.scope)}


def turnout_matter_view(matter: Matter, result: Mapping[str, Any], figures: MatterFigures,
                        voters: MatterElectorate, title: str, *, ended: bool = False) -> dict[str, Any]:
    """One matter for the turnout view: participation only, no yes/no figure or outcome."""
    return {**matter_head(matter, title),
            **participation_view(figures.participating, result["quorum_met"], voters, ended=ended)}


def _standing(candidate_id: str, decision: Any, passed: Collection[str]) -> tuple[str, str]:
    if candidate_id in decision.elected:
        return "elected", "当选"
    if candidate_id in decision.alternates:
        return "alternate", "候补"
    if candidate_id in decision.runoff_needed:
        return "runoff", "需另行选举"
    if candidate_id in passed:
        return "passing", "达到票数但无席位"
    return "short", "未达票数"


def matter_view(matter: Matter, result: Mapping[str, Any], figures: MatterFigures, voters: MatterElectorate,
                rules: Rules, title: str, candidate_names: Mapping[tuple[str, str], str], *,
                ended: bool = False) -> dict[str, Any]:
    """One matter for the results view: the result object plus shares and distances.

    ``voters`` is the matter's electorate; ``ended`` says voting is over (the texts then say
    where the matter stands rather than what is still missing).
    """
    part = figures.participating
    places = voters.places
    quorum = bool(result["quorum_met"])
    doc = {
        **matter_head(matter, title), "category": matter.category,
        "threshold": matter.threshold, "threshold_text": THRESHOLD_NAMES[matter.threshold],
        "threshold_percent": THRESHOLD_PERCENT[matter.threshold],
        **participation_view(part, quorum, voters, ended=ended),
        "invalid": result["invalid"],
        "outcome": result["outcome"],
        "status_text": STATUS_TEXT.get(result["outcome"], "未选出" if matter.kind == ELECTION else "未通过"),
    }
    if matter.kind != ELECTION:
        yes = figures.by_choice["yes"]
        doc.update({
            "yes": result["yes"], "no": result["no"], "abstain": result["abstain"],
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes, part, rules.allow_revision, places,
                                               quorum=quorum, ended=ended),
        })
        return doc
    if ended:
        # The decision itself: with participation short, nobody stands anywhere.
        decision = decide_election(matter, figures, quorum, rules.rank_by)
    else:
        # Standing as if participation were already met, so organisers see who leads; with nobody
        # taking part yet, nobody leads (three quarters of nothing would pass everyone).
        decision = decide_election(matter, figures, part.persons > 0, rules.rank_by)
    candidates = []
    for candidate_id in matter.candidate_ids:
        yes = figures.candidates[candidate_id]
        if ended and not quorum:
            standing, standing_text = "no_decision", "未作出决定"
        else:
            standing, standing_text = _standing(candidate_id, decision, decision.passed)
        candidates.append({
            "id": candidate_id, "name": candidate_names.get((matter.id, candidate_id), candidate_id),
            "yes": figure(yes.area, yes.persons, places),
            "yes_share": {"area": percent(yes.area, part.area), "persons": percent(yes.persons, part.persons)},
            "passed": candidate_id in decision.passed and quorum,
            "standing": standing, "standing_text": standing_text,
            "rank": decision.ranked.index(candidate_id) + 1 if candidate_id in decision.ranked else None,
            "yes_shortfall": yes_shortfall_doc(matter.threshold, yes, part, rules.allow_revision, places,
                                               quorum=quorum, ended=ended),
        })
    doc.update({
        "seats": matter.seats, "alternates_count": matter.alternates,
        "spoiled": figure(figures.spoiled.area, figures.spoiled.persons, places),
        "candidates": candidates,
        "elected": result["elected"], "alternates": result["alternates"], "runoff_needed": result["runoff_needed"],
        "standing_provisional": not quorum and not ended,
    })
    return doc


def only_matters(doc: Mapping[str, Any], visible: Collection[str]) -> dict[str, Any]:
    """``doc`` with only the matters in ``visible`` (an owner sees the matters they may vote on).

    The matters of the view and, in the results view, those of ``result``; everything else
    (the meeting's turnout, buildings, channels) is shared.
    """
    shown = dict(doc, matters=[m for m in doc["matters"] if m["id"] in visible])
    if "result" in doc:
        result = doc["result"]
        shown["result"] = dict(result, matters=[m for m in result["matters"] if m["id"] in visible])
    return shown


# --------------------------------------------------------------------------
# Buildings
# --------------------------------------------------------------------------


def subject_buildings(subject: Subject) -> tuple[tuple[str, int], ...]:
    """Each building a subject holds counted units in, with its area there.

    A subject with units in two buildings counts in both, as one person in each, with the area
    it holds there (so a building's figures are those of a matter scoped to that building).
    """
    if not subject.buildings:
        return ((NO_BUILDING, subject.area),)
    return tuple(zip(subject.buildings, subject.building_areas))


def building_rows(electorate: Electorate, voted: Collection[str],
                  shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """Turnout per building, sorted by how much the building's non-voters could still bring.

    ``voted`` holds the subjects who took part.  The axis that is relatively further from its
    2/3 line decides the order (cross-multiplied: short_area/total_area vs
    short_persons/total_persons): buildings with the most non-voting area (or persons) first,
    the other axis breaking ties, then the building name.
    """
    totals: dict[str, list[int]] = {}
    for voter_id, subject in electorate.subjects.items():
        took_part = voter_id in voted
        for building, area in subject_buildings(subject):
            entry = totals.setdefault(building, [0, 0, 0, 0])
            entry[0] += area
            entry[1] += 1
            if took_part:
                entry[2] += area
                entry[3] += 1
    return building_rows_from_totals(totals, electorate, shortfall)


def building_rows_from_totals(totals: Mapping[str, list[int]], electorate: Electorate,
                              shortfall: Shortfall) -> tuple[list[dict[str, Any]], str]:
    """:func:`building_rows` from per-building [area, persons, voted area, voted persons]."""
    places = electorate.places
    by_area = shortfall.area * max(electorate.total_persons, 1) >= shortfall.persons * max(electorate.total_area, 1)
    sort_by = "area" if by_area else "persons"
    keyed: list[tuple[tuple[int, int], str, dict[str, Any]]] = []
    for building, (area, persons, v_area, v_persons) in totals.items():
        remaining = (area - v_area, persons - v_persons) if by_area else (persons - v_persons, area - v_area)
        keyed.append((remaining, building, {
            "building": building,
            "label": building_label(building),
            "totals": figure(area, persons, places),
            "voted": figure(v_area, v_persons, places),
            "remaining": figure(area - v_area, persons - v_persons, places),
            "share": {"area": percent(v_area, area), "persons": percent(v_persons, persons)},
        }))
    keyed.sort(key=lambda k: (-k[0][0], -k[0][1], k[1]))
    rows = []
    for rank, (_, _, row) in enumerate(keyed, 1):
        row["rank"] = rank
        rows.append(row)
    return rows, sort_by
