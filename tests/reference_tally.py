"""A brute-force reference count of a valid evote-bundle/2 directory.

Written separately from server.* and as plainly as possible, straight from
bundle-format.md, so the property tests compare two independent readings of
the spec: it parses the files itself, keeps areas as Decimal, compares ratios
with Fraction instead of cross-multiplying, groups units into voting subjects
by their owner sets, works out each matter's electorate from its scope by
walking the units again, picks counted submissions by filtering and sorting
every group, and finds runoffs by looking at the two boundary places.  It
assumes the bundle is valid and does not check it.
"""
from __future__ import annotations

import csv
import json
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

DEFAULT_RULES = {
    "count_parking_area": False,
    "allow_revision": False,
    "duplicate_policy": "electronic_prevails",
    "rank_by": "persons_then_area",
    "invalid_ballot": "abstain",
}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _text(area: Decimal, places: int) -> str:
    quantum = Decimal(1).scaleb(-places)  # 0.01 or 0.001
    assert area == area.quantize(quantum), f"{area} cannot be shown with {places} decimals"
    return str(area.quantize(quantum))


def _figure(area: Decimal, persons: int, places: int) -> dict:
    return {"area": _text(area, places), "persons": persons}


def meets(threshold: str, yes, part) -> bool:
    """yes/part above the threshold, as a ratio (part > 0 whenever quorum is met)."""
    if threshold == "majority":
        return Fraction(yes) / Fraction(part) > Fraction(1, 2)
    return Fraction(yes) / Fraction(part) >= Fraction(3, 4)


def reference_election(order, yes, part_area, part_persons, quorum, threshold, seats, alternates, rank_by):
    """(passed set, elected, alternates, runoff) of one election.

    ``order`` is the candidate list, ``yes`` maps a candidate to [area, persons].
    """
    passed = {
        c
        for c in order
        if quorum and meets(threshold, yes[c][0], part_area) and meets(threshold, yes[c][1], part_persons)
    }

    def key(c: str) -> tuple:
        area, persons = yes[c]
        return (persons, area) if rank_by == "persons_then_area" else (area, persons)

    ranked = sorted((c for c in order if c in passed), key=lambda c: (-key(c)[0], -key(c)[1], order.index(c)))
    filled_up_to = len(ranked)
    runoff: list[str] = []
    for boundary in (seats, seats + alternates):
        # A tie straddles the boundary if the last place inside it and the first
        # place outside it are held by equal candidates.
        if 0 < boundary < len(ranked) and key(ranked[boundary - 1]) == key(ranked[boundary]):
            runoff = [c for c in ranked if key(c) == key(ranked[boundary])]
            filled_up_to = ranked.index(runoff[0])
            break
    elected = ranked[: min(seats, filled_up_to)]
    alternate_list = ranked[seats : min(seats + alternates, filled_up_to)]
    return passed, elected, alternate_list, runoff


def _units(register: list[dict[str, str]]) -> dict[str, dict]:
    """Each unit once: building, kind, area, and the set of its owners."""
    units: dict[str, dict] = {}
    for row in register:
        unit = units.setdefault(
            row["unit_id"],
            {"building": row["building"], "kind": row["kind"], "area": Decimal(row["area"]), "owners": set()},
        )
        unit["owners"].add(row["owner_id"])
    return units


def _weights(units: dict[str, dict], counts, buildings=None) -> dict[str, Decimal]:
    """Voting subject id -> area, over the counted units (in ``buildings`` if given)."""
    weights: dict[str, Decimal] = {}
    for unit in units.values():
        if not counts(unit) or (buildings is not None and unit["building"] not in buildings):
            continue
        subject = "+".join(sorted(unit["owners"]))
        weights[subject] = weights.get(subject, Decimal(0)) + unit["area"]
    return weights


