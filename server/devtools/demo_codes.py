"""`evote demo` step: fresh ballot codes for three sample owners of the demo meeting.

Each demo run reissues their codes (the old ones stop working) and prints the
owner-page links with the last four phone digits to type.  Printing identity
hints is DEMO ONLY: real codes go out on printed sheets (`evote codes issue`).

The register keeps only a keyed hash of those digits; the demo finds them by
trying all 10,000 with the identity key (:func:`_phone_digits`), which shows why
that key (``EVOTE_MASTER_KEY`` or the key file) must stay secret.
"""
from __future__ import annotations

import asyncpg

from server.ballot.identity import PHONE, last4_digest
from server.repositories import codes as codes_repo
from server.repositories import meetings as meetings_repo
from server.services import codes as codes_service
from server.services.personal_data import IdentityKeys, load_identity_keys

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
               WHERE e.community_id = $1 AND e.meeting_id = $2 AND o.phone_hmac IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM unit u
                                  WHERE u.community_id = e.community_id AND u.version = $3
                                    AND u.unit_id = any(e.units) AND u.holder = 'developer')
               ORDER BY e.voter_id LIMIT $4""",
            community_id, meeting_id, meeting["register_version"], SAMPLE_OWNERS)
    keys = await load_identity_keys(settings)
    for row in voters:
        _title, issued = await codes_service.reissue_code(
            pool, community_id=community_id, meeting_id=meeting_id, voter_id=row["voter_id"], actor="demo",
            public_url=settings.public_url, reason="演示")
        async with pool.acquire() as conn:
            owner = await codes_repo.owner_identity(conn, community_id, meeting["register_version"], row["voter_id"])
        if owner is None:  # the query above joins the owner: cannot happen
            continue
        digits = _phone_digits(keys, community_id, owner["owner_id"], bytes(owner["phone_hmac"]))
        info.setdefault("links", []).append(
            ("owner page:", f"{issued.url}   (演示：手机后四位 {digits}，{issued.masked_name}，"
                            f"{' '.join(issued.units)})"))


def _phone_digits(keys: IdentityKeys, community_id: str, owner_id: str, stored: bytes) -> str:
    """The four digits whose keyed hash is ``stored`` (DEMO ONLY: by trying every one)."""
    for n in range(10000):
        four = f"{n:04d}"
        if last4_digest(keys.hmac_key, PHONE, community_id, owner_id, four) == stored:
            return four
    return "????"
