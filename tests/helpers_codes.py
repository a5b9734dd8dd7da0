"""Test set-up for codes and sign-in, on top of tests/helpers_meetings.py."""
from __future__ import annotations

from datetime import timedelta

from tests.helpers_meetings import meeting_body, noticed_meeting, open_meeting
from tests.helpers_register import IMPORTED_OWNERS


async def make_meeting(db_pool, client, staff_headers, imported_community, *, units: int = 12, seed: int = 7,
                       state: str = "open", closes_in: timedelta | None = timedelta(days=7),
                       matters: list | None = None, community: tuple | None = None) -> tuple[str, str]:
    """(community_id, meeting_id) of a meeting in ``state`` (draft, noticed or open) with a fresh register
    (or the imported ``community`` = (community_id, rows))."""
    community = community or await imported_community(units, seed=seed)
    if state == "draft":
        headers = await staff_headers("district_admin")
        body = meeting_body(matters=matters)
        resp = await client.post(f"/api/admin/communities/{community[0]}/meetings", json=body, headers=headers)
        assert resp.status == 201, await resp.text()
        return community[0], body["meeting_id"]
    if state == "noticed":
        m = await noticed_meeting(db_pool, client, staff_headers, imported_community, matters=matters,
                                  community=community)
    else:
        m = await open_meeting(db_pool, client, staff_headers, imported_community, matters=matters,
                               closes_in=closes_in, community=community)
    return m.community_id, m.meeting_id


async def voter_identity(db_pool, community_id: str, meeting_id: str, voter_id: str) -> dict:
    """A voting subject's representative (who holds its code) as the test imported them: owner_id, name,
    phone, id_number.  The database keeps only hashes of the numbers' last four, so they come from the
    register the test helpers imported (tests.helpers_register.IMPORTED_OWNERS)."""
    async with db_pool.acquire() as conn:
        representative = await conn.fetchval(
            "SELECT representative FROM electorate WHERE community_id=$1 AND meeting_id=$2 AND voter_id=$3",
            community_id, meeting_id, voter_id)
    owner = IMPORTED_OWNERS.get((community_id, representative))
    assert owner is not None, f"{community_id}/{representative}: register not imported through the test helpers"
    return dict(owner)


def phone_last4(identity: dict) -> str:
    return "".join(ch for ch in identity["phone"] if ch.isdigit())[-4:]


def wrong_last4(identity: dict) -> str:
    """Four digits that match neither the phone nor the ID number."""
    from server.ballot.masking import last4

    taken = {last4(identity["phone"]), last4(identity["id_number"])}
    for n in range(10000):
        guess = f"{n:04d}"
        if guess not in taken:
            return guess
    raise AssertionError("unreachable")


async def issue_codes(db_pool, community_id: str, meeting_id: str, public_url: str = "http://evote.test"):
    from server.services import codes as codes_service

    result = await codes_service.issue_codes(db_pool, community_id=community_id, meeting_id=meeting_id,
                                             actor="test", public_url=public_url)
    return {c.voter_id: c for c in result.codes}


async def person_voter(db_pool, community_id: str, meeting_id: str, codes: dict) -> str:
    """A voter with a phone on record (not the developer), for sign-in tests."""
    for voter_id in sorted(codes):
        ident = await voter_identity(db_pool, community_id, meeting_id, voter_id)
        if len(phone_last4(ident)) == 4 and ident["id_number"]:
            return voter_id
    raise AssertionError("no voter with a phone and ID number")
