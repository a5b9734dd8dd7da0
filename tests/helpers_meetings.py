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
from datetime import UTC, datetime, timedelta
from typing import Any

from server import appkeys
from server.auth.ballot import issue_ballot_token
from server.devtools.fixtures import (
    backdate_notice,  # also imported from here by other test modules
    end_voting_and_close,
)

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
                 opens_at: datetime | None = None, closes_at: datetime | None = None, max_extensions: int = 0,
                 max_extension_days: int = 0) -> dict:
    """A create-meeting request body; opens 15 days + 1 hour from now unless told otherwise."""
    opens_at = opens_at or datetime.now(UTC) + timedelta(days=15, hours=1)
    body: dict[str, Any] = {"meeting_id": meeting_id or f"m-{secrets.token_hex(4)}", "title": title,
                            "matters": DEFAULT_MATTERS if matters is None else matters,
                            "rules": rules or {}, "show_live_results": show_live_results,
                            "opens_at": opens_at.isoformat()}
    if closes_at is not False:
        body["closes_at"] = (closes_at or opens_at + timedelta(days=7)).isoformat()
    if max_extensions or max_extension_days:
        body.update(max_extensions=max_extensions, max_extension_days=max_extension_days)
    return body


VETTED_BODIES = ("committee", "supervisory")


