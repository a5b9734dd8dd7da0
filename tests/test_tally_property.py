"""Property tests: the engine agrees with the brute-force reference on random meetings.

Random registers (multi-unit owners, co-owned units, developer units, parking
counted or not) and random ballots (revisions, both channels, both duplicate
policies, spoiled election ballots, ties) are written as a bundle; the engine
reads and counts it, and tests/reference_tally.py counts the same files its
own way.  The full result documents must be equal.
"""
from __future__ import annotations

import json
import random
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from server.ballot.tally import (
    Figure,
    Matter,
    MatterFigures,
    MeetingTally,
    Rules,
    Submission,
    decide_election,
    tally,
)
from server.ballot.weights import AREA_SOURCES, KINDS, RegisterRow
from server.record import meeting_document, read_bundle, write_bundle
from tests.reference_tally import reference_election, reference_tally

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BASE_TIME = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
# A few repeated areas make equal figures, hence ties, likely.
AREAS = st.one_of(st.sampled_from([10000, 10000, 8850, 12037]), st.integers(min_value=1, max_value=40000))


@st.composite
def election_marks(draw, matter: Matter):
    """The rows of one election submission.

    Most voters back a slate: all but one of the first ``seats + 1``
    candidates, so several candidates pass, alternate places fill and ties at
    the boundaries happen.  Others back a few of them, and some mark
    arbitrarily, which often spoils the ballot with more yes marks than seats.
    """
    ids = [candidate_id for candidate_id, _ in matter.candidates]
    favourites = ids[: matter.seats + 1]
    style = draw(st.sampled_from(["slate"] * 6 + ["few", "arbitrary"]))
    marks: dict[str, str] = {}
    if style == "slate":
        left_out = draw(st.sampled_from(favourites)) if len(favourites) > matter.seats else None
        marks = {candidate_id: "yes" for candidate_id in favourites if candidate_id != left_out}
    elif style == "few":
        supported = draw(st.lists(st.sampled_from(favourites), min_size=1, max_size=matter.seats, unique=True))
        marks = {candidate_id: "yes" for candidate_id in supported}
    mark_values = [None, "no", "abstain"] if style != "arbitrary" else [None, "yes", "yes", "no", "abstain"]
    for candidate_id in ids:
        if candidate_id not in marks:
            mark = draw(st.sampled_from(mark_values))
            if mark is not None:
                marks[candidate_id] = mark
    if not marks:
        marks[ids[0]] = draw(st.sampled_from(["no", "abstain"]))
    return tuple(draw(st.permutations(list(marks.items()))))


@st.composite
def meetings(draw):
    rules = Rules(
        count_parking_area=draw(st.booleans()),
        allow_revision=draw(st.booleans()),
        duplicate_policy=draw(st.sampled_from(["electronic_prevails", "first_received"])),
        rank_by=draw(st.sampled_from(["persons_then_area", "area_then_persons"])),
    )

    owners = [f"O{i}" for i in range(draw(st.integers(min_value=1, max_value=10)))]
    rows: list[RegisterRow] = []
    for unit in range(draw(st.integers(min_value=1, max_value=14))):
        unit_id = f"U{unit}"
        building = draw(st.sampled_from(["1号楼", "2号楼", "地下车库"]))
        kind = draw(st.sampled_from(KINDS))
        area = draw(AREAS)
        source = draw(st.sampled_from(AREA_SOURCES))
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            # Developer-held: one owner_id for all of them, so one person.
            rows.append(RegisterRow(unit_id, building, kind, area, source, "developer", "DEV", True))
            continue
        holders = draw(st.lists(st.sampled_from(owners), min_size=1, max_size=3, unique=True))
        representative = draw(st.integers(min_value=0, max_value=len(holders) - 1))
        for index, owner in enumerate(holders):
            rows.append(RegisterRow(unit_id, building, kind, area, source, "owner", owner, index == representative))
    rows = draw(st.permutations(rows))

    def voters_under(count_parking: bool) -> list[str]:
        return sorted(
            {r.owner_id for r in rows if r.representative and (r.kind != "parking" or count_parking)}
        )

    if not voters_under(rules.count_parking_area):
        rules = replace(rules, count_parking_area=True)  # every unit has a representative
    voters = voters_under(rules.count_parking_area)

    matters: list[Matter] = []
    for number in range(draw(st.integers(min_value=1, max_value=3))):
        category = draw(st.integers(min_value=1, max_value=9))
        if draw(st.booleans()):
            matters.append(Matter(f"M{number}", f"决议{number}", "resolution", category))
        else:
            seats = draw(st.integers(min_value=1, max_value=4))
            alternates = draw(st.integers(min_value=0, max_value=2))
            # Sometimes fewer candidates than places, usually more.
            count = draw(st.integers(min_value=1, max_value=seats + alternates + 2))
            candidates = tuple((f"C{i}", f"候选人{i}") for i in range(count))
            matters.append(
                Matter(f"E{number}", f"选举{number}", "election", category, seats, alternates, candidates)
            )

    submissions: list[Submission] = []
    choice = st.sampled_from(["yes", "yes", "no", "abstain"])
    for voter in voters:
        for matter in matters:
            count = draw(st.sampled_from([1, 1, 2, 0, 1, 3]))
            minutes = draw(st.lists(st.integers(min_value=0, max_value=60), min_size=count, max_size=count, unique=True))
            for minute in minutes:
                zone = draw(st.sampled_from(ZONES))
                cast_at = (BASE_TIME + timedelta(minutes=minute)).astimezone(zone)
                channel = draw(st.sampled_from(["electronic", "paper"]))
                if matter.kind == "resolution":
                    choices = (("", draw(choice)),)
                else:
                    choices = draw(election_marks(matter))
                submissions.append(
                    Submission(f"B{len(submissions)}", voter, matter.id, channel, cast_at, choices)
                )
    submissions = draw(st.permutations(submissions))
    return rules, tuple(matters), tuple(rows), tuple(submissions)


