"""Elections after the count: seats, formation, runoffs, alternates, deadlines, party share.

Pure (no I/O), integers and dates only.  Counting, ranking, alternates and
runoff detection are NOT done here: they are :func:`server.ballot.tally.decide_election`
(bundle-format.md), which this module calls on the figures of an ``evote-result/1``
matter.  What this module adds is what happens next:

- :func:`check_seats` / :func:`default_alternates` — the work plan's seat rules;
- :func:`decide_formation` — is the body formed, and if not, why (Chinese reason);
- :class:`RunoffPlan` — which candidates go to a runoff (另行选举) for which places;
- :func:`merge_runoff` — the places a runoff result fills;
- :func:`promote` — an alternate replaces a member who left, in vote order;
- :func:`deadline_state` — on_time / due_soon / overdue / done;
- :func:`party_share` — party members among the members, against the 50% target.

Places are numbered 1..seats (seats) then seats+1..seats+alternates (alternate
places), in rank order.  See docs/elections.md for the worked rules.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from server.ballot.tally import ELECTION, Figure, Matter, MatterFigures, decide_election, rank_key

__all__ = [
    "BODY_NAMES",
    "DEADLINE_STATES",
    "Formation",
    "PartyShare",
    "Promotion",
    "RunoffPlan",
    "add_years",
    "check_seats",
    "check_term",
    "deadline_state",
    "decide_formation",
    "default_alternates",
    "fill_from_groups",
    "merge_runoff",
    "party_share",
    "promote",
]

BODY_NAMES = {"committee": "业主委员会", "supervisory": "监事会", "other": "其他"}
PARTY_TARGET = Fraction(1, 2)  # work plan: party members at least 50% of a new committee


# --------------------------------------------------------------------------- seats


def default_alternates(seats: int) -> int:
    """40% of the seats rounded half up, in integers: 5 -> 2, 7 -> 3, 9 -> 4, 11 -> 4, 3 -> 1."""
    return (4 * seats + 5) // 10


def check_seats(body: str, seats: int) -> str | None:
    """None when ``seats`` suits ``body``, else the Chinese problem (work plan / 指导规则)."""
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 1:
        return "应选人数至少为 1"
    if body == "committee" and not (5 <= seats <= 11 and seats % 2 == 1):
        return "业主委员会委员应为 5 至 11 人的单数"
    if body == "supervisory" and not 3 <= seats <= 5:
        return "监事会成员应为 3 至 5 人"
    return None


# --------------------------------------------------------------------------- formation


def _places(first: int, last: int) -> str:
    return f"第 {first} 席" if first == last else f"第 {first} 至 {last} 席"


@dataclass(frozen=True)
class RunoffPlan:
    """What a runoff (另行选举) must decide, derived from one election result.

    ``kind`` is ``tie`` (a group tied on both figures straddles the last seat or
    the last alternate place) or ``shortage`` (quorum met, fewer candidates
    passed than there are seats).

    - ``first_place``: the first place (1-based, seats then alternate places)
      the runoff decides.
    - ``seat_places`` / ``alternate_places``: how many seats and alternate
      places it decides.  For a tie these are the places the tied group covers:
      from ``first_place`` to ``min(first_place - 1 + len(candidates), seats + alternates)``.
      For a shortage: every empty seat and every alternate place.
    - ``candidates``: the tied candidates (tie), in candidate-list order; empty
      for a shortage (new qualified nominees are attached by the prep group).
    - ``continuation``: for a tie, the passing candidates ranked below the
      tied group, as groups of equal figures in rank order; after the runoff
      they fill the alternate places the runoff left, exactly as the original
      ranking would have.

    The runoff matter ranks the candidates over every contested place: it has
    ``seats = seat_places + alternate_places`` and ``alternates = 0`` (so a voter
    may support as many candidates as there are places, and a loser of the seat
    can still pass and become an alternate).  Of its elected, in rank order, the
    first ``seat_places`` become members and the rest alternates
    (``fills == 'alternates'`` when no seat is contested).
    """

    kind: str
    first_place: int
    seat_places: int
    alternate_places: int
    candidates: tuple[str, ...]
    continuation: tuple[tuple[str, ...], ...] = ()

    @property
    def fills(self) -> str:
        return "seats" if self.seat_places else "alternates"

    @property
    def matter_seats(self) -> int:
        return self.seat_places + self.alternate_places

    @property
    def matter_alternates(self) -> int:
        return 0

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "fills": self.fills, "first_place": self.first_place,
                "seat_places": self.seat_places, "alternate_places": self.alternate_places,
                "runoff_seats": self.matter_seats, "runoff_alternates": self.matter_alternates,
                "candidates": list(self.candidates),
                "continuation": [list(g) for g in self.continuation]}


@dataclass(frozen=True)
class Formation:
    """Whether a body is formed by one election result, and why not."""

    formed: bool
    reason: str                       # Chinese; "" when formed with nothing to add
    elected: tuple[str, ...]
    alternates: tuple[str, ...]
    quorum_met: bool
    seats: int
    alternate_places: int
    runoff: RunoffPlan | None = None
    notes: tuple[str, ...] = ()       # e.g. an alternate place tied while the body is formed
    elected_groups: tuple[tuple[str, ...], ...] = ()   # the elected in rank groups of equal figures

    def as_json(self) -> dict[str, Any]:
        return {"formed": self.formed, "reason": self.reason, "elected": list(self.elected),
                "alternates": list(self.alternates), "quorum_met": self.quorum_met, "seats": self.seats,
                "alternate_places": self.alternate_places, "empty_seats": self.seats - len(self.elected),
                "runoff": self.runoff.as_json() if self.runoff else None, "notes": list(self.notes)}


def _centi(text: str) -> int:
    """A result figure "123.45" (non-negative, exactly as format_area writes it) in centi-m²."""
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or not (fraction.isdigit() and len(fraction) == 2):
        raise ValueError(f"bad area in a result: {text!r}")
    return int(whole) * 100 + int(fraction)


def _figures_from_result(matter_result: dict[str, Any]) -> MatterFigures:
    part = matter_result["participating"]
    return MatterFigures(
        matter_id=matter_result["id"],
        participating=Figure(_centi(part["area"]), part["persons"]),
        candidates={c["id"]: Figure(_centi(c["yes"]["area"]), c["yes"]["persons"])
                    for c in matter_result["candidates"]},
    )


def _groups(ranked: tuple[str, ...], figures: MatterFigures, rank_by: str) -> list[tuple[str, ...]]:
    groups: list[list[str]] = []
    for candidate_id in ranked:
        key = rank_key(figures.candidates[candidate_id], rank_by)
        if groups and rank_key(figures.candidates[groups[-1][0]], rank_by) == key:
            groups[-1].append(candidate_id)
        else:
            groups.append([candidate_id])
    return [tuple(g) for g in groups]


def decide_formation(matter_result: dict[str, Any], *, seats: int, alternates: int, rank_by: str,
                     body: str = "committee") -> Formation:
    """Formation from one election matter of an ``evote-result/1`` document.

    Formed iff quorum is met, every seat is filled and no seat waits for a
    runoff.  A tie at the last ALTERNATE place does not stop formation (the
    members are all elected); it is reported in ``notes`` and in ``runoff``.
    The decision is the engine's own (:func:`decide_election`), re-run on the
    figures of the result so the ranking groups are known.
    """
    if matter_result.get("kind") != ELECTION:
        raise ValueError(f"matter {matter_result.get('id')!r} is not an election")
    name = BODY_NAMES.get(body, "")
    quorum = bool(matter_result["quorum_met"])
    if not quorum:
        return Formation(False, f"未达参与表决法定比例（专有部分面积和人数均须达到三分之二以上），{name}未能选出，需重新召集会议选举",
                         (), (), False, seats, alternates)
    figures = _figures_from_result(matter_result)
    matter = Matter(id=matter_result["id"], title=matter_result["id"], kind=ELECTION, category=matter_result["category"],
                    seats=seats, alternates=alternates,
                    candidates=tuple((c["id"], c["id"]) for c in matter_result["candidates"]))
    decision = decide_election(matter, figures, True, rank_by)
    # The stored result is the law; a recount that differs means the inputs disagree.
    if list(decision.elected) != list(matter_result["elected"]) or \
            list(decision.runoff_needed) != list(matter_result["runoff_needed"]):
        raise ValueError(f"matter {matter_result['id']}: result does not match its figures")
    elected, alts, tied = decision.elected, decision.alternates, decision.runoff_needed
    filled = len(elected) + len(alts)
    groups = _groups(decision.ranked, figures, rank_by)
    in_seats = set(elected)
    elected_groups = tuple(g for g in groups if g[0] in in_seats)
    if tied:
        last = min(filled + len(tied), seats + alternates)
        seat_places = max(0, min(last, seats) - filled)
        alternate_places = last - max(filled, seats)
        index = next(i for i, g in enumerate(groups) if g[0] in tied)
        in_list_order = tuple(c for c in matter.candidate_ids if c in set(tied))
        plan = RunoffPlan("tie", filled + 1, seat_places, alternate_places, in_list_order,
                          tuple(groups[index + 1:]) if seat_places else ())
        who = "、".join(in_list_order)
        if seat_places:
            reason = (f"{_places(filled + 1, min(last, seats))}出现票数完全相同（候选人 {who}），需另行选举；"
                      f"已当选 {len(elected)} 人，{name}暂未组成")
            return Formation(False, reason, elected, alts, True, seats, alternates, plan, (), elected_groups)
        note = f"候补第 {filled + 1 - seats} 位出现票数完全相同（候选人 {who}），需另行选举候补委员"
        return Formation(True, "", elected, alts, True, seats, alternates, plan, (note,), elected_groups)
    if len(elected) < seats:
        plan = RunoffPlan("shortage", len(elected) + 1, seats - len(elected), alternates, ())
        reason = f"当选人数不足 {seats} 人（当选 {len(elected)} 人），需另行选举补足 {seats - len(elected)} 席"
        return Formation(False, reason, elected, alts, True, seats, alternates, plan, (), elected_groups)
    notes: tuple[str, ...] = ()
    if len(alts) < alternates:
        notes = (f"候补委员应有 {alternates} 人，实有 {len(alts)} 人",)
    return Formation(True, "", elected, alts, True, seats, alternates, None, notes, elected_groups)


def fill_from_groups(groups: tuple[tuple[str, ...], ...], places: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Take whole rank groups while they fit into ``places``; (taken, tied group that straddles)."""
    taken: list[str] = []
    for group in groups:
        if len(taken) >= places:
            break
        if len(taken) + len(group) > places:
            return tuple(taken), group
        taken.extend(group)
    return tuple(taken), ()


