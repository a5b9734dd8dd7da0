"""Counting a meeting: which submissions count, the figures, and the result document.

Pure and exact: no I/O, integers only.  Three layers, so a live dashboard can
reuse the lower ones:

1. :func:`select_counted` — the one submission that counts per voter and matter
   (duplicate policy, then earliest or latest).
2. :func:`aggregate` / :class:`MatterTally` — participating, yes/no/abstain and
   per-candidate figures from counted submissions, in one pass of dict lookups.
   :class:`MeetingTally` does 1 and 2 incrementally, one submission at a time.
3. :func:`build_result` — thresholds, quorum, ranking, runoffs and the
   ``evote-result/1`` document of bundle-format.md.

:func:`tally` runs all three.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.ballot.amounts import format_area
from server.ballot.rules import passes, quorum_met, threshold_for_category
from server.ballot.weights import Electorate, Subject

__all__ = [
    "CHANNELS",
    "CHOICES",
    "DUPLICATE_POLICIES",
    "ELECTION",
    "KINDS",
    "RANK_BY",
    "RESOLUTION",
    "RESULT_FORMAT",
    "RULE_DEFAULTS",
    "RULE_KEYS",
    "RULE_OPTIONS",
    "ElectionDecision",
    "Figure",
    "Matter",
    "MatterFigures",
    "MatterTally",
    "MeetingTally",
    "RuleOption",
    "RuleProblem",
    "Rules",
    "Submission",
    "aggregate",
    "build_result",
    "decide_election",
    "matter_result",
    "prefers",
    "rank_key",
    "select_counted",
    "tally",
]

RESULT_FORMAT = "evote-result/1"
RESOLUTION = "resolution"
ELECTION = "election"
KINDS = (RESOLUTION, ELECTION)
CHOICES = ("yes", "no", "abstain")
CHANNELS = ("electronic", "paper")
DUPLICATE_POLICIES = ("electronic_prevails", "first_received")
RANK_BY = ("persons_then_area", "area_then_persons")


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
    """One noticed matter: a resolution, or an election of ``seats`` (+ ``alternates``)."""

    id: str
    title: str
    kind: str
    category: int  # Civil Code art. 278 item 1–9; the threshold follows from it
    seats: int = 0
    alternates: int = 0
    candidates: tuple[tuple[str, str], ...] = ()  # (candidate id, name), in list order

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError("a matter needs a non-empty id")
        if self.kind not in KINDS:
            raise ValueError(f"matter {self.id}: kind must be resolution or election, got {self.kind!r}")
        threshold_for_category(self.category)  # raises on a category outside 1–9
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
    pair with an empty candidate id; for an election one pair per marked
    candidate.  ``cast_at`` is timezone-aware (the server's receive time for
    electronic ballots, art. 137).
    """

    ballot_id: str
    voter_id: str
    matter_id: str
    channel: str  # one of CHANNELS
    cast_at: datetime
    choices: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------
# 1. Which submission counts
# --------------------------------------------------------------------------


def prefers(new: Submission, current: Submission, rules: Rules) -> bool:
    """Whether ``new`` rather than ``current`` counts for their (voter, matter).

    bundle-format.md: take the candidates under ``duplicate_policy``, then the
    latest by ``cast_at`` when ``allow_revision`` is true, else the earliest.
    That is a lexicographic order (electronic first under electronic_prevails,
    then time), so keeping the preferred of each pair in any order gives the
    same answer as filtering and sorting the whole set.  Equal ``cast_at`` is
    invalid input (the spec requires distinct times) and raises ``ValueError``
    rather than letting input order decide.
    """
    if rules.duplicate_policy == "electronic_prevails" and new.channel != current.channel:
        return new.channel == "electronic"
    if new.cast_at == current.cast_at:
        raise ValueError(
            f"voter {new.voter_id} has two submissions for matter {new.matter_id} "
            f"at the same cast_at ({current.ballot_id}, {new.ballot_id})"
        )
    return (new.cast_at > current.cast_at) == rules.allow_revision


def _check_channel(submission: Submission) -> None:
    # An unknown channel would silently count as paper under electronic_prevails.
    if submission.channel not in CHANNELS:
        raise ValueError(f"ballot {submission.ballot_id}: unknown channel {submission.channel!r}")


