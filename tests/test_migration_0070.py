"""Migration 0070 on a database that already holds data: areas ×10 into 0.001 m², the frozen
electorate rows of earlier meetings completed (representative, area per building), area places."""
from __future__ import annotations

import asyncpg
import pytest
import pytest_asyncio

from server.ballot.weights import Subject
from server.db.pool import migrate
from server.services import counting
from tests.helpers_migrations import database_before


@pytest_asyncio.fixture
async def old_database(database_url):
    """A new database migrated up to (not including) 0070; dropped afterwards."""
    async with database_before(database_url, "0070") as url:
        conn = await asyncpg.connect(url)
        try:
            yield conn
        finally:
            await conn.close()


async def _old_data(conn: asyncpg.Connection) -> None:
    """A register in 0.01 m² and meetings as the code before 0070 froze them (one owner per voter)."""
    await conn.execute("INSERT INTO district VALUES ('d', '区')")
    await conn.execute("INSERT INTO street VALUES ('s', 'd', '街道')")
    await conn.execute("INSERT INTO community (community_id, street_id, name) VALUES ('c', 's', '小区')")
    async with conn.transaction():
        await conn.execute("INSERT INTO register_version (community_id, version) VALUES ('c', 1)")
        await conn.executemany(
            """INSERT INTO unit (community_id, version, unit_id, building, kind, area, area_source, holder)
               VALUES ('c', 1, $1, $2, $3, $4, 'registry', 'owner')""",
            [("u1", "1", "dwelling", 8050), ("u2", "2", "dwelling", 10025), ("u3", "1", "dwelling", 9000),
             ("p1", "1", "parking", 1250)])
        await conn.executemany("INSERT INTO owner (community_id, version, owner_id) VALUES ('c', 1, $1)",
                               [("A",), ("B",), ("C",)])
        await conn.executemany(
            """INSERT INTO ownership (community_id, version, unit_id, owner_id, representative)
               VALUES ('c', 1, $1, $2, $3)""",
            [("u1", "A", True), ("u1", "B", False), ("u2", "A", True), ("u2", "B", False), ("u3", "C", True),
             ("p1", "C", True)])
    for meeting_id, voters in (
            # voter A represented u1 and u2 (two buildings); C owns u3
            ("m1", [("A", 18075, "1", ["u1", "u2"]), ("C", 9000, "1", ["u3"])]),
            # frozen before the units were kept (0010)
            ("m0", [("X", 5000, "3", [])]),
            ("draft", [])):
        await conn.execute(
            """INSERT INTO meeting (community_id, meeting_id, title, rules) VALUES ('c', $1, '会议', '{}')""",
            meeting_id)
        await conn.executemany(
            """INSERT INTO electorate (community_id, meeting_id, voter_id, area, building, units)
               VALUES ('c', $1, $2, $3, $4, $5)""", [(meeting_id, *voter) for voter in voters])
        if voters:
            await conn.execute(
                """UPDATE meeting SET state = 'noticed', register_version = 1, total_area = $2, total_persons = $3,
                                      noticed_at = now() WHERE community_id = 'c' AND meeting_id = $1""",
                meeting_id, sum(v[1] for v in voters), len(voters))


async def test_existing_registers_and_frozen_meetings_migrate(old_database):
    conn = old_database
    await _old_data(conn)
    applied = await migrate(conn)
    assert applied[0] == "0070_owner_set_subjects"

    # areas ×10: 0.001 m²
    units = dict(await conn.fetch("SELECT unit_id, area FROM unit WHERE community_id = 'c'"))
    assert units == {"u1": 80500, "u2": 100250, "u3": 90000, "p1": 12500}
    meetings = {r["meeting_id"]: r for r in await conn.fetch(
        "SELECT meeting_id, total_area, total_persons, area_places FROM meeting WHERE community_id = 'c'")}
    assert (meetings["m1"]["total_area"], meetings["m1"]["area_places"]) == (270750, 2)
    assert (meetings["m0"]["total_area"], meetings["m0"]["area_places"]) == (50000, 2)
    assert (meetings["draft"]["total_area"], meetings["draft"]["area_places"]) == (None, None)

    # frozen subjects keep their voter id, represent themselves, and get their area per building
    rows = {(r["meeting_id"], r["voter_id"]): dict(r) for r in await conn.fetch(
        """SELECT meeting_id, voter_id, representative, area, building, units, buildings, building_areas,
                  building_units FROM electorate WHERE community_id = 'c'""")}
    assert rows["m1", "A"] == {"meeting_id": "m1", "voter_id": "A", "representative": "A", "area": 180750,
                               "building": "1", "units": ["u1", "u2"], "buildings": ["1", "2"],
                               "building_areas": [80500, 100250], "building_units": [1, 1]}
    assert (rows["m1", "C"]["buildings"], rows["m1", "C"]["building_areas"]) == (["1"], [90000])
    assert (rows["m0", "X"]["buildings"], rows["m0", "X"]["building_areas"], rows["m0", "X"]["units"]) == (
        ["3"], [50000], [])

    # the counting loaders read them as subjects, printed with two decimals
    electorate = await counting.load_electorate(conn, "c", "m1", 270750, 2)
    assert electorate.subjects["A"] == Subject("A", 180750, ("u1", "u2"), ("1", "2"), "A", (80500, 100250))
    assert electorate.places == 2 and electorate.by_building["2"].area == 100250

    # the history and the freeze hold again after the rewrite
    with pytest.raises(asyncpg.PostgresError):
        await conn.execute("UPDATE unit SET area = area + 1 WHERE community_id = 'c'")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE meeting SET total_area = 1 WHERE community_id = 'c' AND meeting_id = 'm1'")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("UPDATE meeting SET area_places = 3 WHERE community_id = 'c' AND meeting_id = 'm1'")
    # an owner id never holds the "+" that joins a subject's owners
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute("INSERT INTO owner (community_id, version, owner_id) VALUES ('c', 1, 'X+Y')")
    assert caught.value.constraint_name == "owner_id_without_plus"
    # a meeting noticed from now on must freeze its area places
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await conn.execute(
            """UPDATE meeting SET state = 'noticed', register_version = 1, total_area = 1, total_persons = 1,
                                  noticed_at = now() WHERE community_id = 'c' AND meeting_id = 'draft'""")
    assert caught.value.constraint_name == "meeting_area_places_frozen"
