"""The simulator's own count of a meeting, kept independent of the counting engine (server.ballot).

It reads the rules straight from docs/bundle-format.md and docs/voting-rules.md and counts by other
means than the engine: areas are ``Decimal`` m² as the register writes them, ratios are compared
as ``Fraction``, voting subjects are found by walking the units and joining their owners, each
matter's electorate is worked out again from its scope, and the counted submission of each voter is
picked by filtering and sorting.  Its input is what the simulator itself generated and cast (its
register rows and its ledger of the submissions the API accepted), never what the server stored,
so an agreement with the published result checks the whole path: API, database, export, engine.

Nothing here imports server.ballot: a mistake shared by the engine and this count would go unseen.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

THREE_QUARTER_CATEGORIES = (6, 7, 8)   # Civil Code art. 278 items 6–8
INVALID = "invalid"


@dataclass(frozen=True)
class Cast:
    """One submission the API accepted, as the simulator sent it."""

    ballot_id: str
    voter_id: str
    matter_id: str
    channel: str                 # electronic | paper
    received_at: datetime        # the server's receive time (from the receipt)
    choices: tuple[tuple[str, str], ...]   # (candidate id or "", choice)


def _counts(row: Mapping[str, str], count_parking_area: bool) -> bool:
    return row["kind"] != "parking" or count_parking_area


def _unit_owners(rows: Iterable[Mapping[str, str]]) -> dict[str, tuple[Mapping[str, str], set[str]]]:
    units: dict[str, tuple[Mapping[str, str], set[str]]] = {}
    for row in rows:
        units.setdefault(row["unit_id"], (row, set()))[1].add(row["owner_id"])
    return units


def subject_buildings(rows: Iterable[Mapping[str, str]], count_parking_area: bool = False
                      ) -> dict[str, dict[str, Decimal]]:
    """Voting subject id (its owners' ids sorted and joined with "+") → {building: counted area there}.

    A subject holding only uncounted units (parking, when parking does not count) is left out."""
    subjects: dict[str, dict[str, Decimal]] = {}
    for row, owners in _unit_owners(rows).values():
        if not _counts(row, count_parking_area):
            continue
        areas = subjects.setdefault("+".join(sorted(owners)), {})
        areas[row["building"]] = areas.get(row["building"], Decimal(0)) + Decimal(row["area"])
    return subjects


def representatives(rows: Iterable[Mapping[str, str]]) -> dict[str, set[str]]:
    """Voting subject id → the owner ids marked as representative on its units (one, when consistent)."""
    marked: dict[str, str] = {r["unit_id"]: r["owner_id"] for r in rows if r["representative"] == "1"}
    out: dict[str, set[str]] = {}
    for unit_id, (_, owners) in _unit_owners(rows).items():
        out.setdefault("+".join(sorted(owners)), set()).add(marked[unit_id])
    return out


def scope_of(matter: Mapping[str, Any]) -> list[str]:
    """A matter's buildings as sent (``"scope": {"buildings": [...]}``); [] for the whole community."""
    scope = matter.get("scope")
    return list(scope["buildings"]) if scope else []


def votes_on(buildings: Mapping[str, Decimal], matter: Mapping[str, Any]) -> bool:
    """Whether a subject with counted units in ``buildings`` is in the matter's electorate."""
    scope = scope_of(matter)
    return not scope or any(b in buildings for b in scope)


def _places(rows: Iterable[Mapping[str, str]]) -> int:
    """3 when some area of the register (counted or not) has a third decimal, else 2."""
    return 3 if any(Decimal(r["area"]) * 100 % 1 for r in rows) else 2


def _text(area: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)
    if area != area.quantize(quantum):
        raise ValueError(f"area {area} has more than {places} decimals")
    return str(area.quantize(quantum))


def _figure(area: Decimal, persons: int, places: int) -> dict[str, Any]:
    return {"area": _text(area, places), "persons": persons}


def _reaches(threshold: str, yes: Decimal | int, part: Decimal | int) -> bool:
    share = Fraction(yes) / Fraction(part)
    return share >= Fraction(3, 4) if threshold == "three_quarters" else share > Fraction(1, 2)


def _counted(ledger: Iterable[Cast], rules: Mapping[str, Any]) -> dict[tuple[str, str], Cast]:
    """The one submission that counts per (voter, matter): the duplicate policy, then first or last."""
    groups: dict[tuple[str, str], list[Cast]] = {}
    for cast in ledger:
        groups.setdefault((cast.voter_id, cast.matter_id), []).append(cast)
    counted = {}
    for key, casts in groups.items():
        if rules.get("duplicate_policy", "electronic_prevails") == "electronic_prevails":
            casts = [c for c in casts if c.channel == "electronic"] or casts
        casts = sorted(casts, key=lambda c: c.received_at)
        counted[key] = casts[-1] if rules.get("allow_revision", False) else casts[0]
    return counted


def invalid_cast(cast: Cast, matter: Mapping[str, Any]) -> bool:
    """Blank or unclear (the choice ``invalid``), or an election ballot with more yes than seats."""
    if any(choice == INVALID for _, choice in cast.choices):
        return True
    return matter["kind"] == "election" and sum(choice == "yes" for _, choice in cast.choices) > matter["seats"]


def _election(matter: Mapping[str, Any], yes: dict[str, list], part: tuple[Decimal, int], quorum: bool,
              threshold: str, rank_by: str) -> tuple[set[str], list[str], list[str], list[str]]:
    """(passed, elected, alternates, runoff_needed) of one election."""
    order = [c["candidate_id"] for c in matter["candidates"]]
    passed = {c for c in order if quorum and _reaches(threshold, yes[c][0], part[0])
              and _reaches(threshold, yes[c][1], part[1])}

    def key(c: str) -> tuple:
        area, persons = yes[c]
        return (persons, area) if rank_by == "persons_then_area" else (area, persons)

    ranked = sorted(passed, key=lambda c: (tuple(-k for k in key(c)), order.index(c)))
    seats, alternates = matter["seats"], matter.get("alternates", 0)
    filled, runoff = len(ranked), []
    for boundary in (seats, seats + alternates):
        # a tie straddles a boundary when the last place inside it and the first outside are equal
        if 0 < boundary < len(ranked) and key(ranked[boundary - 1]) == key(ranked[boundary]):
            runoff = [c for c in ranked if key(c) == key(ranked[boundary])]
            filled = ranked.index(runoff[0])
            break
    return passed, ranked[:min(seats, filled)], ranked[seats:min(seats + alternates, filled)], runoff


def recount(meeting_id: str, rows: Sequence[Mapping[str, str]], matters: Sequence[Mapping[str, Any]],
            rules: Mapping[str, Any], ledger: Iterable[Cast]) -> dict[str, Any]:
    """The ``evote-result/2`` document of bundle-format.md for what was cast, counted independently.

    ``matters`` as sent to the meeting API (``matter_id``, ``kind``, ``category``, ``scope``; an
    election's ``seats``, ``alternates`` and ``candidates`` with ``candidate_id``)."""
    places = _places(rows)
    subjects = subject_buildings(rows, rules.get("count_parking_area", False))
    counted = _counted(ledger, rules)
    total_area = sum((a for buildings in subjects.values() for a in buildings.values()), Decimal(0))
    results = []
    for matter in matters:
        scope = scope_of(matter)
        weight = {s: sum((a for b, a in buildings.items() if not scope or b in scope), Decimal(0))
                  for s, buildings in subjects.items() if votes_on(buildings, matter)}
        mine = [c for (voter, matter_id), c in counted.items() if matter_id == matter["matter_id"]]
        unknown = [c.voter_id for c in mine if c.voter_id not in weight]
        if unknown:
            raise ValueError(f"matter {matter['matter_id']}: ballots of voters outside its electorate: {unknown[:3]}")
        spoilt = [c for c in mine if invalid_cast(c, matter)]
        valid = [c for c in mine if not invalid_cast(c, matter)]
        taking_part = mine if rules.get("invalid_ballot", "abstain") == "abstain" else valid

        def figure(casts: Iterable[Cast], weight: dict[str, Decimal] = weight) -> tuple[Decimal, int]:
            voters = [c.voter_id for c in casts]
            return sum((weight[v] for v in voters), Decimal(0)), len(voters)

        part = figure(taking_part)
        electorate = (sum(weight.values(), Decimal(0)), len(weight))
        quorum = (Fraction(part[0]) / Fraction(electorate[0]) >= Fraction(2, 3)
                  and Fraction(part[1], electorate[1]) >= Fraction(2, 3))
        threshold = "three_quarters" if matter["category"] in THREE_QUARTER_CATEGORIES else "majority"
        out: dict[str, Any] = {
            "id": matter["matter_id"], "kind": matter["kind"], "category": matter["category"],
            "threshold": threshold, "electorate": _figure(*electorate, places),
            "participating": _figure(*part, places), "invalid": _figure(*figure(spoilt), places)}
        if matter["kind"] == "resolution":
            by_choice = {choice: figure(c for c in valid if c.choices[0][1] == choice)
                         for choice in ("yes", "no", "abstain")}
            yes = by_choice["yes"]
            passes = _reaches(threshold, yes[0], part[0]) and _reaches(threshold, yes[1], part[1]) if quorum else False
            out.update({choice: _figure(*by_choice[choice], places) for choice in ("yes", "no", "abstain")})
            out["quorum_met"] = quorum
            out["outcome"] = "no_quorum" if not quorum else ("passed" if passes else "failed")
        else:
            yes_of: dict[str, list] = {c["candidate_id"]: [Decimal(0), 0] for c in matter["candidates"]}
            for cast in valid:
                for candidate_id, choice in cast.choices:
                    if choice == "yes":
                        yes_of[candidate_id][0] += weight[cast.voter_id]
                        yes_of[candidate_id][1] += 1
            passed, elected, alternates, runoff = _election(matter, yes_of, part, quorum, threshold,
                                                            rules.get("rank_by", "persons_then_area"))
            out["quorum_met"] = quorum
            out["candidates"] = [{"id": c, "yes": _figure(yes_of[c][0], yes_of[c][1], places), "passed": c in passed}
                                 for c in yes_of]
            out.update(elected=elected, alternates=alternates, runoff_needed=runoff)
            out["outcome"] = "no_quorum" if not quorum else ("elected" if elected else "failed")
        results.append(out)
    return {"format": "evote-result/2", "meeting_id": meeting_id,
            "totals": _figure(total_area, len(subjects), places), "matters": results}


def differences(expected: Any, actual: Any, where: str = "result") -> list[str]:
    """Where two JSON documents differ (paths and both values), for a failure message."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            out += differences(expected.get(key), actual.get(key), f"{where}.{key}")
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [d for i, (a, b) in enumerate(zip(expected, actual)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if expected == actual else [f"{where}: simulator {expected!r}, server {actual!r}"]


__all__ = ["Cast", "differences", "invalid_cast", "recount", "representatives", "scope_of", "subject_buildings",
           "votes_on"]