def select_counted(submissions: Iterable[Submission], rules: Rules) -> dict[tuple[str, str], Submission]:
    """The counted submission per (voter_id, matter_id), in one pass."""
    counted: dict[tuple[str, str], Submission] = {}
    for submission in submissions:
        _check_channel(submission)
        key = (submission.voter_id, submission.matter_id)
        current = counted.get(key)
        if current is None or prefers(submission, current, rules):
            counted[key] = submission
    return counted


# --------------------------------------------------------------------------
# 2. Figures
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """An area (centi-m²) and a number of persons."""

    area: int = 0
    persons: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"area": format_area(self.area), "persons": self.persons}


@dataclass(frozen=True, slots=True)
class MatterFigures:
    """The aggregate figures of one matter from the counted submissions.

    ``by_choice`` (resolutions) maps yes/no/abstain to figures; ``candidates``
    (elections) maps each candidate id, in list order, to its yes figures;
    ``spoiled`` counts election submissions with more yes marks than seats
    (they are in ``participating`` and support nobody).
    """

    matter_id: str
    participating: Figure
    by_choice: Mapping[str, Figure] = field(default_factory=dict)
    candidates: Mapping[str, Figure] = field(default_factory=dict)
    spoiled: Figure = Figure()


class MatterTally:
    """Running figures of one matter; add or remove counted submissions.

    Used by :func:`aggregate` for a full count and by a live view, which adds
    each newly counted submission and removes the one it replaces.
    """

    __slots__ = ("_by_choice", "_is_election", "_participating", "_spoiled", "_yes_for", "matter")

    def __init__(self, matter: Matter) -> None:
        self.matter = matter
        self._is_election = matter.kind == ELECTION
        # Mutable [area, persons] pairs: cheaper in the hot loop than new Figures.
        self._participating = [0, 0]
        self._by_choice = {choice: [0, 0] for choice in CHOICES}
        self._yes_for = {candidate_id: [0, 0] for candidate_id in matter.candidate_ids}
        self._spoiled = [0, 0]

    def add(self, submission: Submission, area: int) -> None:
        """Count ``submission`` with its voter's ``area`` (one person)."""
        self._apply(submission, area, 1)

    def remove(self, submission: Submission, area: int) -> None:
        """Undo :meth:`add` (a revision replaced the submission)."""
        self._apply(submission, area, -1)

    def _apply(self, submission: Submission, area: int, sign: int) -> None:
        # Work out every bucket first and change them only then, so a malformed
        # submission raises without leaving the figures half-updated.
        buckets = [self._participating]
        buckets += self._election_buckets(submission) if self._is_election else self._resolution_buckets(submission)
        area *= sign
        for bucket in buckets:
            bucket[0] += area
            bucket[1] += sign

    def _resolution_buckets(self, submission: Submission) -> list[list[int]]:
        choices = submission.choices
        if len(choices) != 1 or choices[0][0] != "":
            raise ValueError(
                f"ballot {submission.ballot_id}: a resolution ballot has exactly one choice and no candidate"
            )
        bucket = self._by_choice.get(choices[0][1])
        if bucket is None:
            raise ValueError(f"ballot {submission.ballot_id}: unknown choice {choices[0][1]!r}")
        return [bucket]

    def _election_buckets(self, submission: Submission) -> list[list[int]]:
        supported: list[list[int]] = []
        marked: set[str] = set()
        for candidate_id, choice in submission.choices:
            bucket = self._yes_for.get(candidate_id)
            if bucket is None:
                raise ValueError(f"ballot {submission.ballot_id}: unknown candidate {candidate_id!r}")
            if choice not in self._by_choice:
                raise ValueError(f"ballot {submission.ballot_id}: unknown choice {choice!r}")
            if candidate_id in marked:
                raise ValueError(f"ballot {submission.ballot_id}: candidate {candidate_id!r} marked twice")
            marked.add(candidate_id)
            if choice == "yes":
                supported.append(bucket)
        if len(supported) > self.matter.seats:
            # Spoiled: the voter took part (participating) and supports nobody.
            return [self._spoiled]
        return supported

    def figures(self) -> MatterFigures:
        """A frozen snapshot of the current figures."""
        area, persons = self._participating
        if self._is_election:
            return MatterFigures(
                matter_id=self.matter.id,
                participating=Figure(area, persons),
                candidates={cid: Figure(a, n) for cid, (a, n) in self._yes_for.items()},
                spoiled=Figure(*self._spoiled),
            )
        return MatterFigures(
            matter_id=self.matter.id,
            participating=Figure(area, persons),
            by_choice={choice: Figure(a, n) for choice, (a, n) in self._by_choice.items()},
        )


