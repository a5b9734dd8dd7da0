"""`evote demo` step: fresh ballot codes for three sample owners of the demo meeting.

Each demo run reissues their codes (the old ones stop working) and prints the
owner-page links with the last four phone digits to type.  Printing identity
hints is DEMO ONLY: real codes go out on printed sheets (`evote codes issue`).
"""
from __future__ import annotations

import asyncpg

from server.ballot.masking import last4
from server.repositories import codes as codes_repo
from server.repositories import meetings as meetings_repo
from server.services import codes as codes_service

SAMPLE_OWNERS = 3


async def demo_codes_step(pool: asyncpg.Pool, settings, info: dict) -> None:
    community_id, meeting_id = info["community_id"], info.get("meeting_id")
    if not meeting_id:
        return
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            return
        if meeting["state"] not in ("noticed", "open"):
            # Closed in an earlier demo run: no more codes; show where its result is published.
            info.setdefault("links", []).append(
                ("results:", f"{settings.public_url}/r/{community_id}/{meeting_id}  (演示会议已结束)"))
            return
        voters = await conn.fetch(
            """SELECT e.voter_id FROM electorate e
                JOIN owner o ON o.community_id = e.community_id AND o.version = $3 AND o.owner_id = e.voter_id
               WHERE e.community_id = $1 AND e.meeting_id = $2 AND o.phone <> ''
                 AND NOT EXISTS (SELECT 1 FROM unit u
                                  WHERE u.community_id = e.community_id AND u.version = $3
                                    AND u.unit_id = any(e.units) AND u.holder = 'developer')
               ORDER BY e.voter_id LIMIT $4""",
            community_id, meeting_id, meeting["register_version"], SAMPLE_OWNERS)
    for row in voters:
        _title, issued = await codes_service.reissue_code(
            pool, community_id=community_id, meeting_id=meeting_id, voter_id=row["voter_id"], actor="demo",
            public_url=settings.public_url, reason="演示")
        async with pool.acquire() as conn:
            owner = await codes_repo.owner_identity(conn, community_id, meeting["register_version"], row["voter_id"])
        if owner is None:  # the query above joins the owner: cannot happen
            continue
        info.setdefault("links", []).append(
            ("owner page:", f"{issued.url}   (演示：手机后四位 {last4(owner['phone'])}，{issued.masked_name}，"
                            f"{' '.join(issued.units)})"))
