"""Pure election rules (server.ballot.elections): seats, formation, runoff plans, promotion,
terms, deadlines and the party-member share.  Results come from the real engine (tally)."""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.ballot import elections as el
from server.ballot.tally import Figure, Matter, MatterFigures, matter_result
from server.ballot.weights import Electorate

# 10 voters of 100.00 m² each: totals 1000.00 m², 10 persons (areas in milli-m²).
ELECTORATE = Electorate(subjects={}, total_area=1_000_000, total_persons=10, by_building={})


def result_for(seats: int, alternates: int, yes: dict[str, tuple[int, int]], *, participating=(10, 100_000),
               rank_by: str = "persons_then_area") -> dict:
    """The engine's evote-result/2 matter for candidates with (persons, area in 0.01 m²) yes figures."""
    ids = list(yes)
    matter = Matter(id="E1", title="选举", kind="election", category=3, seats=seats, alternates=alternates,
                    candidates=tuple((c, c) for c in ids))
    figures = MatterFigures("E1", Figure(participating[1] * 10, participating[0]),
                            candidates={c: Figure(a * 10, p) for c, (p, a) in yes.items()})
    return matter_result(matter, figures, ELECTORATE, rank_by)


def formation(seats, alternates, yes, **kw):
    return el.decide_formation(result_for(seats, alternates, yes, **kw), seats=seats, alternates=alternates,
                               rank_by=kw.get("rank_by", "persons_then_area"))


def test_default_alternates_is_forty_percent_rounded_half_up():
    assert [el.default_alternates(s) for s in (3, 4, 5, 7, 9, 11)] == [1, 2, 2, 3, 4, 4]


@given(st.integers(min_value=1, max_value=1000))
def test_default_alternates_matches_exact_rounding(seats):
    exact = Fraction(2, 5) * seats
    assert el.default_alternates(seats) == int(exact + Fraction(1, 2))  # floor(x + 1/2) = half up


def test_seat_rules_per_body():
    assert el.check_seats("committee", 5) is None and el.check_seats("committee", 11) is None
    assert el.check_seats("committee", 6) == "业主委员会委员应为 5 至 11 人的单数"
    assert el.check_seats("committee", 13) and el.check_seats("committee", 3)
    assert el.check_seats("supervisory", 3) is None and el.check_seats("supervisory", 4) is None
    assert el.check_seats("supervisory", 6) == "监事会成员应为 3 至 5 人"
    assert el.check_seats("other", 1) is None and el.check_seats("other", 0)


def test_all_seats_filled_forms_the_committee():
    yes = {f"C{i}": (9, 95_000 - i * 1000) for i in range(1, 8)}  # C1..C7 pass, distinct areas
    f = formation(5, 2, yes)
    assert f.formed and f.reason == "" and f.runoff is None
    assert f.elected == ("C1", "C2", "C3", "C4", "C5") and f.alternates == ("C6", "C7")


def test_no_quorum_is_not_formed_and_says_so():
    yes = {f"C{i}": (6, 60_000) for i in range(1, 6)}
    f = formation(5, 2, yes, participating=(6, 60_000))  # 6/10 < 2/3
    assert not f.formed and not f.quorum_met and f.runoff is None
    assert f.reason.startswith("未达参与表决法定比例")


def test_exact_tie_at_the_last_seat_needs_a_runoff_for_that_seat():
    # C1..C4 distinct, C5 and C6 tie on both persons and area for seat 5, C7 below.
    yes = {"C1": (10, 100_000), "C2": (9, 90_000), "C3": (8, 80_000), "C4": (7, 70_000),
           "C5": (6, 60_000), "C6": (6, 60_000), "C7": (6, 55_000)}
    f = formation(5, 2, yes)
    assert not f.formed
    assert f.elected == ("C1", "C2", "C3", "C4") and f.alternates == ()
    assert f.reason.startswith("第 5 席出现票数完全相同（候选人 C5、C6），需另行选举")
    plan = f.runoff
    # the tied pair covers place 5 (a seat) and place 6 (an alternate place)
    assert (plan.kind, plan.first_place, plan.seat_places, plan.alternate_places) == ("tie", 5, 1, 1)
    assert plan.candidates == ("C5", "C6") and plan.fills == "seats"
    assert (plan.matter_seats, plan.matter_alternates) == (2, 0)  # ranks C5, C6 over both places
    assert plan.continuation == (("C7",),)


def test_tie_across_several_seats_names_the_range():
    yes = {"C1": (10, 100_000), "C2": (9, 90_000), "C3": (8, 80_000),
           "C4": (7, 70_000), "C5": (7, 70_000), "C6": (7, 70_000)}
    f = formation(5, 2, yes)
    assert f.reason.startswith("第 4 至 5 席出现票数完全相同")
    assert (f.runoff.seat_places, f.runoff.alternate_places) == (2, 1)


