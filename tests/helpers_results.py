"""Test helpers for results: a meeting with votes cast through the API, closed (and signed by the hook)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.helpers_meetings import CANDIDATES, MeetingFixture, ballot_token, cast, close_now, open_meeting


@dataclass
class VotedMeeting:
    m: MeetingFixture
    receipts: list[str] = field(default_factory=list)   # every receipt code handed to an owner
    tokens: dict[str, str] = field(default_factory=dict)  # voter_id -> ballot token

    @property
    def public(self) -> str:
        return f"/api/public/meetings/{self.m.community_id}/{self.m.meeting_id}"


def random_votes(rng: random.Random) -> list[dict]:
    ids = [c["candidate_id"] for c in CANDIDATES]
    marks = {cid: rng.choice(("yes", "yes", "no", "abstain")) for cid in rng.sample(ids, rng.randint(1, 5))}
    return [{"matter_id": "M1", "choice": rng.choice(("yes", "yes", "yes", "no", "abstain"))},
            {"matter_id": "M2", "choice": rng.choice(("yes", "yes", "no"))},
            {"matter_id": "E1", "marks": marks}]


async def voted_meeting(db_pool, client, staff_headers, imported_community, *, units: int = 40,
                        turnout: float = 0.85, seed: int = 11, rules: dict | None = None,
                        close: bool = True, revisions: int = 0) -> VotedMeeting:
    """``revisions``: that many voters vote again on M1 (needs rules allow_revision)."""
    m = await open_meeting(db_pool, client, staff_headers, imported_community, units=units, rules=rules)
    rng = random.Random(seed)
    voted = VotedMeeting(m)
    for voter in m.voter_ids[: max(1, int(len(m.voter_ids) * turnout))]:
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        voted.tokens[voter] = token
        resp = await cast(client, token, random_votes(rng))
        assert resp.status == 201, await resp.text()
        voted.receipts += [r["receipt"] for r in (await resp.json())["receipts"]]
    for voter in list(voted.tokens)[:revisions]:
        resp = await cast(client, voted.tokens[voter], [{"matter_id": "M1", "choice": "abstain"}])
        assert resp.status == 201, await resp.text()
        voted.receipts += [r["receipt"] for r in (await resp.json())["receipts"]]
    if close:
        resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
        assert resp.status == 200, await resp.text()
    return voted
