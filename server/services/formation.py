"""From a closed election to a committee record, and the runoffs that complete it (docs/elections.md).

- Outcomes: every election matter of a meeting with the engine's result and the
  formation it gives (live before the close).
- Formation: when a meeting closes (a close hook listed in server.app) or on
  request, each committee / supervisory election matter gets a ``committee``
  row: formed or not with the reason, members and alternates in vote order,
  from the result (the stored signed result when there is one, else
  ``counting.compute_result``; both come from the same engine).  A runoff
  matter's result is merged into the committee of the election it continues.
- Runoffs: a new draft meeting holding the tied candidates (or, for empty
  seats, no candidates yet) for exactly the places the tie or shortage left.

Formation and runoffs of a community are serialised by the ``formation`` lock.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import asyncpg

from server.ballot import elections as rules
from server.errors import Conflict, NotFound
from server.repositories import elections as repo
from server.repositories import locks
from server.repositories import meetings as meetings_repo
from server.repositories import results as results_repo
from server.services import audit, counting
from server.services import meetings as meetings_service
from server.services.committees import committee_document, locked_committee, record_event
from server.services.effects import Effects
from server.services.election_input import BODIES, read_text
from server.services.meeting_input import check_meeting_id, check_window, parse_time


async def _result(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    stored = await results_repo.get_result(conn, community_id, meeting_id)
    if stored is not None:
        return json.loads(stored["result_json"])
    return await counting.compute_result(conn, community_id, meeting_id)


async def _closed_election(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           matter_id: str) -> tuple[dict, asyncpg.Record, dict]:
    """(meeting, matter row, result of the matter) of a closed meeting's election matter."""
    meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    matter = next((m for m in await meetings_repo.list_matters(conn, community_id, meeting_id)
                   if m["matter_id"] == matter_id), None)
    if matter is None or matter["kind"] != "election":
        raise NotFound("找不到该选举事项", code="matter_not_found")
    if meeting["state"] not in ("closed", "published"):
        raise Conflict("会议投票尚未结束", code="meeting_not_closed", fields={"state": meeting["state"]})
    result = await _result(conn, community_id, meeting_id)
    matter_result = next(m for m in result["matters"] if m["id"] == matter_id)
    return meeting, matter, matter_result


def _formation(meeting: dict, matter: asyncpg.Record, matter_result: dict) -> rules.Formation:
    return rules.decide_formation(matter_result, seats=matter["seats"], alternates=matter["alternates"],
                                  rank_by=meeting["rules"]["rank_by"], body=matter["body"] or "other")