def _describe(result: dict) -> None:
    # Hypothesis statistics (pytest --hypothesis-show-statistics) show the cases reached.
    for matter in result["matters"]:
        event(f"{matter['kind']}: {matter['outcome']}")
        if matter.get("runoff_needed"):
            event("election with runoff")
        if matter.get("alternates"):
            event("election with alternates")
        if matter["kind"] == "election" and matter["quorum_met"] and matter["elected"] == []:
            event("election with quorum and nobody elected")


@SETTINGS
@given(meetings())
def test_engine_agrees_with_reference(meeting):
    rules, matters, rows, submissions = meeting
    document = meeting_document("2026-01", "测试会议", rules, matters, "c-1", "测试小区")
    with tempfile.TemporaryDirectory() as directory:
        write_bundle(directory, document, rows, submissions)
        bundle = read_bundle(directory)
        engine_result = bundle.tally()
        expected = reference_tally(directory)
    _describe(expected)
    assert engine_result == expected
    # Same document, same key order, same bytes.
    assert json.dumps(engine_result, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)

    # The objects read back equal the objects written.
    assert bundle.rules == rules
    assert bundle.matters == matters
    assert bundle.register_rows == rows
    assert bundle.submissions == submissions

    # Order of arrival does not matter, and the incremental count ends the same.
    shuffled = list(submissions)
    random.Random(len(submissions)).shuffle(shuffled)
    assert tally("2026-01", rules, matters, bundle.electorate, shuffled) == expected
    live = MeetingTally("2026-01", rules, matters, bundle.electorate)
    for submission in shuffled:
        live.submit(submission)
    assert live.result() == expected


# Figures drawn from a few values so that equal figures, hence ties at every
# boundary, are common; participating is 10 persons / 1000.00 m², so values
# above 5 persons / 500.00 m² pass the majority rule and from 7.5 / 750.00 the
# three-quarters rule.
YES_PERSONS = st.sampled_from([8, 6, 8, 10, 6, 4])
YES_AREAS = st.sampled_from([80000, 60000, 80000, 100000, 60000, 30000, 75000])


@settings(SETTINGS, max_examples=500)  # cheap: no I/O
@given(
    seats=st.integers(min_value=1, max_value=5),
    alternates=st.integers(min_value=0, max_value=3),
    figures=st.lists(st.tuples(YES_AREAS, YES_PERSONS), min_size=1, max_size=10),
    category=st.integers(min_value=1, max_value=9),
    rank_by=st.sampled_from(["persons_then_area", "area_then_persons"]),
    quorum=st.sampled_from([True, True, True, False]),
)
def test_election_places_agree_with_reference(seats, alternates, figures, category, rank_by, quorum):
    candidates = tuple((f"C{i}", f"候选人{i}") for i in range(len(figures)))
    matter = Matter("E1", "选举", "election", category, seats, alternates, candidates)
    part = Figure(100000, 10)
    matter_figures = MatterFigures(
        "E1", part, candidates={f"C{i}": Figure(area, persons) for i, (area, persons) in enumerate(figures)}
    )
    decision = decide_election(matter, matter_figures, quorum, rank_by)

    order = [candidate_id for candidate_id, _ in candidates]
    yes = {f"C{i}": [area, persons] for i, (area, persons) in enumerate(figures)}
    passed, elected, alternate_list, runoff = reference_election(
        order, yes, part.area, part.persons, quorum, matter.threshold, seats, alternates, rank_by
    )
    if runoff:
        event("runoff at the last seat" if len(elected) < seats else "runoff at the last alternate place")
    if alternate_list:
        event("alternates filled")
    assert decision.passed == passed
    assert list(decision.elected) == elected
    assert list(decision.alternates) == alternate_list
    assert list(decision.runoff_needed) == runoff
    # Nobody holds two places, and no more places are filled than exist.
    filled = list(decision.elected) + list(decision.alternates)
    assert len(filled) == len(set(filled)) and not set(filled) & set(decision.runoff_needed)
    assert len(decision.elected) <= seats and len(decision.alternates) <= alternates
