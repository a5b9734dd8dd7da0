"""`evote simulate`: a whole owners' meeting end to end through the real HTTP API.

The app runs in-process on a real localhost port (aiohttp AppRunner + TCPSite on
port 0) over the configured or embedded PostgreSQL.  The simulator is a test
harness and the end-to-end smoke test in CI, not a production path: the two
shortcuts it takes (backdating the notice, to skip the 15-day wait, and ending the
voting period at once) are ``server.devtools.fixtures.backdate_notice`` and
``end_voting_and_close``.

Steps: community + generated register (several buildings, multi-unit owners,
co-owned units, developer units, parking) imported through the API; a meeting
with resolutions of several art. 278 categories and a committee election,
created through the API; the election's candidates go the real way (the
preparatory group nominates nine owners of the register, refuses one with a
reason, qualifies eight, attaches them; the refused one is turned away), then
the meeting is noticed and opened through the API; codes issued (codes service, as
``evote codes issue`` does); every participating owner redeems a code at
POST /api/ballot/redeem (with the last 4 digits of the registered phone) and
votes at POST /api/ballot/votes, some revising a vote; close, publish, export
the signed record into DIR, ``evote verify`` it against the published key, and
recount independently from the simulator's own ledger of what it cast.
"""
from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from server import appkeys
from server.app import create_app
from server.ballot.amounts import parse_area
from server.ballot.merkle import verify_inclusion
from server.ballot.tally import Matter, Rules, Submission, tally
from server.ballot.weights import RegisterRow, compute_electorate
from server.devtools.demo_data import generate_register_rows, register_csv
from server.devtools.fixtures import backdate_notice, end_voting_and_close
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
MATTERS: list[dict[str, Any]] = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《业主大会议事规则》", "category": 1},
    {"matter_id": "M2", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
    {"matter_id": "M3", "kind": "resolution", "title": "续聘现物业服务企业", "category": 4},
    {"matter_id": "M4", "kind": "resolution", "title": "使用维修资金更换 3 号楼电梯", "category": 5},
    {"matter_id": "M5", "kind": "resolution", "title": "筹集外墙维修资金", "category": 6},
    {"matter_id": "M6", "kind": "resolution", "title": "利用小区广场开展经营活动", "category": 8},
    {"matter_id": "E1", "kind": "election", "title": "选举第一届业主委员会委员", "category": 3,
     "body": "committee", "seats": 5, "candidates": []},   # candidates: nominate -> qualify -> attach
]
# How likely each candidate / resolution gets a yes: a spread, so outcomes differ.
YES_BIAS = {"M1": 0.85, "M2": 0.75, "M3": 0.55, "M4": 0.7, "M5": 0.72, "M6": 0.35}
CANDIDATE_YES = [0.9, 0.8, 0.75, 0.7, 0.6, 0.55, 0.4, 0.3]


class SimulationFailed(RuntimeError):
    pass


@dataclass
class SimulationReport:
    community_id: str
    meeting_id: str
    out: Path
    units: int
    voters: int
    participants: int
    submissions: int
    revisions: int
    timings: dict[str, float] = field(default_factory=dict)
    verify_summary: str = ""
    outcomes: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        t = self.timings
        return [
            f"community {self.community_id}, meeting {self.meeting_id}: {self.units} units, "
            f"{self.voters} voting subjects, {self.participants} voted "
            f"({self.submissions} submissions, {self.revisions} revisions)",
            "outcomes: " + ", ".join(f"{k} {v}" for k, v in self.outcomes.items()),
            "timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in t.items()),
            f"record: {self.out}",
            self.verify_summary,
            "independent recount from the simulator's ledger: equal to result.json",
        ]


def _choices(rng: random.Random, matter: dict) -> dict[str, Any]:
    if matter["kind"] == "resolution":
        p = YES_BIAS[matter["matter_id"]]
        roll = rng.random()
        choice = "yes" if roll < p else ("no" if roll < p + (1 - p) * 0.7 else "abstain")
        return {"matter_id": matter["matter_id"], "choice": choice}
    marks: dict[str, str] = {}
    for candidate, p in zip(matter["candidates"], CANDIDATE_YES):
        roll = rng.random()
        if roll < p:
            marks[candidate["candidate_id"]] = "yes"
        elif roll < p + 0.1:
            marks[candidate["candidate_id"]] = rng.choice(("no", "abstain"))
    # More yes marks than seats is refused by the API: keep the first `seats` of them.
    for extra in [c for c, v in marks.items() if v == "yes"][matter["seats"]:]:
        del marks[extra]
    if not marks:
        marks[matter["candidates"][0]["candidate_id"]] = "abstain"
    return {"matter_id": matter["matter_id"], "marks": marks}