async def election_outcomes(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    """Every election matter of a noticed-or-later meeting: the engine's result and the formation.

    Before the close this is the live count (what the result would be now)."""
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        result = await _result(conn, community_id, meeting_id) if meeting["state"] in ("closed", "published") \
            else await counting.compute_result(conn, community_id, meeting_id)
        matters = {m["matter_id"]: m for m in await meetings_repo.list_matters(conn, community_id, meeting_id)}
    out = []
    for matter_result in result["matters"]:
        matter = matters[matter_result["id"]]
        if matter["kind"] != "election":
            continue
        formation = _formation(meeting, matter, matter_result)
        out.append({"matter_id": matter["matter_id"], "title": matter["title"], "body": matter["body"],
                    "seats": matter["seats"], "alternates": matter["alternates"], "result": matter_result,
                    "formation": formation.as_json()})
    return {"meeting_id": meeting_id, "state": meeting["state"], "final": meeting["state"] in ("closed", "published"),
            "elections": out}


async def _profiles(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> dict[str, dict]:
    owners = {r["candidate_id"]: r["owner_id"] for r in await repo.candidate_sources(conn, community_id, meeting_id)
              if r["matter_id"] == matter_id}
    return {c["candidate_id"]: {"name": c["name"], "unit_label": c["unit_label"], "party_member": c["party_member"],
                                "statement": c["statement"], "owner_id": owners.get(c["candidate_id"])}
            for c in await meetings_repo.list_candidates(conn, community_id, meeting_id) if c["matter_id"] == matter_id}


async def _add_members(conn: asyncpg.Connection, committee: dict,
                       entries: list[tuple[str, str, str, str, dict]]) -> None:
    """entries: (candidate_id, role, meeting_id, matter_id, profile), appended in vote order."""
    existing = await repo.list_members(conn, committee["community_id"], committee["committee_id"])
    next_no = max((m["member_no"] for m in existing), default=0) + 1
    rows = []
    for offset, (candidate_id, role, meeting_id, matter_id, p) in enumerate(entries):
        rows.append({"community_id": committee["community_id"], "committee_id": committee["committee_id"],
                     "member_no": next_no + offset, "candidate_id": candidate_id, "meeting_id": meeting_id,
                     "matter_id": matter_id, "owner_id": p["owner_id"], "name": p["name"],
                     "unit_label": p["unit_label"], "party_member": p["party_member"], "role": role})
    await repo.insert_members(conn, rows)


def _plan(plan_json: dict) -> rules.RunoffPlan:
    """The stored plan of a runoff (``RunoffPlan.as_json``) read back."""
    return rules.RunoffPlan(plan_json["kind"], plan_json["first_place"], plan_json["seat_places"],
                            plan_json["alternate_places"], tuple(plan_json["candidates"]),
                            tuple(tuple(g) for g in plan_json["continuation"]))


def _names(profiles: dict, ids) -> str:
    return "、".join(profiles[c]["name"] for c in ids) or "无"


async def _root_of(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str) -> tuple[str, str]:
    seen = set()
    while (link := await repo.get_runoff(conn, community_id, meeting_id, matter_id)) is not None:
        if (meeting_id, matter_id) in seen:  # cannot happen (origin must be closed before); be safe
            break
        seen.add((meeting_id, matter_id))
        meeting_id, matter_id = link["origin_meeting_id"], link["origin_matter_id"]
    return meeting_id, matter_id


async def _form_root(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                     actor: str) -> dict:
    committee = await repo.committee_for_matter(conn, community_id, meeting_id, matter_id, lock=True)
    if committee is not None:
        return committee
    meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
    if matter["body"] not in BODIES:
        raise Conflict("该选举事项不是业主委员会或监事会选举", code="not_a_body_election")
    formation = _formation(meeting, matter, matter_result)
    elected_on = await repo.closed_on(conn, community_id, meeting_id) if formation.formed else None
    await locks.xact_lock(conn, "committee", community_id)
    committee = await repo.insert_committee(
        conn, community_id=community_id, body=matter["body"], meeting_id=meeting_id, matter_id=matter_id,
        seats=matter["seats"], alternate_places=matter["alternates"], formed=formation.formed,
        reason=formation.reason, notes=list(formation.notes),
        pending_runoff=formation.runoff.as_json() if formation.runoff else None, elected_on=elected_on,
        created_by=actor)
    profiles = await _profiles(conn, community_id, meeting_id, matter_id)
    await _add_members(conn, committee, [(c, "member", meeting_id, matter_id, profiles[c]) for c in formation.elected]
                       + [(c, "alternate", meeting_id, matter_id, profiles[c]) for c in formation.alternates])
    body_name = rules.BODY_NAMES[matter["body"]]
    if formation.formed:
        summary = (f"{body_name}选举产生：委员 {_names(profiles, formation.elected)}；"
                   f"候补委员 {_names(profiles, formation.alternates)}")
    else:
        summary = f"{body_name}未能组成：{formation.reason}"
    if formation.notes:
        summary += "。" + "；".join(formation.notes)
    await record_event(conn, committee, "election", summary,
                 {"meeting_id": meeting_id, "matter_id": matter_id, "formation": formation.as_json()}, actor)
    return committee


async def _merge_runoff(conn: asyncpg.Connection, community_id: str, meeting_id: str, matter_id: str,
                        link: dict, actor: str) -> int:
    """Apply a closed runoff matter's result to the committee of the election it continues (once).

    ``link`` is the runoff's ``election_runoff`` row; returns the id of the committee."""
    root_meeting, root_matter = await _root_of(conn, community_id, meeting_id, matter_id)
    root = await _form_root(conn, community_id, root_meeting, root_matter, actor)
    committee = await locked_committee(conn, community_id, root["committee_id"])
    events = await repo.list_events(conn, community_id, committee["committee_id"])
    if any(e["kind"] == "runoff_result" and json.loads(e["detail"]).get("meeting_id") == meeting_id
           and json.loads(e["detail"]).get("matter_id") == matter_id for e in events):
        return committee["committee_id"]
    meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
    plan = _plan(link["plan"])
    formation = _formation(meeting, matter, matter_result)
    profiles = await _profiles(conn, community_id, meeting_id, matter_id)
    members = await repo.list_members(conn, community_id, committee["committee_id"])
    have_alternates = sum(1 for m in members if m["role"] == "alternate")
    if not formation.quorum_met:
        failed = {"reason": "另行选举" + formation.reason} if not committee["formed"] else {}
        await repo.update_committee(conn, community_id, committee["committee_id"], failed)
        await record_event(conn, committee, "runoff_result", "另行选举未达参与表决法定比例，需重新另行选举",
                     {"meeting_id": meeting_id, "matter_id": matter_id, "formation": formation.as_json()}, actor)
        return committee["committee_id"]
    tied = formation.runoff.candidates if formation.runoff and formation.runoff.kind == "tie" else ()
    merge = rules.merge_runoff(plan, formation.elected_groups, tied,
                               alternate_places_left=committee["alternate_places"] - have_alternates)
    # Continuation candidates are ranked in an earlier election of the chain: take their
    # profile from the nearest matter that lists them.
    chain = [(meeting_id, matter_id)]
    while (up := await repo.get_runoff(conn, community_id, *chain[-1])) is not None:
        chain.append((up["origin_meeting_id"], up["origin_matter_id"]))
    where: dict[str, tuple[str, str, dict]] = {}
    for m_id, t_id in reversed(chain):
        for cid, p in (await _profiles(conn, community_id, m_id, t_id)).items():
            where[cid] = (m_id, t_id, p)
    entries = [(c, "member", meeting_id, matter_id, profiles[c]) for c in merge.members]
    entries += [(c, "alternate", meeting_id, matter_id, profiles[c]) for c in merge.alternates]
    entries += [(c, "alternate", where[c][0], where[c][1], where[c][2]) for c in merge.continued]
    await _add_members(conn, committee, entries)
    all_profiles = {c: v[2] for c, v in where.items()}
    members = await repo.list_members(conn, community_id, committee["committee_id"])
    seated = sum(1 for m in members if m["role"] == "member")
    body_name = rules.BODY_NAMES[committee["body"]]
    changes: dict[str, Any] = {"pending_runoff": None}
    if seated >= committee["seats"]:
        if not committee["formed"]:
            changes.update(formed=True, reason="", elected_on=await repo.closed_on(conn, community_id, meeting_id))
        if merge.still_tied:
            changes["notes"] = committee["notes"] + ["候补委员出现票数完全相同，需另行选举"]
    else:
        short = committee["seats"] - seated
        if merge.still_tied:
            reason = f"另行选举后仍有票数完全相同（候选人 {'、'.join(merge.still_tied)}），尚缺 {short} 席，需再次另行选举"
        else:
            reason = f"当选人数不足 {committee['seats']} 人（当选 {seated} 人），需另行选举补足 {short} 席"
        changes.update(reason=reason)
    if formation.runoff is not None and merge.still_tied:
        changes["pending_runoff"] = formation.runoff.as_json()
    await repo.update_committee(conn, community_id, committee["committee_id"], changes)
    summary = (f"另行选举结果：新增委员 {_names(all_profiles, merge.members)}；"
               f"新增候补委员 {_names(all_profiles, merge.alternates + merge.continued)}")
    if changes.get("formed"):
        summary += f"。{body_name}已组成"
    elif changes.get("reason"):
        summary += f"。{changes['reason']}"
    await record_event(conn, committee, "runoff_result", summary,
                 {"meeting_id": meeting_id, "matter_id": matter_id, "members": list(merge.members),
                  "alternates": list(merge.alternates + merge.continued), "still_tied": list(merge.still_tied)}, actor)
    return committee["committee_id"]


async def form_committee(pool: asyncpg.Pool, community_id: str, meeting_id: str, matter_id: str, *,
                         actor: str) -> dict:
    """The committee record of a closed election (idempotent); a runoff is merged into its root."""
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "formation", community_id)
        link = await repo.get_runoff(conn, community_id, meeting_id, matter_id)
        if link is not None:
            committee_id = await _merge_runoff(conn, community_id, meeting_id, matter_id, link, actor)
        else:
            committee_id = (await _form_root(conn, community_id, meeting_id, matter_id, actor))["committee_id"]
        return await committee_document(conn, community_id, committee_id)


async def on_meeting_closed(pool: asyncpg.Pool, effects: Effects, community_id: str, meeting_id: str) -> None:
    """Close hook (listed in server.app): form (or update) the committee of every committee / supervisory election."""
    async with pool.acquire() as conn:
        matters = [m["matter_id"] for m in await meetings_repo.list_matters(conn, community_id, meeting_id)
                   if m["kind"] == "election" and m["body"] in BODIES]
    for matter_id in matters:
        await form_committee(pool, community_id, meeting_id, matter_id, actor="system")


# ---------------------------------------------------------------- runoffs

async def create_runoff(pool: asyncpg.Pool, community_id: str, meeting_id: str, matter_id: str, data: dict,
                        actor: str) -> dict:
    """A new draft meeting with one election matter for the places a tie or a shortage left."""
    opens_at = parse_time(data.get("opens_at"), "opens_at")
    closes_at = parse_time(data.get("closes_at"), "closes_at")
    check_window(opens_at, closes_at)
    new_id = data.get("meeting_id")
    if new_id is not None:
        check_meeting_id(new_id)
    async with pool.acquire() as conn, conn.transaction():
        await locks.xact_lock(conn, "formation", community_id)
        meeting, matter, matter_result = await _closed_election(conn, community_id, meeting_id, matter_id)
        if await repo.runoff_of(conn, community_id, meeting_id, matter_id) is not None:
            raise Conflict("该选举事项已创建另行选举", code="runoff_exists")
        formation = _formation(meeting, matter, matter_result)
        parent = await repo.get_runoff(conn, community_id, meeting_id, matter_id)
        plan = formation.runoff
        if not formation.quorum_met and parent is not None:
            plan = _plan(parent["plan"])  # the runoff itself failed for lack of quorum: hold it again
        elif not formation.quorum_met:
            raise Conflict("该选举未达参与表决法定比例，不能另行选举，需重新召集会议选举", code="no_quorum_no_runoff")
        elif plan is None:
            raise Conflict("该选举的席位已全部产生，无需另行选举", code="runoff_not_needed")
        elif parent is not None:
            parent_plan = parent["plan"]
            # A runoff of a runoff keeps what its parent filled, and the parent's unused continuation.
            continuation = plan.continuation + tuple(tuple(g) for g in parent_plan["continuation"])
            if parent_plan["seat_places"] == 0:
                plan = dataclasses.replace(plan, seat_places=0,
                                           alternate_places=plan.seat_places + plan.alternate_places,
                                           continuation=continuation)
            else:
                plan = dataclasses.replace(plan, continuation=continuation)
        count = await repo.count_runoffs_from(conn, community_id, meeting_id)
        new_id = new_id or f"{meeting_id[:56]}-R{count + 1}"
        title = read_text(data, "title", max_length=200, label="会议名称") or f"{meeting['title'][:180]}（另行选举）"
        try:
            await meetings_repo.insert_meeting(conn, community_id=community_id, meeting_id=new_id, title=title,
                                               rules=meeting["rules"], show_live_results=meeting["show_live_results"],
                                               opens_at=opens_at, closes_at=closes_at, created_by=actor)
        except asyncpg.UniqueViolationError:
            raise Conflict("该会议编号已存在", code="meeting_exists") from None
        await meetings_repo.insert_transition(conn, community_id=community_id, meeting_id=new_id, from_state=None,
                                              to_state="draft", actor=actor,
                                              note=f"runoff of {meeting_id}/{matter_id}")
        new_matter = {"matter_id": matter_id, "kind": "election",
                      "title": f"另行选举：{matter['title']}"[:200],
                      "description": f"{matter['title']} 的另行选举（第 {plan.first_place} 位起）",
                      "category": matter["category"], "seats": plan.matter_seats,
                      "alternates": plan.matter_alternates, "body": matter["body"], "scope": matter["scope"]}
        await meetings_repo.insert_matter(conn, community_id, new_id, new_matter, 1)
        if plan.candidates:
            old = {c["candidate_id"]: c for c in await meetings_repo.list_candidates(conn, community_id, meeting_id)
                   if c["matter_id"] == matter_id}
            await meetings_repo.insert_candidates(conn, community_id, new_id, matter_id, [
                {"candidate_id": cid, "name": old[cid]["name"], "unit_label": old[cid]["unit_label"],
                 "party_member": old[cid]["party_member"], "statement": old[cid]["statement"]}
                for cid in plan.candidates], 1)
            sources = [r for r in await repo.candidate_sources(conn, community_id, meeting_id)
                       if r["matter_id"] == matter_id and r["candidate_id"] in set(plan.candidates)]
            await repo.insert_candidate_sources(conn, [
                (community_id, new_id, matter_id, r["candidate_id"], r["nomination_id"], r["owner_id"])
                for r in sources])
        await repo.insert_runoff(conn, community_id=community_id, meeting_id=new_id, matter_id=matter_id,
                                 origin_meeting_id=meeting_id, origin_matter_id=matter_id, plan=plan.as_json(),
                                 created_by=actor)
        await audit.append(conn, community_id=community_id, actor=actor, action="election.runoff.create",
                           detail={"meeting_id": new_id, "matter_id": matter_id, "origin_meeting_id": meeting_id,
                                   "plan": plan.as_json()})
        doc = await meetings_service.load_document(conn, community_id, new_id)
    return doc | {"runoff": plan.as_json(), "origin": {"meeting_id": meeting_id, "matter_id": matter_id}}

