"""The owner register: all-or-nothing import, versions, legal weights."""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import asyncpg

from server.ballot.amounts import format_area
from server.ballot.register_table import RegisterTable, RowProblem, parse_register_table
from server.ballot.weights import Electorate, compute_electorate
from server.errors import NotFound, ValidationFailed
from server.repositories import communities as community_repo
from server.repositories import register as register_repo
from server.services import audit, personal_data
from server.services.register_files import RegisterFileError, read_table
from server.settings import Settings, load_settings


class RegisterRejected(ValidationFailed):
    """Some rows are bad: nothing was written; ``problems`` lists every one."""

    code = "register_invalid"

    def __init__(self, problems: list[RowProblem]):
        self.problems = problems
        super().__init__(f"登记册有 {len(problems)} 处问题，未导入任何数据",
                         fields={"rows": [p.as_dict() for p in problems]})


@dataclass(frozen=True)
class ImportResult:
    community_id: str
    version: int
    units: int
    owners: int
    rows: int
    total_area: int         # milli-m², over the voting subjects (owner sets)
    total_persons: int      # voting subjects
    area_places: int        # decimals the register's areas are printed with (2 or 3)
    joint_subjects: int     # voting subjects of several owners

    def as_dict(self) -> dict:
        return {"community_id": self.community_id, "version": self.version, "units": self.units,
                "owners": self.owners, "rows": self.rows,
                "total_area": format_area(self.total_area, self.area_places),
                "total_persons": self.total_persons, "joint_subjects": self.joint_subjects,
                "area_places": self.area_places}


def check_register_file(data: bytes, filename: str, *, count_parking_area: bool) -> RegisterTable:
    """Decode and check a register file; raises RegisterRejected listing every problem."""
    try:
        table = read_table(data, filename)
    except RegisterFileError as exc:
        raise RegisterRejected([RowProblem(None, "", exc.code, exc.message)]) from None
    checked = parse_register_table(table.header, table.records, count_parking_area=count_parking_area)
    if checked.problems:
        raise RegisterRejected(checked.problems)
    return checked


async def import_register(pool: asyncpg.Pool, *, community_id: str, data: bytes, filename: str,
                          actor: str, settings: Settings | None = None) -> ImportResult:
    """Check and store a register file as the community's next version, all or nothing.

    Owners' phone and ID numbers are not stored: only the keyed hashes of their last four
    characters, their masked forms and, with a master key, the encrypted phone
    (server.services.personal_data).  ``settings`` names the keys; None reads them from the
    environment (``EVOTE_*``), as the server and commands do.
    """
    async with pool.acquire() as conn:
        community = await community_repo.get_community(conn, community_id)
    if community is None:
        raise NotFound(f"小区 {community_id} 不存在", code="community_not_found")
    # Parsing 50,000 rows takes a while: keep the event loop free for voters.
    table = await asyncio.to_thread(check_register_file, data, filename,
                                    count_parking_area=community["count_parking_area"])
    electorate = compute_electorate(table.rows, community["count_parking_area"])
    units = {row.unit_id: row for row in table.rows}
    keys = await personal_data.load_identity_keys(settings or load_settings())
    async with pool.acquire() as conn, conn.transaction():
        # One import at a time per community, so versions are gap-free and ordered.
        await community_repo.lock_community(conn, community_id)
        version = await register_repo.next_version(conn, community_id)
        await register_repo.insert_version(
            conn, community_id=community_id, version=version, source_name=filename[:200],
            source_sha256=hashlib.sha256(data).hexdigest(), unit_count=len(units),
            owner_count=len(table.owners), created_by=actor)
        await register_repo.insert_units(conn, [
            (community_id, version, u.unit_id, u.building, u.kind, u.area, u.area_source, u.holder)
            for u in units.values()])
        # Hashing (and encrypting) 50,000 owners' numbers: off the event loop too.
        owner_rows = await asyncio.to_thread(personal_data.owner_records, keys, community_id, version,
                                             list(table.owners.values()))
        await register_repo.insert_owners(conn, owner_rows)
        # Fresh statistics before the ownership rows are checked against units and owners,
        # and again before commit runs the deferred representative check: otherwise the
        # per-row checks plan for empty tables and turn quadratic.
        await register_repo.analyze_register_tables(conn, "unit", "owner")
        await register_repo.insert_ownership(conn, [
            (community_id, version, r.unit_id, r.owner_id, r.representative) for r in table.rows])
        await register_repo.analyze_register_tables(conn, "ownership")
        await audit.append(conn, community_id=community_id, actor=actor, action="register.import",
                           detail={"version": version, "source": filename[:200], "units": len(units),
                                   "owners": len(table.owners),
                                   "sha256": hashlib.sha256(data).hexdigest()})
    return ImportResult(community_id, version, len(units), len(table.owners), len(table.rows),
                        electorate.total_area, electorate.total_persons, electorate.places,
                        sum(1 for s in electorate.subjects.values() if len(s.owners) > 1))


async def load_electorate(conn: asyncpg.Connection, community_id: str,
                          version: int | None = None) -> tuple[int, Electorate]:
    community = await community_repo.get_community(conn, community_id)
    if community is None:
        raise NotFound(f"小区 {community_id} 不存在", code="community_not_found")
    version = version or community["register_version"]
    if version is None:
        raise NotFound("该小区还没有导入业主登记册", code="register_missing")
    rows = await register_repo.register_rows(conn, community_id, version)
    if not rows:
        raise NotFound(f"登记册版本 {version} 不存在", code="register_version_not_found")
    return version, compute_electorate(rows, community["count_parking_area"])


def totals_document(community_id: str, version: int, electorate: Electorate) -> dict:
    """Total area and persons over the voting subjects (owner sets), and per building.

    A building's ``persons`` counts the subjects with a counted unit there and its
    ``area`` their area there, so a subject holding units in two buildings is in both.
    """
    places = electorate.places
    return {
        "community_id": community_id,
        "register_version": version,
        "area_places": places,
        "totals": {"area": format_area(electorate.total_area, places), "persons": electorate.total_persons},
        "joint_subjects": sum(1 for s in electorate.subjects.values() if len(s.owners) > 1),
        "buildings": [
            {"building": name, "area": format_area(b.area, places), "persons": b.persons, "units": b.units}
            for name, b in sorted(electorate.by_building.items())
        ],
    }


async def register_totals(pool: asyncpg.Pool, community_id: str, version: int | None = None) -> dict:
    async with pool.acquire() as conn:
        version, electorate = await load_electorate(conn, community_id, version)
    return totals_document(community_id, version, electorate)
