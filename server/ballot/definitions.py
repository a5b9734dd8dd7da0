"""What a meeting is, for counting: its rules, its matters and the ballots submitted.

Pure data with checks, no counting (that is :mod:`server.ballot.tally`, which
re-exports every name here).  bundle-format.md describes each field: the
``rules`` of meeting.json (:data:`RULE_OPTIONS`, :class:`Rules`), a matter
(:class:`Matter`, possibly scoped to some buildings) and a submission
(:class:`Submission`).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.ballot.rules import threshold_for_category
from server.ballot.weights import Electorate, in_scope

__all__ = [
    "CHANNELS",
    "CHOICES",
    "DUPLICATE_POLICIES",
    "ELECTION",
    "ELECTION_CHOICES",
    "INVALID",
    "INVALID_AS_ABSTAIN",
    "INVALID_BALLOT_RULES",
    "INVALID_NOT_COUNTED",
    "KINDS",
    "RANK_BY",
    "RESOLUTION",
    "RESOLUTION_CHOICES",
    "RULE_DEFAULTS",
    "RULE_KEYS",
    "RULE_OPTIONS",
    "Matter",
    "RuleOption",
    "RuleProblem",
    "Rules",
    "Submission",
    "voter_problem",
]

RESOLUTION = "resolution"
ELECTION = "election"
KINDS = (RESOLUTION, ELECTION)
# The marks a voter makes: on a resolution, or on each candidate of an election.
CHOICES = ("yes", "no", "abstain")
# A blank or unclear ballot for a matter (a paper ballot, or one keyed as such).  A
# resolution submission may be ("", "invalid"); an election submission may be that
# single row too, and one with more yes marks than seats is invalid as well.
INVALID = "invalid"
RESOLUTION_CHOICES = (*CHOICES, INVALID)
ELECTION_CHOICES = CHOICES  # per candidate; a blank election ballot is the single row ("", "invalid")
CHANNELS = ("electronic", "paper")
DUPLICATE_POLICIES = ("electronic_prevails", "first_received")
RANK_BY = ("persons_then_area", "area_then_persons")
# What an invalid counted submission means (voting-rules.md): took part and supports
# nothing, or its voter did not take part in that matter.
INVALID_AS_ABSTAIN = "abstain"
INVALID_NOT_COUNTED = "not_counted"
INVALID_BALLOT_RULES = (INVALID_AS_ABSTAIN, INVALID_NOT_COUNTED)


@dataclass(frozen=True, slots=True)
class RuleOption:
    """One of a meeting's rules: its key, default and allowed values (booleans: false/true)."""

    key: str
    default: bool | str
    allowed: tuple[bool, ...] | tuple[str, ...]

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not allowed for this rule (Chinese), or None."""
        if self.is_flag:
            return None if isinstance(value, bool) else f"规则 {self.key} 应为 true 或 false，实为 {value!r}"
        if isinstance(value, str) and value in self.allowed:
            return None
        return f"规则 {self.key} 的值 {value!r} 无效，应为 {' 或 '.join(map(str, self.allowed))}"


# Every rule a meeting can have: the one place to add one (bundle-format.md "rules").  The
# fields of :class:`Rules` follow this list; readers and writers of rules go through
# :meth:`Rules.from_json` and :meth:`Rules.to_json`.
RULE_OPTIONS: tuple[RuleOption, ...] = (
    RuleOption("count_parking_area", False, (False, True)),
    RuleOption("allow_revision", False, (False, True)),
    RuleOption("duplicate_policy", "electronic_prevails", DUPLICATE_POLICIES),
    RuleOption("rank_by", "persons_then_area", RANK_BY),
    RuleOption("invalid_ballot", INVALID_AS_ABSTAIN, INVALID_BALLOT_RULES),
)
RULE_KEYS = tuple(option.key for option in RULE_OPTIONS)
RULE_DEFAULTS: Mapping[str, bool | str] = {option.key: option.default for option in RULE_OPTIONS}


class RuleProblem(ValueError):
    """A rule that is unknown or has a value it may not take; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True)
