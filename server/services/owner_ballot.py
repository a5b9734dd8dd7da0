"""What an owner may read about their own ballot: the meeting as their ballot page shows it, whether
they voted on each matter, and their receipts (server/services/casting.py stores the ballots)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import asyncpg

from server.auth.ballot import BallotPrincipal
from server.ballot.amounts import format_area
from server.ballot.receipts import format_ballot_receipt, format_cast_at, receipt_code
from server.ballot.rules import THRESHOLD_DESCRIPTIONS
from server.ballot.tally import Rules
from server.errors import NotFound
from server.repositories import ballot_receipts as ballot_receipts_repo
from server.repositories import meetings as repo
from server.repositories import window as window_repo
from server.services import meetings as meetings_service
from server.services.casting import meeting_definition
from server.services.rule_statements import rule_statements


async def owner_meeting(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    definition = await meeting_definition(pool, principal.community_id, principal.meeting_id)
    async with pool.acquire() as conn:
        meeting = await repo.get_meeting(conn, principal.community_id, principal.meeting_id)
        me = await repo.electorate_member(conn, principal.community_id, principal.meeting_id, principal.voter_id)
        extensions = await window_repo.list_extensions(conn, principal.community_id, principal.meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    rules = Rules.from_json(meeting["rules"])
    return {
        "community_id": meeting["community_id"], "meeting_id": meeting["meeting_id"], "title": meeting["title"],
        "state": meeting["state"], "state_name": meetings_service.STATE_NAMES[meeting["state"]],
        "opens_at": meeting["opens_at"].isoformat() if meeting["opens_at"] else None,
        "closes_at": meeting["closes_at"].isoformat() if meeting["closes_at"] else None,
        # extension notices (延期公告) that moved closes_at; a voided meeting's time and reason
        "extensions": [{k: v for k, v in meetings_service.extension_document(e).items() if k != "actor"}
                       for e in extensions],
        "voided_at": meeting["voided_at"].isoformat() if meeting["voided_at"] else None,
        "void_reason": meeting["void_reason"],
        "allow_revision": definition.allow_revision,
        # the rules that decide which ballot counts and what a blank one means, stated before voting
        "rules": {"duplicate_policy": rules.duplicate_policy, "allow_revision": rules.allow_revision,
                  "invalid_ballot": rules.invalid_ballot, "statements": rule_statements(rules)},
        "show_live_results": meeting["show_live_results"],
        "totals": None if meeting["total_area"] is None else
        {"area": format_area(meeting["total_area"], meeting["area_places"]), "persons": meeting["total_persons"]},
        "voter": None if me is None else
        {"voter_id": me["voter_id"], "area": format_area(me["area"], meeting["area_places"] or 2),
         "units": list(me["units"])},
        # only the matters in the owner's scope, each with its threshold in words
        "matters": [{**doc, "threshold_text": threshold_text(doc)} for doc in definition.documents_for(principal.voter_id)],
        "quorum_text": QUORUM_TEXT,
    }


QUORUM_TEXT = "参与表决的业主，专有部分面积和人数都要达到全体（或该事项表决范围内）的三分之二以上，表决才有效。"


def threshold_text(matter: Mapping[str, Any]) -> str:
    """What a matter needs to pass, in words an owner reads on the ballot."""
    if matter["kind"] == "election":
        return "候选人须获得参与表决业主的面积、人数均过半数同意才能当选，按得票多少确定当选人。"
    return "通过条件：" + THRESHOLD_DESCRIPTIONS[matter["threshold"]] + "。"


async def owner_status(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    definition = await meeting_definition(pool, principal.community_id, principal.meeting_id)
    async with pool.acquire() as conn:
        rows = await repo.voter_submissions(conn, principal.community_id, principal.meeting_id, principal.voter_id)
    latest: dict[str, asyncpg.Record] = {}
    counts: dict[str, int] = {}
    for r in rows:
        latest[r["matter_id"]] = r  # rows come oldest first
        counts[r["matter_id"]] = counts.get(r["matter_id"], 0) + 1
    matters = []
    for matter_id in definition.matter_ids_for(principal.voter_id):
        r = latest.get(matter_id)
        matters.append({
            "matter_id": matter_id, "voted": r is not None,
            "received_at": format_cast_at(r["received_at"]) if r else None,
            "channel": r["channel"] if r else None,
            "submissions": counts.get(matter_id, 0),
            "can_vote": r is None or definition.allow_revision,
        })
    return {"meeting_id": principal.meeting_id, "allow_revision": definition.allow_revision,
            "voted_all": all(m["voted"] for m in matters), "matters": matters}


async def owner_receipts(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    """Every submission of the owner's voting subject (whatever code signed in: they survive a reissue),
    each with its ballot's short receipt, and the ballots: one short receipt per electronic submission
    of one or more matters (paper and proxy ballots have none, and stand one per matter)."""
    cid, mid, voter = principal.community_id, principal.meeting_id, principal.voter_id
    definition = await meeting_definition(pool, cid, mid)
    async with pool.acquire() as conn:
        rows = await repo.voter_submissions(conn, cid, mid, voter)
        short_of = await ballot_receipts_repo.codes_of_voter(conn, cid, mid, voter)
    receipts = []
    ballots: dict[str, dict] = {}
    for r in rows:
        ballot_id = str(r["ballot_id"])
        short = short_of.get(ballot_id)
        item = {"matter_id": r["matter_id"], "ballot_id": ballot_id, "receipt": receipt_code(bytes(r["receipt"])),
                "received_at": format_cast_at(r["received_at"]), "channel": r["channel"], "revision": r["revision"],
                "ballot_receipt": format_ballot_receipt(short) if short else None}
        receipts.append(item)
        ballot = ballots.setdefault(short or ballot_id, {
            "ballot_receipt": item["ballot_receipt"], "received_at": item["received_at"], "channel": r["channel"],
            "matters": [], "receipts": []})
        ballot["matters"].append(r["matter_id"])
        ballot["receipts"].append(item["receipt"])
    order = {matter_id: i for i, matter_id in enumerate(definition.matters)}
    for ballot in ballots.values():   # each ballot's matters in meeting order
        pairs = sorted(zip(ballot["matters"], ballot["receipts"], strict=True), key=lambda p: order.get(p[0], 0))
        ballot["matters"], ballot["receipts"] = [p[0] for p in pairs], [p[1] for p in pairs]
    return {"meeting_id": mid, "receipts": receipts, "ballots": list(ballots.values())}
