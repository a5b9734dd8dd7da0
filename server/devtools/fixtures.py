"""Shortcuts for the tests, the simulator, the demo and the benchmarks; never a production path.

The 15-day notice rule is real: a meeting may open only 15 days after its notice is published, and
the API has no way around it.  To vote at once, these callers publish the notice the normal way and
then backdate it with :func:`backdate_notice`, the one statement that does so.

The voting period is real too: a meeting closes only at its noticed close time.  To close at once,
these callers move the close time to now with :func:`end_voting_now`, the one statement that does so.
"""
from __future__ import annotations

from datetime import timedelta

import asyncpg

# noticed_at, opens_at and closes_at are not frozen by the notice triggers (docs/meetings.md), so an
# UPDATE may move them; `timestamptz + NULL::interval` is NULL, i.e. no closing time.
_BACKDATE_NOTICE = """
UPDATE meeting SET noticed_at = noticed_at - make_interval(days => $3),
                   opens_at = clock_timestamp() - $4::interval,
                   closes_at = clock_timestamp() + $5::interval
 WHERE community_id = $1 AND meeting_id = $2 AND state = 'noticed'"""


async def backdate_notice(db: asyncpg.Pool | asyncpg.Connection, community_id: str, meeting_id: str, *,
                          days: int = 16, opened_ago: timedelta = timedelta(minutes=1),
                          closes_in: timedelta | None = timedelta(days=7)) -> None:
    """NOT FOR PRODUCTION: pretend the notice of a noticed meeting went out ``days`` ago, so it may open now.

    The voting window moves too: it opens ``opened_ago`` before now and closes ``closes_in`` after now
    (``closes_in=None``: no closing time, closed by hand only).  Only a meeting in state ``noticed`` changes.
    """
    await db.execute(_BACKDATE_NOTICE, community_id, meeting_id, days, opened_ago, closes_in)


# closes_at is not frozen (see above); `greatest` keeps the window's CHECK (closes_at > opens_at).
_END_VOTING_NOW = """
UPDATE meeting SET closes_at = greatest(clock_timestamp(), opens_at + interval '1 microsecond')
 WHERE community_id = $1 AND meeting_id = $2 AND state = 'open'"""


async def end_voting_now(db: asyncpg.Pool | asyncpg.Connection, community_id: str, meeting_id: str) -> bool:
    """NOT FOR PRODUCTION: the voting period of an OPEN meeting ends now (its ``closes_at`` moves to now).

    Returns whether the meeting was open.  Nothing else changes: the scheduler (or a close by hand,
    allowed from now on) closes the meeting; no extension is recorded.
    """
    return await db.execute(_END_VOTING_NOW, community_id, meeting_id) != "UPDATE 0"


__all__ = ["backdate_notice", "end_voting_now"]
