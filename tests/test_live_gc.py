"""The live tallies are kept out of the garbage collector's full collections (gc.freeze) after a
meeting's load and as they grow, and given back when the meeting is evicted (docs/performance.md)."""
from __future__ import annotations

import asyncio
import gc

from server import appkeys
from server.live import hub as hub_module
from tests import helpers_meetings
from tests.helpers_live import Voting, wait_for


def _tracked(obj) -> bool:
    """Whether ``obj`` is in a generation the collector walks (frozen objects are not)."""
    return any(o is obj for o in gc.get_objects())


async def test_a_loaded_tally_is_frozen_grown_ones_again_and_an_evicted_one_is_thawed(
        aiohttp_client, settings, db_pool, staff_headers, imported_community, monkeypatch):
    from server.app import create_app

    monkeypatch.setattr(hub_module, "FREEZE_CHECK_S", 0.05)
    monkeypatch.setattr(hub_module, "FREEZE_AFTER_BALLOTS", 2)
    client = await aiohttp_client(create_app(settings.replace(live_debounce_s=0.01, live_poll_s=3600)))
    m = await helpers_meetings.open_meeting(db_pool, client, staff_headers, imported_community, units=20)
    v = await Voting(client, db_pool, m).load()
    headers = await staff_headers("prep_group", communities=[v.community_id])
    hub = client.server.app[appkeys.LIVE]
    gc.unfreeze()
    resp = await client.get(f"/api/admin/communities/{v.community_id}/meetings/{v.meeting_id}/live",
                            headers=headers)
    assert resp.status == 200
    live = hub.meetings[(v.community_id, v.meeting_id)]
    assert gc.get_freeze_count() > 0 and not _tracked(live.count.tally)

    # ballots counted after the load are tracked until the tallies have grown by FREEZE_AFTER_BALLOTS
    for voter in v.voters[:2]:
        await v.vote(voter, [{"matter_id": "M1", "choice": "yes"}])
    await wait_for(lambda: len(live.seen) == 2)
    await wait_for(lambda: hub._frozen_ballots == 2)
    assert not any(_tracked(s) for s in list(live.count.tally._counted.values()))

    # evicted (nobody watches): everything is given back to the collector
    hub._evict(live)
    await wait_for(lambda: (v.community_id, v.meeting_id) not in hub.meetings)
    await asyncio.sleep(0.05)
    assert gc.get_freeze_count() == 0
