"""SQL for register versions, units, owners and ownership."""
from __future__ import annotations

import asyncpg

from server.ballot.weights import RegisterRow


async def next_version(conn: asyncpg.Connection, community_id: str) -> int:
    return await conn.fetchval(
        "SELECT coalesce(max(version), 0) + 1 FROM register_version WHERE community_id = $1", community_id)


async def insert_version(conn: asyncpg.Connection, *, community_id: str, version: int, source_name: str,
                         source_sha256: str, unit_count: int, owner_count: int, created_by: str) -> None:
    await conn.execute(
        """INSERT INTO register_version (community_id, version, source_name, source_sha256,
                                         unit_count, owner_count, created_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        community_id, version, source_name, source_sha256, unit_count, owner_count, created_by)


async def insert_units(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """Bulk-insert the version's units (COPY)."""
    await conn.copy_records_to_table(
        "unit", records=records,
        columns=["community_id", "version", "unit_id", "building", "kind", "area", "area_source", "holder"])


# What an import stores of an owner: never a phone or ID number in clear (server.services.personal_data).
OWNER_COLUMNS = ("community_id", "version", "owner_id", "name", "phone_hmac", "id_hmac", "identity_key_id",
                 "phone_masked", "id_masked", "phone_enc", "recognised_by_possession", "possession_evidence")


async def insert_owners(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """Bulk-insert the version's owners (COPY; records in the order of ``OWNER_COLUMNS``)."""
    await conn.copy_records_to_table("owner", records=records, columns=list(OWNER_COLUMNS))


async def insert_ownership(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """Bulk-insert the version's ownership rows (COPY)."""
    await conn.copy_records_to_table(
        "ownership", records=records,
        columns=["community_id", "version", "unit_id", "owner_id", "representative"])


_REGISTER_TABLES = frozenset({"unit", "owner", "ownership"})


async def analyze_register_tables(conn: asyncpg.Connection, *tables: str) -> None:
    if not tables or not _REGISTER_TABLES.issuperset(tables):
        raise ValueError(f"not a register table: {tables}")
    await conn.execute("ANALYZE " + ", ".join(tables))


async def latest_version(conn: asyncpg.Connection, community_id: str) -> int | None:
    return await conn.fetchval(
        "SELECT max(version) FROM register_version WHERE community_id = $1", community_id)


async def list_versions(conn: asyncpg.Connection, community_id: str) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT version, source_name, source_sha256, unit_count, owner_count, created_by, created_at
             FROM register_version WHERE community_id = $1 ORDER BY version""", community_id)


async def register_rows(conn: asyncpg.Connection, community_id: str, version: int) -> list[RegisterRow]:
    records = await conn.fetch(
        """SELECT u.unit_id, u.building, u.kind, u.area, u.area_source, u.holder, o.owner_id, o.representative
             FROM unit u JOIN ownership o
               ON o.community_id = u.community_id AND o.version = u.version AND o.unit_id = u.unit_id
            WHERE u.community_id = $1 AND u.version = $2
            ORDER BY u.building, u.unit_id, o.representative DESC, o.owner_id""", community_id, version)
    return [RegisterRow(r["unit_id"], r["building"], r["kind"], r["area"], r["area_source"], r["holder"],
                        r["owner_id"], r["representative"]) for r in records]


async def owners(conn: asyncpg.Connection, community_id: str, version: int,
                 owner_ids: list[str] | None = None) -> list[asyncpg.Record]:
    """Owners of a register version with the masked forms of their numbers (the numbers are not stored)."""
    if owner_ids is None:
        return await conn.fetch(
            """SELECT owner_id, name, phone_masked, id_masked, recognised_by_possession, possession_evidence
                 FROM owner WHERE community_id = $1 AND version = $2 ORDER BY owner_id""", community_id, version)
    return await conn.fetch(
        """SELECT owner_id, name, phone_masked, id_masked, recognised_by_possession, possession_evidence
             FROM owner WHERE community_id = $1 AND version = $2 AND owner_id = any($3::text[])
            ORDER BY owner_id""", community_id, version, owner_ids)