def _last4(rows: list[dict], representative: str) -> str:
    """The digits a voting subject's representative (who holds its code) types at sign-in."""
    for row in rows:
        if row["owner_id"] == representative and row["representative"] == "1":
            return (row["phone"] or row["id_number"])[-4:]
    raise SimulationFailed(f"representative {representative} not in the register")


async def _expect(resp: aiohttp.ClientResponse, status: int, what: str) -> Any:
    if resp.status != status:
        raise SimulationFailed(f"{what}: HTTP {resp.status}: {(await resp.text())[:300]}")
    if resp.content_type == "application/json":
        return await resp.json()
    return await resp.read()


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
        nomination = await _expect(await http.post(f"{admin}/nominations", headers=staff, json={
            "body": "committee", "owner_id": owner_id, "party_member": rng.random() < 0.5,
            "statement": "愿为业主服务"}), 201, f"nominate {owner_id}")
        ids.append(nomination["nomination_id"])
    refused, qualified = ids[0], ids[1:]
    await _expect(await http.post(f"{admin}/nominations/{refused}/refuse", headers=staff,
                                  json={"reason": "不符合候选人条件（模拟）"}), 200, "refuse a nomination")
    for nomination_id in qualified:
        await _expect(await http.post(f"{admin}/nominations/{nomination_id}/qualify", headers=staff), 200,
                      f"qualify nomination {nomination_id}")
    await _expect(await http.post(f"{mbase}/matters/E1/nominees", headers=staff, json={"nomination_ids": [refused]}),
                  409, "attaching a refused nomination must be turned away")
    election = await _expect(await http.post(f"{mbase}/matters/E1/nominees", headers=staff,
                                             json={"nomination_ids": qualified}), 201, "attach nominees")
    check = await _expect(await http.get(f"{mbase}/candidate-check", headers=staff), 200, "candidate check")
    if not check["all_vetted"]:
        raise SimulationFailed(f"candidate check: {check['unvetted']}")
    return election


