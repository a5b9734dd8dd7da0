"""The tally engine: worked examples of voting-rules.md, exact boundaries, elections, duplicates."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.ballot.tally import (
    Figure,
    Matter,
    MatterFigures,
    MatterTally,
    MeetingTally,
    Rules,
    Submission,
    aggregate,
    decide_election,
    select_counted,
    tally,
)
from server.ballot.weights import RegisterRow, compute_electorate

CST = timezone(timedelta(hours=8))
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=CST)


def electorate(*areas_in_milli: int, parking: bool = False):
    """Owners O1, O2, … each holding one dwelling of the given area."""
    rows = [
        RegisterRow(f"U{i}", "1号楼", "dwelling", area, "registry", "owner", f"O{i}", True)
        for i, area in enumerate(areas_in_milli, start=1)
    ]
    return compute_electorate(rows, count_parking_area=parking)


RESOLUTION = Matter("M1", "表决通过《管理规约》", "resolution", 2)
FUNDS = Matter("M6", "筹集维修资金", "resolution", 6)

_ids = iter(range(10**9))


def vote(voter, matter="M1", choice="yes", *, minutes=0, channel="electronic"):
    return Submission(f"B{next(_ids)}", voter, matter, channel, T0 + timedelta(minutes=minutes), (("", choice),))


def ballot(voter, matter, marks, *, minutes=0, channel="electronic"):
    return Submission(f"B{next(_ids)}", voter, matter, channel, T0 + timedelta(minutes=minutes), tuple(marks))


def only_matter(result):
    (matter,) = result["matters"]
    return matter


def fig(area, persons):
    return {"area": area, "persons": persons}


# ---------------------------------------------------------------- worked examples


def test_example_three_owners_two_yes_exactly_two_thirds():
    result = tally("2026-01", Rules(), [RESOLUTION], electorate(100000, 100000, 100000), [vote("O1"), vote("O2")])
    assert result == {
        "format": "evote-result/2",
        "meeting_id": "2026-01",
        "totals": fig("300.00", 3),
        "matters": [
            {
                "id": "M1",
                "kind": "resolution",
                "category": 2,
                "threshold": "majority",
                "electorate": fig("300.00", 3),
                "participating": fig("200.00", 2),
                "invalid": fig("0.00", 0),
                "yes": fig("200.00", 2),
                "no": fig("0.00", 0),
                "abstain": fig("0.00", 0),
                "quorum_met": True,
                "outcome": "passed",
            }
        ],
    }
    # Key order is part of the format.
    assert list(result) == ["format", "meeting_id", "totals", "matters"]
    assert list(result["matters"][0]) == [
        "id", "kind", "category", "threshold", "electorate", "participating", "invalid", "yes", "no", "abstain",
        "quorum_met", "outcome",
    ]


def test_example_exactly_half_yes_fails():
    votes = [vote("O1"), vote("O2"), vote("O3", choice="no"), vote("O4", choice="no")]
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(*[100000] * 4), votes))
    assert matter["quorum_met"] is True
    assert matter["outcome"] == "failed"


def test_example_abstention_is_in_the_denominator():
    votes = [vote("O1"), vote("O2"), vote("O3", choice="no"), vote("O4", choice="abstain")]
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(*[100000] * 4), votes))
    assert matter["participating"] == fig("400.00", 4)
    assert matter["abstain"] == fig("100.00", 1)
    assert matter["outcome"] == "failed"


def test_example_multi_unit_owner_totals():
    rows = [
        RegisterRow("101", "1号楼", "dwelling", 80000, "registry", "owner", "X", True),
        RegisterRow("102", "1号楼", "dwelling", 120000, "registry", "owner", "X", True),
        RegisterRow("201", "2号楼", "dwelling", 100000, "registry", "owner", "Y", True),
        RegisterRow("202", "2号楼", "dwelling", 100000, "registry", "owner", "Z", True),
    ]
    voters = compute_electorate(rows, count_parking_area=False)
    result = tally("m", Rules(), [RESOLUTION], voters, [vote("X"), vote("Y")])
    assert result["totals"] == fig("400.00", 3)
    # X's one ballot carries 200 m² and one person.
    assert only_matter(result)["yes"] == fig("300.00", 2)


# ---------------------------------------------------------------- boundaries


def test_one_hundredth_short_of_two_thirds_is_no_quorum():
    # 200.00 of 300.01 m² is below two thirds; persons are at exactly 2/3.
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100000, 100000, 100010), [vote("O1"), vote("O2")]))
    assert matter["quorum_met"] is False
    assert matter["outcome"] == "no_quorum"  # no decision, not "failed"
    assert matter["yes"] == fig("200.00", 2)  # figures are still reported


def test_persons_pass_but_area_fails():
    # Three owners of 100 m² vote yes, the owner of 300 m² votes no: 3/4 persons, 1/2 area.
    votes = [vote("O1"), vote("O2"), vote("O3"), vote("O4", choice="no")]
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100000, 100000, 100000, 300000), votes))
    assert matter["yes"] == fig("300.00", 3)
    assert matter["participating"] == fig("600.00", 4)
    assert matter["outcome"] == "failed"


def test_three_quarters_exactly_passes():
    votes = [vote("O1", "M6"), vote("O2", "M6"), vote("O3", "M6"), vote("O4", "M6", "no")]
    matter = only_matter(tally("m", Rules(), [FUNDS], electorate(*[100000] * 4), votes))
    assert matter["threshold"] == "three_quarters"
    assert matter["outcome"] == "passed"


def test_three_quarters_just_below_fails_on_area():
    votes = [vote("O1", "M6"), vote("O2", "M6"), vote("O3", "M6"), vote("O4", "M6", "abstain")]
    matter = only_matter(tally("m", Rules(), [FUNDS], electorate(100000, 100000, 99990, 100010), votes))
    assert matter["yes"] == fig("299.99", 3)  # 299990 * 4 < 400000 * 3
    assert matter["outcome"] == "failed"


def test_matters_keep_meeting_order_and_unvoted_matters_report_zero():
    matters = [FUNDS, RESOLUTION]
    result = tally("m", Rules(), matters, electorate(100000), [vote("O1", "M1")])
    assert [m["id"] for m in result["matters"]] == ["M6", "M1"]
    assert result["matters"][0]["participating"] == fig("0.00", 0)
    assert result["matters"][0]["outcome"] == "no_quorum"


# ---------------------------------------------------------------- which submission counts


def choice_counted(submissions, rules, voters=1):
    matter = only_matter(tally("m", rules, [RESOLUTION], electorate(*[100000] * voters), submissions))
    return next(c for c in ("yes", "no", "abstain") if matter[c]["persons"])


PAPER_YES_FIRST = [vote("O1", choice="yes", minutes=0, channel="paper"),
                   vote("O1", choice="no", minutes=10, channel="electronic")]
ELECTRONIC_FIRST = [vote("O1", choice="no", minutes=0, channel="electronic"),
                    vote("O1", choice="yes", minutes=10, channel="paper")]


@pytest.mark.parametrize("allow_revision", [False, True])
def test_electronic_prevails_whatever_the_times(allow_revision):
    rules = Rules(allow_revision=allow_revision, duplicate_policy="electronic_prevails")
    assert choice_counted(PAPER_YES_FIRST, rules) == "no"
    assert choice_counted(ELECTRONIC_FIRST, rules) == "no"


@pytest.mark.parametrize(
    ("allow_revision", "paper_first", "electronic_first"), [(False, "yes", "no"), (True, "no", "yes")]
)
def test_first_received_considers_both_channels(allow_revision, paper_first, electronic_first):
    rules = Rules(allow_revision=allow_revision, duplicate_policy="first_received")
    assert choice_counted(PAPER_YES_FIRST, rules) == paper_first
    assert choice_counted(ELECTRONIC_FIRST, rules) == electronic_first


def test_revision_off_keeps_the_first_and_on_keeps_the_last():
    submissions = [vote("O1", choice="abstain", minutes=5), vote("O1", choice="yes", minutes=0),
                   vote("O1", choice="no", minutes=9)]
    assert choice_counted(submissions, Rules(allow_revision=False)) == "yes"
    assert choice_counted(submissions, Rules(allow_revision=True)) == "no"


def test_electronic_prevails_then_time_among_electronic():
    submissions = [vote("O1", choice="yes", minutes=0, channel="paper"),
                   vote("O1", choice="no", minutes=5), vote("O1", choice="abstain", minutes=8),
                   vote("O1", choice="yes", minutes=20, channel="paper")]
    assert choice_counted(submissions, Rules(allow_revision=False)) == "no"
    assert choice_counted(submissions, Rules(allow_revision=True)) == "abstain"


def test_cast_at_compares_instants_across_offsets():
    early = Submission("B-a", "O1", "M1", "electronic", datetime(2026, 1, 10, 10, 0, tzinfo=CST), (("", "yes"),))
    late = Submission("B-b", "O1", "M1", "electronic", datetime(2026, 1, 10, 3, 0, tzinfo=UTC),
                      (("", "no"),))  # 11:00 at +08:00
    assert choice_counted([late, early], Rules()) == "yes"
    assert choice_counted([late, early], Rules(allow_revision=True)) == "no"


def test_select_counted_is_per_voter_and_matter():
    a, b, c = vote("O1", "M1"), vote("O1", "M6"), vote("O2", "M1")
    assert select_counted([a, b, c], Rules()) == {("O1", "M1"): a, ("O1", "M6"): b, ("O2", "M1"): c}


def test_equal_cast_at_is_refused():
    with pytest.raises(ValueError):
        select_counted([vote("O1", minutes=1), vote("O1", minutes=1)], Rules())


# ---------------------------------------------------------------- elections


def election(seats, alternates, names, category=3):
    return Matter("E1", "选举业主委员会委员", "election", category, seats, alternates,
                  tuple((name, f"候选人{name}") for name in names))


def test_election_full_document():
    matter = election(2, 1, ["C1", "C2", "C3", "C4"])
    voters = electorate(*[100000] * 5)
    submissions = [
        ballot("O1", "E1", [("C1", "yes"), ("C2", "yes")]),
        ballot("O2", "E1", [("C1", "yes"), ("C3", "yes")]),
        ballot("O3", "E1", [("C1", "yes"), ("C2", "yes"), ("C4", "no")]),
        ballot("O4", "E1", [("C2", "yes"), ("C3", "yes")]),
        ballot("O5", "E1", [("C3", "yes"), ("C1", "abstain")]),
    ]
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result == {
        "id": "E1",
        "kind": "election",
        "category": 3,
        "threshold": "majority",
        "electorate": fig("500.00", 5),
        "participating": fig("500.00", 5),
        "invalid": fig("0.00", 0),
        "quorum_met": True,
        "candidates": [
            {"id": "C1", "yes": fig("300.00", 3), "passed": True},
            {"id": "C2", "yes": fig("300.00", 3), "passed": True},
            {"id": "C3", "yes": fig("300.00", 3), "passed": True},
            {"id": "C4", "yes": fig("0.00", 0), "passed": False},
        ],
        "elected": [],
        "alternates": [],
        "runoff_needed": ["C1", "C2", "C3"],  # three tied for two seats
        "outcome": "failed",
    }
    assert list(result) == [
        "id", "kind", "category", "threshold", "electorate", "participating", "invalid", "quorum_met", "candidates",
        "elected", "alternates", "runoff_needed", "outcome",
    ]


def test_election_ranks_by_persons_then_area_or_the_reverse():
    matter = election(1, 1, ["Big", "Many"])
    voters = electorate(500000, 100000, 100000, 100000)  # O1 holds 500 m²
    submissions = [
        ballot("O1", "E1", [("Big", "yes")]),
        ballot("O2", "E1", [("Many", "yes")]),
        ballot("O3", "E1", [("Many", "yes")]),
        ballot("O4", "E1", [("Big", "yes")]),
    ]
    # Big: 2 persons, 600 m²; Many: 2 persons, 200 m².  Neither has > half of 4 persons.
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result["outcome"] == "failed" and result["elected"] == []

    figures = MatterFigures("E1", Figure(700000, 4), candidates={"Big": Figure(600000, 3), "Many": Figure(400000, 4)})
    assert decide_election(matter, figures, True, "persons_then_area").elected == ("Many",)
    assert decide_election(matter, figures, True, "persons_then_area").alternates == ("Big",)
    assert decide_election(matter, figures, True, "area_then_persons").elected == ("Big",)
    assert decide_election(matter, figures, True, "area_then_persons").alternates == ("Many",)


def places(seats, alternates, yes, *, rank_by="persons_then_area", quorum=True, category=3):
    """Decide an election from yes figures; participating is 20 persons, 2000.00 m²."""
    matter = election(seats, alternates, list(yes), category)
    figures = MatterFigures(
        "E1", Figure(2000000, 20), candidates={name: Figure(area, persons) for name, (area, persons) in yes.items()}
    )
    decision = decide_election(matter, figures, quorum, rank_by)
    return list(decision.elected), list(decision.alternates), list(decision.runoff_needed)


def test_places_filled_in_rank_order():
    yes = {"A": (1100000, 11), "B": (1500000, 15), "C": (1200000, 12), "D": (1300000, 13), "E": (1000000, 10)}
    # E has exactly half: not passed.
    assert places(2, 2, yes) == (["B", "D"], ["C", "A"], [])


def test_tie_straddling_the_last_seat_fills_no_alternate_place():
    yes = {"A": (1500000, 15), "B": (1200000, 12), "C": (1200000, 12), "D": (1200000, 12), "E": (1100000, 11)}
    # B, C, D tie for places 2–4 with 3 seats: runoff; E would be an alternate, but
    # no place from the tied group on is filled.
    assert places(3, 1, yes) == (["A"], [], ["B", "C", "D"])


def test_tie_straddling_the_last_alternate_place():
    yes = {"A": (1500000, 15), "B": (1400000, 14), "C": (1200000, 12), "D": (1200000, 12)}
    assert places(1, 2, yes) == (["A"], ["B"], ["C", "D"])


def test_tie_within_the_places_is_not_a_runoff():
    yes = {"A": (1200000, 12), "B": (1200000, 12), "C": (1100000, 11)}
    assert places(2, 0, yes) == (["A", "B"], [], [])  # tied pair fills both seats, list order
    assert places(3, 0, yes) == (["A", "B", "C"], [], [])


def test_tie_just_below_every_place_is_not_a_runoff():
    yes = {"A": (1500000, 15), "B": (1200000, 12), "C": (1200000, 12)}
    assert places(1, 0, yes) == (["A"], [], [])


def test_tie_on_persons_is_broken_by_area():
    yes = {"A": (1200000, 12), "B": (1200010, 12), "C": (1100000, 12)}
    assert places(1, 1, yes) == (["B"], ["A"], [])
    assert places(1, 1, yes, rank_by="area_then_persons") == (["B"], ["A"], [])
    yes = {"A": (1500000, 11), "B": (1200000, 14)}
    assert places(1, 1, yes) == (["B"], ["A"], [])
    assert places(1, 1, yes, rank_by="area_then_persons") == (["A"], ["B"], [])


def test_one_seat_tie_is_a_failed_election_with_runoff():
    yes = {"A": (1200000, 12), "B": (1200000, 12)}
    assert places(1, 0, yes) == ([], [], ["A", "B"])


def test_too_few_passing_candidates_fill_what_they_can():
    yes = {"A": (1500000, 15), "B": (1000000, 10), "C": (500000, 5)}
    assert places(3, 2, yes) == (["A"], [], [])
    yes = {"A": (1500000, 15), "B": (1400000, 14), "C": (1300000, 13)}
    assert places(2, 2, yes) == (["A", "B"], ["C"], [])


def test_three_quarters_election_threshold():
    yes = {"A": (1500000, 15), "B": (1499990, 15), "C": (1600000, 14)}
    assert places(3, 0, yes, category=7) == (["A"], [], [])


def test_no_quorum_election_passes_nobody():
    matter = election(1, 0, ["A"])
    result = only_matter(tally("m", Rules(), [matter], electorate(100000, 100000, 100000),
                               [ballot("O1", "E1", [("A", "yes")])]))
    assert result["quorum_met"] is False
    assert result["candidates"] == [{"id": "A", "yes": fig("100.00", 1), "passed": False}]
    assert (result["elected"], result["alternates"], result["runoff_needed"]) == ([], [], [])
    assert result["outcome"] == "no_quorum"


def test_spoiled_ballot_takes_part_and_supports_nobody():
    matter = election(1, 0, ["A", "B"])
    voters = electorate(100000, 100000, 100000)
    submissions = [
        ballot("O1", "E1", [("A", "yes")]),
        ballot("O2", "E1", [("A", "yes"), ("B", "yes")]),  # two yes marks for one seat: spoiled
        ballot("O3", "E1", [("A", "no")]),
    ]
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result["participating"] == fig("300.00", 3)
    assert result["candidates"][0] == {"id": "A", "yes": fig("100.00", 1), "passed": False}
    assert result["candidates"][1]["yes"] == fig("0.00", 0)
    assert result["outcome"] == "failed"
    figures = aggregate([matter], voters, submissions)["E1"]
    assert figures.spoiled == Figure(100000, 1)


def test_yes_marks_up_to_seats_are_not_spoiled():
    matter = election(2, 0, ["A", "B", "C"])
    voters = electorate(100000, 100000, 100000)
    submissions = [ballot(f"O{i}", "E1", [("A", "yes"), ("B", "yes"), ("C", "no")]) for i in (1, 2, 3)]
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result["elected"] == ["A", "B"] and result["outcome"] == "elected"


def test_an_all_no_election_ballot_still_takes_part():
    matter = election(1, 0, ["A"])
    voters = electorate(100000, 100000, 100000)
    submissions = [ballot("O1", "E1", [("A", "yes")]), ballot("O2", "E1", [("A", "yes")]),
                   ballot("O3", "E1", [("A", "no")])]
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result["participating"] == fig("300.00", 3)
    assert result["elected"] == ["A"]


# ---------------------------------------------------------------- live reuse and bad input


def test_meeting_tally_matches_tally_and_handles_revisions():
    rules = Rules(allow_revision=True)
    voters = electorate(100000, 100000, 100000)
    submissions = [vote("O1", choice="no", minutes=0), vote("O2"), vote("O1", choice="yes", minutes=5),
                   vote("O1", choice="abstain", minutes=2)]
    live = MeetingTally("m", rules, [RESOLUTION], voters)
    assert [live.submit(s) for s in submissions] == [True, True, True, False]
    assert live.figures()["M1"].by_choice["yes"] == Figure(200000, 2)
    assert live.figures()["M1"].by_choice["no"] == Figure(0, 0)
    assert live.result() == tally("m", rules, [RESOLUTION], voters, submissions)


def test_matter_tally_add_remove():
    running = MatterTally(RESOLUTION)
    s = vote("O1")
    running.add(s, 123450)
    assert running.figures().participating == Figure(123450, 1)
    running.remove(s, 123450)
    assert running.figures().participating == Figure(0, 0)


def test_malformed_submission_leaves_figures_untouched():
    running = MatterTally(election(1, 0, ["A"]))
    with pytest.raises(ValueError):
        running.add(ballot("O1", "E1", [("A", "yes"), ("Z", "yes")]), 100000)
    assert running.figures().participating == Figure(0, 0)
    assert running.figures().candidates["A"] == Figure(0, 0)


@pytest.mark.parametrize(
    "submission",
    [
        vote("nobody"),  # not a voting subject
        vote("O1", "M9"),  # unknown matter
        vote("O1", choice="maybe"),
        Submission("B", "O1", "M1", "electronic", T0, (("C1", "yes"),)),
        Submission("B", "O1", "M1", "fax", T0, (("", "yes"),)),
    ],
)
def test_engine_refuses_bad_submissions(submission):
    with pytest.raises(ValueError):
        tally("m", Rules(), [RESOLUTION], electorate(100000), [submission])


@pytest.mark.parametrize(
    "kwargs",
    [{"duplicate_policy": "paper_prevails"}, {"rank_by": "alphabetical"}, {"allow_revision": 1},
     {"count_parking_area": "yes"}],
)
def test_rules_refuse_unknown_values(kwargs):
    with pytest.raises(ValueError):
        Rules(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "poll"},
        {"category": 10},
        {"category": 0},
        {"kind": "election", "seats": 0, "candidates": (("A", "a"),)},
        {"kind": "election", "seats": 1, "alternates": -1, "candidates": (("A", "a"),)},
        {"kind": "election", "seats": 1, "candidates": (("A", "a"), ("A", "b"))},
        {"kind": "resolution", "seats": 1},
    ],
)
def test_matter_refuses_bad_definitions(kwargs):
    base = {"id": "X", "title": "t", "kind": "resolution", "category": 1}
    with pytest.raises(ValueError):
        Matter(**(base | kwargs))
