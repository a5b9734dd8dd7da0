"""Property tests: the engine agrees with the brute-force reference on random meetings.

Random registers (joint owners of several units, owners who also hold units
alone, co-owned units, developer units, parking counted or not, areas with two
or three decimals) and random ballots (revisions, both channels, both
duplicate policies, spoiled and blank election ballots, invalid resolution
ballots under both invalid_ballot rules, ties) for matters of the whole
community or scoped to some buildings are written as an evote-bundle/2
directory.  The engine counts the objects, and tests/reference_tally.py counts
the files its own way; the full result documents must be equal, and the
incremental count must end the same.

The files are written here, plainly from bundle-format.md.  The same meetings
also go through server.record's writer and reader
(:func:`test_bundle_round_trip_agrees_with_reference`): what is read back equals
what was written, and counts as the reference counts the written files.
"""
from __future__ import annotations

import csv
import json
import random
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from server.ballot.amounts import area_places, format_area
from server.ballot.tally import (
    Figure,
    Matter,
    MatterFigures,
    MeetingTally,
    Rules,
    Submission,
    aggregate,
    decide_election,
    select_counted,
    tally,
)
from server.ballot.weights import AREA_SOURCES, KINDS, RegisterRow, compute_electorate
from server.record import meeting_document, read_bundle, write_bundle
from tests.reference_tally import reference_election, reference_tally

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
BASE_TIME = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
BUILDINGS = ["1号楼", "2号楼", "地下车库"]
# Areas in milli-m².  A few repeated values make equal figures, hence ties, likely;
# a register has three decimals only when one of its areas needs them.
TWO_PLACE_AREAS = st.one_of(
    st.sampled_from([100000, 100000, 88500, 120370]), st.integers(min_value=1, max_value=40000).map(lambda a: a * 10)
)
THREE_PLACE_AREAS = st.one_of(
    st.sampled_from([100000, 100000, 71125, 88500, 1]), st.integers(min_value=1, max_value=400000)
)


@st.composite
def election_marks(draw, matter: Matter):
    """The rows of one election submission.

    Most voters back a slate: all but one of the first ``seats + 1``
    candidates, so several candidates pass, alternate places fill and ties at
    the boundaries happen.  Others back a few of them, some mark arbitrarily,
    which often spoils the ballot with more yes marks than seats, and a few
    return it blank or unclear (the single row ``("", "invalid")``).
    """
    ids = [candidate_id for candidate_id, _ in matter.candidates]
    favourites = ids[: matter.seats + 1]
    style = draw(st.sampled_from(["slate"] * 6 + ["few", "arbitrary", "blank"]))
    if style == "blank":
        return (("", "invalid"),)
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
def registers(draw):
    """Register rows and the rules' parking flag, with a non-empty electorate.

    Units pick their owners from a few owner sets, so joint owners of several
    units and an owner who also holds a unit alone are common.  Every unit of
    one owner set names the same representative, as a valid register must;
    which owner it is varies between sets.
    """
    three_places = draw(st.booleans())
    areas = THREE_PLACE_AREAS if three_places else TWO_PLACE_AREAS
    owners = [f"O{i}" for i in range(draw(st.integers(min_value=1, max_value=8)))]
    owner_sets = draw(
        st.lists(st.lists(st.sampled_from(owners), min_size=1, max_size=3, unique=True).map(sorted),
                 min_size=1, max_size=6, unique_by=tuple)
    )
    representative_of = {tuple(owner_set): draw(st.sampled_from(owner_set)) for owner_set in owner_sets}
    rows: list[RegisterRow] = []
    for unit in range(draw(st.integers(min_value=1, max_value=14))):
        unit_id = f"U{unit}"
        building = draw(st.sampled_from(BUILDINGS))
        kind = draw(st.sampled_from(KINDS))
        area = draw(areas)
        source = draw(st.sampled_from(AREA_SOURCES))
        if draw(st.integers(min_value=0, max_value=4)) == 0:
            # Developer-held: one owner_id for all of them, so one person.
            rows.append(RegisterRow(unit_id, building, kind, area, source, "developer", "DEV", True))
            continue
        holders = draw(st.sampled_from(owner_sets))
        representative = representative_of[tuple(holders)]
        for owner in draw(st.permutations(holders)):
            rows.append(RegisterRow(unit_id, building, kind, area, source, "owner", owner, owner == representative))
    count_parking = draw(st.booleans())
    if all(row.kind == "parking" for row in rows):
        count_parking = True  # else nobody could vote
    return tuple(draw(st.permutations(rows))), count_parking


