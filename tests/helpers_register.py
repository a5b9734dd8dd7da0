"""Small hand-written registers with joint owners (owner-set voting subjects), for register, notice,
code, sign-in and record tests.

``JOINT_REGISTER``: A and B jointly own 1-101 (building 1) and 2-201 (building 2), A representing
both, so they are ONE voting subject ``A+B`` of 80.50 + 100.25 m² in two buildings; A alone owns
1-102 (a second subject, ``A``); C owns 2-202.  Totals: 390.75 m², 3 persons.
"""
from __future__ import annotations

import csv
import io

from server.services import register as register_service

HEADER = "unit_id,building,kind,area,area_source,holder,owner_id,representative,owner_name,phone,id_number\n"

JOINT_LINES = (
    "1-101,1,dwelling,80.5,registry,owner,A,1,张三,13800001111,",
    "1-101,1,dwelling,80.5,registry,owner,B,0,李四,13900002222,",
    "2-201,2,dwelling,100.25,registry,owner,A,1,张三,13800001111,",
    "2-201,2,dwelling,100.25,registry,owner,B,0,李四,13900002222,",
    "1-102,1,dwelling,90,registry,owner,A,1,张三,13800001111,",
    "2-202,2,dwelling,120,registry,owner,C,1,王五,13700003333,",
)

# The same, with three-decimal areas: A+B 71.125 + 100.25, A 90.001, C 120 -> 381.376 m².
THREE_DECIMAL_LINES = (
    "1-101,1,dwelling,71.125,registry,owner,A,1,张三,13800001111,",
    "1-101,1,dwelling,71.125,registry,owner,B,0,李四,13900002222,",
    "2-201,2,dwelling,100.25,survey,owner,A,1,张三,13800001111,",
    "2-201,2,dwelling,100.25,survey,owner,B,0,李四,13900002222,",
    "1-102,1,dwelling,90.001,registry,owner,A,1,张三,13800001111,",
    "2-202,2,dwelling,120,contract,owner,C,1,王五,13700003333,",
)

PHONES = {"A": "13800001111", "B": "13900002222", "C": "13700003333"}


# Owners' names and numbers as the tests imported them, by (community_id, owner_id): the database keeps
# only keyed hashes and masked forms, so a test that signs in reads the digits to type from here.
IMPORTED_OWNERS: dict[tuple[str, str], dict[str, str]] = {}


def remember_register(community_id: str, data: bytes) -> None:
    """Note the owners of a register CSV imported into ``community_id`` (the latest import wins)."""
    seen: dict[str, dict[str, str]] = {}
    for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig"))):
        owner = seen.setdefault(row["owner_id"], {"owner_id": row["owner_id"], "name": "", "phone": "",
                                                  "id_number": ""})
        for key, column in (("name", "owner_name"), ("phone", "phone"), ("id_number", "id_number")):
            owner[key] = owner[key] or (row.get(column) or "")
    for owner_id, owner in seen.items():
        IMPORTED_OWNERS[(community_id, owner_id)] = owner


def register_bytes(lines=JOINT_LINES) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


async def import_lines(db_pool, make_community, lines=JOINT_LINES) -> tuple[str, list]:
    """A new community with the register ``lines`` imported; returns (community_id, [])
    (the ``community`` argument of tests.helpers_meetings.noticed_meeting / open_meeting)."""
    community_id = await make_community()
    data = register_bytes(lines)
    await register_service.import_register(db_pool, community_id=community_id, data=data,
                                           filename="joint.csv", actor="test")
    remember_register(community_id, data)
    return community_id, []


ONE_RESOLUTION = [{"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}]
