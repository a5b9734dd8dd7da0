"""Deadlines after an election, for a community or a whole street (docs/elections.md).

The first assembly within 60 days of the preparatory group, the committee's
first meeting within 3 days and its filing within 30 days of the election, and
the end of each term; each is done, overdue, due soon or pending
(``server.ballot.elections.deadline_state``) on the day asked (by default today
in China).
"""
from __future__ import annotations

from datetime import date, timedelta

import asyncpg

from server.ballot import elections as rules
from server.repositories import elections as repo
from server.services.meeting_input import iso

DEADLINE_NAMES = {"first_meeting": "业主委员会首次会议（选举产生之日起 3 日内）",
                  "filing": "向区住房和城乡建设局备案（选举产生之日起 30 日内）",
                  "first_assembly": "首次业主大会会议（筹备组成立之日起 60 日内）",
                  "term_end": "任期届满"}
FIRST_MEETING_DAYS, FILING_DAYS, FIRST_ASSEMBLY_DAYS = 3, 30, 60


def _deadline(kind: str, due: date, today: date, done_on: date | None, window: int) -> dict:
    return {"kind": kind, "name": DEADLINE_NAMES[kind], "due": due.isoformat(),
            "done_on": iso(done_on), "done_late": done_on is not None and done_on > due,
            "state": rules.deadline_state(due, today, done_on=done_on, due_soon_days=window)}


def deadlines_for(community: asyncpg.Record, committees: list[dict], today: date, window: int) -> dict:
    items = []
    if community["prep_group_formed_on"] is not None:
        due = community["prep_group_formed_on"] + timedelta(days=FIRST_ASSEMBLY_DAYS)
        items.append(_deadline("first_assembly", due, today, community["first_assembly_on"], window))
    for c in committees:
        if not c["formed"]:
            continue
        owner = {"committee_id": c["committee_id"], "body": c["body"], "body_name": rules.BODY_NAMES[c["body"]]}
        if c["body"] == "committee":
            items.append(owner | _deadline("first_meeting", c["elected_on"] + timedelta(days=FIRST_MEETING_DAYS),
                                           today, c["first_meeting_on"], 1))
            items.append(owner | _deadline("filing", c["elected_on"] + timedelta(days=FILING_DAYS), today,
                                           c["filing_date"], window))
        if c["term_end"] is not None:
            items.append(owner | _deadline("term_end", c["term_end"], today, None, window))
    return {"community_id": community["community_id"], "community_name": community["name"], "deadlines": items}


async def deadlines(pool: asyncpg.Pool, community_ids: list[str], *, today: date | None, window: int) -> dict:
    async with pool.acquire() as conn:
        today = today or await repo.today_in_china(conn)
        communities = await repo.community_deadline_rows(conn, community_ids)
        committees = await repo.list_committees(conn, community_ids)
    by_community: dict[str, list[dict]] = {}
    for c in committees:
        by_community.setdefault(c["community_id"], []).append(c)
    out = [deadlines_for(row, by_community.get(row["community_id"], []), today, window) for row in communities]
    counts = {state: 0 for state in rules.DEADLINE_STATES}
    for community in out:
        for item in community["deadlines"]:
            counts[item["state"]] += 1
    return {"today": today.isoformat(), "due_soon_days": window, "counts": counts, "communities": out}


async def street_community_ids(pool: asyncpg.Pool, street_id: str) -> list[str]:
    async with pool.acquire() as conn:
        return [r["community_id"] for r in await repo.communities_of_street(conn, street_id)]