@st.composite
def meetings(draw):
    rows, count_parking = draw(registers())
    rules = Rules(
        count_parking_area=count_parking,
        allow_revision=draw(st.booleans()),
        duplicate_policy=draw(st.sampled_from(["electronic_prevails", "first_received"])),
        rank_by=draw(st.sampled_from(["persons_then_area", "area_then_persons"])),
        invalid_ballot=draw(st.sampled_from(["abstain", "not_counted"])),
    )
    electorate = compute_electorate(rows, rules.count_parking_area)
    voting_buildings = sorted(electorate.by_building)

    matters: list[Matter] = []
    for number in range(draw(st.integers(min_value=1, max_value=3))):
        category = draw(st.integers(min_value=1, max_value=9))
        scope: tuple[str, ...] = ()
        if draw(st.integers(min_value=0, max_value=2)) == 0:
            # Scoped to some buildings with voters, perhaps also one with none counted.
            scope = tuple(draw(st.lists(st.sampled_from(voting_buildings), min_size=1, unique=True)))
            if draw(st.booleans()):
                scope += tuple(b for b in BUILDINGS if b not in scope and b in {r.building for r in rows})[:1]
        if draw(st.booleans()):
            matters.append(Matter(f"M{number}", f"决议{number}", "resolution", category, scope=scope))
        else:
            seats = draw(st.integers(min_value=1, max_value=4))
            alternates = draw(st.integers(min_value=0, max_value=2))
            # Sometimes fewer candidates than places, usually more.
            count = draw(st.integers(min_value=1, max_value=seats + alternates + 2))
            candidates = tuple((f"C{i}", f"候选人{i}") for i in range(count))
            matters.append(
                Matter(f"E{number}", f"选举{number}", "election", category, seats, alternates, candidates, scope)
            )

    submissions: list[Submission] = []
    choice = st.sampled_from(["yes", "yes", "yes", "no", "abstain", "invalid"])
    for matter in matters:
        voters = sorted(electorate.for_scope(matter.scope).areas)
        for voter in voters:
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
    return rules, tuple(matters), rows, tuple(submissions)


def write_bundle_files(directory: str | Path, meeting_id: str, rules: Rules, matters, rows, submissions) -> None:
    """meeting.json, register.csv and ballots.csv of bundle-format.md (evote-bundle/2)."""
    directory = Path(directory)

    def matter_json(matter: Matter) -> dict:
        out: dict = {"id": matter.id, "title": matter.title, "kind": matter.kind, "category": matter.category}
        if matter.kind == "election":
            out["seats"] = matter.seats
            out["alternates"] = matter.alternates
            out["candidates"] = [{"id": cid, "name": name} for cid, name in matter.candidates]
        if matter.scope:
            out["scope"] = {"buildings": list(matter.scope)}
        return out

    meeting = {
        "format": "evote-bundle/2",
        "community": {"id": "c-1", "name": "测试小区"},
        "meeting": {"id": meeting_id, "title": "测试会议"},
        "rules": rules.to_json(),
        "matters": [matter_json(matter) for matter in matters],
    }
    (directory / "meeting.json").write_text(json.dumps(meeting, ensure_ascii=False, indent=2), encoding="utf-8")
    places = area_places(row.area for row in rows)
    with (directory / "register.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit_id", "building", "kind", "area", "area_source", "holder", "owner_id", "representative"])
        for row in rows:
            writer.writerow([row.unit_id, row.building, row.kind, format_area(row.area, places), row.area_source,
                             row.holder, row.owner_id, "1" if row.representative else "0"])
    with (directory / "ballots.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ballot_id", "voter_id", "matter_id", "candidate_id", "choice", "channel", "cast_at"])
        for s in submissions:
            for candidate_id, choice in s.choices:
                writer.writerow([s.ballot_id, s.voter_id, s.matter_id, candidate_id, choice, s.channel,
                                 s.cast_at.isoformat()])


