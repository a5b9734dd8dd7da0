"""The votes of `evote simulate`: who votes how, and casting them through the real HTTP API.

Each participating voting subject gets a :class:`Plan`: an electronic ballot (signed in at
POST /api/ballot/redeem with the last 4 digits of its representative's phone or ID number, the
matters read from GET /api/ballot/meeting, cast at POST /api/ballot/votes, sometimes revised), a
paper sheet keyed twice by two clerks at POST …/paper/entries (some matters left blank or ticked
unclearly and keyed ``invalid``, some elections over-marked, one sheet keyed differently the second
time and settled by a third clerk), or both (the duplicate policy decides).  Every submission the
API accepts goes into the ledger the simulator recounts on its own (simulate_recount.py); the
refusals the rules call for are tried on the way (a matter outside the voter's scope, electronically
and on paper; ``invalid`` on an electronic ballot; a joint subject's code with another co-owner's
digits) and must be refused with the documented error.
"""
from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import aiohttp

from server.devtools.simulate_recount import Cast, votes_on

# How likely each resolution gets a yes, and each candidate in list order: a spread, so outcomes differ.
YES_BIAS = {"M1": 0.85, "M2": 0.75, "M3": 0.55, "M4": 0.7, "M5": 0.72, "M6": 0.35, "M7": 0.8}
CANDIDATE_YES = [0.9, 0.8, 0.75, 0.7, 0.6, 0.55, 0.4, 0.3]
PAPER_EVERY, BOTH_EVERY = 7, 29        # one participant in 7 votes on paper, one in 29 both ways
BLANK_RESOLUTION, BLANK_ELECTION, OVER_MARKED = 0.05, 0.04, 0.03   # on a paper sheet, per matter


class SimulationFailed(RuntimeError):
    pass


async def expect(resp: aiohttp.ClientResponse, status: int, what: str, code: str | None = None) -> Any:
    """The response's JSON (or bytes) when it has ``status`` (and, for an error, the error ``code``)."""
    body = await resp.json() if resp.content_type == "application/json" else await resp.read()
    got = body.get("error", {}).get("code") if isinstance(body, dict) and "error" in body else None
    if resp.status != status or (code is not None and got != code):
        raise SimulationFailed(f"{what}: expected HTTP {status}{' ' + code if code else ''}, got HTTP "
                               f"{resp.status} {str(body)[:300]}")
    return body


@dataclass
class Plan:
    """How one participating voting subject votes."""

    voter_id: str
    code: str
    url: str
    last4: str
    matters: list[dict]                  # the matters in its scope, in meeting order
    electronic: list[dict] = field(default_factory=list)
    revision: dict | None = None
    sheet: list[dict] = field(default_factory=list)   # a paper sheet as keyed (empty: no paper)
    identify: str = "code"               # how the clerks find the owner: code | url | voter_id
    mismatch: list[dict] | None = None   # a second keying that differs (then a third clerk keys it again)
    out_of_scope: str | None = None      # a scoped matter outside the voter's scope to try (and be refused)
    try_invalid: bool = False            # try "invalid" on the electronic ballot (refused)
    wrong_last4: str | None = None       # a co-owner's digits to try first (refused: the representative holds the code)


def electronic_vote(rng: random.Random, matter: Mapping[str, Any]) -> dict:
    """A resolution's yes/no/abstain, or an election's marks (at most ``seats`` yes; sometimes none)."""
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
    for extra in [c for c, v in marks.items() if v == "yes"][matter["seats"]:]:
        del marks[extra]     # more yes than seats is refused on an electronic ballot
    return {"matter_id": matter["matter_id"], "marks": marks}   # {}: an abstention on every candidate


