"""The owner register: preview, all-or-nothing import, versions, legal weights."""
from __future__ import annotations

import asyncio
import gc
import hashlib
import io
import weakref
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO

import asyncpg

from server.ballot.amounts import format_area
from server.ballot.register_table import MAX_LISTED, Capped, RegisterTable, RowProblem, parse_register_table
from server.ballot.register_warnings import register_warnings
from server.ballot.weights import Electorate, compute_electorate
from server.errors import NotFound, PayloadTooLarge, ValidationFailed
from server.repositories import communities as community_repo
from server.repositories import register as register_repo
from server.services import audit, personal_data
from server.services.register_files import RegisterFileError, open_table
from server.settings import Settings, load_settings

# The default row limit (EVOTE_REGISTER_MAX_ROWS).
MAX_ROWS = Settings.register_max_rows


class RegisterRejected(ValidationFailed):
    """Some rows are bad: nothing was written.  ``problems`` lists the first ones by line
    (``MAX_LISTED``), ``problem_count`` counts them all."""

    code = "register_invalid"

    def __init__(self, problems: list[RowProblem], problem_count: int | None = None,
                 warnings: Sequence[RowProblem] = (), warning_count: int = 0):
        self.problems = problems
        self.problem_count = len(problems) if problem_count is None else problem_count
        super().__init__(f"登记册有 {self.problem_count} 处问题，未导入任何数据",
                         fields={"rows": [p.as_dict() for p in problems], "problem_count": self.problem_count,
                                 "warnings": [w.as_dict() for w in warnings], "warning_count": warning_count})


class RegisterTooLarge(PayloadTooLarge):
    """The file has more rows (or bigger parts) than the import reads."""


@dataclass
class RegisterCheck:
    """A register file read and checked: its rows, the first problems and warnings (all counted)."""

    table: RegisterTable
    warnings: Capped
    sha256: str
    count_parking_area: bool

    @property
    def ok(self) -> bool:
        return not self.table.problems

    def totals(self) -> dict:
        """Units, owners and rows read; area and persons only for a register without problems."""
        doc: dict = {"rows": len(self.table.rows), "units": len({r.unit_id for r in self.table.rows}),
                     "owners": len(self.table.owners), "total_area": None, "total_persons": None,
                     "joint_subjects": None, "area_places": None}
        if self.ok:
            electorate = compute_electorate(self.table.rows, self.count_parking_area, validated=True)
            doc.update(total_area=format_area(electorate.total_area, electorate.places),
                       total_persons=electorate.total_persons, area_places=electorate.places,
                       joint_subjects=sum(1 for s in electorate.subjects.values() if len(s.owners) > 1))
        return doc

    def preview(self) -> dict:
        return {"ok": self.ok, "rows": self.table.records,
                "problems": [p.as_dict() for p in self.table.problems.listed()],
                "problem_count": self.table.problems.count,
                "warnings": [w.as_dict() for w in self.warnings.listed()],
                "warning_count": self.warnings.count, "totals": self.totals()}


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
    warnings: tuple[RowProblem, ...] = ()   # the first MAX_LISTED
    warning_count: int = 0

    def as_dict(self) -> dict:
        return {"community_id": self.community_id, "version": self.version, "units": self.units,
                "owners": self.owners, "rows": self.rows,
                "total_area": format_area(self.total_area, self.area_places),
                "total_persons": self.total_persons, "joint_subjects": self.joint_subjects,
                "area_places": self.area_places, "warnings": [w.as_dict() for w in self.warnings],
                "warning_count": self.warning_count}


# While a register file is read and stored, the collector leaves its objects alone: hundreds of
# thousands of rows, none in a cycle, which every full collection (holding the interpreter, so
# every request) would walk again.  When the work starts and every few thousand rows, one
# collection (of what is not frozen yet: little) then gc.freeze, as the live tallies and the
# server's start-up heap are (docs/performance.md).  Nothing is unfrozen after: the rows are freed
# by their reference counts when the work is over, and unfreezing would thaw the live tallies too.
_WORKING = 0


def _freeze() -> None:
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _register_work() -> AsyncIterator[None]:
    """One register file at a time per process, its objects kept from the collector."""
    global _WORKING
    async with _gate():
        _WORKING += 1
        _freeze()
        try:
            yield
        finally:
            _WORKING -= 1


def _frozen_every(records: Iterator, rows: int = 5000) -> Iterator:
    for count, record in enumerate(records, start=1):
        if _WORKING and count % rows == 0:
            _freeze()
        yield record