def _describe(result: dict, rules: Rules, matters, electorate) -> None:
    # Hypothesis statistics (pytest --hypothesis-show-statistics) show the cases reached.
    if any(len(s.owners) > 1 and len(s.units) > 1 for s in electorate.subjects.values()):
        event("joint owners of several units")
    if any(a + "+" in b or "+" + a in b for a in electorate.subjects for b in electorate.subjects if a != b):
        event("an owner alone and with others: two subjects")
    for matter, definition in zip(result["matters"], matters):
        event(f"{matter['kind']}: {matter['outcome']}")
        if definition.scope:
            event(f"scoped matter: {matter['outcome']}")
        if matter["invalid"]["persons"]:
            event(f"invalid ballots under {rules.invalid_ballot}")
        if matter.get("runoff_needed"):
            event("election with runoff")
        if matter.get("alternates"):
            event("election with alternates")
        if matter["kind"] == "election" and matter["quorum_met"] and matter["elected"] == []:
            event("election with quorum and nobody elected")
    if result["totals"]["area"].count(".") and len(result["totals"]["area"].split(".")[1]) == 3:
        event("three-decimal register")


@SETTINGS
@given(meetings())
def test_engine_agrees_with_reference(meeting):
    rules, matters, rows, submissions = meeting
    electorate = compute_electorate(rows, rules.count_parking_area)
    with tempfile.TemporaryDirectory() as directory:
        write_bundle_files(directory, "2026-01", rules, matters, rows, submissions)
        expected = reference_tally(directory)
    _describe(expected, rules, matters, electorate)
    engine_result = tally("2026-01", rules, matters, electorate, submissions)
    assert engine_result == expected
    # Same document, same key order, same bytes.
    assert json.dumps(engine_result, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)

    # Order of arrival does not matter, and the incremental count ends the same.
    shuffled = list(submissions)
    random.Random(len(submissions)).shuffle(shuffled)
    assert tally("2026-01", rules, matters, electorate, shuffled) == expected
    live = MeetingTally("2026-01", rules, matters, electorate)
    for submission in shuffled:
        live.submit(submission)
    assert live.result() == expected


@SETTINGS
@given(meetings(), st.randoms(use_true_random=False))
def test_incremental_figures_equal_the_full_count_after_every_submission(meeting, rnd):
    """A live dashboard shows MeetingTally.figures() between submissions: each must be a full count."""
    rules, matters, rows, submissions = meeting
    electorate = compute_electorate(rows, rules.count_parking_area)
    arrived = list(submissions)
    rnd.shuffle(arrived)
    live = MeetingTally("2026-01", rules, matters, electorate)
    for index, submission in enumerate(arrived, start=1):
        live.submit(submission)
        counted = select_counted(arrived[:index], rules)
        assert live.figures() == aggregate(matters, electorate, counted.values(), rules)
    assert live.result() == tally("2026-01", rules, matters, electorate, arrived)


@SETTINGS
@given(meetings())
def test_bundle_round_trip_agrees_with_reference(meeting):
    rules, matters, rows, submissions = meeting
    document = meeting_document("2026-01", "测试会议", rules, matters, "c-1", "测试小区")
    with tempfile.TemporaryDirectory() as directory:
        write_bundle(directory, document, rows, submissions)
        bundle = read_bundle(directory)
        expected = reference_tally(directory)
    assert bundle.tally() == expected
    # The objects read back equal the objects written.
    assert bundle.rules == rules
    assert bundle.matters == matters
    assert bundle.register_rows == rows
    assert bundle.submissions == submissions


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
