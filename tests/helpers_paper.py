"""Test helpers for paper ballots and proxies: clerks, codes, double entry, authorizations.

Everything goes through the real HTTP API (no SQL shortcuts) except reading results back.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server import appkeys
from server.ballot.tally import Submission, select_counted
from server.live.events import meeting_channel
from server.services import counting


def submission_events(client, m) -> list[dict]:
    """From now on, every submissions event published for the meeting (the app's broker, in this process)."""
    events: list[dict] = []

    def listen(event: dict | None) -> None:
        if event is not None and event.get("type") == "submissions":
            events.append(event)

    client.app[appkeys.BROKER].subscribe(meeting_channel(m.community_id, m.meeting_id), listen)
    return events


async def clerks(staff_headers, community_id: str, n: int = 2, role: str = "prep_group") -> list[dict]:
    """``n`` different writer accounts of the community (each a distinct staff member)."""
    return [await staff_headers(role, communities=[community_id]) for _ in range(n)]


async def reissue_code(client, m, voter_id: str) -> dict:
    """A fresh ballot code for one owner (the old one stops working); returns code and url."""
    resp = await client.post(f"{m.base}/codes/{voter_id}/reissue", json={"reason": "test"}, headers=m.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def enter(client, m, headers: dict, *, votes: list, code: str | None = None, voter_id: str | None = None,
                paper_date: str | None = "2026-03-01", scan_ref: str = "scan/0001.jpg", expect: int | None = 201):
    body = {"votes": votes, "paper_date": paper_date, "scan_ref": scan_ref}
    if code is not None:
        body["code"] = code
    if voter_id is not None:
        body["voter_id"] = voter_id
    resp = await client.post(f"{m.base}/paper/entries", json=body, headers=headers)
    if expect is not None:
        assert resp.status == expect, await resp.text()
    return resp


async def double_entry(client, m, two_clerks: list[dict], voter_id: str, votes: list, **kwargs) -> dict:
    """Both entries of one sheet by two clerks (by voter id); returns the second answer (matched)."""
    first = await (await enter(client, m, two_clerks[0], votes=votes, voter_id=voter_id, **kwargs)).json()
    assert first["status"] == "pending", first
    second = await (await enter(client, m, two_clerks[1], votes=votes, voter_id=voter_id, **kwargs)).json()
    assert second["status"] == "matched", second
    return second


async def authorize(client, m, owner: str, proxy: str, *, kind: str = "proxy", matters: list | None = None,
                    valid_for: timedelta = timedelta(days=10), headers: dict | None = None,
                    expect: int | None = 201):
    body = {"owner_voter_id": owner, "proxy_voter_id": proxy, "kind": kind, "document_ref": "委托书/2026-001.pdf",
            "valid_until": (datetime.now(UTC) + valid_for).isoformat()}
    if matters is not None:
        body["matters"] = matters
    resp = await client.post(f"{m.base}/proxies", json=body, headers=headers or m.headers)
    if expect is not None:
        assert resp.status == expect, await resp.text()
    return resp


async def proxy_vote(client, proxy_token: str, owner: str, votes: list, *, expect: int | None = 201):
    import secrets

    resp = await client.post("/api/ballot/proxy-votes",
                             json={"on_behalf_of": owner, "votes": votes, "idempotency_key": secrets.token_hex(8)},
                             headers={"Authorization": f"Bearer {proxy_token}"})
    if expect is not None:
        assert resp.status == expect, await resp.text()
    return resp


async def counted(db_pool, community_id: str, meeting_id: str) -> tuple[dict, dict[tuple[str, str], Submission]]:
    """(evote-result/1 of the database, the counted submission per (voter, matter)) via the pure engine."""
    async with db_pool.acquire() as conn:
        inputs = await counting.load_counted_inputs(conn, community_id, meeting_id)
    return counting.result_from_inputs(inputs), select_counted(inputs.submissions, inputs.rules)


async def areas(db_pool, community_id: str, meeting_id: str) -> dict[str, int]:
    async with db_pool.acquire() as conn:
        rows = await conn.fetch("SELECT voter_id, area FROM electorate WHERE community_id = $1 AND meeting_id = $2",
                                community_id, meeting_id)
    return {r["voter_id"]: r["area"] for r in rows}


def matter(result: dict, matter_id: str) -> dict:
    return next(x for x in result["matters"] if x["id"] == matter_id)


__all__ = ["areas", "authorize", "clerks", "counted", "double_entry", "enter", "matter", "proxy_vote", "reissue_code"]
