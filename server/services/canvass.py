"""The canvass list (走访名单): the units whose owners have not voted yet, per building, for door-to-door visits.

Organisers only (server.auth.staff.ORGANISER_ROLES; auditors never see it), and every read is an
audit entry: the list says who has not voted, which is personal data.  Names and phones are masked
(server.ballot.masking); a subject that changed hands during the meeting is listed under its new
owner.  A unit whose subject cast anything (any matter, electronic or paper, by proxy too) has
voted.  The list exists while voting can still be helped: noticed or open meetings.
"""
from __future__ import annotations

import re
from itertools import groupby

import asyncpg

from server.ballot.masking import mask_name
from server.errors import Conflict, NotFound
from server.repositories import canvass as repo
from server.repositories import codes as codes_repo
from server.services import audit

CANVASS_STATES = ("noticed", "open")
_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple:
    """"2" before "10", "1-2" before "1-10": buildings and units as people number them."""
    # isdecimal, not isdigit: "²" is a digit to Python but not a number int() reads
    return tuple((0, int(part), "") if part.isdecimal() else (1, 0, part) for part in _DIGITS.split(text) if part)


def canvass_document(meeting_id: str, rows: list) -> dict:
    """The answer: buildings in natural order, each with its units not voted (natural order)."""
    buildings = []
    ordered = sorted(rows, key=lambda r: (natural_key(r["building"]), natural_key(r["unit_id"])))
    for building, units in groupby(ordered, key=lambda r: r["building"]):
        not_voted = [{"unit_id": r["unit_id"], "unit_label": r["unit_id"], "voter_id": r["voter_id"],
                      "owner_masked": mask_name(r["name"]), "phone_masked": r["phone_masked"]} for r in units]
        buildings.append({"building": building, "not_voted": not_voted, "count": len(not_voted)})
    return {"meeting_id": meeting_id, "buildings": buildings,
            "total_not_voted": sum(b["count"] for b in buildings)}


async def canvass_list(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, building: str | None,
                       actor: str) -> dict:
    """The units not voted yet (optionally of one building); the read is audited in the same transaction."""
    async with pool.acquire() as conn, conn.transaction():
        meeting = await codes_repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        if meeting["state"] not in CANVASS_STATES:
            if meeting["state"] == "draft":
                raise Conflict("会议尚未发布公告，业主名单未冻结，暂无走访名单", code="meeting_not_noticed")
            raise Conflict("投票已结束，不再提供未投票名单", code="meeting_closed", fields={"state": meeting["state"]})
        if building is not None and building not in await repo.meeting_buildings(conn, community_id, meeting_id):
            raise NotFound(f"本次会议的表决名单中没有楼栋“{building}”", code="building_not_found")
        rows = await repo.units_not_voted(conn, community_id, meeting_id, building)
        doc = canvass_document(meeting_id, list(rows))
        await audit.append(conn, community_id=community_id, actor=actor, action="canvass.read",
                           detail={"meeting_id": meeting_id, "building": building,
                                   "units": doc["total_not_voted"]})
    return doc