def reference_tally(directory: str | Path) -> dict:
    directory = Path(directory)
    meeting = json.loads((directory / "meeting.json").read_text(encoding="utf-8-sig"))
    rules = dict(DEFAULT_RULES)
    rules.update(meeting.get("rules", {}))
    register = _read_csv(directory / "register.csv")
    ballot_rows = _read_csv(directory / "ballots.csv")

    # Voting subjects: units with the same owners together, areas summed over counted units.
    units = _units(register)

    def counts(unit: dict) -> bool:
        return unit["kind"] != "parking" or rules["count_parking_area"]

    area_of = _weights(units, counts)
    total_area = sum(area_of.values(), Decimal(0))
    total_persons = len(area_of)
    # Two decimals, unless some area of the register has a third.
    places = 3 if any(unit["area"] * 100 != int(unit["area"] * 100) for unit in units.values()) else 2

    # Submissions: rows grouped by ballot_id.
    submissions: dict[str, dict] = {}
    for row in ballot_rows:
        submission = submissions.setdefault(
            row["ballot_id"],
            {
                "voter": row["voter_id"],
                "matter": row["matter_id"],
                "channel": row["channel"],
                "cast_at": datetime.fromisoformat(row["cast_at"]),
                "rows": [],
            },
        )
        submission["rows"].append((row["candidate_id"], row["choice"]))

    # The counted submission of every (voter, matter): filter, sort, take one end.
    counted: dict[tuple[str, str], dict] = {}
    pairs = {(s["voter"], s["matter"]) for s in submissions.values()}
    for voter, matter_id in pairs:
        candidates = [s for s in submissions.values() if s["voter"] == voter and s["matter"] == matter_id]
        if rules["duplicate_policy"] == "electronic_prevails":
            electronic = [s for s in candidates if s["channel"] == "electronic"]
            if electronic:
                candidates = electronic
        candidates.sort(key=lambda s: s["cast_at"])
        counted[(voter, matter_id)] = candidates[-1] if rules["allow_revision"] else candidates[0]

    results = []
    for matter in meeting["matters"]:
        threshold = "three_quarters" if matter["category"] in (6, 7, 8) else "majority"
        if "scope" in matter:
            weight = _weights(units, counts, set(matter["scope"]["buildings"]))
        else:
            weight = area_of
        electorate_area, electorate_persons = sum(weight.values(), Decimal(0)), len(weight)

        def invalid(s: dict, matter: dict = matter) -> bool:
            if any(choice == "invalid" for _, choice in s["rows"]):
                return True  # blank or unclear
            if matter["kind"] == "election":
                return len([1 for _, choice in s["rows"] if choice == "yes"]) > matter["seats"]
            return False

        mine = [s for (voter, matter_id), s in counted.items() if matter_id == matter["id"]]
        spoilt = [s for s in mine if invalid(s)]
        if rules["invalid_ballot"] == "abstain":
            taking_part = mine  # took part, supports nothing
        else:
            taking_part = [s for s in mine if not invalid(s)]
        part_area = sum((weight[s["voter"]] for s in taking_part), Decimal(0))
        part_persons = len(taking_part)
        quorum = (
            Fraction(part_area) / Fraction(electorate_area) >= Fraction(2, 3)
            and Fraction(part_persons, electorate_persons) >= Fraction(2, 3)
        )
        out = {
            "id": matter["id"],
            "kind": matter["kind"],
            "category": matter["category"],
            "threshold": threshold,
            "electorate": _figure(electorate_area, electorate_persons, places),
            "participating": _figure(part_area, part_persons, places),
            "invalid": _figure(sum((weight[s["voter"]] for s in spoilt), Decimal(0)), len(spoilt), places),
        }
        valid = [s for s in mine if not invalid(s)]
        if matter["kind"] == "resolution":
            sums = {}
            for choice in ("yes", "no", "abstain"):
                voters = [s["voter"] for s in valid if s["rows"][0][1] == choice]
                sums[choice] = (sum((weight[v] for v in voters), Decimal(0)), len(voters))
            yes_area, yes_persons = sums["yes"]
            if not quorum:
                outcome = "no_quorum"
            elif meets(threshold, yes_area, part_area) and meets(threshold, yes_persons, part_persons):
                outcome = "passed"
            else:
                outcome = "failed"
            for choice in ("yes", "no", "abstain"):
                out[choice] = _figure(*sums[choice], places)
            out["quorum_met"] = quorum
            out["outcome"] = outcome
            results.append(out)
            continue

        seats, alternates = matter["seats"], matter.get("alternates", 0)
        order = [c["id"] for c in matter["candidates"]]
        yes = {c: [Decimal(0), 0] for c in order}
        for s in valid:
            for candidate, choice in s["rows"]:
                if choice == "yes":
                    yes[candidate][0] += weight[s["voter"]]
                    yes[candidate][1] += 1
        passed, elected, alternate_list, runoff = reference_election(
            order, yes, part_area, part_persons, quorum, threshold, seats, alternates, rules["rank_by"]
        )
        out["quorum_met"] = quorum
        out["candidates"] = [{"id": c, "yes": _figure(*yes[c], places), "passed": c in passed} for c in order]
        out["elected"] = elected
        out["alternates"] = alternate_list
        out["runoff_needed"] = runoff
        out["outcome"] = "no_quorum" if not quorum else ("elected" if elected else "failed")
        results.append(out)

    return {
        "format": "evote-result/2",
        "meeting_id": meeting["meeting"]["id"],
        "totals": _figure(total_area, total_persons, places),
        "matters": results,
    }