def test_same_persons_different_area_is_not_a_tie():
    yes = {"C1": (10, 100_000), "C2": (9, 90_000), "C3": (8, 80_000), "C4": (7, 70_000),
           "C5": (6, 60_001), "C6": (6, 60_000)}
    f = formation(5, 2, yes)
    assert f.formed and f.elected[-1] == "C5" and f.alternates == ("C6",)
    assert f.notes == ("候补委员应有 2 人，实有 1 人",)


def test_exact_tie_at_the_last_alternate_place_forms_the_committee_with_a_note():
    yes = {"C1": (10, 100_000), "C2": (9, 90_000), "C3": (8, 80_000), "C4": (7, 70_000),
           "C5": (7, 69_000), "C6": (6, 60_000), "C7": (6, 60_000)}
    f = formation(5, 1, yes)  # one alternate place, C6 and C7 tie for it
    assert f.formed and f.elected == ("C1", "C2", "C3", "C4", "C5") and f.alternates == ()
    assert f.notes == ("候补第 1 位出现票数完全相同（候选人 C6、C7），需另行选举候补委员",)
    plan = f.runoff
    assert (plan.first_place, plan.seat_places, plan.alternate_places, plan.fills) == (6, 0, 1, "alternates")
    assert (plan.matter_seats, plan.matter_alternates) == (1, 0)


def test_too_few_passing_candidates_leave_seats_empty():
    # only C1..C3 reach more than half (persons 6 of 10 and area)
    yes = {"C1": (8, 80_000), "C2": (7, 70_000), "C3": (6, 60_000), "C4": (5, 90_000), "C5": (4, 40_000)}
    f = formation(5, 2, yes)
    assert not f.formed and f.elected == ("C1", "C2", "C3")
    assert f.reason == "当选人数不足 5 人（当选 3 人），需另行选举补足 2 席"
    assert (f.runoff.kind, f.runoff.seat_places, f.runoff.alternate_places, f.runoff.candidates) == \
        ("shortage", 2, 2, ())


def test_candidate_passing_on_persons_but_not_on_area_is_not_elected():
    # C5: 6 of 10 persons (> half) but only 400.00 of 1000.00 m² (not > half)
    yes = {"C1": (9, 90_000), "C2": (8, 80_000), "C3": (7, 70_000), "C4": (6, 60_000), "C5": (6, 40_000)}
    r = result_for(5, 2, yes)
    assert [c["passed"] for c in r["candidates"]] == [True, True, True, True, False]
    f = formation(5, 2, yes)
    assert not f.formed and "C5" not in f.elected and f.reason.startswith("当选人数不足 5 人")


def test_formation_refuses_a_result_that_does_not_match_its_figures():
    r = result_for(5, 2, {f"C{i}": (9, 90_000 - i) for i in range(1, 6)})
    r["elected"] = ["C2", "C1", "C3", "C4", "C5"]
    with pytest.raises(ValueError):
        el.decide_formation(r, seats=5, alternates=2, rank_by="persons_then_area")


def test_merge_runoff_fills_seat_then_alternates_then_continuation():
    plan = el.RunoffPlan("tie", 5, 1, 1, ("C5", "C6"), (("C7",), ("C8", "C9")))
    merge = el.merge_runoff(plan, (("C6",), ("C5",)), (), alternate_places_left=2)
    assert merge.members == ("C6",) and merge.alternates == ("C5",) and merge.continued == ("C7",)
    assert merge.still_tied == ()
    # three places left: C7 fits, then C8/C9 tie across the last place
    merge = el.merge_runoff(plan, (("C6",), ("C5",)), (), alternate_places_left=3)
    assert merge.continued == ("C7",) and merge.still_tied == ("C8", "C9")
    # the loser did not pass the runoff: the continuation moves up
    merge = el.merge_runoff(plan, (("C6",),), (), alternate_places_left=2)
    assert merge.alternates == () and merge.continued == ("C7",)
    # tied again across the seat: nothing is placed
    merge = el.merge_runoff(plan, (("C5", "C6"),), (), alternate_places_left=2)
    assert merge.members == () and merge.alternates == () and merge.still_tied == ("C5", "C6")
    # tied again at the runoff's last place
    merge = el.merge_runoff(plan, (), ("C5", "C6"), alternate_places_left=2)
    assert merge.members == () and merge.continued == () and merge.still_tied == ("C5", "C6")


def test_merge_runoff_for_alternate_places_makes_alternates():
    plan = el.RunoffPlan("tie", 6, 0, 1, ("C6", "C7"))
    merge = el.merge_runoff(plan, (("C7",),), (), alternate_places_left=1)
    assert merge.members == () and merge.alternates == ("C7",)