def _tally_and_area(
    tallies: Mapping[str, MatterTally], subjects: Mapping[str, Subject], submission: Submission
) -> tuple[MatterTally, int]:
    """The running tally of the submission's matter and its voter's area."""
    matter_tally = tallies.get(submission.matter_id)
    if matter_tally is None:
        raise ValueError(f"ballot {submission.ballot_id}: unknown matter {submission.matter_id!r}")
    subject = subjects.get(submission.voter_id)
    if subject is None:
        raise ValueError(f"ballot {submission.ballot_id}: {submission.voter_id!r} is not a voting subject")
    return matter_tally, subject.area


def aggregate(
    matters: Sequence[Matter], electorate: Electorate, counted: Iterable[Submission]
) -> dict[str, MatterFigures]:
    """Figures per matter id (in ``matters`` order) from already-selected submissions.

    Each submission weighs its voter's area and one person.  A voter who is not
    a voting subject, or a matter not in ``matters``, raises ``ValueError``:
    the caller validated its input, so this is a bug, not a ballot to skip.
    """
    tallies = {matter.id: MatterTally(matter) for matter in matters}
    subjects = electorate.subjects
    for submission in counted:
        matter_tally, area = _tally_and_area(tallies, subjects, submission)
        matter_tally.add(submission, area)
    return {matter_id: matter_tally.figures() for matter_id, matter_tally in tallies.items()}


class MeetingTally:
    """Incremental count of a whole meeting, one submission at a time.

    Applies the same preference as :func:`select_counted` as submissions
    arrive: when a new submission is preferred over the counted one it
    replaces it in the figures.  After any sequence of :meth:`submit` calls,
    :meth:`result` equals :func:`tally` over the same submissions.
    """

    def __init__(self, meeting_id: str, rules: Rules, matters: Sequence[Matter], electorate: Electorate) -> None:
        self.meeting_id = meeting_id
        self.rules = rules
        self.matters = tuple(matters)
        self.electorate = electorate
        self._tallies = {matter.id: MatterTally(matter) for matter in self.matters}
        self._counted: dict[tuple[str, str], Submission] = {}

    def submit(self, submission: Submission) -> bool:
        """Take one submission into account; returns whether it is now the counted one."""
        matter_tally, area = _tally_and_area(self._tallies, self.electorate.subjects, submission)
        _check_channel(submission)
        key = (submission.voter_id, submission.matter_id)
        current = self._counted.get(key)
        if current is not None and not prefers(submission, current, self.rules):
            return False
        # Add first: if the new submission is malformed, nothing has changed yet.
        matter_tally.add(submission, area)
        if current is not None:
            matter_tally.remove(current, area)
        self._counted[key] = submission
        return True

    def figures(self) -> dict[str, MatterFigures]:
        return {matter_id: matter_tally.figures() for matter_id, matter_tally in self._tallies.items()}

    def result(self) -> dict[str, Any]:
        return build_result(self.meeting_id, self.rules, self.matters, self.electorate, self.figures())


# --------------------------------------------------------------------------
# 3. Decisions and the result document
# --------------------------------------------------------------------------


def rank_key(figure: Figure, rank_by: str) -> tuple[int, int]:
    """Sort key, larger ranks higher: (persons, area) or (area, persons)."""
    if rank_by == "persons_then_area":
        return (figure.persons, figure.area)
    if rank_by == "area_then_persons":
        return (figure.area, figure.persons)
    raise ValueError(f"unknown rank_by {rank_by!r}")


@dataclass(frozen=True, slots=True)
class ElectionDecision:
    """Who passed, who fills which place, and who must go to a runoff (另行选举)."""

    passed: frozenset[str]
    ranked: tuple[str, ...]  # passing candidates in rank order
    elected: tuple[str, ...]
    alternates: tuple[str, ...]
    runoff_needed: tuple[str, ...]


