"""`evote simulate`: a whole owners' meeting end to end through the real HTTP API, then its record checked.

The app runs in-process on a real localhost port (aiohttp AppRunner + TCPSite on port 0) over the
configured or embedded PostgreSQL, its scheduler off (the simulator closes the meeting itself).  The
simulator is a test harness and the end-to-end smoke test in CI, not a production path: the two
shortcuts it takes are ``server.devtools.fixtures.backdate_notice`` (the notice went out 16 days
ago, so voting may open now) and ``end_voting_now`` (the voting period ends now, so it may close).

Steps:
1. A community and a generated register imported through the API: several buildings, owners with
   several units, co-owned units, joint owners holding units in different buildings (one owner
   set, one voting subject, one representative), areas with three decimals, developer units and
   parking.  The import's totals must equal the simulator's own.
2. A meeting created through the API with resolutions of several art. 278 categories, two of them
   scoped to one or two buildings (``"scope": {"buildings": [...]}``), and a committee election
   whose candidates go the real way (nominated, one refused, the rest qualified and attached);
   its rule ``invalid_ballot`` as asked; noticed and opened.
3. Codes issued (one per voting subject, held by its representative, as ``evote codes issue``).
4. Votes (server/devtools/simulate_votes.py): owners sign in with their representative's last 4
   digits, see only the matters of their scope and vote on those; some vote on paper, each sheet
   keyed twice by two clerks (blank and unclear matters keyed ``invalid``, over-marked elections,
   one mismatch settled by a third clerk); some vote both ways; the refusals the rules call for are
   tried.
5. The voting period ends, the meeting is closed, the result signed and published; the record is
   exported into DIR, checked with ``evote verify``'s code against the published key, receipts
   checked against their inclusion proofs, its ballots compared with what was cast.
6. An independent recount (server/devtools/simulate_recount.py, no server.ballot) of the
   simulator's own ledger on its own register must equal result.json, the verifier's recount and
   the counting service's result.
"""
from __future__ import annotations

import asyncio
import csv
import dataclasses
import json
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from server import appkeys
from server.app import create_app
from server.ballot.merkle import verify_inclusion
from server.devtools.demo_data import generate_register_rows, register_csv
from server.devtools.fixtures import backdate_notice, end_voting_now
from server.devtools.simulate_recount import (
    Cast,
    differences,
    invalid_cast,
    recount,
    representatives,
    scope_of,
    subject_buildings,
)
from server.devtools.simulate_votes import SimulationFailed, Voting, expect, make_plans
from server.record import read_bundle
from server.record.verify import verify_bundle
from server.record.writer import write_directory
from server.repositories import communities as community_repo
from server.services import audit
from server.services import codes as codes_service
from server.services import counting as counting_service
from server.services import results as results_service
from server.services import staff as staff_service
from server.settings import Settings

CANDIDATES = 8          # owners nominated by the preparatory group and qualified (one more is refused)
JOINT_SHARE, MILLI_SHARE = 0.03, 0.1    # of the generated register (server/devtools/demo_data.py)
INVALID_BALLOT_RULES = ("abstain", "not_counted")