@dataclass(frozen=True)
class RunoffMerge:
    members: tuple[str, ...]       # new members from the runoff, in vote order
    alternates: tuple[str, ...]    # new alternates from the runoff, in vote order
    continued: tuple[str, ...]     # then new alternates from the original ranking (continuation)
    still_tied: tuple[str, ...]    # a tie that remains (the runoff's own, or in the continuation)


def merge_runoff(plan: RunoffPlan, runoff_elected_groups: tuple[tuple[str, ...], ...],
                 runoff_tied: tuple[str, ...], *, alternate_places_left: int) -> RunoffMerge:
    """Places a runoff result fills.

    ``runoff_elected_groups``: the runoff's elected in rank groups of equal
    figures.  The first ``seat_places`` of them become members, the rest
    alternates; a group that straddles the last seat is still tied (nothing
    from it on is placed).  ``runoff_tied``: the runoff's own ``runoff_needed``
    (a tie at its last place).  When nothing is tied, the ``continuation`` of
    the original ranking fills the alternate places still empty
    (``alternate_places_left`` minus those just filled), whole groups only.
    """
    members, seat_tie = fill_from_groups(runoff_elected_groups, plan.seat_places)
    if seat_tie:
        return RunoffMerge(members, (), (), seat_tie)
    alternates = tuple(c for g in runoff_elected_groups for c in g)[len(members):]
    if runoff_tied:
        return RunoffMerge(members, alternates, (), tuple(runoff_tied))
    continued, tied = fill_from_groups(plan.continuation, max(0, alternate_places_left - len(alternates)))
    return RunoffMerge(members, alternates, continued, tied)