def test_promotion_takes_the_first_alternate_in_vote_order():
    assert el.promote((7, 6)) == el.Promotion(7, (6,))
    assert el.promote(()) == el.Promotion(None, ())


def test_term_is_three_to_five_years():
    start = date(2026, 5, 1)
    assert el.check_term(start, date(2029, 5, 1)) is None
    assert el.check_term(start, date(2031, 5, 1)) is None
    assert el.check_term(start, date(2029, 4, 30)) == "任期应为 3 至 5 年"
    assert el.check_term(start, date(2031, 5, 2)) == "任期应为 3 至 5 年"
    assert el.add_years(date(2028, 2, 29), 3) == date(2031, 2, 28)


def test_deadline_states_at_their_boundaries():
    due = date(2026, 5, 4)
    state = el.deadline_state
    assert state(due, due - timedelta(days=2), due_soon_days=1) == "on_time"
    assert state(due, due - timedelta(days=1), due_soon_days=1) == "due_soon"
    assert state(due, due, due_soon_days=1) == "due_soon"
    assert state(due, due + timedelta(days=1), due_soon_days=1) == "overdue"
    assert state(due, due + timedelta(days=1), done_on=due + timedelta(days=1)) == "done"
    assert state(due, due - timedelta(days=8)) == "on_time"
    assert state(due, due - timedelta(days=7)) == "due_soon"
    with pytest.raises(ValueError):
        state(due, due, due_soon_days=-1)


def test_party_share_is_exact_and_compared_with_half():
    share = el.party_share([True, True, False, False, True])
    assert share.share == Fraction(3, 5) and share.percent == "60.0%" and share.meets_target
    share = el.party_share([True, False, False])
    assert share.percent == "33.3%" and not share.meets_target
    assert el.party_share([True, False]).meets_target  # exactly 50% meets "at least 50%"
    assert el.party_share([True, True, False]).percent == "66.7%"  # 66.66… rounds half up
    assert not el.party_share([]).meets_target


@given(st.lists(st.booleans(), min_size=1, max_size=11))
def test_party_share_target_agrees_with_integer_comparison(flags):
    share = el.party_share(flags)
    assert share.meets_target == (2 * sum(flags) >= len(flags))


@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 10)), min_size=1, max_size=9),
       st.sampled_from([5, 7]))
def test_formation_places_agree_with_the_engine(figures, seats):
    """Whatever the figures: members + alternates + runoff places never exceed the places,
    and formed means every seat is filled."""
    yes = {f"C{i}": (p, p * 10_000 + a) for i, (p, a) in enumerate(figures, start=1)}
    alternates = el.default_alternates(seats)
    r = result_for(seats, alternates, yes)
    f = el.decide_formation(r, seats=seats, alternates=alternates, rank_by="persons_then_area")
    assert list(f.elected) == r["elected"] and list(f.alternates) == r["alternates"]
    assert f.formed == (len(f.elected) == seats)
    if f.runoff and f.runoff.kind == "tie":
        assert set(f.runoff.candidates) == set(r["runoff_needed"])
        assert f.runoff.first_place == len(f.elected) + len(f.alternates) + 1
        last = f.runoff.first_place - 1 + f.runoff.seat_places + f.runoff.alternate_places
        assert last <= seats + alternates
        assert f.runoff.seat_places + f.runoff.alternate_places <= len(f.runoff.candidates)


def test_formation_reads_a_result_printed_with_three_decimals():
    electorate = Electorate(subjects={}, total_area=1_000_005, total_persons=10, by_building={}, places=3)
    matter = Matter(id="E1", title="选举", kind="election", category=3, seats=1, alternates=1,
                    candidates=(("C1", "C1"), ("C2", "C2")))
    figures = MatterFigures("E1", Figure(1_000_005, 10),
                            candidates={"C1": Figure(600_001, 6), "C2": Figure(600_002, 6)})
    result = matter_result(matter, figures, electorate, "persons_then_area")
    assert result["participating"] == {"area": "1000.005", "persons": 10}
    assert result["candidates"][1]["yes"] == {"area": "600.002", "persons": 6}
    f = el.decide_formation(result, seats=1, alternates=1, rank_by="persons_then_area")
    assert f.formed and f.elected == ("C2",) and f.alternates == ("C1",)  # 0.001 m² decides the rank


@pytest.mark.parametrize("area", ["1000.0", "1000.0005", "1,000.00", "-1.00", "１.00", "1e3"])
def test_formation_refuses_a_badly_printed_area(area):
    result = result_for(5, 2, {f"C{i}": (9, 90_000 - i) for i in range(1, 6)})
    result["participating"]["area"] = area
    with pytest.raises(ValueError):
        el.decide_formation(result, seats=5, alternates=2, rank_by="persons_then_area")