def decide_election(matter: Matter, figures: MatterFigures, quorum: bool, rank_by: str) -> ElectionDecision:
    """Rank passing candidates and fill seats, then alternate places.

    A candidate passes when quorum is met and its yes figures meet the matter's
    threshold against the participating figures.  Passing candidates are ranked
    by ``rank_by`` (descending); candidates tied on both figures form a group,
    listed in candidate-list order.  Groups fill places in rank order.  A group
    that straddles the last seat, or the last alternate place, goes to
    ``runoff_needed`` and no place from that group on is filled: a tie across
    the last seat leaves every alternate place empty too, since the runoff
    decides who gets the seat and who is left for the alternate list.  Too few
    passing candidates simply leave places empty.
    """
    if not quorum:
        return ElectionDecision(frozenset(), (), (), (), ())
    threshold = matter.threshold
    part = figures.participating
    passing = [
        candidate_id
        for candidate_id in matter.candidate_ids
        if passes(threshold, figures.candidates[candidate_id].area, figures.candidates[candidate_id].persons,
                  part.area, part.persons)
    ]
    keys = {candidate_id: rank_key(figures.candidates[candidate_id], rank_by) for candidate_id in passing}
    ranked = sorted(passing, key=lambda candidate_id: keys[candidate_id], reverse=True)  # stable: ties keep list order

    groups: list[list[str]] = []
    for candidate_id in ranked:
        if groups and keys[groups[-1][0]] == keys[candidate_id]:
            groups[-1].append(candidate_id)
        else:
            groups.append([candidate_id])

    seats, last_place = matter.seats, matter.seats + matter.alternates
    elected: list[str] = []
    alternates: list[str] = []
    runoff: list[str] = []
    filled = 0
    for group in groups:
        end = filled + len(group)
        if filled >= last_place:
            break
        straddles_last_seat = filled < seats < end
        straddles_last_alternate = filled < last_place < end
        if straddles_last_seat or straddles_last_alternate:
            runoff = group
            break
        (elected if end <= seats else alternates).extend(group)
        filled = end
    return ElectionDecision(frozenset(passing), tuple(ranked), tuple(elected), tuple(alternates), tuple(runoff))


def matter_result(matter: Matter, figures: MatterFigures, electorate: Electorate, rank_by: str) -> dict[str, Any]:
    """The result object of one matter, keys in the order of bundle-format.md."""
    part = figures.participating
    quorum = quorum_met(part.area, part.persons, electorate.total_area, electorate.total_persons)
    threshold = matter.threshold
    head: dict[str, Any] = {
        "id": matter.id,
        "kind": matter.kind,
        "category": matter.category,
        "threshold": threshold,
        "participating": part.as_json(),
    }
    if matter.kind == RESOLUTION:
        yes = figures.by_choice["yes"]
        if not quorum:
            outcome = "no_quorum"  # no decision, which is not "rejected"
        elif passes(threshold, yes.area, yes.persons, part.area, part.persons):
            outcome = "passed"
        else:
            outcome = "failed"
        return head | {
            "yes": yes.as_json(),
            "no": figures.by_choice["no"].as_json(),
            "abstain": figures.by_choice["abstain"].as_json(),
            "quorum_met": quorum,
            "outcome": outcome,
        }

    decision = decide_election(matter, figures, quorum, rank_by)
    if not quorum:
        outcome = "no_quorum"
    elif decision.elected:
        outcome = "elected"
    else:
        outcome = "failed"
    return head | {
        "quorum_met": quorum,
        "candidates": [
            {
                "id": candidate_id,
                "yes": figures.candidates[candidate_id].as_json(),
                "passed": candidate_id in decision.passed,
            }
            for candidate_id in matter.candidate_ids
        ],
        "elected": list(decision.elected),
        "alternates": list(decision.alternates),
        "runoff_needed": list(decision.runoff_needed),
        "outcome": outcome,
    }


def build_result(
    meeting_id: str,
    rules: Rules,
    matters: Sequence[Matter],
    electorate: Electorate,
    figures: Mapping[str, MatterFigures],
) -> dict[str, Any]:
    """The ``evote-result/1`` document; matters in the order given (meeting.json order)."""
    return {
        "format": RESULT_FORMAT,
        "meeting_id": meeting_id,
        "totals": Figure(electorate.total_area, electorate.total_persons).as_json(),
        "matters": [matter_result(matter, figures[matter.id], electorate, rules.rank_by) for matter in matters],
    }


def tally(
    meeting_id: str,
    rules: Rules,
    matters: Sequence[Matter],
    electorate: Electorate,
    submissions: Iterable[Submission],
) -> dict[str, Any]:
    """Count a meeting: select, aggregate, decide.  Returns the evote-result/1 document."""
    counted = select_counted(submissions, rules)
    figures = aggregate(matters, electorate, counted.values())
    return build_result(meeting_id, rules, matters, electorate, figures)