# --------------------------------------------------------------------------- after the vote


@dataclass(frozen=True)
class Promotion:
    promoted: str | None        # the alternate who becomes a member, or None when none is left
    remaining: tuple[str, ...]  # alternates still waiting, in vote order


def promote(alternates_in_vote_order: tuple[str, ...]) -> Promotion:
    """A member left: the first alternate in vote order takes the seat (指导规则; work plan)."""
    if not alternates_in_vote_order:
        return Promotion(None, ())
    return Promotion(alternates_in_vote_order[0], tuple(alternates_in_vote_order[1:]))


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 28 February (as PostgreSQL does)."""
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def check_term(term_start: date, term_end: date) -> str | None:
    """A committee's term is 3 to 5 years (work plan; voting-rules.md)."""
    if not add_years(term_start, 3) <= term_end <= add_years(term_start, 5):
        return "任期应为 3 至 5 年"
    return None


DEADLINE_STATES = ("on_time", "due_soon", "overdue", "done")


def deadline_state(due: date, today: date, *, done_on: date | None = None, due_soon_days: int = 7) -> str:
    """``done`` once done; else ``overdue`` after ``due``; ``due_soon`` within ``due_soon_days`` of it
    (the due day included); else ``on_time``."""
    if due_soon_days < 0:
        raise ValueError("due_soon_days must not be negative")
    if done_on is not None:
        return "done"
    if today > due:
        return "overdue"
    if today >= due - timedelta(days=due_soon_days):
        return "due_soon"
    return "on_time"


@dataclass(frozen=True)
class PartyShare:
    party_members: int
    members: int
    share: Fraction
    target: Fraction = field(default=PARTY_TARGET)

    @property
    def meets_target(self) -> bool:
        return self.members > 0 and self.share >= self.target

    @property
    def percent(self) -> str:
        """The share as a percentage with one decimal, rounded half up in integers ('60.0%')."""
        tenths = (self.share.numerator * 2000 + self.share.denominator) // (2 * self.share.denominator)
        return f"{tenths // 10}.{tenths % 10}%"

    def as_json(self) -> dict[str, Any]:
        return {"party_members": self.party_members, "members": self.members,
                "share": f"{self.share.numerator}/{self.share.denominator}", "percent": self.percent,
                "target": "50%", "meets_target": self.meets_target}


def party_share(party_flags: list[bool]) -> PartyShare:
    """Party members among the (active) members; 0/1 when there are none."""
    members = len(party_flags)
    party = sum(1 for flag in party_flags if flag)
    return PartyShare(party, members, Fraction(party, members) if members else Fraction(0))
