"""Counting a meeting: which submissions count, the figures, and the result document.

Pure and exact: no I/O, integers only.  Three layers, so a live dashboard can
reuse the lower ones:

1. :func:`select_counted` — the one submission that counts per voter and matter
   (duplicate policy, then earliest or latest).
2. :func:`aggregate` / :class:`MatterTally` — participating, invalid,
   yes/no/abstain and per-candidate figures from counted submissions, each
   weighed in its matter's electorate (the register's, or a scope's), in one
   pass of dict lookups.  :class:`MeetingTally` does 1 and 2 incrementally,
   one submission at a time.
3. :func:`build_result` (:mod:`server.ballot.outcome`) — thresholds, quorum,
   ranking, runoffs and the ``evote-result/2`` document of bundle-format.md.

:func:`tally` runs all three.  The meeting's definitions
(:mod:`server.ballot.definitions`) and the decisions (:mod:`server.ballot.outcome`)
are re-exported here, so callers import everything about counting from this
module.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from server.ballot.definitions import (
    CHANNELS,
    CHOICES,
    DUPLICATE_POLICIES,
    ELECTION,
    ELECTION_CHOICES,
    INVALID,
    INVALID_AS_ABSTAIN,
    INVALID_BALLOT_RULES,
    INVALID_NOT_COUNTED,
    KINDS,
    RANK_BY,
    RESOLUTION,
    RESOLUTION_CHOICES,
    RULE_DEFAULTS,
    RULE_KEYS,
    RULE_OPTIONS,
    Matter,
    RuleOption,
    RuleProblem,
    Rules,
    Submission,
    voter_problem,
)
from server.ballot.outcome import (
    RESULT_FORMAT,
    ElectionDecision,
    Figure,
    MatterFigures,
    build_result,
    decide_election,
    matter_result,
    rank_key,
)
from server.ballot.weights import Electorate, MatterElectorate

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
    "matter_electorates",
    "matter_result",
    "prefers",
    "rank_key",
    "select_counted",
    "tally",
    "voter_problem",
]


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


class MatterTally:
    """Running figures of one matter; add or remove counted submissions.

    Used by :func:`aggregate` for a full count and by a live view, which adds
    each newly counted submission and removes the one it replaces.
    ``invalid_ballot`` is the meeting's rule for invalid submissions: under
    ``abstain`` they take part (participating, supporting nothing), under
    ``not_counted`` they do not; either way they are in the ``invalid`` figure.
    """

    __slots__ = (
        "_by_choice",
        "_invalid",
        "_invalid_takes_part",
        "_is_election",
        "_participating",
        "_spoiled",
        "_yes_for",
        "matter",
    )

    def __init__(self, matter: Matter, invalid_ballot: str = INVALID_AS_ABSTAIN) -> None:
        if invalid_ballot not in INVALID_BALLOT_RULES:
            raise ValueError(f"unknown invalid_ballot rule {invalid_ballot!r}")
        self.matter = matter
        self._is_election = matter.kind == ELECTION
        self._invalid_takes_part = invalid_ballot == INVALID_AS_ABSTAIN
        # Mutable [area, persons] pairs: cheaper in the hot loop than new Figures.
        self._participating = [0, 0]
        self._by_choice = {choice: [0, 0] for choice in CHOICES}
        self._yes_for = {candidate_id: [0, 0] for candidate_id in matter.candidate_ids}
        self._spoiled = [0, 0]
        self._invalid = [0, 0]

    def add(self, submission: Submission, area: int) -> None:
        """Count ``submission`` with its voter's ``area`` in this matter (one person)."""
        self._apply(submission, area, 1)

    def remove(self, submission: Submission, area: int) -> None:
        """Undo :meth:`add` (a revision replaced the submission)."""
        self._apply(submission, area, -1)

    def _apply(self, submission: Submission, area: int, sign: int) -> None:
        # Work out every bucket first and change them only then, so a malformed
        # submission raises without leaving the figures half-updated.
        if self._is_election:
            invalid, buckets = self._election_buckets(submission)
        else:
            invalid, buckets = self._resolution_buckets(submission)
        if invalid:
            buckets.append(self._invalid)
        if self._invalid_takes_part or not invalid:
            buckets.append(self._participating)
        area *= sign
        for bucket in buckets:
            bucket[0] += area
            bucket[1] += sign

    def _resolution_buckets(self, submission: Submission) -> tuple[bool, list[list[int]]]:
        choices = submission.choices
        if len(choices) != 1 or choices[0][0] != "":
            raise ValueError(
                f"ballot {submission.ballot_id}: a resolution ballot has exactly one choice and no candidate"
            )
        choice = choices[0][1]
        if choice == INVALID:
            return True, []
        bucket = self._by_choice.get(choice)
        if bucket is None:
            raise ValueError(f"ballot {submission.ballot_id}: unknown choice {choice!r}")
        return False, [bucket]

    def _election_buckets(self, submission: Submission) -> tuple[bool, list[list[int]]]:
        choices = submission.choices
        if choices == (("", INVALID),):
            return True, []  # a blank or unclear election ballot
        if not choices:
            raise ValueError(
                f"ballot {submission.ballot_id}: an election ballot marks a candidate, or is ('', 'invalid')"
            )
        supported: list[list[int]] = []
        marked: set[str] = set()
        for candidate_id, choice in choices:
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
            # Spoiled, so invalid: supports nobody (and takes part under the abstain rule).
            return True, [self._spoiled]
        return False, supported

    def figures(self) -> MatterFigures:
        """A frozen snapshot of the current figures."""
        area, persons = self._participating
        if self._is_election:
            return MatterFigures(
                matter_id=self.matter.id,
                participating=Figure(area, persons),
                candidates={cid: Figure(a, n) for cid, (a, n) in self._yes_for.items()},
                spoiled=Figure(*self._spoiled),
                invalid=Figure(*self._invalid),
            )
        return MatterFigures(
            matter_id=self.matter.id,
            participating=Figure(area, persons),
            by_choice={choice: Figure(a, n) for choice, (a, n) in self._by_choice.items()},
            invalid=Figure(*self._invalid),
        )