def meeting_matters(buildings: Sequence[str]) -> list[dict[str, Any]]:
    """The matters sent to the meeting API: whole-community resolutions, two scoped ones, an election."""
    lift, (west, east) = buildings[1], (buildings[0], buildings[2])
    return [
        {"matter_id": "M1", "kind": "resolution", "title": "表决通过《业主大会议事规则》", "category": 1},
        {"matter_id": "M2", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
        {"matter_id": "M3", "kind": "resolution", "title": "续聘现物业服务企业", "category": 4},
        {"matter_id": "M4", "kind": "resolution", "title": f"使用维修资金更换 {lift} 号楼电梯", "category": 5,
         "scope": {"buildings": [lift]}},
        {"matter_id": "M5", "kind": "resolution", "title": "筹集外墙维修资金", "category": 6},
        {"matter_id": "M6", "kind": "resolution", "title": "利用小区广场开展经营活动", "category": 8},
        {"matter_id": "M7", "kind": "resolution", "title": f"改建 {west}、{east} 号楼之间的地下车库出入口",
         "category": 7, "scope": {"buildings": [west, east]}},
        {"matter_id": "E1", "kind": "election", "title": "选举第一届业主委员会委员", "category": 3,
         "body": "committee", "seats": 5, "candidates": []},   # candidates: nominate -> qualify -> attach
    ]


@dataclass
class SimulationReport:
    community_id: str
    meeting_id: str
    out: Path
    invalid_ballot: str
    register: dict[str, int]
    scopes: dict[str, list[str]]     # matter id -> its buildings ([] for the whole community)
    voting: dict[str, int]
    result: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    verify_summary: str = ""

    @property
    def outcomes(self) -> dict[str, str]:
        return {m["id"]: m["outcome"] for m in self.result["matters"]}

    def lines(self) -> list[str]:
        r, v = self.register, self.voting
        out = [
            f"community {self.community_id}, meeting {self.meeting_id}",
            f"register: {r['units']} units in {r['buildings']} buildings, {r['subjects']} voting subjects "
            f"({r['joint_subjects']} joint, {r['joint_multi_building']} of them holding units in several "
            f"buildings), {r['three_decimal_areas']} areas with three decimals, {r['developer_units']} developer "
            f"units, {r['parking_units']} parking spaces; totals {self.result['totals']['area']} m², "
            f"{self.result['totals']['persons']} persons",
            f"matters: {len(self.scopes)}, {sum(bool(b) for b in self.scopes.values())} of them scoped to "
            f"buildings; rule invalid_ballot = {self.invalid_ballot}",
            f"voting: {v['participants']} subjects voted ({v['electronic']} electronically, {v['paper']} on paper, "
            f"{v['both']} both ways), {v['submissions']} submissions ({v['paper_submissions']} on paper, "
            f"{v['invalid']} invalid, {v['revisions']} revisions); {v['sheets']} paper sheets keyed twice by two "
            f"clerks ({v['third_entries']} keyed a third time after a mismatch); {v['listings']} owners' lists of "
            f"matters checked against their scope; {v['joint_multi_building_voted']} joint subjects holding units "
            f"in several buildings voted",
            f"refused as they must be: {v['refused_scope_electronic']} electronic and {v['refused_scope_paper']} "
            f"paper ballots outside the voter's scope, {v['refused_invalid']} electronic ballots marked invalid, "
            f"{v['refused_wrong_person']} sign-ins with a co-owner's digits instead of the representative's",
        ]
        for m in self.result["matters"]:
            scope = f" (buildings {', '.join(self.scopes[m['id']])})" if self.scopes[m["id"]] else ""
            out.append(f"  {m['id']}{scope}: {m['outcome']}; electorate {m['electorate']['area']} m² / "
                       f"{m['electorate']['persons']}, took part {m['participating']['area']} m² / "
                       f"{m['participating']['persons']}, invalid {m['invalid']['persons']}")
        out += [
            "timings (s): " + ", ".join(f"{k} {t:.2f}" for k, t in self.timings.items()),
            f"record: {self.out}",
            self.verify_summary,
            "independent recount from the simulator's ledger: equal to result.json, to evote verify's recount "
            "and to the counting service",
        ]
        return out


async def _committee_candidates(http: aiohttp.ClientSession, staff: dict, admin: str, mbase: str, rows: list[dict],
                                rng: random.Random) -> dict:
    """The committee election's candidates the real way: the preparatory group nominates owners of the
    register, refuses one (with a reason) and qualifies the rest, attaches the qualified nominees to E1
    (a refused one is turned away), and the candidate check agrees.  Returns E1 as the API shows it."""
    owners = sorted({r["owner_id"] for r in rows if r["holder"] == "owner" and r["representative"] == "1"
                     and r["kind"] == "dwelling"})
    if len(owners) < CANDIDATES + 1:
        raise SimulationFailed(f"the register has {len(owners)} owners; at least {CANDIDATES + 1} are needed")
    nominees = rng.sample(owners, CANDIDATES + 1)
    ids = []
    for owner_id in nominees:
        nomination = await expect(await http.post(f"{admin}/nominations", headers=staff, json={
            "body": "committee", "owner_id": owner_id, "party_member": rng.random() < 0.5,
            "statement": "愿为业主服务"}), 201, f"nominate {owner_id}")
        ids.append(nomination["nomination_id"])
    refused, qualified = ids[0], ids[1:]
    await expect(await http.post(f"{admin}/nominations/{refused}/refuse", headers=staff,
                                 json={"reason": "不符合候选人条件（模拟）"}), 200, "refuse a nomination")
    for nomination_id in qualified:
        await expect(await http.post(f"{admin}/nominations/{nomination_id}/qualify", headers=staff), 200,
                     f"qualify nomination {nomination_id}")
    await expect(await http.post(f"{mbase}/matters/E1/nominees", headers=staff, json={"nomination_ids": [refused]}),
                 409, "attaching a refused nomination must be turned away")
    election = await expect(await http.post(f"{mbase}/matters/E1/nominees", headers=staff,
                                            json={"nomination_ids": qualified}), 201, "attach nominees")
    check = await expect(await http.get(f"{mbase}/candidate-check", headers=staff), 200, "candidate check")
    if not check["all_vetted"]:
        raise SimulationFailed(f"candidate check: {check['unvetted']}")
    return election


def register_figures(rows: Sequence[Mapping[str, str]], subjects: Mapping[str, Mapping[str, Decimal]]) -> dict:
    """What the generated register holds, for the summary (and the test that it has every case)."""
    units: dict[str, Mapping[str, str]] = {r["unit_id"]: r for r in rows}
    return {"units": len(units), "buildings": len({u["building"] for u in units.values()}),
            "subjects": len(subjects), "joint_subjects": sum("+" in s for s in subjects),
            "joint_multi_building": len(joint_in_several_buildings(subjects)),
            "three_decimal_areas": sum(len(u["area"].split(".")[-1]) == 3 for u in units.values()),
            "developer_units": sum(u["holder"] == "developer" for u in units.values()),
            "parking_units": sum(u["kind"] == "parking" for u in units.values())}


def joint_in_several_buildings(subjects: Mapping[str, Mapping[str, Decimal]]) -> set[str]:
    """Joint subjects (several owners) with counted units in more than one building."""
    return {s for s, buildings in subjects.items() if "+" in s and len(buildings) > 1}


def _area_text(area: Decimal, places: int) -> str:
    return str(area.quantize(Decimal(1).scaleb(-places)))


def check_record(out: Path, ledger: Sequence[Cast]) -> None:
    """The exported ballots.csv holds exactly the ledger's submissions (matter, channel, choices, time),
    each voter under one pseudonym of its own."""
    with (out / "ballots.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    stored: dict[str, dict] = {}
    for row in rows:
        sub = stored.setdefault(row["ballot_id"], {"voter": row["voter_id"], "matter": row["matter_id"],
                                                   "channel": row["channel"], "at": row["cast_at"], "choices": []})
        sub["choices"].append((row["candidate_id"], row["choice"]))
    if set(stored) != {c.ballot_id for c in ledger}:
        raise SimulationFailed(f"ballots.csv holds {len(stored)} submissions, the simulator cast {len(ledger)}")
    pseudonym: dict[str, str] = {}
    for cast in ledger:
        sub = stored[cast.ballot_id]
        if ((sub["matter"], sub["channel"], sorted(sub["choices"]), datetime.fromisoformat(sub["at"]))
                != (cast.matter_id, cast.channel, sorted(cast.choices), cast.received_at)):
            raise SimulationFailed(f"ballots.csv: submission {cast.ballot_id} differs from what was cast")
        if pseudonym.setdefault(cast.voter_id, sub["voter"]) != sub["voter"]:
            raise SimulationFailed(f"ballots.csv: {cast.voter_id} appears under two ids")
    if len(set(pseudonym.values())) != len(pseudonym):
        raise SimulationFailed("ballots.csv: two voters share one id")


async def _start(settings: Settings) -> tuple[web.AppRunner, str, Any]:
    # The scheduler stays off: the simulator ends the voting period and closes the meeting itself.
    app = create_app(dataclasses.replace(settings, scheduler_interval_s=0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}", app[appkeys.DB_POOL]


async def _staff(pool: Any, http: aiohttp.ClientSession, community_id: str, role: str, name: str) -> dict:
    """A new staff account of ``role`` signed in: its Authorization header."""
    username, password = f"sim-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    await staff_service.create_staff(pool, actor="simulate", username=username, password=password, role=role,
                                     display_name=name,
                                     communities=[community_id] if role != "district_admin" else None)
    login = await expect(await http.post("/api/staff/login", json={"username": username, "password": password}),
                         200, f"login {name}")
    return {"Authorization": f"Bearer {login['token']}"}


async def run_simulation(settings: Settings, *, units: int, turnout: float, out: Path, seed: int = 2026,
                         invalid_ballot: str = "abstain", progress: Callable[[str], None] = lambda _: None,
                         concurrency: int = 8) -> SimulationReport:
    if invalid_ballot not in INVALID_BALLOT_RULES:
        raise ValueError(f"invalid_ballot must be one of {INVALID_BALLOT_RULES}")
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now
        progress(f"{name} done ({timings[name]:.2f} s)")

    runner, base, pool = await _start(settings)
    lap("start")
    try:
        community_id = f"sim-{seed}-{secrets.token_hex(3)}"
        async with pool.acquire() as conn, conn.transaction():
            await community_repo.upsert_district(conn, "licheng", "鲤城区")
            await community_repo.upsert_street(conn, "sim-street", "licheng", "模拟街道")
            await community_repo.insert_community(conn, community_id=community_id, name="模拟小区",
                                                  street_id="sim-street", count_parking_area=False,
                                                  prep_group_formed_on=None)
            await audit.append(conn, community_id=community_id, actor="simulate", action="community.create")
        async with aiohttp.ClientSession(base) as http:
            staff, *clerks = await asyncio.gather(
                _staff(pool, http, community_id, "district_admin", "模拟管理员"),
                *(_staff(pool, http, community_id, "prep_group", f"录入员{n}") for n in (1, 2, 3)))
            lap("staff")

            # 1. the register
            rows = generate_register_rows(units, seed=seed, buildings=max(3, min(60, units // 60)),
                                          joint_share=JOINT_SHARE, milli_share=MILLI_SHARE)
            subjects = subject_buildings(rows)
            places = 3 if any(len(r["area"].split(".")[-1]) == 3 for r in rows) else 2
            total_area = sum((a for b in subjects.values() for a in b.values()), Decimal(0))
            admin = f"/api/admin/communities/{community_id}"
            imported = await expect(await http.post(f"{admin}/register?filename=sim.csv", data=register_csv(rows),
                                                    headers={**staff, "Content-Type": "text/csv"}),
                                    201, "register import")
            if (imported["total_area"], imported["total_persons"]) != (_area_text(total_area, places), len(subjects)):
                raise SimulationFailed(f"register import: totals {imported['total_area']} m² / "
                                       f"{imported['total_persons']}, the simulator's {total_area} / {len(subjects)}")
            lap("register")

            # 2. the meeting
            buildings = sorted({r["building"] for r in rows}, key=int)
            matters = meeting_matters(buildings)
            opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
            meeting_id = f"sim-{seed}"
            body = {"meeting_id": meeting_id, "title": "模拟小区首次业主大会", "matters": matters,
                    "rules": {"allow_revision": True, "invalid_ballot": invalid_ballot},
                    "opens_at": opens_at.isoformat(), "closes_at": (opens_at + timedelta(days=7)).isoformat()}
            created = await expect(await http.post(f"{admin}/meetings", json=body, headers=staff), 201,
                                   "create meeting")
            sent_scopes = {m["matter_id"]: m.get("scope") for m in matters}
            if {m["matter_id"]: m.get("scope") for m in created["matters"]} != sent_scopes:
                raise SimulationFailed(f"the meeting API shows other scopes than were sent: {created['matters']}")
            mbase = f"{admin}/meetings/{meeting_id}"
            election = await _committee_candidates(http, staff, admin, mbase, rows, rng)
            matters = [{**m, "alternates": election["alternates"], "candidates": election["candidates"]}
                       if m["matter_id"] == "E1" else m for m in matters]
            await expect(await http.post(f"{mbase}/notice", headers=staff), 200, "publish notice")
            # SIMULATOR ONLY: pretend the notice went out 16 days ago so voting may open now
            # (the 15-day notice rule); production has no such path.
            await backdate_notice(pool, community_id, meeting_id)
            await expect(await http.post(f"{mbase}/open", headers=staff), 200, "open meeting")
            lap("meeting")

            # 3. codes: one per voting subject, held by its representative
            issued = await codes_service.issue_codes(pool, community_id=community_id, meeting_id=meeting_id,
                                                     actor="simulate", public_url=settings.public_url,
                                                     test=True)
            reps = representatives(rows)
            if sorted(c.voter_id for c in issued.codes) != sorted(subjects):
                raise SimulationFailed(f"{len(issued.codes)} codes issued for {len(subjects)} voting subjects")
            for code in issued.codes:
                if reps[code.voter_id] != {code.representative}:
                    raise SimulationFailed(f"the code of {code.voter_id} is held by {code.representative}, "
                                           f"its units name {sorted(reps[code.voter_id])}")
            lap("codes")

            # 4. the votes
            plans = make_plans(rng, issued.codes, turnout, matters, subjects, rows,
                               always=joint_in_several_buildings(subjects))
            areas = {s: _area_text(sum(b.values(), Decimal(0)), places) for s, b in subjects.items()}
            voting = Voting(http, mbase, clerks, matters, areas, invalid_ballot, concurrency)
            await voting.run(plans)
            lap("voting")

            # 5. close, publish, export, verify
            # SIMULATOR ONLY: the voting period ends now (a meeting is never closed before its close time).
            if not await end_voting_now(pool, community_id, meeting_id):
                raise SimulationFailed("the meeting was not open at the end of voting")
            await expect(await http.post(f"{mbase}/close", headers=staff), 200, "close meeting")
            lap("close+sign")
            await expect(await http.post(f"{mbase}/publish", headers=staff, json={}), 200, "publish result")
            lap("publish")

            files = await results_service.export_files(pool, community_id, meeting_id)
            write_directory(out, files)
            keys = await expect(await http.get(f"/api/public/communities/{community_id}/keys"), 200, "keys")
            pem = keys["keys"][0]["public_key_pem"].encode()
            (out.parent / f"{out.name}.pubkey.pem").write_bytes(pem)
            # An owner checking a receipt on the public page: the proof must lead to the signed root.
            public = f"/api/public/meetings/{community_id}/{meeting_id}"
            root = bytes.fromhex(json.loads(files["result.sig.json"])["payload"]["receipts"]["root"])
            for receipt in rng.sample(voting.receipts, min(20, len(voting.receipts))):
                proof = await expect(await http.get(f"{public}/receipts/{receipt}/proof"), 200, "receipt proof")
                if not verify_inclusion(bytes.fromhex(receipt), proof["leaf_index"], proof["tree_size"],
                                        [bytes.fromhex(h) for h in proof["proof"]], root):
                    raise SimulationFailed(f"the inclusion proof of receipt {receipt} does not verify")
            lap("export")

        # 6. the record against what was cast, and the independent recount
        report_verify = verify_bundle(out, pem)
        check_record(out, voting.ledger)
        rules = json.loads((out / "meeting.json").read_text(encoding="utf-8"))["rules"]
        if rules.get("invalid_ballot") != invalid_ballot:
            raise SimulationFailed(f"meeting.json states invalid_ballot {rules.get('invalid_ballot')!r}")
        own = recount(meeting_id, rows, matters, rules, voting.ledger)
        published = json.loads((out / "result.json").read_text(encoding="utf-8"))
        async with pool.acquire() as conn:
            service = await counting_service.compute_result(conn, community_id, meeting_id)
        for name, theirs in (("result.json", published), ("evote verify's recount", report_verify.result),
                             ("evote tally", read_bundle(out).tally()), ("the counting service", service)):
            if own != theirs:
                raise SimulationFailed(f"the simulator's own recount differs from {name}: "
                                       + "; ".join(differences(own, theirs)[:5]))
        lap("verify+recount")
    finally:
        await runner.cleanup()
    by_id = {m["matter_id"]: m for m in matters}
    paper = [c for c in voting.ledger if c.channel == "paper"]
    tried = voting.tried
    report = SimulationReport(
        community_id, meeting_id, out, invalid_ballot, register_figures(rows, subjects),
        {m["matter_id"]: scope_of(m) for m in matters},
        {"participants": len(plans), "electronic": sum(bool(p.electronic) and not p.sheet for p in plans),
         "paper": sum(bool(p.sheet) and not p.electronic for p in plans),
         "both": sum(bool(p.sheet) and bool(p.electronic) for p in plans),
         "submissions": len(voting.ledger), "paper_submissions": len(paper),
         "invalid": sum(invalid_cast(c, by_id[c.matter_id]) for c in voting.ledger),
         "joint_multi_building_voted": len(joint_in_several_buildings(subjects) & {p.voter_id for p in plans}),
         "revisions": tried.revisions, "sheets": tried.sheets, "third_entries": tried.sheets_third_entry,
         "listings": tried.listings_checked, "refused_scope_electronic": tried.out_of_scope_electronic,
         "refused_scope_paper": tried.out_of_scope_paper, "refused_invalid": tried.invalid_electronic,
         "refused_wrong_person": tried.wrong_person},
        own, timings, report_verify.summary())
    return report


__all__ = ["SimulationFailed", "SimulationReport", "meeting_matters", "run_simulation"]