def paper_vote(rng: random.Random, matter: Mapping[str, Any], spoil: str = "") -> dict:
    """A matter as keyed from a paper sheet: ``spoil`` "blank" (keyed invalid) or "over" (too many ticks)."""
    if not spoil:
        roll = rng.random()
        if matter["kind"] == "resolution":
            spoil = "blank" if roll < BLANK_RESOLUTION else ""
        else:
            spoil = "blank" if roll < BLANK_ELECTION else ("over" if roll < BLANK_ELECTION + OVER_MARKED else "")
    if spoil == "blank":   # an election with no tick is keyed "marks": {}, a resolution "choice": "invalid"
        return ({"matter_id": matter["matter_id"], "choice": "invalid"} if matter["kind"] == "resolution"
                else {"matter_id": matter["matter_id"], "marks": {}})
    if spoil == "over":
        ticked = rng.sample([c["candidate_id"] for c in matter["candidates"]], matter["seats"] + 1)
        return {"matter_id": matter["matter_id"], "marks": dict.fromkeys(ticked, "yes")}
    return electronic_vote(rng, matter)


def stored_choices(item: Mapping[str, Any], matter: Mapping[str, Any], channel: str) -> tuple[tuple[str, str], ...]:
    """The rows a submission is stored with (docs/paper-and-proxy.md, openapi.yaml): an election with
    no mark is an abstention on every candidate electronically, and a blank (invalid) sheet on paper."""
    if "choice" in item:
        return (("", item["choice"]),)
    marks = item["marks"]
    if not marks:
        if channel == "paper":
            return (("", "invalid"),)
        marks = {c["candidate_id"]: "abstain" for c in matter["candidates"]}
    return tuple(sorted(marks.items()))


def make_plans(rng: random.Random, codes: Sequence[Any], turnout: float, matters: Sequence[dict],
               buildings_of: Mapping[str, Mapping[str, Decimal]], rows: Sequence[Mapping[str, str]],
               always: Set[str] = frozenset()) -> list[Plan]:
    """The plans of a ``turnout`` share of the subjects holding ``codes`` (IssuedCode); the subjects in
    ``always`` take part whenever the turnout leaves room for them, in a random place of the order."""
    people = {r["owner_id"]: r for r in rows}
    size = round(turnout * len(codes))
    first = [c for c in codes if c.voter_id in always][:size]
    participants = rng.sample([*first, *rng.sample([c for c in codes if c not in first], size - len(first))], size)
    plans, papers = [], 0
    for index, code in enumerate(participants):
        mine = [m for m in matters if votes_on(buildings_of[code.voter_id], m)]
        rep = people[code.representative]
        plan = Plan(code.voter_id, code.code, code.url,
                    (rep["id_number"] if index % 5 == 4 and rep["id_number"] else rep["phone"])[-4:], mine)
        paper = index % PAPER_EVERY == 3
        if not paper or index % BOTH_EVERY == 5:
            chosen = [m for m in mine if rng.random() < 0.95] or mine[:1]
            plan.electronic = [electronic_vote(rng, m) for m in chosen]
            if rng.random() < 0.1:
                plan.revision = electronic_vote(rng, rng.choice(chosen))
        if paper or index % BOTH_EVERY == 5:
            # the first sheets of paper-only voters cover every case, so that each one counts: a blank
            # resolution and a blank election, an over-marked election, a second keying that differs;
            # the clerks find the owner by the scanned code, the URL it holds, or the voter id
            case = papers if not plan.electronic else -1
            forced = {0: {"M1": "blank", "E1": "blank"}, 1: {"E1": "over"}}.get(case, {})
            chosen = [m for m in mine if m["matter_id"] in forced or rng.random() < 0.95] or mine[:1]
            plan.sheet = [paper_vote(rng, m, forced.get(m["matter_id"], "")) for m in chosen]
            plan.identify = {1: "voter_id", 2: "url"}.get(case, "code")
            if case == 0:
                plan.mismatch = [dict(v, choice="no" if v.get("choice") == "yes" else "yes")
                                 if "choice" in v and v["choice"] != "invalid" else v for v in plan.sheet]
                if plan.mismatch == plan.sheet:
                    plan.mismatch = plan.sheet[:-1] or None
            papers += not plan.electronic
        plans.append(plan)
    _add_refusals(plans, matters, buildings_of, rows)
    return plans