def matter_electorates(matters: Sequence[Matter], electorate: Electorate) -> dict[str, MatterElectorate]:
    """Each matter's electorate (the register's, or its scope's), by matter id.

    Matters of the same scope share one (read-only) :class:`MatterElectorate`.
    """
    by_scope: dict[tuple[str, ...], MatterElectorate] = {}
    for matter in matters:
        if matter.scope not in by_scope:
            by_scope[matter.scope] = electorate.for_scope(matter.scope)
    return {matter.id: by_scope[matter.scope] for matter in matters}


def _tally_and_area(
    tallies: Mapping[str, MatterTally],
    electorates: Mapping[str, MatterElectorate],
    electorate: Electorate,
    submission: Submission,
) -> tuple[MatterTally, int]:
    """The running tally of the submission's matter and its voter's area in that matter."""
    matter_tally = tallies.get(submission.matter_id)
    if matter_tally is None:
        raise ValueError(f"ballot {submission.ballot_id}: unknown matter {submission.matter_id!r}")
    area = electorates[submission.matter_id].areas.get(submission.voter_id)
    if area is None:
        problem = voter_problem(matter_tally.matter, submission.voter_id, electorate) or "不在该事项的表决范围内"
        raise ValueError(f"ballot {submission.ballot_id}: {problem}")
    return matter_tally, area


def aggregate(
    matters: Sequence[Matter],
    electorate: Electorate,
    counted: Iterable[Submission],
    rules: Rules | None = None,
    electorates: Mapping[str, MatterElectorate] | None = None,
) -> dict[str, MatterFigures]:
    """Figures per matter id (in ``matters`` order) from already-selected submissions.

    Each submission weighs its voter's area in the matter's electorate and one
    person; ``rules`` (default: the default rules) says what an invalid one
    means.  A voter who is not a voting subject or is outside the matter's
    scope, or a matter not in ``matters``, raises ``ValueError``: the caller
    validated its input, so this is a bug, not a ballot to skip.
    """
    invalid_ballot = (rules or Rules()).invalid_ballot
    tallies = {matter.id: MatterTally(matter, invalid_ballot) for matter in matters}
    if electorates is None:
        electorates = matter_electorates(matters, electorate)
    for submission in counted:
        matter_tally, area = _tally_and_area(tallies, electorates, electorate, submission)
        matter_tally.add(submission, area)
    return {matter_id: matter_tally.figures() for matter_id, matter_tally in tallies.items()}


class MeetingTally:
    """Incremental count of a whole meeting, one submission at a time.

    Applies the same preference as :func:`select_counted` as submissions
    arrive: when a new submission is preferred over the counted one it
    replaces it in the figures.  After any sequence of :meth:`submit` calls,
    :meth:`result` equals :func:`tally` over the same submissions.
    ``electorates`` holds each matter's electorate (for a dashboard's shares
    and shortfalls of a scoped matter).
    """

    def __init__(self, meeting_id: str, rules: Rules, matters: Sequence[Matter], electorate: Electorate) -> None:
        self.meeting_id = meeting_id
        self.rules = rules
        self.matters = tuple(matters)
        self.electorate = electorate
        self.electorates = matter_electorates(self.matters, electorate)
        self._tallies = {matter.id: MatterTally(matter, rules.invalid_ballot) for matter in self.matters}
        self._counted: dict[tuple[str, str], Submission] = {}

    def submit(self, submission: Submission) -> bool:
        """Take one submission into account; returns whether it is now the counted one."""
        matter_tally, area = _tally_and_area(self._tallies, self.electorates, self.electorate, submission)
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
        return build_result(
            self.meeting_id, self.rules, self.matters, self.electorate, self.figures(), self.electorates
        )


def tally(
    meeting_id: str,
    rules: Rules,
    matters: Sequence[Matter],
    electorate: Electorate,
    submissions: Iterable[Submission],
) -> dict[str, Any]:
    """Count a meeting: select, aggregate, decide.  Returns the evote-result/2 document."""
    counted = select_counted(submissions, rules)
    electorates = matter_electorates(matters, electorate)
    figures = aggregate(matters, electorate, counted.values(), rules, electorates)
    return build_result(meeting_id, rules, matters, electorate, figures, electorates)
