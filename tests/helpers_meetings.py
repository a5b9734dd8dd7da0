"""Test helpers: a community with a noticed or open meeting, and owners' ballot tokens.

Use them from any test module::

    from tests.helpers_meetings import open_meeting, ballot_token, cast

    async def test_x(client, db_pool, staff_headers, imported_community):
        m = await open_meeting(db_pool, client, staff_headers, imported_community)
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, m.voter_ids[0])
        resp = await cast(client, token, [{"matter_id": "M1", "choice": "yes"}])
        assert resp.status == 201

The 15-day notice rule is real: to get an open meeting without waiting, the
helper publishes the notice through the API and then BACKDATES ``noticed_at``
(and the voting window) with one SQL statement, then opens it through the API.
That is a test fixture, not a production path: there is no bypass flag.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from server import appkeys
from server.ballot_auth import issue_ballot_token

CANDIDATES = [{"candidate_id": f"C{i}", "name": name, "unit_label": f"{i}-{100 + i}", "party_member": i % 2 == 1,
               "statement": "愿为业主服务"}
              for i, name in enumerate(["王芳", "李强", "张敏", "刘洋", "陈静", "杨磊", "黄丽"], start=1)]

DEFAULT_MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
    {"matter_id": "M2", "kind": "resolution", "title": "筹集电梯维修资金", "category": 6},
    {"matter_id": "E1", "kind": "election", "title": "选举第一届业主委员会委员", "category": 3,
     "body": "committee", "seats": 5, "candidates": CANDIDATES},
]


@dataclass
class MeetingFixture:
    community_id: str
    meeting_id: str
    voter_ids: list[str]             # every voting subject of the frozen electorate, sorted
    headers: dict                    # Authorization headers of a district_admin
    document: dict = field(default_factory=dict)   # the staff meeting document after the last step
    register_rows: list = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"/api/admin/communities/{self.community_id}/meetings/{self.meeting_id}"


def meeting_body(*, meeting_id: str | None = None, title: str = "测试业主大会", matters: list | None = None,
                 rules: dict | None = None, show_live_results: bool = False,
                 opens_at: datetime | None = None, closes_at: datetime | None = None) -> dict:
    """A create-meeting request body; opens 15 days + 1 hour from now unless told otherwise."""
    opens_at = opens_at or datetime.now(timezone.utc) + timedelta(days=15, hours=1)
    body: dict[str, Any] = {"meeting_id": meeting_id or f"m-{secrets.token_hex(4)}", "title": title,
                            "matters": DEFAULT_MATTERS if matters is None else matters,
                            "rules": rules or {}, "show_live_results": show_live_results,
                            "opens_at": opens_at.isoformat()}
    if closes_at is not False:
        body["closes_at"] = (closes_at or opens_at + timedelta(days=7)).isoformat()
    return body


async def backdate_notice(db_pool, community_id: str, meeting_id: str, *, days: int = 16,
                          closes_in: timedelta | None = timedelta(days=7)) -> None:
    """TEST ONLY: pretend the notice went out ``days`` ago and voting may start now."""
    async with db_pool.acquire() as conn:
        await conn.execute(
            """UPDATE meeting SET noticed_at = noticed_at - make_interval(days => $3),
                                  opens_at = clock_timestamp() - interval '1 minute',
                                  closes_at = CASE WHEN $4::interval IS NULL THEN NULL
                                                   ELSE clock_timestamp() + $4::interval END
                WHERE community_id = $1 AND meeting_id = $2""",
            community_id, meeting_id, days, closes_in)


async def noticed_meeting(db_pool, client, staff_headers, imported_community, *, units: int = 40,
                          matters: list | None = None, rules: dict | None = None, show_live_results: bool = False,
                          count_parking_area: bool = False, community: tuple | None = None) -> MeetingFixture:
    """A community with a register and a meeting whose notice is published (not yet open)."""
    community_id, rows = community or await imported_community(units, count_parking_area=count_parking_area)
    headers = await staff_headers("district_admin")
    body = meeting_body(matters=matters, rules=rules, show_live_results=show_live_results)
    base = f"/api/admin/communities/{community_id}/meetings"
    resp = await client.post(base, json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    meeting_id = body["meeting_id"]
    resp = await client.post(f"{base}/{meeting_id}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    document = await resp.json()
    async with db_pool.acquire() as conn:
        voters = await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id",
            community_id, meeting_id)
    return MeetingFixture(community_id, meeting_id, [r["voter_id"] for r in voters], headers, document, rows)


async def open_meeting(db_pool, client, staff_headers, imported_community, *, units: int = 40,
                       matters: list | None = None, rules: dict | None = None, show_live_results: bool = False,
                       count_parking_area: bool = False, closes_in: timedelta | None = timedelta(days=7),
                       community: tuple | None = None) -> MeetingFixture:
    """A community with a register and an OPEN meeting (notice backdated 16 days, opened by hand).

    ``closes_in=None`` leaves the meeting without a closing time (closed by hand only).
    ``community`` = (community_id, rows) reuses an already imported community.
    """
    m = await noticed_meeting(db_pool, client, staff_headers, imported_community, units=units, matters=matters,
                              rules=rules, show_live_results=show_live_results,
                              count_parking_area=count_parking_area, community=community)
    await backdate_notice(db_pool, m.community_id, m.meeting_id, closes_in=closes_in)
    resp = await client.post(f"{m.base}/open", headers=m.headers)
    if resp.status != 200:
        # The app's own scheduler (every 0.2 s in tests) may have opened it first: that is fine.
        resp = await client.get(m.base, headers=m.headers)
    m.document = await resp.json()
    assert m.document["state"] == "open", m.document
    return m


def _keys(app_or_keys):
    if hasattr(app_or_keys, "issue"):
        return app_or_keys
    app = getattr(app_or_keys, "app", None) or getattr(getattr(app_or_keys, "server", None), "app", None)
    return (app or app_or_keys)[appkeys.TOKEN_KEYS]


async def ballot_token(db_pool, app_or_keys, community_id: str, meeting_id: str, voter_id: str, *,
                       expires_in: timedelta = timedelta(days=30)) -> str:
    """Mint an owner's ballot token (and its session row) as sign-in would.

    ``app_or_keys``: the aiohttp test client, the Application, or a TokenKeys.
    """
    async with db_pool.acquire() as conn:
        token, _claims = await issue_ballot_token(
            conn, _keys(app_or_keys), community_id=community_id, meeting_id=meeting_id, voter_id=voter_id,
            expires_at=datetime.now(timezone.utc) + expires_in, code_serial=None, device_hash=None)
    return token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def cast(client, token: str, votes: list, *, idempotency_key: str | None = None):
    """POST /api/ballot/votes; returns the response (a fresh idempotency key unless given)."""
    body = {"idempotency_key": idempotency_key or secrets.token_hex(8), "votes": votes}
    return await client.post("/api/ballot/votes", json=body, headers=bearer(token))