async def vet_inline_candidates_for_tests(db_pool, community_id: str, meeting_id: str) -> dict[str, str]:
    """TEST ONLY: put a qualified nomination behind every candidate typed straight into a committee or
    supervisory-board matter of a DRAFT meeting, so that its notice is accepted.

    Production goes nominate -> qualify -> attach (POST .../nominations, .../qualify, .../nominees),
    which names candidates ``N<nomination_id>`` after the register.  Tests that rely on the fixed ids
    C1..C7 and names of ``DEFAULT_MATTERS`` use this shortcut instead: each unvetted candidate is mapped
    to a distinct owner of the latest register version (in owner_id order), and gets a ``nomination``
    row (prep group, qualified by ``staff:test``; an owner's existing qualified nomination for the body
    is reused, owners with a pending one are skipped) and a ``candidate_source`` row, written with SQL.
    Returns {candidate key "matter_id/candidate_id": owner_id}.
    """
    from server.repositories import elections as election_repo
    from server.repositories import locks

    mapping: dict[str, str] = {}
    async with db_pool.acquire() as conn, conn.transaction():
        unvetted = await election_repo.unvetted_candidates(conn, community_id, meeting_id)
        if not unvetted:
            return mapping
        version = await conn.fetchval("SELECT max(version) FROM register_version WHERE community_id = $1",
                                      community_id)
        assert version is not None, "vet_inline_candidates_for_tests: import a register first"
        owners = [r["owner_id"] for r in await conn.fetch(
            "SELECT owner_id FROM owner WHERE community_id = $1 AND version = $2 ORDER BY owner_id",
            community_id, version)]
        candidates = {(c["matter_id"], c["candidate_id"]): c for c in await conn.fetch(
            """SELECT matter_id, candidate_id, name, unit_label, party_member, statement FROM candidate
                WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)}
        await locks.xact_lock(conn, "nomination", community_id)
        by_matter: dict[str, list] = {}
        for row in unvetted:
            by_matter.setdefault(row["matter_id"], []).append(row)
        for matter_id, rows in by_matter.items():
            body = rows[0]["body"]
            used = {r["owner_id"] for r in await conn.fetch(
                """SELECT owner_id FROM candidate_source WHERE community_id = $1 AND meeting_id = $2
                      AND matter_id = $3""", community_id, meeting_id, matter_id)}
            free = iter(o for o in owners if o not in used)
            for row in rows:
                nomination = None
                for owner in free:
                    live = await conn.fetchrow(
                        """SELECT nomination_id, status FROM nomination WHERE community_id = $1 AND body = $2
                              AND owner_id = $3 AND status IN ('pending', 'qualified')""", community_id, body, owner)
                    if live is None:
                        c = candidates[(matter_id, row["candidate_id"])]
                        inserted = await election_repo.insert_nomination(
                            conn, community_id=community_id, body=body, owner_id=owner, register_version=version,
                            name=c["name"], unit_label=c["unit_label"], party_member=c["party_member"],
                            statement=c["statement"], source="prep_group", nominated_by="staff:test")
                        await election_repo.decide_nomination(conn, community_id, inserted["nomination_id"],
                                                               status="qualified", reason="", decided_by="staff:test")
                        nomination = (inserted["nomination_id"], owner)
                    elif live["status"] == "qualified":
                        nomination = (live["nomination_id"], owner)
                    if nomination:
                        break
                assert nomination, (f"vet_inline_candidates_for_tests: the register of {community_id} has too few "
                                    f"owners for the candidates of {matter_id}")
                await election_repo.insert_candidate_sources(conn, [
                    (community_id, meeting_id, matter_id, row["candidate_id"], nomination[0], nomination[1])])
                mapping[f"{matter_id}/{row['candidate_id']}"] = nomination[1]
    return mapping


async def _owner_count(db_pool, community_id: str) -> int:
    async with db_pool.acquire() as conn:
        return await conn.fetchval(
            """SELECT count(*) FROM owner WHERE community_id = $1
                  AND version = (SELECT max(version) FROM register_version WHERE community_id = $1)""",
            community_id)


async def noticed_meeting(db_pool, client, staff_headers, imported_community, *, units: int = 40,
                          matters: list | None = None, rules: dict | None = None, show_live_results: bool = False,
                          count_parking_area: bool = False, community: tuple | None = None,
                          max_extensions: int = 0, max_extension_days: int = 0) -> MeetingFixture:
    """A community with a register and a meeting whose notice is published (not yet open).

    Committee / supervisory candidates given inline are vetted first with
    :func:`vet_inline_candidates_for_tests` (TEST ONLY).  With the default matters and a register of
    fewer owners than the 7 default candidates, the election keeps the first ones only (one owner each).
    """
    community_id, rows = community or await imported_community(units, count_parking_area=count_parking_area)
    headers = await staff_headers("district_admin")
    if matters is None and (owners := await _owner_count(db_pool, community_id)) < len(CANDIDATES):
        matters = [dict(m, candidates=m["candidates"][:owners]) if m.get("body") in VETTED_BODIES else m
                   for m in DEFAULT_MATTERS]
    body = meeting_body(matters=matters, rules=rules, show_live_results=show_live_results,
                        max_extensions=max_extensions, max_extension_days=max_extension_days)
    base = f"/api/admin/communities/{community_id}/meetings"
    resp = await client.post(base, json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    meeting_id = body["meeting_id"]
    await vet_inline_candidates_for_tests(db_pool, community_id, meeting_id)
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
                       community: tuple | None = None, max_extensions: int = 0,
                       max_extension_days: int = 0) -> MeetingFixture:
    """A community with a register and an OPEN meeting (notice backdated 16 days, opened by hand).

    ``closes_in=None`` leaves the meeting without a closing time (``close_now`` gives it one, now).
    ``community`` = (community_id, rows) reuses an already imported community.
    """
    m = await noticed_meeting(db_pool, client, staff_headers, imported_community, units=units, matters=matters,
                              rules=rules, show_live_results=show_live_results,
                              count_parking_area=count_parking_area, community=community,
                              max_extensions=max_extensions, max_extension_days=max_extension_days)
    await backdate_notice(db_pool, m.community_id, m.meeting_id, closes_in=closes_in)
    resp = await client.post(f"{m.base}/open", headers=m.headers)
    if resp.status != 200:
        # The app's own scheduler (every 0.2 s in tests) may have opened it first: that is fine.
        resp = await client.get(m.base, headers=m.headers)
    m.document = await resp.json()
    assert m.document["state"] == "open", m.document
    return m


async def close_now(client, community_id: str, meeting_id: str, headers: dict, **kwargs):
    """TEST ONLY: end the voting period now and close by hand; returns the POST …/close response.

    Voting is never closed early (the close is refused before ``closes_at``), so the close time is
    moved to now first with ``server.devtools.fixtures.end_voting_and_close``, which also keeps the
    app's own scheduler from closing the meeting in between (the close stays the staff's).
    """
    url = f"/api/admin/communities/{community_id}/meetings/{meeting_id}/close"

    async def post():
        return await client.post(url, headers=headers, **kwargs)

    return await end_voting_and_close(client.app[appkeys.DB_POOL], community_id, meeting_id, post)


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
            expires_at=datetime.now(UTC) + expires_in, code_serial=None, device_hash=None)
    return token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


async def cast(client, token: str, votes: list, *, idempotency_key: str | None = None):
    """POST /api/ballot/votes; returns the response (a fresh idempotency key unless given)."""
    body = {"idempotency_key": idempotency_key or secrets.token_hex(8), "votes": votes}
    return await client.post("/api/ballot/votes", json=body, headers=bearer(token))
