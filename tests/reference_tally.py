"""A brute-force reference count of a valid evote-bundle/1 directory.

Written separately from server.* and as plainly as possible, straight from
bundle-format.md, so the property tests compare two independent readings of
the spec: it parses the files itself, converts areas with Decimal, compares
ratios with Fraction instead of cross-multiplying, picks counted submissions
by filtering and sorting every group, and finds runoffs by looking at the two
boundary places.  It assumes the bundle is valid and does not check it.
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
}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _centi(text: str) -> int:
    return int(Decimal(text) * 100)


def _money(centi: int) -> str:
    return str((Decimal(centi) / 100).quantize(Decimal("0.01")))


def _figure(area: int, persons: int) -> dict:
    return {"area": _money(area), "persons": persons}


def meets(threshold: str, yes: int, part: int) -> bool:
    """yes/part above the threshold, as a ratio (part > 0 whenever quorum is met)."""
    if threshold == "majority":
        return Fraction(yes, part) > Fraction(1, 2)
    return Fraction(yes, part) >= Fraction(3, 4)


def reference_election(order, yes, part_area, part_persons, quorum, threshold, seats, alternates, rank_by):
    """(passed set, elected, alternates, runoff) of one election.

    ``order`` is the candidate list, ``yes`` maps a candidate to [area, persons].
    """
    passed = {
        c
        for c in order
        if quorum and meets(threshold, yes[c][0], part_area) and meets(threshold, yes[c][1], part_persons)
    }

    def key(c: str) -> tuple[int, int]:
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


def reference_tally(directory: str | Path) -> dict:
    directory = Path(directory)
    meeting = json.loads((directory / "meeting.json").read_text(encoding="utf-8-sig"))
    rules = dict(DEFAULT_RULES)
    rules.update(meeting.get("rules", {}))
    register = _read_csv(directory / "register.csv")
    ballot_rows = _read_csv(directory / "ballots.csv")

    # Voting subjects: representatives of counted units, areas summed.
    area_of: dict[str, int] = {}
    for row in register:
        counted = row["kind"] != "parking" or rules["count_parking_area"]
        if row["representative"] == "1" and counted:
            area_of[row["owner_id"]] = area_of.get(row["owner_id"], 0) + _centi(row["area"])
    total_area = sum(area_of.values())
    total_persons = len(area_of)

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
        mine = [s for (voter, matter_id), s in counted.items() if matter_id == matter["id"]]
        part_area = sum(area_of[s["voter"]] for s in mine)
        part_persons = len(mine)
        quorum = (
            Fraction(part_area, total_area) >= Fraction(2, 3)
            and Fraction(part_persons, total_persons) >= Fraction(2, 3)
        )
        out = {
            "id": matter["id"],
            "kind": matter["kind"],
            "category": matter["category"],
            "threshold": threshold,
            "participating": _figure(part_area, part_persons),
        }
        if matter["kind"] == "resolution":
            sums = {}
            for choice in ("yes", "no", "abstain"):
                voters = [s["voter"] for s in mine if s["rows"][0][1] == choice]
                sums[choice] = (sum(area_of[v] for v in voters), len(voters))
            yes_area, yes_persons = sums["yes"]
            if not quorum:
                outcome = "no_quorum"
            elif meets(threshold, yes_area, part_area) and meets(threshold, yes_persons, part_persons):
                outcome = "passed"
            else:
                outcome = "failed"
            for choice in ("yes", "no", "abstain"):
                out[choice] = _figure(*sums[choice])
            out["quorum_met"] = quorum
            out["outcome"] = outcome
            results.append(out)
            continue

        seats, alternates = matter["seats"], matter.get("alternates", 0)
        order = [c["id"] for c in matter["candidates"]]
        yes = {c: [0, 0] for c in order}
        for s in mine:
            supported = [candidate for candidate, choice in s["rows"] if choice == "yes"]
            if len(supported) > seats:
                continue  # spoiled: took part, supports nobody
            for candidate in supported:
                yes[candidate][0] += area_of[s["voter"]]
                yes[candidate][1] += 1
        passed, elected, alternate_list, runoff = reference_election(
            order, yes, part_area, part_persons, quorum, threshold, seats, alternates, rules["rank_by"]
        )
        out["quorum_met"] = quorum
        out["candidates"] = [{"id": c, "yes": _figure(*yes[c]), "passed": c in passed} for c in order]
        out["elected"] = elected
        out["alternates"] = alternate_list
        out["runoff_needed"] = runoff
        out["outcome"] = "no_quorum" if not quorum else ("elected" if elected else "failed")
        results.append(out)

    return {
        "format": "evote-result/1",
        "meeting_id": meeting["meeting"]["id"],
        "totals": _figure(total_area, total_persons),
        "matters": results,
    }
