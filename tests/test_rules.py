"""Art. 278 thresholds and shortfalls, at their exact boundaries."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.ballot.rules import (
    MAJORITY,
    THREE_QUARTERS,
    Shortfall,
    passes,
    quorum_met,
    quorum_shortfall,
    threshold_for_category,
    yes_shortfall_converts,
    yes_shortfall_new_voters,
)

SETTINGS = settings(max_examples=200, deadline=None)


@pytest.mark.parametrize(("category", "threshold"), [(c, MAJORITY) for c in (1, 2, 3, 4, 5, 9)]
                         + [(c, THREE_QUARTERS) for c in (6, 7, 8)])
def test_threshold_follows_category(category, threshold):
    assert threshold_for_category(category) == threshold


@pytest.mark.parametrize("category", [0, 10, -1, True, "6", 6.0, None])
def test_unknown_category(category):
    with pytest.raises(ValueError):
        threshold_for_category(category)


def test_quorum_exactly_two_thirds_is_met():
    # Three owners of 100 m², two take part: 200/300 and 2/3 persons.
    assert quorum_met(20000, 2, 30000, 3)


def test_quorum_one_unit_short_is_not_met():
    assert not quorum_met(19999, 2, 29999 + 1, 3)
    assert not quorum_met(20000 - 1, 2, 30000, 3)


def test_quorum_needs_both_axes():
    assert not quorum_met(30000, 1, 30000, 3)  # all the area, one person of three
    assert not quorum_met(100, 3, 30000, 3)  # every person, almost no area


def test_majority_exactly_half_fails():
    assert not passes(MAJORITY, 20000, 2, 40000, 4)
    assert passes(MAJORITY, 20001, 3, 40000, 4)


def test_abstention_is_in_the_denominator():
    # yes, yes, no, abstain: 2 of 4 participating, not 2 of 3.
    assert not passes(MAJORITY, 20000, 2, 40000, 4)


def test_three_quarters_exactly_passes_and_just_below_fails():
    assert passes(THREE_QUARTERS, 30000, 3, 40000, 4)
    assert not passes(THREE_QUARTERS, 29999, 3, 40000, 4)
    assert not passes(THREE_QUARTERS, 30000, 2, 40000, 4)


def test_persons_pass_but_area_fails():
    # Three small owners say yes, one big owner says no.
    assert not passes(MAJORITY, 30000, 3, 90000, 4)
    assert not passes(THREE_QUARTERS, 30000, 3, 90000, 4)


def test_area_passes_but_persons_fail():
    assert not passes(MAJORITY, 60000, 1, 90000, 4)


def test_unknown_threshold():
    with pytest.raises(ValueError):
        passes("two_thirds", 1, 1, 1, 1)


@pytest.mark.parametrize("threshold", [MAJORITY, THREE_QUARTERS])
def test_with_nobody_taking_part_the_yes_line_is_not_met(threshold):
    """0 >= 3/4 * 0 holds, but nobody voting approves nothing: one yes voter is still missing."""
    assert yes_shortfall_new_voters(threshold, 0, 0, 0, 0) == Shortfall(1, 1)
    assert not yes_shortfall_new_voters(threshold, 0, 0, 0, 0).met
    assert yes_shortfall_converts(threshold, 0, 0, 0, 0) == Shortfall(1, 1)
    # only the axis with nobody on it: persons known, area nil (not a real register, but each axis stands alone)
    assert yes_shortfall_new_voters(threshold, 0, 3, 0, 3).area == 1


def test_quorum_shortfall_examples():
    assert quorum_shortfall(20000, 2, 30000, 3) == Shortfall(0, 0)
    assert quorum_shortfall(20000, 2, 30000, 3).met
    assert quorum_shortfall(19999, 1, 30000, 3) == Shortfall(1, 1)
    assert quorum_shortfall(0, 0, 30001, 4) == Shortfall(20001, 3)  # ceil(60002/3), ceil(8/3)


def test_yes_shortfall_examples():
    # 4 participants of 100 m², 2 yes: one more yes person is needed either way.
    assert yes_shortfall_new_voters(MAJORITY, 20000, 2, 40000, 4) == Shortfall(1, 1)
    assert yes_shortfall_converts(MAJORITY, 20000, 2, 40000, 4) == Shortfall(1, 1)
    # Three quarters, 2 yes of 4: new voters must bring 4 (6 of 8), converts 1 (3 of 4).
    assert yes_shortfall_new_voters(THREE_QUARTERS, 20000, 2, 40000, 4) == Shortfall(40000, 4)
    assert yes_shortfall_converts(THREE_QUARTERS, 20000, 2, 40000, 4) == Shortfall(10000, 1)
    assert yes_shortfall_converts(THREE_QUARTERS, 30000, 3, 40000, 4).met


sizes = st.integers(min_value=0, max_value=10**9)


@SETTINGS
@given(part=sizes, extra=sizes)
def test_quorum_matches_fractions(part, extra):
    total = part + extra
    if total == 0:
        return
    expected = Fraction(part, total) >= Fraction(2, 3)
    assert quorum_met(part, 1, total, 1) == expected
    assert quorum_met(1, part, 1, total) == expected


@SETTINGS
@given(yes=sizes, other=sizes)
def test_passes_matches_fractions(yes, other):
    part = yes + other
    if part == 0:
        return
    assert passes(MAJORITY, yes, 1, part, 1) == (Fraction(yes, part) > Fraction(1, 2))
    assert passes(THREE_QUARTERS, yes, 1, part, 1) == (Fraction(yes, part) >= Fraction(3, 4))


@SETTINGS
@given(part=sizes, extra=sizes, persons_part=st.integers(0, 5000), persons_extra=st.integers(0, 5000))
def test_quorum_shortfall_is_the_exact_minimum(part, extra, persons_part, persons_extra):
    total, total_persons = part + extra, persons_part + persons_extra
    need = quorum_shortfall(part, persons_part, total, total_persons)
    assert quorum_met(part + need.area, 1, total, 1)
    assert need.area == 0 or not quorum_met(part + need.area - 1, 1, total, 1)
    assert quorum_met(1, persons_part + need.persons, 1, total_persons)
    assert need.persons == 0 or not quorum_met(1, persons_part + need.persons - 1, 1, total_persons)
    assert need.area <= extra and need.persons <= persons_extra  # always reachable


@SETTINGS
@given(yes=sizes, other=sizes, threshold=st.sampled_from([MAJORITY, THREE_QUARTERS]))
def test_yes_shortfalls_are_exact_minimums(yes, other, threshold):
    part = yes + other
    new = yes_shortfall_new_voters(threshold, yes, yes, part, part)
    assert new.area == new.persons
    x = new.area
    assert passes(threshold, yes + x, 1, part + x, 0)
    assert part + x > 0  # nobody taking part approves nothing, whatever the bare formula says
    if x and part + x - 1 > 0:
        assert not passes(threshold, yes + x - 1, 1, part + x - 1, 0)

    convert = yes_shortfall_converts(threshold, yes, yes, part, part)
    y = convert.area
    assert passes(threshold, yes + y, 1, part, 0)
    if part > 0:
        if y:
            assert not passes(threshold, yes + y - 1, 1, part, 0)
        assert y <= other  # converts come from the non-yes participants
    else:
        assert y == 1 and not convert.met  # nobody to convert: something is missing, never "met"


# ---------------------------------------------------------------- the one model of a meeting's rules

def test_rules_fields_follow_the_rule_options():
    import dataclasses

    from server.ballot.tally import RULE_DEFAULTS, RULE_OPTIONS, Rules
    assert tuple(f.name for f in dataclasses.fields(Rules)) == tuple(o.key for o in RULE_OPTIONS)
    assert Rules().to_json() == dict(RULE_DEFAULTS)


def test_rules_from_json_fills_defaults_and_refuses_bad_values():
    from server.ballot.tally import RuleProblem, Rules
    assert Rules.from_json({"allow_revision": True}).to_json() == {
        "count_parking_area": False, "allow_revision": True,
        "duplicate_policy": "electronic_prevails", "rank_by": "persons_then_area", "invalid_ballot": "abstain"}
    assert Rules.from_json({"future_rule": 1}) == Rules()  # ignored where stored rules are read
    with pytest.raises(RuleProblem) as unknown:
        Rules.from_json({"future_rule": 1}, refuse_unknown=True)
    assert unknown.value.key == "future_rule" and "未知的规则" in str(unknown.value)
    with pytest.raises(RuleProblem) as flag:
        Rules.from_json({"allow_revision": "yes"})
    assert flag.value.key == "allow_revision" and "true 或 false" in str(flag.value)
    with pytest.raises(RuleProblem) as choice:
        Rules.from_json({"duplicate_policy": "last"})
    assert choice.value.key == "duplicate_policy" and "first_received" in str(choice.value)