class Rules:
    """The community's voting settings for a meeting (defaults as in bundle-format.md)."""

    count_parking_area: bool = False
    allow_revision: bool = False
    duplicate_policy: str = "electronic_prevails"
    rank_by: str = "persons_then_area"
    invalid_ballot: str = INVALID_AS_ABSTAIN

    def __post_init__(self) -> None:
        for option in RULE_OPTIONS:
            problem = option.problem(getattr(self, option.key))
            if problem:
                raise RuleProblem(option.key, problem)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, refuse_unknown: bool = False) -> Rules:
        """Rules from a JSON object; missing keys take their defaults.

        Unknown keys are ignored, or refused with ``refuse_unknown`` (where a rule this
        counter does not implement would make a count silently wrong).
        """
        if refuse_unknown:
            for key in data:
                if key not in RULE_DEFAULTS:
                    raise RuleProblem(key, f"未知的规则 {key!r}；可用的规则为 {', '.join(RULE_KEYS)}")
        return cls(**{key: data[key] for key in RULE_KEYS if key in data})

    def to_json(self) -> dict[str, bool | str]:
        return {key: getattr(self, key) for key in RULE_KEYS}


@dataclass(frozen=True, slots=True)
class Matter:
    """One noticed matter: a resolution, or an election of ``seats`` (+ ``alternates``).

    ``scope`` names the buildings a matter decides for (a lift for one building,
    that building's maintenance funds); empty, the whole community.  Its
    electorate is :meth:`Electorate.for_scope`.
    """

    id: str
    title: str
    kind: str
    category: int  # Civil Code art. 278 item 1–9; the threshold follows from it
    seats: int = 0
    alternates: int = 0
    candidates: tuple[tuple[str, str], ...] = ()  # (candidate id, name), in list order
    scope: tuple[str, ...] = ()  # building names; empty: the whole community

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("a matter needs a non-empty id")
        if self.kind not in KINDS:
            raise ValueError(f"matter {self.id}: kind must be resolution or election, got {self.kind!r}")
        threshold_for_category(self.category)  # raises on a category outside 1–9
        if not isinstance(self.scope, tuple) or any(not isinstance(b, str) or not b for b in self.scope):
            raise ValueError(f"matter {self.id}: scope must be a tuple of building names, got {self.scope!r}")
        if len(set(self.scope)) != len(self.scope):
            raise ValueError(f"matter {self.id}: a building is named twice in the scope")
        if self.kind == RESOLUTION:
            if self.seats or self.alternates or self.candidates:
                raise ValueError(f"matter {self.id}: a resolution has no seats, alternates or candidates")
            return
        for name in ("seats", "alternates"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"matter {self.id}: {name} must be a non-negative integer, got {value!r}")
        if self.seats < 1:
            raise ValueError(f"matter {self.id}: an election needs at least one seat")
        ids = [candidate_id for candidate_id, _ in self.candidates]
        if any(not isinstance(c, str) or not c for c in ids):
            raise ValueError(f"matter {self.id}: candidate ids must be non-empty strings")
        if len(set(ids)) != len(ids):
            raise ValueError(f"matter {self.id}: duplicate candidate id")

    @property
    def threshold(self) -> str:
        return threshold_for_category(self.category)

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return tuple(candidate_id for candidate_id, _ in self.candidates)


@dataclass(frozen=True, slots=True)
class Submission:
    """One submitted ballot of one voter for one matter.

    ``choices`` holds (candidate id, choice) pairs: for a resolution exactly one
    pair with an empty candidate id and a choice of :data:`RESOLUTION_CHOICES`;
    for an election one pair per marked candidate (:data:`ELECTION_CHOICES`),
    or the single pair ``("", "invalid")`` for a blank or unclear ballot.
    ``cast_at`` is timezone-aware (the server's receive time for electronic
    ballots, art. 137).
    """

    ballot_id: str
    voter_id: str
    matter_id: str
    channel: str  # one of CHANNELS
    cast_at: datetime
    choices: tuple[tuple[str, str], ...]


def voter_problem(matter: Matter, voter_id: str, electorate: Electorate) -> str | None:
    """Why ``voter_id`` may not submit a ballot for ``matter`` (Chinese), or None.

    The voter must be a voting subject and, for a scoped matter, hold a counted
    unit in one of its buildings: a ballot from outside the scope is bad input.
    """
    subject = electorate.subjects.get(voter_id)
    if subject is None:
        return f"{voter_id!r} 不是有表决权的业主（表决主体）"
    if not in_scope(subject, matter.scope):
        return (
            f"业主 {voter_id} 在事项 {matter.id} 的表决范围（{'、'.join(matter.scope)}）内没有计入的单元，"
            "不能对该事项表决"
        )
    return None
