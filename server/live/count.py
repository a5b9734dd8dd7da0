"""The running count of one meeting and its two live documents: pure (no database, no network).

A :class:`LiveCount` wraps the engine's :class:`~server.ballot.tally.MeetingTally`
(the same selection, figures and ``evote-result/2`` document as ``evote tally``)
and keeps, ballot by ballot, what only a dashboard needs: who has taken part in
the meeting (turnout against the whole register), per building and per channel.
:meth:`LiveCount.documents` renders the ``results`` and ``turnout`` views with
server.live.views.  server.live.meeting feeds it from the database.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from server.ballot.rules import quorum_met, quorum_shortfall
from server.ballot.tally import Matter, MeetingTally, Rules, Submission
from server.ballot.weights import Electorate, in_scope
from server.live.views import (
    QUORUM_TEXTS,
    QUORUM_TEXTS_ENDED,
    RESULTS,
    TURNOUT,
    building_rows_from_totals,
    figure,
    matter_view,
    percent,
    quorum_line,
    shortfall_doc,
    subject_buildings,
    turnout_matter_view,
)

CHANNEL_LABELS = ("electronic", "paper", "proxy")  # proxy: an electronic ballot cast by a proxy


class LiveCount:
    """One meeting counted incrementally: :meth:`take` each submission, then :meth:`documents`.

    After any sequence of :meth:`take` calls, ``documents()[RESULTS]["result"]`` equals
    ``tally()`` over the same submissions.
    """

    def __init__(self, meeting_id: str, rules: Rules, matters: Sequence[Matter], electorate: Electorate) -> None:
        self.rules = rules
        self.matters = tuple(matters)
        self.electorate = electorate
        self.tally = MeetingTally(meeting_id, rules, self.matters, electorate)
        self.titles = {m.id: m.title for m in self.matters}
        self.names = {(m.id, candidate_id): name for m in self.matters for candidate_id, name in m.candidates}
        self.counted_channel: dict[tuple[str, str], str] = {}
        self.voter_channels: dict[str, Counter[str]] = {}
        # Turnout kept up to date ballot by ballot (recomputing it over every owner took 40 ms a
        # refresh at 20,000 owners): per building [area, persons, voted area, voted persons] (a
        # subject counts in each building it holds units in, with its area there), per channel
        # label [area, persons] of the subjects with a counted ballot of that label.
        self.building_totals: dict[str, list[int]] = {}
        for subject in electorate.subjects.values():
            for building, area in subject_buildings(subject):
                entry = self.building_totals.setdefault(building, [0, 0, 0, 0])
                entry[0] += area
                entry[1] += 1
        self.voted_area = 0
        self.voted_persons = 0
        self.channel_users: dict[str, list[int]] = {}
        self.ballots: Counter[str] = Counter()
        scoped = [m for m in self.matters if m.scope]
        self._unscoped = frozenset(m.id for m in self.matters if not m.scope)
        self._scoped = tuple(scoped)
        self._visible: dict[str, frozenset[str] | None] = {}

    # -- counting -------------------------------------------------------------

    def take(self, submission: Submission, label: str) -> bool:
        """Count one submission (``label``: its channel, or "proxy"); returns whether it counts now.

        A malformed submission, or one from a voter outside the matter's electorate, raises
        ``ValueError`` and changes nothing (the recount would refuse it too).
        """
        if not self.tally.submit(submission):
            return False
        key = (submission.voter_id, submission.matter_id)
        channels = self.voter_channels.setdefault(submission.voter_id, Counter())
        before = {c for c, n in channels.items() if n > 0}
        previous = self.counted_channel.get(key)
        if previous is not None:
            channels[previous] -= 1
            self.ballots[previous] -= 1
        channels[label] += 1
        self.ballots[label] += 1
        self.counted_channel[key] = label
        after = {c for c, n in channels.items() if n > 0}
        if before != after:
            self._voter_changed(submission.voter_id, before, after)
        return True

    def _voter_changed(self, voter_id: str, before: set[str], after: set[str]) -> None:
        """Move one subject's area and person between "voted / not yet" and between channel labels."""
        subject = self.electorate.subjects[voter_id]
        area = subject.area
        if bool(before) != bool(after):
            sign = 1 if after else -1
            self.voted_area += sign * area
            self.voted_persons += sign
            for building, building_area in subject_buildings(subject):
                entry = self.building_totals[building]
                entry[2] += sign * building_area
                entry[3] += sign
        for label in before - after:
            users = self.channel_users[label]
            users[0] -= area
            users[1] -= 1
        for label in after - before:
            users = self.channel_users.setdefault(label, [0, 0])
            users[0] += area
            users[1] += 1

    # -- who sees which matters -------------------------------------------------

    def visible_matters(self, voter_id: str) -> frozenset[str] | None:
        """The matters an owner may vote on, when that is not every matter; None: all of them.

        A matter scoped to some buildings is shown only to the subjects holding a counted unit there.
        """
        if not self._scoped:
            return None
        if voter_id not in self._visible:
            subject = self.electorate.subjects.get(voter_id)
            ids = self._unscoped | {m.id for m in self._scoped if subject is not None and in_scope(subject, m.scope)}
            self._visible[voter_id] = None if len(ids) == len(self.matters) else ids
        return self._visible[voter_id]

    # -- documents ------------------------------------------------------------------

    def documents(self, meta: Mapping[str, Any], *, ended: bool = False) -> dict[str, dict[str, Any]]:
        """The ``turnout`` and ``results`` documents; ``meta`` (ids, title, state, times) heads both.

        ``ended``: voting is over, so distances become where each line was missed.
        """
        electorate = self.electorate
        places = electorate.places
        figures = self.tally.figures()
        result = self.tally.result()
        voted_area, voted_persons = self.voted_area, self.voted_persons
        short = quorum_shortfall(voted_area, voted_persons, electorate.total_area, electorate.total_persons)
        buildings, sort_by = building_rows_from_totals(self.building_totals, electorate, short)
        channels: dict[str, dict[str, Any]] = {}
        for channel in CHANNEL_LABELS:
            area, persons = self.channel_users.get(channel, (0, 0))
            channels[channel] = figure(area, persons, places)
            channels[channel]["ballots"] = self.ballots.get(channel, 0)
        missing, met = QUORUM_TEXTS_ENDED if ended else QUORUM_TEXTS
        base = {
            **meta,
            "voting_ended": ended,
            "places": places,
            "totals": figure(electorate.total_area, electorate.total_persons, places),
            "quorum_line": quorum_line(electorate.total_area, electorate.total_persons, places),
            "turnout": {
                **figure(voted_area, voted_persons, places),
                "share": {"area": percent(voted_area, electorate.total_area),
                          "persons": percent(voted_persons, electorate.total_persons)},
                "quorum_met": quorum_met(voted_area, voted_persons, electorate.total_area,
                                         electorate.total_persons),
                "shortfall": shortfall_doc(short, missing, met, places),
            },
            "buildings": buildings, "buildings_sorted_by": sort_by,
            "channels": channels,
        }
        turnout_matters, result_matters = [], []
        for matter, matter_result in zip(self.matters, result["matters"]):
            f = figures[matter.id]
            voters = self.tally.electorates[matter.id]
            title = self.titles[matter.id]
            turnout_matters.append(turnout_matter_view(matter, matter_result, f, voters, title, ended=ended))
            result_matters.append(matter_view(matter, matter_result, f, voters, self.rules, title, self.names,
                                              ended=ended))
        return {
            TURNOUT: {**base, "view": TURNOUT, "matters": turnout_matters},
            RESULTS: {**base, "view": RESULTS, "matters": result_matters, "result": result},
        }