def _add_refusals(plans: list[Plan], matters: Sequence[dict], buildings_of: Mapping[str, Mapping[str, Decimal]],
                  rows: Sequence[Mapping[str, str]]) -> None:
    """Mark the plans that also try what must be refused (each case once, when the register has it)."""
    electronic = [p for p in plans if p.electronic]
    outside = {p.voter_id: [m["matter_id"] for m in matters if m not in p.matters] for p in plans}
    for plan in electronic:
        if outside[plan.voter_id]:
            plan.out_of_scope = outside[plan.voter_id][0]
            break
    for plan in (p for p in plans if p.sheet and not p.electronic and p.mismatch is None):
        if outside[plan.voter_id]:
            plan.out_of_scope = outside[plan.voter_id][0]
            break
    if electronic:
        electronic[-1].try_invalid = True
    by_unit: dict[str, list[Mapping[str, str]]] = {}
    for row in rows:
        by_unit.setdefault(row["unit_id"], []).append(row)
    for plan in electronic:
        owners = plan.voter_id.split("+")
        if len(owners) < 2:
            continue
        co_owner = next(r for unit in by_unit.values() for r in unit
                        if r["owner_id"] in owners and r["representative"] == "0")
        digits = co_owner["phone"][-4:]
        rep_rows = [r for r in rows if r["owner_id"] in owners and r["representative"] == "1"]
        if all(digits.upper() not in (r["phone"][-4:], r["id_number"][-4:].upper()) for r in rep_rows):
            plan.wrong_last4 = digits
            break


@dataclass
class Tried:
    """The refusals tried, and what the voting produced."""

    out_of_scope_electronic: int = 0
    out_of_scope_paper: int = 0
    invalid_electronic: int = 0
    wrong_person: int = 0
    listings_checked: int = 0
    sheets: int = 0
    sheets_third_entry: int = 0
    revisions: int = 0


