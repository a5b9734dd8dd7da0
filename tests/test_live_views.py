"""The live documents, pure: server.live.count and server.live.views with no database.

A small register with three-decimal areas, a joint subject, an owner with units in two
buildings and a matter scoped to buildings 3 and 5: per-matter electorates, quorum lines
and distances printed with the register's decimals, invalid ballots, scoped matters shown
only to owners in scope, per-building turnout, the texts once voting has ended, and the
result equal to a full recount after every submission.
"""
from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest

from server.ballot.tally import Matter, Rules, Submission, tally
from server.ballot.weights import Electorate, compute_electorate, parse_register_record
from server.live.count import LiveCount
from server.live.views import (
    NO_QUORUM_ENDED,
    NOBODY_ENDED,
    NOBODY_YET,
    RESULTS,
    TURNOUT,
    YES_MET,
    YES_MISSED_ENDED,
    building_label,
    only_matters,
    quorum_line,
    scope_text,
    voting_ended,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
META = {"community_id": "c1", "meeting_id": "m1", "title": "测试业主大会", "state": "open",
        "show_live_results": False, "opens_at": None, "closes_at": None}


def register(rows: list[tuple[str, str, str, str, str]]) -> Electorate:
    """(unit, building, area, owner, representative "1"/"0") rows; dwellings held by their owners."""
    parsed = []
    for index, (unit, building, area, owner, representative) in enumerate(rows):
        row, problems = parse_register_record({
            "unit_id": unit, "building": building, "kind": "dwelling", "area": area, "area_source": "registry",
            "holder": "owner", "owner_id": owner, "representative": representative}, index)
        assert row is not None, problems
        parsed.append(row)
    return compute_electorate(parsed, count_parking_area=False)


# A (units in buildings 3 and 5), B+C jointly (3), D and E (7), F (5): five persons, 595.875 m².
ELECTORATE = register([
    ("u1", "3", "100.125", "A", "1"),
    ("u2", "5", "80.5", "A", "1"),
    ("u3", "3", "90", "B", "1"),
    ("u3", "3", "90", "C", "0"),
    ("u4", "7", "120", "D", "1"),
    ("u5", "7", "110.25", "E", "1"),
    ("u6", "5", "95", "F", "1"),
])
MATTERS = (
    Matter("M1", "表决通过《管理规约》", "resolution", 2),
    Matter("M2", "筹集维修资金", "resolution", 6),
    Matter("S1", "3 栋、5 栋加装电梯", "resolution", 2, scope=("3", "5")),
    Matter("E1", "选举业主委员会委员", "election", 3, seats=1, alternates=0,
           candidates=(("C1", "王芳"), ("C2", "李强"))),
)


class Ballots:
    """Submissions with distinct, increasing receive times."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, voter: str, matter: str, *choices: tuple[str, str], channel: str = "electronic") -> Submission:
        self.n += 1
        return Submission(f"b{self.n}", voter, matter, channel, T0 + timedelta(seconds=self.n), tuple(choices))


def by_id(doc: dict) -> dict[str, dict]:
    return {m["id"]: m for m in doc["matters"]}


def areas_in(value) -> list[str]:
    """Every area string of a document (keys named "area", shares in percent left out)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("share"):
                continue
            if key == "area" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(areas_in(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(areas_in(item))
    return found


def test_the_register_of_these_tests():
    assert ELECTORATE.places == 3 and ELECTORATE.total_persons == 5 and ELECTORATE.total_area == 595875
    assert ELECTORATE.subjects["A"].buildings == ("3", "5")
    assert "B+C" in ELECTORATE.subjects


def test_each_matter_is_measured_against_its_own_electorate_with_three_decimals():
    count = LiveCount("m1", Rules(), MATTERS, ELECTORATE)
    docs = count.documents(META)
    for view in (RESULTS, TURNOUT):
        doc = docs[view]
        matters = by_id(doc)
        # The meeting against the whole register, printed with three decimals.
        assert doc["totals"] == {"area": "595.875", "persons": 5}
        assert doc["quorum_line"] == {"area": "397.250", "persons": 4}
        assert doc["turnout"]["shortfall"]["text"] == "还需 4 户 / 397.250 m² 参与"
        assert doc["places"] == 3
        # The scoped matter against its own electorate: A's area in 3 and 5, B+C, F.
        s1 = matters["S1"]
        assert s1["scope"] == ["3", "5"] and s1["scope_text"] == "仅 3 栋、5 栋"
        assert s1["electorate"] == {"area": "365.625", "persons": 3}
        assert s1["quorum_line"] == {"area": "243.750", "persons": 2}
        assert s1["quorum_shortfall"]["text"] == "还需 2 户 / 243.750 m² 参与"
        assert matters["M1"]["electorate"] == doc["totals"] and matters["M1"]["scope_text"] == ""
        assert all(re.fullmatch(r"-?\d+\.\d{3}", area) for area in areas_in(doc)), areas_in(doc)
    assert docs[RESULTS]["result"] == tally("m1", Rules(), MATTERS, ELECTORATE, [])


def test_a_need_is_rounded_up_to_the_register_s_two_decimals():
    electorate = register([("u1", "1", "100", "A", "1"), ("u2", "1", "100", "B", "1"), ("u3", "2", "100.01", "C", "1")])
    assert electorate.places == 2
    # 2/3 of 300.01 m² is 200.006…: the line and the need are shown as 200.01, never 200.00.
    assert quorum_line(electorate.total_area, electorate.total_persons, 2) == {"area": "200.01", "persons": 2}
    count = LiveCount("m1", Rules(), MATTERS[:1], electorate)
    ballot = Ballots()
    count.take(ballot("A", "M1", ("", "no")), "electronic")
    doc = count.documents(META)[RESULTS]
    m1 = by_id(doc)["M1"]
    # 2/3 of 300.01 minus 100 is 100.006…: still to come, rounded up.
    assert m1["quorum_shortfall"] == {"area": "100.01", "persons": 1, "met": False, "text": "还需 1 户 / 100.01 m² 参与"}
    assert doc["turnout"]["shortfall"]["area"] == "100.01"
    assert m1["yes_shortfall"]["new_voters"]["text"] == "赞成还差 2 户 / 100.01 m²"


def test_invalid_ballots_are_shown_next_to_abstentions():
    count = LiveCount("m1", Rules(), MATTERS, ELECTORATE)
    ballot = Ballots()
    submissions = [
        ballot("A", "M1", ("", "yes")),
        ballot("B+C", "M1", ("", "invalid"), channel="paper"),
        ballot("D", "M1", ("", "abstain")),
        ballot("F", "S1", ("", "invalid"), channel="paper"),
        ballot("E", "E1", ("", "invalid"), channel="paper"),
        ballot("D", "E1", ("C1", "yes"), ("C2", "yes")),  # two yes marks for one seat: spoiled, so invalid
    ]
    for submission in submissions:
        assert count.take(submission, submission.channel)
    docs = count.documents(META)
    m1, s1, e1 = (by_id(docs[RESULTS])[key] for key in ("M1", "S1", "E1"))
    # Under the default rule an invalid ballot takes part and supports nothing.
    assert m1["invalid"] == {"area": "90.000", "persons": 1}
    assert m1["abstain"] == {"area": "120.000", "persons": 1}
    assert m1["participating"] == {"area": "390.625", "persons": 3}
    assert s1["invalid"] == {"area": "95.000", "persons": 1}
    assert e1["invalid"] == {"area": "230.250", "persons": 2} and e1["spoiled"] == {"area": "120.000", "persons": 1}
    assert docs[RESULTS]["result"] == tally("m1", Rules(), MATTERS, ELECTORATE, submissions)
    # The turnout view says who took part, not how.
    assert all("invalid" not in m and "yes" not in m for m in docs[TURNOUT]["matters"])
    # Not counted: the invalid ballot stays in the invalid figure but out of participation.
    rules = Rules(invalid_ballot="not_counted")
    count = LiveCount("m1", rules, MATTERS, ELECTORATE)
    for submission in submissions:
        count.take(submission, submission.channel)
    m1 = by_id(count.documents(META)[RESULTS])["M1"]
    assert m1["invalid"] == {"area": "90.000", "persons": 1}
    assert m1["participating"] == {"area": "300.625", "persons": 2}
    assert count.documents(META)[RESULTS]["result"] == tally("m1", rules, MATTERS, ELECTORATE, submissions)


def test_a_scoped_matter_is_shown_only_to_owners_in_scope():
    count = LiveCount("m1", Rules(), MATTERS, ELECTORATE)
    assert count.visible_matters("A") is None  # every matter
    assert count.visible_matters("B+C") is None
    assert count.visible_matters("D") == frozenset({"M1", "M2", "E1"})
    assert count.visible_matters("nobody") == frozenset({"M1", "M2", "E1"})
    ballot = Ballots()
    # A ballot from outside the scope is refused and changes nothing.
    with pytest.raises(ValueError):
        count.take(ballot("D", "S1", ("", "yes")), "electronic")
    count.take(ballot("A", "S1", ("", "yes")), "electronic")
    docs = count.documents(META)
    for view in (RESULTS, TURNOUT):
        shown = only_matters(docs[view], count.visible_matters("D") or ())
        assert [m["id"] for m in shown["matters"]] == ["M1", "M2", "E1"]
        assert shown["turnout"] == docs[view]["turnout"]  # the meeting's figures are the same for all
    shown = only_matters(docs[RESULTS], {"M1", "M2", "E1"})
    assert [m["id"] for m in shown["result"]["matters"]] == ["M1", "M2", "E1"]
    assert [m["id"] for m in docs[RESULTS]["result"]["matters"]] == ["M1", "M2", "S1", "E1"]  # not changed
    # A meeting without scoped matters shows everyone everything.
    assert LiveCount("m1", Rules(), MATTERS[:2], ELECTORATE).visible_matters("D") is None


def test_an_owner_counts_in_each_building_with_the_area_held_there():
    count = LiveCount("m1", Rules(), MATTERS, ELECTORATE)
    ballot = Ballots()
    for voter in ("A", "B+C", "D", "F"):
        count.take(ballot(voter, "M1", ("", "yes")), "electronic")
    count.take(ballot("A", "M2", ("", "yes")), "paper")  # a second ballot of A: A still counts once
    doc = count.documents(META)[TURNOUT]
    assert doc["turnout"]["persons"] == 4 and doc["turnout"]["area"] == "485.625"
    rows = {b["building"]: b for b in doc["buildings"]}
    assert rows["3"]["totals"] == {"area": "190.125", "persons": 2} and rows["3"]["voted"]["persons"] == 2
    assert rows["5"]["totals"] == {"area": "175.500", "persons": 2}
    assert rows["5"]["voted"] == {"area": "175.500", "persons": 2}
    assert rows["7"]["voted"] == {"area": "120.000", "persons": 1}
    assert rows["7"]["remaining"] == {"area": "110.250", "persons": 1}
    assert rows["3"]["label"] == "3 栋"
    # Areas add up to the register; A is one person in each of its two buildings.
    assert sum(b["totals"]["persons"] for b in doc["buildings"]) == 6
    assert doc["channels"]["electronic"]["persons"] == 4 and doc["channels"]["paper"]["persons"] == 1
    assert doc["channels"]["paper"]["ballots"] == 1


def test_with_nobody_voting_no_approval_line_is_reached():
    matters = (*MATTERS, Matter("E2", "选举（四分之三）", "election", 6, seats=1,
                                candidates=(("C1", "王芳"), ("C2", "李强"))))
    count = LiveCount("m1", Rules(allow_revision=True), matters, ELECTORATE)
    for ended in (False, True):
        matters_doc = by_id(count.documents(META, ended=ended)[RESULTS])
        m2 = matters_doc["M2"]  # three quarters: 0 >= 3/4 of 0 is no approval
        assert m2["threshold"] == "three_quarters"
        need = m2["yes_shortfall"]["new_voters"]
        assert need["met"] is False and need["text"] == (NOBODY_ENDED if ended else NOBODY_YET)
        assert need["persons"] >= 1
        assert ("converts" in m2["yes_shortfall"]) == (not ended)
        for candidate in matters_doc["E2"]["candidates"]:
            assert candidate["standing"] in ("short", "no_decision") and candidate["rank"] is None
            assert candidate["yes_shortfall"]["new_voters"]["met"] is False
        assert all(YES_MET not in m["yes_shortfall"]["new_voters"]["text"]
                   for m in matters_doc.values() if "yes_shortfall" in m)


def test_after_the_close_the_texts_say_where_each_matter_stands():
    count = LiveCount("m1", Rules(allow_revision=True), MATTERS, ELECTORATE)
    ballot = Ballots()
    count.take(ballot("A", "M2", ("", "yes")), "electronic")  # all yes, but 1 of 5 persons
    count.take(ballot("A", "S1", ("", "yes")), "electronic")
    count.take(ballot("F", "S1", ("", "no")), "electronic")  # S1: quorum met (2 of 3), yes 1 of 2
    count.take(ballot("B+C", "S1", ("", "yes")), "electronic")
    count.take(ballot("A", "M1", ("", "yes")), "electronic")
    count.take(ballot("B+C", "M1", ("", "no")), "electronic")
    count.take(ballot("D", "M1", ("", "no")), "electronic")
    count.take(ballot("E", "M1", ("", "no")), "electronic")
    # While voting: M2's yes meets the line (quorum not yet), shown as such.
    during = by_id(count.documents(META)[RESULTS])
    assert during["M2"]["yes_shortfall"]["new_voters"]["text"] == YES_MET
    assert during["M2"]["quorum_shortfall"]["text"].startswith("还需 ")
    ended = count.documents(dict(META, state="closed"), ended=True)
    assert ended[RESULTS]["voting_ended"] is True
    matters = by_id(ended[RESULTS])
    m2 = matters["M2"]
    assert m2["outcome"] == "no_quorum"
    assert m2["yes_shortfall"] == {"new_voters": {"area": "0.000", "persons": 0, "met": False,
                                                  "text": NO_QUORUM_ENDED}}
    assert m2["quorum_shortfall"]["text"] == "参与未达法定比例（差 3 户 / 216.625 m²），未作出决定"
    assert matters["S1"]["outcome"] == "passed"
    assert matters["S1"]["yes_shortfall"]["new_voters"] == {"area": "0.000", "persons": 0, "met": True,
                                                             "text": YES_MET}
    assert matters["M1"]["outcome"] == "failed"
    assert matters["M1"]["yes_shortfall"]["new_voters"]["text"] == YES_MISSED_ENDED
    assert matters["M1"]["yes_shortfall"]["new_voters"]["met"] is False
    # An election without quorum at the close: nobody stands anywhere.
    e1 = matters["E1"]
    assert e1["outcome"] == "no_quorum" and e1["standing_provisional"] is False
    assert {c["standing"] for c in e1["candidates"]} == {"no_decision"}
    assert ended[TURNOUT]["turnout"]["shortfall"]["text"] == "参与已达法定比例"  # all five took part somewhere
    assert ended[RESULTS]["result"] == count.tally.result()


def test_an_election_with_quorum_at_the_close_shows_the_decision():
    count = LiveCount("m1", Rules(), MATTERS, ELECTORATE)
    ballot = Ballots()
    for voter in ("A", "B+C", "D", "E"):
        count.take(ballot(voter, "E1", ("C1", "yes"), ("C2", "no")), "electronic")
    e1 = by_id(count.documents(dict(META, state="published"), ended=True)[RESULTS])["E1"]
    assert e1["outcome"] == "elected" and e1["elected"] == ["C1"]
    standing = {c["id"]: (c["standing"], c["yes_shortfall"]["new_voters"]["text"]) for c in e1["candidates"]}
    assert standing == {"C1": ("elected", YES_MET), "C2": ("short", YES_MISSED_ENDED)}


@pytest.mark.parametrize("seed", range(6))
def test_the_result_equals_a_full_recount_after_every_submission(seed):
    rng = random.Random(seed)
    rules = Rules(allow_revision=rng.random() < 0.5,
                  duplicate_policy=rng.choice(("electronic_prevails", "first_received")),
                  invalid_ballot=rng.choice(("abstain", "not_counted")))
    count = LiveCount("m1", rules, MATTERS, ELECTORATE)
    ballot = Ballots()
    taken: list[Submission] = []
    voters = sorted(ELECTORATE.subjects)
    for _ in range(60):
        voter, matter = rng.choice(voters), rng.choice(MATTERS)
        if matter.kind == "election":
            marks = rng.sample(["C1", "C2"], rng.randint(1, 2))
            choices = [(c, rng.choice(("yes", "no", "abstain"))) for c in marks]
            if rng.random() < 0.15:
                choices = [("", "invalid")]
        else:
            choices = [("", rng.choice(("yes", "yes", "no", "abstain", "invalid")))]
        submission = ballot(voter, matter.id, *sorted(choices), channel=rng.choice(("electronic", "paper")))
        if matter.scope and not set(ELECTORATE.subjects[voter].buildings) & set(matter.scope):
            with pytest.raises(ValueError):
                count.take(submission, submission.channel)
            continue
        count.take(submission, submission.channel)
        taken.append(submission)
        docs = count.documents(META, ended=rng.random() < 0.2)
        assert docs[RESULTS]["result"] == tally("m1", rules, MATTERS, ELECTORATE, taken)
        for shown, result in zip(docs[RESULTS]["matters"], docs[RESULTS]["result"]["matters"]):
            assert shown["participating"] == result["participating"]
            assert shown["electorate"] == result["electorate"]
            assert shown["invalid"] == result["invalid"]
            assert shown["outcome"] == result["outcome"]
            if shown["outcome"] == "no_quorum" and docs[RESULTS]["voting_ended"]:
                assert YES_MET not in str(shown.get("yes_shortfall", "")) + str(shown.get("candidates", ""))
    voted = {s.voter_id for s in taken}
    doc = count.documents(META)[TURNOUT]
    assert doc["turnout"]["persons"] == len(voted)
    assert sum(b["voted"]["persons"] for b in doc["buildings"]) == sum(
        len(ELECTORATE.subjects[v].buildings) for v in voted)


def test_names_and_states():
    assert building_label("3") == "3 栋" and building_label("3号楼") == "3号楼" and building_label("") == "未注明楼栋"
    assert scope_text(()) == "" and scope_text(("3", "5")) == "仅 3 栋、5 栋"
    assert not voting_ended("open") and not voting_ended("noticed")
    assert voting_ended("closed") and voting_ended("published")


# --------------------------------------------------------------------------
# Fan-out: an owner's stream (server.live.meeting, fed rows by hand: no database)
# --------------------------------------------------------------------------


class FakeHub:
    ring_size = 8
    poll_s = 3600.0
    dropped_watchers = 0

    def _schedule_evict(self, live) -> None:
        pass


def row(n: int, voter: str, matter: str, choice: str) -> dict:
    return {"ballot_id": f"00000000-0000-0000-0000-{n:012d}", "voter_id": voter, "matter_id": matter,
            "channel": "electronic", "received_at": T0 + timedelta(seconds=n), "by_proxy": False,
            "candidate_ids": [""], "choices": [choice]}


def queued(watcher) -> list[dict]:
    import json

    items = []
    while not watcher.queue.empty():
        item = watcher.queue.get_nowait()
        items.append(dict(json.loads(item[2]), _kind=item[1], _id=item[0]))
    return items


async def test_an_owner_s_stream_shows_only_the_matters_they_may_vote_on():
    import asyncio

    from server.live.meeting import LiveMeeting
    from server.live.watchers import Watcher

    live = LiveMeeting(FakeHub(), "c1", "m1")
    live._reset({"rules": {}, "register_version": 1}, list(MATTERS), ELECTORATE)
    live.state, live.show_live_results, live.meeting_meta = "open", False, dict(META)
    live._publish_if_changed("snapshot", force=True)
    staff = Watcher(organiser=True, queue=asyncio.Queue())
    outside = Watcher(organiser=False, queue=asyncio.Queue(), voter_id="D")  # building 7 only
    inside = Watcher(organiser=False, queue=asyncio.Queue(), voter_id="A")  # buildings 3 and 5
    public = Watcher(organiser=False, queue=asyncio.Queue())
    try:
        for watcher in (staff, outside, inside, public):
            await live.attach(watcher, None)
        first = {name: queued(w) for name, w in (("staff", staff), ("outside", outside), ("inside", inside),
                                                  ("public", public))}
        assert [m["id"] for m in first["outside"][0]["matters"]] == ["M1", "M2", "E1"]
        assert [m["id"] for m in first["inside"][0]["matters"]] == ["M1", "M2", "S1", "E1"]
        assert [m["id"] for m in first["public"][0]["matters"]] == ["M1", "M2", "S1", "E1"]
        assert first["staff"][0]["view"] == RESULTS and first["outside"][0]["view"] == TURNOUT
        snapshot_id = first["outside"][0]["_id"]

        live._absorb([row(1, "A", "S1", "yes"), row(2, "D", "M1", "no")])
        assert live._publish_if_changed("update", force=False)
        outside_update, inside_update = queued(outside)[0], queued(inside)[0]
        assert [m["id"] for m in outside_update["matters"]] == ["M1", "M2", "E1"]
        assert outside_update["turnout"]["persons"] == 2  # the meeting's turnout is everyone's
        assert by_id(inside_update)["S1"]["participating"]["persons"] == 1
        staff_update = queued(staff)[0]
        assert [m["id"] for m in staff_update["result"]["matters"]] == ["M1", "M2", "S1", "E1"]
        assert live.document(False, "D")["matters"] == outside_update["matters"]
        assert live.document(True)["result"] == staff_update["result"]

        # Resuming replays the owner's own variant of what was missed...
        again = Watcher(organiser=False, queue=asyncio.Queue(), voter_id="E")  # also building 7 only
        await live.attach(again, snapshot_id)
        replayed = queued(again)
        assert [(e["_kind"], [m["id"] for m in e["matters"]]) for e in replayed] == [("update", ["M1", "M2", "E1"])]
        # ... and when that variant of an older event was never made, a snapshot says it all.
        for watcher in (outside, inside, again):
            live.detach(watcher)
        resume_from = outside_update["_id"]
        live._absorb([row(3, "B+C", "M1", "yes")])
        live._publish_if_changed("update", force=False)  # nobody watches as an owner: no variant made
        live._absorb([row(4, "F", "M1", "yes")])
        live._publish_if_changed("update", force=False)
        late = Watcher(organiser=False, queue=asyncio.Queue(), voter_id="D")
        await live.attach(late, resume_from)
        (snapshot,) = queued(late)
        assert snapshot["_kind"] == "snapshot" and snapshot["turnout"]["persons"] == 4
        assert [m["id"] for m in snapshot["matters"]] == ["M1", "M2", "E1"]
    finally:
        await live.close()