async def run_simulation(settings: Settings, *, units: int, turnout: float, out: Path, seed: int = 2026,
                         progress: Callable[[str], None] = lambda _: None, concurrency: int = 8) -> SimulationReport:
    rng = random.Random(seed)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now
        progress(f"{name} done ({timings[name]:.2f} s)")

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    pool = app[appkeys.DB_POOL]
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
        username, password = f"sim-{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        await staff_service.create_staff(pool, actor="simulate", username=username, password=password,
                                         role="district_admin", display_name="模拟管理员")
        async with aiohttp.ClientSession(base) as http:
            login = await _expect(await http.post("/api/staff/login", json={"username": username,
                                                                          "password": password}), 200, "login")
            staff = {"Authorization": f"Bearer {login['token']}"}
            rows = generate_register_rows(units, seed=seed)
            admin = f"/api/admin/communities/{community_id}"
            await _expect(await http.post(f"{admin}/register?filename=sim.csv", data=register_csv(rows),
                                          headers={**staff, "Content-Type": "text/csv"}), 201, "register import")
            lap("register")

            opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
            meeting_id = f"sim-{seed}"
            body = {"meeting_id": meeting_id, "title": "模拟小区首次业主大会", "matters": MATTERS,
                    "rules": {"allow_revision": True}, "opens_at": opens_at.isoformat(),
                    "closes_at": (opens_at + timedelta(days=7)).isoformat()}
            await _expect(await http.post(f"{admin}/meetings", json=body, headers=staff), 201, "create meeting")
            mbase = f"{admin}/meetings/{meeting_id}"
            election = await _committee_candidates(http, staff, admin, mbase, rows, rng)
            matters = [election if m["matter_id"] == election["matter_id"] else m for m in MATTERS]
            await _expect(await http.post(f"{mbase}/notice", headers=staff), 200, "publish notice")
            # SIMULATOR ONLY: pretend the notice went out 16 days ago so voting may open now
            # (the 15-day notice rule); production has no such path.
            await backdate_notice(pool, community_id, meeting_id)
            await _expect(await http.post(f"{mbase}/open", headers=staff), 200, "open meeting")
            lap("meeting")

            issued = await codes_service.issue_codes(pool, community_id=community_id, meeting_id=meeting_id,
                                                     actor=f"staff:{username}", public_url=settings.public_url)
            lap("codes")
            participants = rng.sample(issued.codes, round(turnout * len(issued.codes)))
            plans = []
            for code in participants:
                chosen = [m for m in matters if rng.random() < 0.95] or matters[:1]
                votes = [_choices(rng, m) for m in chosen]
                revision = _choices(rng, rng.choice(chosen)) if rng.random() < 0.1 else None
                plans.append((code, votes, revision))
            ledger: list[Submission] = []
            receipts: list[str] = []
            gate = asyncio.Semaphore(concurrency)

            async def vote(code, votes, revision) -> None:
                async with gate:
                    redeemed = await _expect(await http.post("/api/ballot/redeem", json={
                        "code": code.code, "last4": _last4(rows, code.representative),
                        "device_id": f"sim-device-{secrets.token_hex(6)}"}), 200, f"redeem {code.voter_id}")
                    owner = {"Authorization": f"Bearer {redeemed['token']}"}
                    for batch in ([votes] + ([[revision]] if revision else [])):
                        cast = await _expect(await http.post("/api/ballot/votes", headers=owner, json={
                            "idempotency_key": secrets.token_hex(8), "votes": batch}), 201,
                            f"vote {code.voter_id}")
                        by_matter = {v["matter_id"]: v for v in batch}
                        for receipt in cast["receipts"]:
                            receipts.append(receipt["receipt"])
                            v = by_matter[receipt["matter_id"]]
                            choices = (("", v["choice"]),) if "choice" in v else tuple(sorted(v["marks"].items()))
                            ledger.append(Submission(receipt["ballot_id"], code.voter_id, receipt["matter_id"],
                                                     "electronic", datetime.fromisoformat(receipt["received_at"]),
                                                     choices))

            await asyncio.gather(*(vote(*plan) for plan in plans))
            lap("voting")

            # SIMULATOR ONLY: the voting period ends now (it is never closed early); then close by hand.
            async def close() -> Any:
                return await _expect(await http.post(f"{mbase}/close", headers=staff), 200, "close meeting")

            await end_voting_and_close(pool, community_id, meeting_id, close)
            lap("close+sign")
            await _expect(await http.post(f"{mbase}/publish", headers=staff, json={}), 200, "publish result")
            lap("publish")

            files = await results_service.export_files(pool, community_id, meeting_id)
            write_directory(out, files)
            keys = await _expect(await http.get(f"/api/public/communities/{community_id}/keys"), 200, "keys")
            pem = keys["keys"][0]["public_key_pem"].encode()
            (out.parent / f"{out.name}.pubkey.pem").write_bytes(pem)
            # An owner checking a receipt on the public page: the proof must lead to the signed root.
            public = f"/api/public/meetings/{community_id}/{meeting_id}"
            root = bytes.fromhex(json.loads(files["result.sig.json"])["payload"]["receipts"]["root"])
            for receipt in rng.sample(receipts, min(20, len(receipts))):
                proof = await _expect(await http.get(f"{public}/receipts/{receipt}/proof"), 200, "receipt proof")
                if not verify_inclusion(bytes.fromhex(receipt), proof["leaf_index"], proof["tree_size"],
                                        [bytes.fromhex(h) for h in proof["proof"]], root):
                    raise SimulationFailed(f"the inclusion proof of receipt {receipt} does not verify")
            lap("export")

        report_verify = verify_bundle(out, pem)
        # Independent recount: the simulator's own ledger of what the API accepted, on its own register rows.
        register = [RegisterRow(r["unit_id"], r["building"], r["kind"], parse_area(r["area"]), r["area_source"],
                                r["holder"], r["owner_id"], r["representative"] == "1") for r in rows]
        rules = Rules(allow_revision=True)
        counted = [Matter(m["matter_id"], m["title"], m["kind"], m["category"], seats=m.get("seats", 0),
                          alternates=(4 * m["seats"] + 5) // 10 if m["kind"] == "election" else 0,
                          candidates=tuple((c["candidate_id"], c["name"]) for c in m.get("candidates", ())))
                   for m in matters]
        own = tally(meeting_id, rules, counted, compute_electorate(register, False), ledger)
        published = read_bundle(out).tally()
        if own != published or own != report_verify.result:
            raise SimulationFailed("the simulator's own recount differs from the published result")
        async with pool.acquire() as conn:
            if own != await counting_service.compute_result(conn, community_id, meeting_id):
                raise SimulationFailed("the counting service differs from the simulator's recount")
        lap("verify+recount")
        revisions = sum(1 for _, _, r in plans if r)
        return SimulationReport(community_id, meeting_id, out, units, len(issued.codes), len(participants),
                                len(ledger), revisions, timings, report_verify.summary(),
                                {m["id"]: m["outcome"] for m in own["matters"]})
    finally:
        await runner.cleanup()


__all__ = ["SimulationFailed", "SimulationReport", "run_simulation"]
