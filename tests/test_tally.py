"""The tally engine: worked examples of voting-rules.md, exact boundaries, elections, duplicates,
owner-set subjects, invalid ballots under both rules and scoped matters."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from server.ballot.tally import (
    Figure,
    Matter,
    MatterFigures,
    MatterTally,
    MeetingTally,
    RuleProblem,
    Rules,
    Submission,
    aggregate,
    decide_election,
    select_counted,
    tally,
    voter_problem,
)
from server.ballot.weights import RegisterInvalid, RegisterRow, compute_electorate

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


# ---------------------------------------------------------------- voting subjects are owner sets


def five_unit_register(representative_of_u1, representative_of_u2):
    """A and B jointly own u1 and u2; A alone owns u3; C owns u4; the developer holds u5."""
    def row(unit, owner, area, representative, holder="owner"):
        return RegisterRow(unit, "1号楼", "dwelling", area, "registry", holder, owner, representative)
    return [
        row("u1", "A", 100000, representative_of_u1 == "A"), row("u1", "B", 100000, representative_of_u1 == "B"),
        row("u2", "A", 80500, representative_of_u2 == "A"), row("u2", "B", 80500, representative_of_u2 == "B"),
        row("u3", "A", 60250, True),
        row("u4", "C", 90000, True),
        row("u5", "DEV", 120125, True, holder="developer"),
    ]


def test_five_unit_example_counts_the_joint_owners_once_whoever_represents_them():
    votes = [vote("A+B"), vote("A", choice="no"), vote("C")]
    results = []
    for representative in ("A", "B"):
        voters = compute_electorate(five_unit_register(representative, representative), count_parking_area=False)
        assert voters.subjects["A+B"].representative == representative
        results.append(tally("m", Rules(), [RESOLUTION], voters, votes))
    assert results[0] == results[1]
    result = results[0]
    # Four persons: A+B (180.5), A alone (60.25), C (90), the developer (120.125).
    assert result["totals"] == fig("450.875", 4)
    matter = only_matter(result)
    assert matter["participating"] == fig("330.750", 3)  # 3 * 330.75 >= 2 * 450.875, 3 * 3 >= 2 * 4
    assert matter["yes"] == fig("270.500", 2)  # one ballot of A+B carries both units and one person
    assert matter["no"] == fig("60.250", 1)
    assert matter["outcome"] == "passed"


def test_five_unit_example_with_split_representatives_is_refused():
    with pytest.raises(RegisterInvalid) as info:
        compute_electorate(five_unit_register("A", "B"), count_parking_area=False)
    assert [p.code for p in info.value.problems] == ["split_representatives"]


# ---------------------------------------------------------------- 0.001 m² boundaries


def test_participation_exactly_two_thirds_with_three_decimal_areas():
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100001, 100001, 100001),
                               [vote("O1"), vote("O2")]))
    assert matter["electorate"] == fig("300.003", 3)
    assert matter["participating"] == fig("200.002", 2)  # 3 * 200.002 == 2 * 300.003
    assert matter["quorum_met"] is True and matter["outcome"] == "passed"


def test_participation_one_thousandth_short_of_two_thirds():
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100001, 100001, 100002),
                               [vote("O1"), vote("O2")]))
    assert matter["participating"] == fig("200.002", 2)  # 3 * 200.002 < 2 * 300.004
    assert matter["quorum_met"] is False and matter["outcome"] == "no_quorum"


def test_majority_exactly_half_the_area_with_three_decimals_fails():
    # Two of three persons say yes, with exactly half the participating area.
    votes = [vote("O1"), vote("O2"), vote("O3", choice="no")]
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100001, 1, 100002), votes))
    assert matter["yes"] == fig("100.002", 2) and matter["participating"] == fig("200.004", 3)
    assert matter["outcome"] == "failed"
    matter = only_matter(tally("m", Rules(), [RESOLUTION], electorate(100001, 2, 100002), votes))
    assert matter["outcome"] == "passed"  # 100.003 of 200.005


def test_three_quarters_with_three_decimal_areas():
    votes = [vote("O1", "M6"), vote("O2", "M6"), vote("O3", "M6"), vote("O4", "M6", "no")]
    exactly = only_matter(tally("m", Rules(), [FUNDS], electorate(100001, 100001, 100001, 100001), votes))
    assert exactly["yes"] == fig("300.003", 3) and exactly["outcome"] == "passed"  # 4 * 300.003 == 3 * 400.004
    short = only_matter(tally("m", Rules(), [FUNDS], electorate(100001, 100001, 100000, 100002), votes))
    assert short["yes"] == fig("300.002", 3) and short["outcome"] == "failed"


def test_a_two_decimal_register_prints_two_decimals_and_a_three_decimal_one_three():
    two = tally("m", Rules(), [RESOLUTION], electorate(100000, 88500), [vote("O1")])
    assert two["totals"] == fig("188.50", 2)
    three = tally("m", Rules(), [RESOLUTION], electorate(100000, 88505), [vote("O1")])
    assert three["totals"] == fig("188.505", 2)
    assert only_matter(three)["no"] == fig("0.000", 0)


# ---------------------------------------------------------------- invalid ballots under the rule


ABSTAIN_RULE = Rules(invalid_ballot="abstain")
NOT_COUNTED_RULE = Rules(invalid_ballot="not_counted")


def test_invalid_ballot_rule_flips_quorum():
    votes = [vote("O1"), vote("O2", choice="invalid")]
    voters = electorate(100000, 100000, 100000)
    took_part = only_matter(tally("m", ABSTAIN_RULE, [RESOLUTION], voters, votes))
    assert took_part["participating"] == fig("200.00", 2) and took_part["quorum_met"] is True
    assert took_part["outcome"] == "failed"  # 1 yes of 2 taking part
    left_out = only_matter(tally("m", NOT_COUNTED_RULE, [RESOLUTION], voters, votes))
    assert left_out["participating"] == fig("100.00", 1) and left_out["quorum_met"] is False
    assert left_out["outcome"] == "no_quorum"
    for matter in (took_part, left_out):
        assert matter["invalid"] == fig("100.00", 1)  # reported under either rule
        assert matter["abstain"] == fig("0.00", 0)  # explicit abstentions only


def test_invalid_ballot_rule_flips_approval():
    votes = [vote("O1"), vote("O2"), vote("O3", choice="invalid"), vote("O4", choice="no")]
    voters = electorate(*[100000] * 4)
    took_part = only_matter(tally("m", ABSTAIN_RULE, [RESOLUTION], voters, votes))
    assert (took_part["participating"], took_part["outcome"]) == (fig("400.00", 4), "failed")  # 2 of 4
    left_out = only_matter(tally("m", NOT_COUNTED_RULE, [RESOLUTION], voters, votes))
    assert (left_out["participating"], left_out["outcome"]) == (fig("300.00", 3), "passed")  # 2 of 3
    assert took_part["invalid"] == left_out["invalid"] == fig("100.00", 1)


def test_invalid_is_the_default_rule_abstain():
    assert Rules().invalid_ballot == "abstain"
    votes = [vote("O1"), vote("O2", choice="invalid")]
    voters = electorate(100000, 100000, 100000)
    assert tally("m", Rules(), [RESOLUTION], voters, votes) == tally("m", ABSTAIN_RULE, [RESOLUTION], voters, votes)


def test_blank_and_over_marked_election_ballots_are_invalid_under_the_rule():
    matter = election(1, 0, ["A", "B"])
    voters = electorate(*[100000] * 4)
    submissions = [
        ballot("O1", "E1", [("A", "yes")]),
        ballot("O2", "E1", [("A", "yes")]),
        ballot("O3", "E1", [("B", "yes")]),
        ballot("O4", "E1", [("", "invalid")]),  # blank or unclear
    ]
    took_part = only_matter(tally("m", ABSTAIN_RULE, [matter], voters, submissions))
    assert took_part["participating"] == fig("400.00", 4) and took_part["outcome"] == "failed"  # A: 2 of 4
    left_out = only_matter(tally("m", NOT_COUNTED_RULE, [matter], voters, submissions))
    assert left_out["participating"] == fig("300.00", 3) and left_out["elected"] == ["A"]  # A: 2 of 3
    assert took_part["invalid"] == left_out["invalid"] == fig("100.00", 1)

    over_marked = [*submissions[:3], ballot("O4", "E1", [("A", "yes"), ("B", "yes")])]
    left_out = only_matter(tally("m", NOT_COUNTED_RULE, [matter], voters, over_marked))
    assert left_out["invalid"] == fig("100.00", 1) and left_out["elected"] == ["A"]
    figures = aggregate([matter], voters, over_marked, NOT_COUNTED_RULE)["E1"]
    assert figures.spoiled == figures.invalid == Figure(100000, 1)
    assert figures.participating == Figure(300000, 3)


def test_a_revision_to_an_invalid_ballot_counts_as_the_voters_ballot():
    rules = Rules(allow_revision=True, invalid_ballot="not_counted")
    voters = electorate(100000, 100000, 100000)
    submissions = [vote("O1", minutes=0), vote("O2", minutes=0), vote("O1", choice="invalid", minutes=5)]
    live = MeetingTally("m", rules, [RESOLUTION], voters)
    assert [live.submit(s) for s in submissions] == [True, True, True]
    figures = live.figures()["M1"]
    assert figures.participating == Figure(100000, 1) and figures.invalid == Figure(100000, 1)
    assert figures.by_choice["yes"] == Figure(100000, 1)
    assert live.result() == tally("m", rules, [RESOLUTION], voters, submissions)
    assert live.submit(vote("O1", choice="no", minutes=9))  # and back to a valid one
    assert live.figures()["M1"].invalid == Figure(0, 0)
    assert live.figures()["M1"].participating == Figure(200000, 2)


@pytest.mark.parametrize(
    "choices",
    [(), (("", "invalid"), ("A", "yes")), (("A", "invalid"),), (("", "yes"),), (("", "invalid"), ("", "invalid"))],
)
def test_malformed_election_ballots_are_refused(choices):
    running = MatterTally(election(1, 0, ["A"]), "not_counted")
    with pytest.raises(ValueError):
        running.add(ballot("O1", "E1", choices), 100000)
    assert running.figures().invalid == Figure(0, 0)


def test_invalid_ballot_rule_values():
    with pytest.raises(RuleProblem) as info:
        Rules(invalid_ballot="ignore")
    assert info.value.key == "invalid_ballot" and "not_counted" in str(info.value)
    assert Rules.from_json({"invalid_ballot": "not_counted"}) == NOT_COUNTED_RULE
    assert NOT_COUNTED_RULE.to_json()["invalid_ballot"] == "not_counted"
    with pytest.raises(ValueError):
        MatterTally(RESOLUTION, "ignore")


# ---------------------------------------------------------------- scoped matters


def scoped_electorate():
    def row(unit, building, owner, area, representative=True):
        return RegisterRow(unit, building, "dwelling", area, "registry", "owner", owner, representative)
    return compute_electorate([
        row("1-1", "1号楼", "X", 100000),
        row("1-2", "1号楼", "Y", 100000),
        row("2-1", "2号楼", "Y", 50000),
        row("2-2", "2号楼", "Z", 100000),
        row("2-3", "2号楼", "X", 80000, representative=False),
        row("2-3", "2号楼", "Z", 80000),
    ], count_parking_area=False)


LIFT = Matter("L2", "2号楼加装电梯", "resolution", 7, scope=("2号楼",))


def test_a_scoped_matter_has_its_own_electorate():
    voters = scoped_electorate()
    votes = [vote("Z", "L2"), vote("X+Z", "L2"), vote("X", "M1"), vote("Y", "M1")]
    result = tally("m", Rules(), [LIFT, RESOLUTION], voters, votes)
    assert result["totals"] == fig("430.00", 4)
    lift, whole = result["matters"]
    # 2号楼: Y with 50 m² there (not its 100 m² in 1号楼), Z 100, X+Z 80.
    assert lift["electorate"] == fig("230.00", 3)
    assert lift["participating"] == fig("180.00", 2)  # 3 * 180 >= 2 * 230 and 3 * 2 >= 2 * 3
    assert lift["yes"] == fig("180.00", 2)
    assert (lift["quorum_met"], lift["outcome"]) == (True, "passed")
    assert whole["electorate"] == fig("430.00", 4)
    assert whole["participating"] == fig("250.00", 2)
    assert whole["outcome"] == "no_quorum"  # 2 of 4 persons

    live = MeetingTally("m", Rules(), [LIFT, RESOLUTION], voters)
    for submission in votes:
        live.submit(submission)
    assert live.result() == result
    assert live.electorates["L2"].total_area == 230000 and live.electorates["M1"].total_persons == 4


def test_a_ballot_from_outside_the_scope_is_refused():
    voters = scoped_electorate()
    assert voter_problem(LIFT, "Y", voters) is None
    assert "范围" in voter_problem(LIFT, "X", voters)
    assert "不是有表决权的业主" in voter_problem(LIFT, "nobody", voters)
    assert voter_problem(RESOLUTION, "X", voters) is None
    with pytest.raises(ValueError, match="范围"):
        tally("m", Rules(), [LIFT], voters, [vote("X", "L2")])
    with pytest.raises(ValueError, match="范围"):
        MeetingTally("m", Rules(), [LIFT], voters).submit(vote("X", "L2"))


def test_a_scoped_election_weighs_areas_in_the_scope():
    matter = Matter("E2", "2号楼楼长", "election", 3, 1, 0, (("A", "甲"), ("B", "乙")), ("2号楼",))
    voters = scoped_electorate()
    submissions = [ballot("Y", "E2", [("A", "yes")]), ballot("Z", "E2", [("B", "yes")]),
                   ballot("X+Z", "E2", [("B", "yes")])]
    result = only_matter(tally("m", Rules(), [matter], voters, submissions))
    assert result["candidates"] == [
        {"id": "A", "yes": fig("50.00", 1), "passed": False},
        {"id": "B", "yes": fig("180.00", 2), "passed": True},
    ]
    assert result["elected"] == ["B"]


@pytest.mark.parametrize("scope", [["2号楼"], ("2号楼", "2号楼"), ("",), "2号楼"])
def test_matter_refuses_a_bad_scope(scope):
    with pytest.raises(ValueError):
        Matter("L", "t", "resolution", 1, scope=scope)
