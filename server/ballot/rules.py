"""The thresholds of Civil Code art. 278, in exact integer arithmetic.

Areas are integers of milli-m² (0.001 m²); persons are integers.  Every ratio is
compared by cross-multiplying, never by dividing, so "exactly two thirds" is
exactly two thirds.  Participation counts whoever took part; an invalid ballot
takes part or not as the meeting's ``invalid_ballot`` rule says (the tally
decides that, these formulas take the figures as given).  The caller decides quorum first: a decision without quorum is "no
decision" (未达参与表决法定比例), not "rejected".
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAJORITY",
    "THREE_QUARTERS",
    "THREE_QUARTERS_CATEGORIES",
    "THRESHOLDS",
    "THRESHOLD_DESCRIPTIONS",
    "THRESHOLD_NAMES",
    "THRESHOLD_PERCENT",
    "Shortfall",
    "passes",
    "quorum_met",
    "quorum_shortfall",
    "threshold_for_category",
    "yes_shortfall_converts",
    "yes_shortfall_new_voters",
]

MAJORITY = "majority"  # 过半数: strictly more than half of participating area and persons
THREE_QUARTERS = "three_quarters"  # 四分之三以上: at least 3/4 of participating area and persons
THRESHOLDS = (MAJORITY, THREE_QUARTERS)
# What each threshold is called, briefly and in full, wherever a person reads it.
THRESHOLD_NAMES = {MAJORITY: "过半数", THREE_QUARTERS: "四分之三以上"}
THRESHOLD_DESCRIPTIONS = {
    MAJORITY: "过半数同意（面积、人数均须超过参与表决的一半）",
    THREE_QUARTERS: "四分之三以上同意（面积、人数均须达到参与表决的四分之三）",
}
# The line a yes share must reach, in percent of participation (for bars on pages).
THRESHOLD_PERCENT = {MAJORITY: 50, THREE_QUARTERS: 75}

# Art. 278 items 6 (raise maintenance funds), 7 (renovate or rebuild), 8 (change the
# use of common parts or run a business on them).  Item 5 (use the funds) is majority.
THREE_QUARTERS_CATEGORIES = frozenset({6, 7, 8})
CATEGORIES = range(1, 10)


def threshold_for_category(category: int) -> str:
    """The threshold of an art. 278 item number (1–9); it is derived, never entered."""
    if isinstance(category, bool) or not isinstance(category, int) or category not in CATEGORIES:
        raise ValueError(f"事项类别 {category!r} 无效，应为《民法典》第二百七十八条的第 1–9 项")
    return THREE_QUARTERS if category in THREE_QUARTERS_CATEGORIES else MAJORITY


def quorum_met(part_area: int, part_persons: int, total_area: int, total_persons: int) -> bool:
    """Participation of at least 2/3 of the total area AND of the total persons.

    "以上" includes the number itself (art. 1259), hence ``>=``.
    """
    return 3 * part_area >= 2 * total_area and 3 * part_persons >= 2 * total_persons


def passes(threshold: str, yes_area: int, yes_persons: int, part_area: int, part_persons: int) -> bool:
    """Whether the yes side meets ``threshold`` against the participating figures.

    - majority: ``2*A_yes > A_part and 2*N_yes > N_part`` (过半数 is strict);
    - three_quarters: ``4*A_yes >= 3*A_part and 4*N_yes >= 3*N_part``.

    Abstentions are part of ``part_*`` and not of ``yes_*``.  This is the bare
    formula: with nobody participating three_quarters holds vacuously, which
    never shows in a result because quorum then fails (totals are positive).
    """
    if threshold == MAJORITY:
        return 2 * yes_area > part_area and 2 * yes_persons > part_persons
    if threshold == THREE_QUARTERS:
        return 4 * yes_area >= 3 * part_area and 4 * yes_persons >= 3 * part_persons
    raise ValueError(f"unknown threshold {threshold!r}")


@dataclass(frozen=True, slots=True)
class Shortfall:
    """What is still missing, per axis: area in milli-m² and persons.

    The two figures are independent minimums, one per axis: each says how much
    more of that axis alone is needed.  Both axes must be met, and real people
    bring area and a person together, so the need is met only when both reach
    zero.  For a dashboard: "还需 {persons} 户 / {format_area(area_ceiling(area, places), places)} m²"
    (a need is rounded up to what the register's decimals show, never down).
    """

    area: int
    persons: int

    @property
    def met(self) -> bool:
        return self.area == 0 and self.persons == 0


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def quorum_shortfall(part_area: int, part_persons: int, total_area: int, total_persons: int) -> Shortfall:
    """The smallest additional participating area and persons that reach quorum.

    Per axis, the smallest ``x >= 0`` with ``3*(part + x) >= 2*total``.  Zero on
    an axis that is already met.  Always reachable: 2/3 of the total never
    exceeds the total.
    """
    return Shortfall(
        area=max(0, _ceil_div(2 * total_area - 3 * part_area, 3)),
        persons=max(0, _ceil_div(2 * total_persons - 3 * part_persons, 3)),
    )


def _need_from_new_voters(threshold: str, yes: int, part: int) -> int:
    # New participants voting yes raise both yes and part by x.  With nobody taking part, nothing
    # is approved: at least one must come (0 >= 3/4 * 0 holds, but approves nothing).
    at_least = 1 if part == 0 else 0
    if threshold == MAJORITY:
        return max(at_least, part - 2 * yes + 1)  # smallest x with 2(yes+x) > part+x
    if threshold == THREE_QUARTERS:
        return max(at_least, 3 * part - 4 * yes)  # smallest x with 4(yes+x) >= 3(part+x)
    raise ValueError(f"unknown threshold {threshold!r}")


def _need_from_converts(threshold: str, yes: int, part: int) -> int:
    # Participants switching from no/abstain to yes raise yes by x, part unchanged; with nobody
    # taking part there is nobody to convert, and the figure 1 only says something is missing.
    at_least = 1 if part == 0 else 0
    if threshold == MAJORITY:
        return max(at_least, (part - 2 * yes) // 2 + 1)  # smallest x with 2(yes+x) > part
    if threshold == THREE_QUARTERS:
        return max(at_least, _ceil_div(3 * part - 4 * yes, 4))  # smallest x with 4(yes+x) >= 3*part
    raise ValueError(f"unknown threshold {threshold!r}")


def yes_shortfall_new_voters(
    threshold: str, yes_area: int, yes_persons: int, part_area: int, part_persons: int
) -> Shortfall:
    """The smallest additional yes area and persons to pass, if they come from NEW participants.

    Per axis, the smallest ``x >= 0`` such that the threshold holds with
    ``yes + x`` against ``part + x`` (a new yes voter also joins the
    participants, so the denominator grows too).  Zero on an axis already met; never zero on
    an axis where nobody takes part (``part == 0``): nothing is approved by nobody, although
    the bare three-quarters formula holds for 0 against 0.
    """
    return Shortfall(
        area=_need_from_new_voters(threshold, yes_area, part_area),
        persons=_need_from_new_voters(threshold, yes_persons, part_persons),
    )


def yes_shortfall_converts(
    threshold: str, yes_area: int, yes_persons: int, part_area: int, part_persons: int
) -> Shortfall:
    """The smallest additional yes area and persons to pass, if they come from CONVERTS.

    A convert is a participant who changes a no or abstain to yes (where the
    rules allow revision): yes grows by ``x``, participation does not.  Per axis,
    the smallest ``x >= 0`` such that the threshold holds with ``yes + x``
    against ``part``.  It never exceeds the non-yes participants
    (``part - yes``) except when nobody takes part on that axis, where converts
    cannot help and the figure (1, whatever the threshold) only says what is missing.
    """
    return Shortfall(
        area=_need_from_converts(threshold, yes_area, part_area),
        persons=_need_from_converts(threshold, yes_persons, part_persons),
    )
