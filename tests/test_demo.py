"""`evote demo`'s steps: sample owners' links sign in with the printed digits; a closed demo meeting
(from an earlier run) does not stop the demo."""
from __future__ import annotations

import re

from server.devtools.demo_codes import demo_codes_step
from server.devtools.demo_meeting import DEMO_MEETING, demo_meeting_step


async def test_demo_codes_sign_in_and_survive_a_closed_meeting(client, db_pool, settings, imported_community):
    community_id, _ = await imported_community(30)
    info: dict = {"community_id": community_id}
    await demo_meeting_step(db_pool, settings, info)
    await demo_codes_step(db_pool, settings, info)
    owner_links = [text for label, text in info["links"] if label == "owner page:"]
    assert len(owner_links) == 3
    for text in owner_links:
        code, digits = re.search(r"/b/(\w+)\s+\(演示：手机后四位 (\w{4})", text).groups()
        resp = await client.post("/api/ballot/redeem", json={"code": code, "last4": digits})
        assert resp.status == 200, await resp.text()
    # a second run reissues: the first links stop working at once
    first_code = re.search(r"/b/(\w+)", owner_links[0]).group(1)
    await demo_codes_step(db_pool, settings, {"community_id": community_id, "meeting_id": DEMO_MEETING})
    resp = await client.post("/api/ballot/redeem", json={"code": first_code, "last4": "0000"})
    assert resp.status == 404
    # closed in an earlier run: no codes, a link to the published result instead
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET state = 'closed', closed_at = clock_timestamp()"
                           " WHERE community_id = $1 AND meeting_id = $2", community_id, DEMO_MEETING)
    later: dict = {"community_id": community_id, "meeting_id": DEMO_MEETING}
    await demo_codes_step(db_pool, settings, later)
    assert [label for label, _ in later["links"]] == ["results:"]
