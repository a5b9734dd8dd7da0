"""Election test helpers: a register with chosen areas, an election meeting through the API,
votes spread over voters, paper (spoiled) ballots by SQL (there is no paper entry endpoint yet)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.devtools.demo_data import register_csv
from server.services import register as register_service
from tests.helpers_live import insert_submission
from tests.helpers_meetings import backdate_notice, ballot_token, cast, close_now
from tests.helpers_register import remember_register

NAMES = ["王芳", "李强", "张敏", "刘洋", "陈静", "杨磊", "黄丽", "赵军", "周涛", "吴霞", "郑斌", "孙梅"]


def owner_id(n: int) -> str:
    return f"O{n:02d}"


async def community_with_areas(db_pool, make_community, areas: list[str], *, prep_group_formed_on=None,
                               street_id: str = "test-street") -> tuple[str, list[str]]:
    """One dwelling per owner O01, O02, … with the given areas (m² text); returns (community, owner ids)."""
    community_id = await make_community(prep_group_formed_on=prep_group_formed_on, street_id=street_id)
    rows = [{"unit_id": f"1-{n:03d}", "building": "1", "kind": "dwelling", "area": area, "area_source": "registry",
             "holder": "owner", "owner_id": owner_id(n), "representative": "1",
             "owner_name": NAMES[(n - 1) % len(NAMES)] + str(n), "phone": f"138{n:08d}", "id_number": ""}
            for n, area in enumerate(areas, start=1)]
    await register_service.import_register(db_pool, community_id=community_id, data=register_csv(rows),
                                           filename="elections.csv", actor="test")
    remember_register(community_id, register_csv(rows))
    return community_id, [owner_id(n) for n in range(1, len(areas) + 1)]


def candidates(n: int, *, party: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    return [{"candidate_id": f"C{i}", "name": f"候选人{i}", "unit_label": f"1-{i:03d}", "party_member": i in party,
             "statement": "愿为业主服务"} for i in range(1, n + 1)]


def election_matter(*, seats: int = 5, alternates: int | None = None, cands: list | None = None,
                    body: str = "committee", matter_id: str = "E1") -> dict:
    matter = {"matter_id": matter_id, "kind": "election", "title": "选举第一届业主委员会委员", "category": 3,
              "body": body, "seats": seats, "candidates": candidates(7) if cands is None else cands}
    if alternates is not None:
        matter["alternates"] = alternates
    return matter


async def draft_meeting(client, headers, community_id: str, matters: list[dict], *, meeting_id: str) -> dict:
    opens_at = datetime.now(UTC) + timedelta(days=15, hours=1)
    resp = await client.post(f"/api/admin/communities/{community_id}/meetings", headers=headers, json={
        "meeting_id": meeting_id, "title": "首次业主大会", "matters": matters,
        "opens_at": opens_at.isoformat(), "closes_at": (opens_at + timedelta(days=7)).isoformat()})
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def notice_and_open(db_pool, client, headers, community_id: str, meeting_id: str) -> None:
    base = f"/api/admin/communities/{community_id}/meetings/{meeting_id}"
    resp = await client.post(f"{base}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    await backdate_notice(db_pool, community_id, meeting_id)
    resp = await client.post(f"{base}/open", headers=headers)
    if resp.status != 200:
        # The app's own scheduler (every 0.2 s in tests) may have opened it first: that is fine.
        resp = await client.get(base, headers=headers)
    doc = await resp.json()
    assert doc["state"] == "open", doc


async def close(client, headers, community_id: str, meeting_id: str) -> None:
    resp = await close_now(client, community_id, meeting_id, headers)
    assert resp.status == 200, await resp.text()


def spread(yes_counts: dict[str, int], voters: list[str], seats: int) -> dict[str, list[str]]:
    """Which voters mark which candidates 'yes' so each candidate gets exactly its count and no
    voter marks more than ``seats`` (greedy: the voters with most room left first)."""
    marks: dict[str, list[str]] = {v: [] for v in voters}
    for candidate_id, count in yes_counts.items():
        room = sorted(voters, key=lambda v: (len(marks[v]), voters.index(v)))[:count]
        assert len(room) == count and all(len(marks[v]) < seats for v in room), "counts do not fit"
        for v in room:
            marks[v].append(candidate_id)
    return marks


async def vote_electronically(client, db_pool, community_id: str, meeting_id: str, marks: dict[str, list[str]],
                              *, matter_id: str = "E1") -> None:
    """Each voter casts through POST /api/ballot/votes with a ballot token (unmarked voters do not vote)."""
    for voter, chosen in marks.items():
        if not chosen:
            continue
        token = await ballot_token(db_pool, client, community_id, meeting_id, voter)
        resp = await cast(client, token, [{"matter_id": matter_id, "marks": {c: "yes" for c in chosen}}])
        assert resp.status == 201, await resp.text()


async def paper_ballot(db_pool, community_id: str, meeting_id: str, voter: str, yes: list[str], *,
                       matter_id: str = "E1") -> str:
    """A paper ballot entered by SQL (no paper entry endpoint exists yet); may be spoiled."""
    return await insert_submission(db_pool, community_id, meeting_id, voter, matter_id,
                                   [(c, "yes") for c in yes], channel="paper")
