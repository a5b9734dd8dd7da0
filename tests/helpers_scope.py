"""Test set-up for matters scoped to buildings: a small hand-made register and a meeting on it.

The register (areas in m²), every owner a sole owner::

    building 1: 1-0101 A1 100 · 1-0102 A2 90 · 1-0103 A3 80
    building 2: 2-0101 B1 100 · 2-0102 B2 110 · 2-0103 A1 50     (A1 holds units in buildings 1 and 2)
    building 3: 3-0101 C1 70
    building 9: 9-P01 P1 12.5, a parking space (not counted: building 9 has no voter)

``SCOPED_MATTERS``: M1 for the whole community, M2 for building 1 only (a lift's maintenance
funds), E2 an election for building 2 only.  So B1, B2 and C1 do not vote on M2; A2, A3 and C1
not on E2; A1 votes on everything, weighing 100 m² on M2 and 50 m² on E2.
"""
from __future__ import annotations

from tests.helpers_meetings import MeetingFixture, noticed_meeting, open_meeting

HEADER = "unit_id,building,kind,area,area_source,holder,owner_id,representative,owner_name,phone,id_number\n"
_ROWS = [
    ("1-0101", "1", "dwelling", "100", "A1", "王一"), ("1-0102", "1", "dwelling", "90", "A2", "李二"),
    ("1-0103", "1", "dwelling", "80", "A3", "张三"), ("2-0101", "2", "dwelling", "100", "B1", "刘四"),
    ("2-0102", "2", "dwelling", "110", "B2", "陈五"), ("2-0103", "2", "dwelling", "50", "A1", "王一"),
    ("3-0101", "3", "dwelling", "70", "C1", "杨六"), ("9-P01", "9", "parking", "12.5", "P1", "黄七"),
]
_PEOPLE = {owner: (f"1380000{n:04d}", f"35050219800101{n:03d}{n % 10}")
           for n, owner in enumerate(sorted({row[4] for row in _ROWS}), start=1)}
SCOPE_REGISTER = HEADER + "".join(
    f"{unit},{building},{kind},{area},registry,owner,{owner},1,{name},{_PEOPLE[owner][0]},{_PEOPLE[owner][1]}\n"
    for unit, building, kind, area, owner, name in _ROWS)

VOTERS = ["A1", "A2", "A3", "B1", "B2", "C1"]
IN_M2 = {"A1", "A2", "A3"}          # building 1
IN_E2 = {"A1", "B1", "B2"}          # building 2

SCOPED_MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
    {"matter_id": "M2", "kind": "resolution", "title": "筹集 1 号楼电梯维修资金", "category": 6,
     "scope": {"buildings": ["1"]}},
    {"matter_id": "E2", "kind": "election", "title": "选举 2 号楼楼长", "category": 9, "body": "other", "seats": 1,
     "candidates": [{"candidate_id": "K1", "name": "刘四"}, {"candidate_id": "K2", "name": "陈五"}],
     "scope": {"buildings": ["2"]}},
]


async def scope_community(client, staff_headers, make_community) -> tuple[str, list]:
    """A community with the register above imported through the API; (community_id, [])."""
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=SCOPE_REGISTER.encode(),
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return community_id, []


async def scoped_meeting(db_pool, client, staff_headers, make_community, *, matters: list | None = None,
                         rules: dict | None = None, state: str = "open") -> MeetingFixture:
    """A noticed or open meeting with ``SCOPED_MATTERS`` (or ``matters``) on the register above."""
    community = await scope_community(client, staff_headers, make_community)
    make = open_meeting if state == "open" else noticed_meeting
    m = await make(db_pool, client, staff_headers, None, matters=matters or SCOPED_MATTERS, rules=rules,
                   community=community)
    assert m.voter_ids == VOTERS, m.voter_ids
    return m


def owner_phone(owner_id: str) -> str:
    return _PEOPLE[owner_id][0]