class Voting:
    """Casts the plans through the API, keeping the ledger of what was accepted."""

    def __init__(self, http: aiohttp.ClientSession, mbase: str, clerks: Sequence[dict], matters: Sequence[dict],
                 expected_area: Mapping[str, str], invalid_ballot: str, concurrency: int = 8) -> None:
        self.http, self.mbase, self.clerks = http, mbase, clerks
        self.matters = {m["matter_id"]: m for m in matters}
        self.expected_area, self.invalid_ballot = expected_area, invalid_ballot
        self.gate = asyncio.Semaphore(concurrency)
        self.ledger: list[Cast] = []
        self.receipts: list[str] = []
        self.tried = Tried()

    async def run(self, plans: Sequence[Plan]) -> None:
        await asyncio.gather(*(self._one(plan) for plan in plans))

    async def _one(self, plan: Plan) -> None:
        async with self.gate:
            if plan.electronic:
                await self._electronic(plan)
            if plan.sheet:
                await self._paper(plan)

    def _record(self, voter_id: str, channel: str, items: Sequence[dict], receipts: Sequence[dict]) -> None:
        by_matter = {v["matter_id"]: v for v in items}
        if sorted(r["matter_id"] for r in receipts) != sorted(by_matter):
            raise SimulationFailed(f"{voter_id}: receipts for {[r['matter_id'] for r in receipts]}, "
                                   f"cast {sorted(by_matter)}")
        for r in receipts:
            self.receipts.append(r["receipt"])
            choices = stored_choices(by_matter[r["matter_id"]], self.matters[r["matter_id"]], channel)
            self.ledger.append(Cast(r["ballot_id"], voter_id, r["matter_id"], channel,
                                    datetime.fromisoformat(r["received_at"]), choices))

    async def _electronic(self, plan: Plan) -> None:
        http = self.http
        device = f"sim-device-{secrets.token_hex(6)}"
        if plan.wrong_last4:
            await expect(await http.post("/api/ballot/redeem", json={"code": plan.code, "last4": plan.wrong_last4,
                                                                     "device_id": device}),
                         403, f"redeem {plan.voter_id} with a co-owner's digits", "identity_mismatch")
            self.tried.wrong_person += 1
        redeemed = await expect(await http.post("/api/ballot/redeem", json={
            "code": plan.code, "last4": plan.last4, "device_id": device}), 200, f"redeem {plan.voter_id}")
        owner = {"Authorization": f"Bearer {redeemed['token']}"}
        meeting = await expect(await http.get("/api/ballot/meeting", headers=owner), 200, "owner's meeting")
        listed = [m["matter_id"] for m in meeting["matters"]]
        if listed != [m["matter_id"] for m in plan.matters]:
            raise SimulationFailed(f"{plan.voter_id} is shown matters {listed}, expected "
                                   f"{[m['matter_id'] for m in plan.matters]} (their scope)")
        if meeting["voter"]["area"] != self.expected_area[plan.voter_id]:
            raise SimulationFailed(f"{plan.voter_id}: area {meeting['voter']['area']}, expected "
                                   f"{self.expected_area[plan.voter_id]}")
        if meeting["rules"]["invalid_ballot"] != self.invalid_ballot:
            raise SimulationFailed(f"the owner page states invalid_ballot {meeting['rules']['invalid_ballot']}")
        self.tried.listings_checked += 1
        if plan.out_of_scope:
            outside = electronic_vote(random.Random(0), self.matters[plan.out_of_scope])
            await expect(await http.post("/api/ballot/votes", headers=owner, json={
                "idempotency_key": secrets.token_hex(8), "votes": [*plan.electronic, outside]}),
                422, f"{plan.voter_id} voting on {plan.out_of_scope}, outside their scope", "matter_out_of_scope")
            self.tried.out_of_scope_electronic += 1
        if plan.try_invalid:
            resolution = next(m for m in plan.matters if m["kind"] == "resolution")
            await expect(await http.post("/api/ballot/votes", headers=owner, json={
                "idempotency_key": secrets.token_hex(8),
                "votes": [{"matter_id": resolution["matter_id"], "choice": "invalid"}]}),
                422, "an electronic ballot marked invalid", "bad_choice")
            self.tried.invalid_electronic += 1
        for batch in [plan.electronic] + ([[plan.revision]] if plan.revision else []):
            cast = await expect(await http.post("/api/ballot/votes", headers=owner, json={
                "idempotency_key": secrets.token_hex(8), "votes": batch}), 201, f"vote {plan.voter_id}")
            self._record(plan.voter_id, "electronic", batch, cast["receipts"])
        self.tried.revisions += plan.revision is not None

    async def _key(self, plan: Plan, clerk: int, votes: list[dict], status: str, what: str) -> dict:
        who = {"voter_id": plan.voter_id} if plan.identify == "voter_id" else {
            "code": plan.url if plan.identify == "url" else plan.code}
        body = {**who, "votes": votes, "paper_date": date.today().isoformat(),
                "scan_ref": f"scans/{plan.voter_id}.jpg"}
        entry = await expect(await self.http.post(f"{self.mbase}/paper/entries", headers=self.clerks[clerk],
                                                  json=body), 201, what)
        if entry["status"] != status or entry["voter_id"] != plan.voter_id:
            raise SimulationFailed(f"{what}: status {entry['status']} for {entry['voter_id']}, expected {status}")
        return entry

    async def _paper(self, plan: Plan) -> None:
        if plan.out_of_scope and not plan.electronic:
            outside = paper_vote(random.Random(0), self.matters[plan.out_of_scope], "blank")
            await expect(await self.http.post(f"{self.mbase}/paper/entries", headers=self.clerks[0], json={
                "code": plan.code, "votes": [*plan.sheet, outside]}),
                422, f"a sheet of {plan.voter_id} keyed for {plan.out_of_scope}, outside their scope",
                "matter_out_of_scope")
            self.tried.out_of_scope_paper += 1
        await self._key(plan, 0, plan.sheet, "pending", f"first keying of {plan.voter_id}'s sheet")
        if plan.mismatch is None:
            entry = await self._key(plan, 1, plan.sheet, "matched", f"second keying of {plan.voter_id}'s sheet")
        else:
            await self._key(plan, 1, plan.mismatch, "mismatch", f"a second keying that differs ({plan.voter_id})")
            entry = await self._key(plan, 2, plan.sheet, "resolved", f"a third keying equal to the first "
                                                                      f"({plan.voter_id})")
            self.tried.sheets_third_entry += 1
        self._record(plan.voter_id, "paper", plan.sheet, entry["receipts"])
        self.tried.sheets += 1


__all__ = ["Plan", "SimulationFailed", "Tried", "Voting", "expect", "make_plans"]
