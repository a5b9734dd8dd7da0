"""The end-to-end smoke test: `evote simulate` on the test database, then `evote verify` on its output.

One run per invalid-ballot rule; besides the simulator's own checks (its independent recount equal
to the published result, the verifier's and the counting service's), the record is read here to see
that the simulation covered what evote-bundle/2 adds: joint owners holding units in several
buildings, three-decimal areas, a matter scoped to buildings voted on only by voters with a counted
unit there, invalid paper ballots counted under the rule.
"""
from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta

import pytest

from server.ballot.amounts import parse_area
from server.ballot.tally import Matter, Rules, Submission, tally
from server.ballot.weights import RegisterRow, compute_electorate
from server.devtools.simulate_recount import Cast, recount
from tests.reference_tally import reference_tally


async def _evote(env: dict, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


def _rows(path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _figure(stdout: str, pattern: str) -> int:
    found = re.search(pattern, stdout)
    assert found, (pattern, stdout)
    return int(found.group(1))


@pytest.mark.parametrize(("rule", "units", "seed"), [("not_counted", 120, 5), ("abstain", 90, 6)])
async def test_simulate_then_verify(database_url, tmp_path, rule, units, seed):
    env = {**os.environ, "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(tmp_path / "data"),
           "EVOTE_LOG_JSON": "false"}
    out = tmp_path / "record"
    status, stdout, stderr = await _evote(env, "simulate", "--units", str(units), "--turnout", "0.8", "--out",
                                          str(out), "--seed", str(seed), "--invalid-ballot", rule)
    assert status == 0, stderr
    assert "OK" in stdout and "independent recount" in stdout
    assert f"invalid_ballot = {rule}" in stdout
    # the summary: the register and the voting had every case
    assert _figure(stdout, r"(\d+) of them holding units in several buildings") >= 1
    assert _figure(stdout, r"(\d+) areas with three decimals") >= 1
    assert _figure(stdout, r"(\d+) developer units") >= 1
    assert _figure(stdout, r"(\d+) parking spaces") >= 1
    assert _figure(stdout, r"(\d+) joint subjects holding units in several buildings voted") >= 1
    assert _figure(stdout, r"(\d+) owners' lists of matters checked") >= 1
    assert _figure(stdout, r"\((\d+) keyed a third time after a mismatch\)") == 1
    assert re.search(r"refused as they must be: 1 electronic and 1 paper ballots outside the voter's scope, "
                     r"1 electronic ballots marked invalid, 1 sign-ins with a co-owner's digits", stdout), stdout
    for name in ("meeting.json", "register.csv", "ballots.csv", "receipts.csv", "result.json", "result.sig.json"):
        assert (out / name).is_file(), name

    # the record: rules, scopes, joint owners, three decimals, invalid paper ballots
    meeting = json.loads((out / "meeting.json").read_text())
    assert meeting["format"] == "evote-bundle/2" and meeting["rules"]["invalid_ballot"] == rule
    scopes = {m["id"]: m.get("scope") for m in meeting["matters"]}
    assert scopes["M4"] == {"buildings": ["2"]} and scopes["M7"] == {"buildings": ["1", "3"]}
    assert scopes["M1"] is None and scopes["E1"] is None
    register = _rows(out / "register.csv")
    assert any(len(r["area"].split(".")[-1]) == 3 for r in register)
    owners: dict[str, set[str]] = {}
    for r in register:
        owners.setdefault(r["unit_id"], set()).add(r["owner_id"])
    counted = {r["unit_id"]: r for r in register if r["kind"] != "parking"}
    buildings_of: dict[str, set[str]] = {}
    for unit_id, unit in counted.items():
        buildings_of.setdefault("+".join(sorted(owners[unit_id])), set()).add(unit["building"])
    assert any("+" in s and len(b) > 1 for s, b in buildings_of.items())
    ballots = _rows(out / "ballots.csv")
    invalid = [b for b in ballots if b["choice"] == "invalid"]
    assert invalid and all(b["channel"] == "paper" and b["candidate_id"] == "" for b in invalid)
    assert {b["matter_id"] for b in invalid} >= {"M1", "E1"}
    for matter_id, scope in (("M4", {"2"}), ("M7", {"1", "3"})):
        voters = {b["voter_id"] for b in ballots if b["matter_id"] == matter_id}
        assert voters and all(buildings_of[v] & scope for v in voters), matter_id
    result = json.loads((out / "result.json").read_text())
    assert result["format"] == "evote-result/2"
    by_id = {m["id"]: m for m in result["matters"]}
    assert by_id["M4"]["electorate"]["persons"] < result["totals"]["persons"]
    assert by_id["M1"]["invalid"]["persons"] >= 1 and by_id["E1"]["invalid"]["persons"] >= 1
    assert len(result["totals"]["area"].split(".")[-1]) == 3
    assert reference_tally(out) == result   # a third count, from the record alone

    pubkey = tmp_path / "record.pubkey.pem"
    status, stdout, stderr = await _evote(env, "verify", str(out), "--pubkey", str(pubkey))
    assert status == 0, stderr
    assert stdout.startswith("OK")
    status, stdout, _ = await _evote(env, "tally", str(out))
    assert status == 0 and json.loads(stdout) == result
    # the audit trail of the simulated community is intact
    community = meeting["community"]["id"]
    status, stdout, stderr = await _evote(env, "audit", "verify", "--community", community)
    assert status == 0, stderr


async def test_simulate_refuses_bad_arguments(tmp_path):
    env = {**os.environ, "EVOTE_DATA_DIR": str(tmp_path / "data")}
    status, _, err = await _evote(env, "simulate", "--units", "100", "--turnout", "1.5", "--out", str(tmp_path / "x"))
    assert status == 2 and "--turnout" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    status, _, err = await _evote(env, "simulate", "--units", "100", "--turnout", "0.5", "--out",
                                  str(tmp_path / "full"))
    assert status == 2 and "not an empty directory" in err
    status, _, err = await _evote(env, "simulate", "--units", "100", "--turnout", "0.5", "--out",
                                  str(tmp_path / "y"), "--invalid-ballot", "ignore")
    assert status == 2 and "--invalid-ballot" in err


def test_the_simulators_own_recount_follows_the_rules():
    """The simulator's recount (independent of server.ballot) on the examples of the voting rules."""
    def row(unit, building, area, owner, rep="1", kind="dwelling"):
        return {"unit_id": unit, "building": building, "kind": kind, "area": area, "area_source": "registry",
                "holder": "owner", "owner_id": owner, "representative": rep}

    # A and B jointly own u1 (building 1) and u2 (building 2): one subject; A alone owns u3; C owns u4
    # and a parking space (not counted); D owns u5 with a third decimal.
    rows = [row("u1", "1", "80", "A"), row("u1", "1", "80", "B", "0"), row("u2", "2", "70.5", "A"),
            row("u2", "2", "70.5", "B", "0"), row("u3", "1", "100", "A"), row("u4", "2", "100", "C"),
            row("p1", "2", "12", "C", kind="parking"), row("u5", "1", "71.125", "D")]
    matters = [{"matter_id": "M1", "kind": "resolution", "category": 2},
               {"matter_id": "M2", "kind": "resolution", "category": 6, "scope": {"buildings": ["2"]}},
               {"matter_id": "E1", "kind": "election", "category": 3, "seats": 1, "alternates": 0,
                "candidates": [{"candidate_id": "C1"}, {"candidate_id": "C2"}]}]
    start = datetime(2026, 3, 1, tzinfo=UTC)
    ledger = [Cast(f"b{n}", voter, matter, channel, start + timedelta(minutes=n), choices)
              for n, (voter, matter, channel, choices) in enumerate([
                  ("A+B", "M1", "electronic", (("", "yes"),)),
                  ("A", "M1", "electronic", (("", "yes"),)),
                  ("C", "M1", "paper", (("", "invalid"),)),
                  ("C", "M1", "electronic", (("", "no"),)),        # electronic prevails over paper
                  ("D", "M1", "paper", (("", "invalid"),)),
                  ("A+B", "M2", "electronic", (("", "yes"),)),
                  ("C", "M2", "paper", (("", "invalid"),)),
                  ("A+B", "E1", "paper", (("C1", "yes"), ("C2", "yes"))),   # over-marked: invalid
                  ("A", "E1", "electronic", (("C1", "yes"),)),
                  ("C", "E1", "electronic", (("C2", "yes"),)),
                  ("A", "M1", "electronic", (("", "abstain"),)),   # a revision: the later counts
              ])]
    rules = {"allow_revision": True}
    abstain = recount("m", rows, matters, rules, ledger)
    assert abstain["totals"] == {"area": "421.625", "persons": 4}
    m1, m2, e1 = abstain["matters"]
    assert m1["participating"] == {"area": "421.625", "persons": 4}
    assert m1["invalid"] == {"area": "71.125", "persons": 1}
    assert (m1["yes"], m1["no"], m1["abstain"]) == ({"area": "150.500", "persons": 1},
                                                   {"area": "100.000", "persons": 1},
                                                   {"area": "100.000", "persons": 1})
    assert m1["outcome"] == "failed"
    # the scoped matter: A+B weighs its building-2 area only; C's invalid sheet takes part (abstain)
    assert m2["electorate"] == {"area": "170.500", "persons": 2}
    assert m2["participating"] == {"area": "170.500", "persons": 2} and m2["outcome"] == "failed"
    assert e1["invalid"] == {"area": "150.500", "persons": 1} and e1["elected"] == []
    not_counted = recount("m", rows, matters, {**rules, "invalid_ballot": "not_counted"}, ledger)
    m1, m2, e1 = not_counted["matters"]
    assert m1["participating"] == {"area": "350.500", "persons": 3} and m1["invalid"]["persons"] == 1
    assert m2["participating"] == {"area": "70.500", "persons": 1} and m2["outcome"] == "no_quorum"
    assert e1["participating"] == {"area": "200.000", "persons": 2}
    assert e1["candidates"][0]["yes"] == {"area": "100.000", "persons": 1}
    assert e1["outcome"] == "no_quorum"   # two of four persons took part
    # and the engine agrees on both
    electorate = compute_electorate([RegisterRow(r["unit_id"], r["building"], r["kind"], parse_area(r["area"]),
                                                 r["area_source"], r["holder"], r["owner_id"],
                                                 r["representative"] == "1") for r in rows], False)
    engine_matters = [Matter(m["matter_id"], m["matter_id"], m["kind"], m["category"], seats=m.get("seats", 0),
                             alternates=m.get("alternates", 0),
                             candidates=tuple((c["candidate_id"], c["candidate_id"]) for c in m.get("candidates", ())),
                             scope=tuple(m.get("scope", {}).get("buildings", ()))) for m in matters]
    submissions = [Submission(c.ballot_id, c.voter_id, c.matter_id, c.channel, c.received_at, c.choices)
                   for c in ledger]
    for rule, mine in (("abstain", abstain), ("not_counted", not_counted)):
        assert tally("m", Rules(allow_revision=True, invalid_ballot=rule), engine_matters, electorate,
                     submissions) == mine, rule