def _sha256(source: IO[bytes]) -> str:
    digest = hashlib.sha256()
    source.seek(0)
    while chunk := source.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def check_register_file(data: bytes | IO[bytes], filename: str, *, count_parking_area: bool,
                        max_rows: int = MAX_ROWS, max_listed: int = MAX_LISTED) -> RegisterCheck:
    """Read and check a register file one row at a time.

    A file that cannot be read is one problem of the whole file; more than ``max_rows`` rows is
    ``RegisterTooLarge`` (413).  Rows, problems and warnings come back; nothing is raised for bad rows.
    """
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    sha256 = _sha256(source)
    try:
        with open_table(source, filename, max_rows=max_rows) as file:
            table = parse_register_table(file.header, _frozen_every(file.records),
                                         count_parking_area=count_parking_area, max_listed=max_listed)
    except RegisterFileError as exc:
        if exc.status == 413:
            fields = {"max_rows": max_rows} if exc.code == "register_too_many_rows" else None
            raise RegisterTooLarge(exc.message, code=exc.code, fields=fields) from None
        problems = Capped(max_listed)
        problems.add(RowProblem(None, "", exc.code, exc.message))
        return RegisterCheck(RegisterTable(rows=[], owners={}, problems=problems), Capped(max_listed), sha256,
                             count_parking_area)
    warnings = register_warnings(table, count_parking_area=count_parking_area, max_listed=max_listed)
    return RegisterCheck(table, warnings, sha256, count_parking_area)


# One register file read and stored at a time per event loop (process): a second upload waits rather
# than doubling the memory and competing with voters for the interpreter.
_GATES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _gate() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    gate = _GATES.get(loop)
    if gate is None:
        gate = _GATES[loop] = asyncio.Semaphore(1)
    return gate


async def _community(pool: asyncpg.Pool, community_id: str):
    async with pool.acquire() as conn:
        community = await community_repo.get_community(conn, community_id)
    if community is None:
        raise NotFound(f"小区 {community_id} 不存在", code="community_not_found")
    return community


async def _check(community, data: bytes | IO[bytes], filename: str, settings: Settings) -> RegisterCheck:
    # Parsing 200,000 rows takes a while: keep the event loop free for voters.
    return await asyncio.to_thread(check_register_file, data, filename,
                                   count_parking_area=community["count_parking_area"],
                                   max_rows=settings.register_max_rows)


async def preview_register(pool: asyncpg.Pool, *, community_id: str, data: bytes | IO[bytes], filename: str,
                           settings: Settings | None = None) -> dict:
    """What an import of this file would find: every problem counted (the first ones listed), the
    warnings and the totals.  Writes nothing."""
    community = await _community(pool, community_id)
    async with _register_work():
        return await _preview(community, data, filename, settings or load_settings())


async def _preview(community, data: bytes | IO[bytes], filename: str, settings: Settings) -> dict:
    checked = await _check(community, data, filename, settings)
    return await asyncio.to_thread(checked.preview)


async def import_register(pool: asyncpg.Pool, *, community_id: str, data: bytes | IO[bytes], filename: str,
                          actor: str, settings: Settings | None = None) -> ImportResult:
    """Check and store a register file as the community's next version, all or nothing.

    ``data`` is the file's bytes or a seekable binary file (the spooled upload).  Owners' phone
    and ID numbers are not stored: only the keyed hashes of their last four characters, their
    masked forms and, with a master key, the encrypted phone (server.services.personal_data).
    ``settings`` names the keys and the row limit; None reads them from the environment
    (``EVOTE_*``), as the server and commands do.
    """
    settings = settings or load_settings()
    community = await _community(pool, community_id)
    async with _register_work():
        return await _import(pool, community, data, filename, actor, settings)


async def _import(pool: asyncpg.Pool, community, data: bytes | IO[bytes], filename: str, actor: str,
                  settings: Settings) -> ImportResult:
    community_id = community["community_id"]
    checked = await _check(community, data, filename, settings)
    table = checked.table
    if table.problems:
        raise RegisterRejected(table.problems.listed(), table.problems.count, checked.warnings.listed(),
                               checked.warnings.count)
    electorate = await asyncio.to_thread(compute_electorate, table.rows, community["count_parking_area"],
                                         validated=True)
    units = {row.unit_id: row for row in table.rows}
    keys = await personal_data.load_identity_keys(settings)
    async with pool.acquire() as conn, conn.transaction():
        # One import at a time per community, so versions are gap-free and ordered.
        await community_repo.lock_community(conn, community_id)
        version = await register_repo.next_version(conn, community_id)
        await register_repo.insert_version(
            conn, community_id=community_id, version=version, source_name=filename[:200],
            source_sha256=checked.sha256, unit_count=len(units),
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
                                   "owners": len(table.owners), "sha256": checked.sha256,
                                   "warnings": checked.warnings.count})
    return ImportResult(community_id, version, len(units), len(table.owners), len(table.rows),
                        electorate.total_area, electorate.total_persons, electorate.places,
                        sum(1 for s in electorate.subjects.values() if len(s.owners) > 1),
                        tuple(checked.warnings.listed()), checked.warnings.count)


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
