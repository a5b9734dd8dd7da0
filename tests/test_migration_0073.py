"""Migration 0073 on a database that holds owners' numbers in clear: the step run after the migrations (by
`evote migrate`, any command, the server's start) leaves only keyed hashes, masked forms and, with a
master key, the encrypted phone, in every register version; nothing keeps the clear value."""
from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest
import pytest_asyncio

from server.ballot import identity
from server.ballot.masking import last4, mask_id_number, mask_phone
from server.db.pool import migrate
from server.services import personal_data
from tests.helpers_migrations import database_before

# (version, owner, phone, id_number): register history too; B has no numbers, C an ID ending in x.
OWNERS = [(1, "A", "13800001111", "350502198001011234"), (1, "B", "", ""), (1, "C", "", "35050219900101555x"),
          (2, "A", "139-0000-2222", "350502198001011234"), (2, "C", "13700003333", "35050219900101555X")]
CLEAR = ("13800001111", "350502198001011234", "35050219900101555", "139-0000-2222", "13900002222", "13700003333")


@pytest_asyncio.fixture
async def old_database(database_url):
    """A new database migrated up to (not including) 0073 holding clear numbers; yields its URL."""
    async with database_before(database_url, "0073") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO district VALUES ('d', '区')")
            await conn.execute("INSERT INTO street VALUES ('s', 'd', '街道')")
            await conn.execute("INSERT INTO community (community_id, street_id, name) VALUES ('c', 's', '小区')")
            await conn.execute("INSERT INTO register_version (community_id, version) VALUES ('c', 1), ('c', 2)")
            await conn.executemany(
                """INSERT INTO owner (community_id, version, owner_id, name, phone, id_number)
                   VALUES ('c', $1, $2, '业主' || $2, $3, $4)""", OWNERS)
        finally:
            await conn.close()
        yield url


async def _rows(conn: asyncpg.Connection) -> dict:
    rows = await conn.fetch("""SELECT version, owner_id, phone, id_number, phone_hmac, id_hmac, identity_key_id,
                                      phone_masked, id_masked, phone_enc FROM owner ORDER BY version, owner_id""")
    return {(r["version"], r["owner_id"]): r for r in rows}


async def _clear_anywhere(conn: asyncpg.Connection) -> list[str]:
    tables = [r["table_name"] for r in await conn.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
    return [f"{t}: {v}" for t in tables for v in CLEAR
            if await conn.fetchval(f'SELECT count(*) FROM "{t}" x WHERE x::text ILIKE $1', f"%{v}%")]


async def test_the_step_hashes_masks_and_encrypts_every_version_then_the_database_refuses_clear_numbers(
        old_database, settings, tmp_path):
    keyed = settings.replace(master_key="migration master key", data_dir=tmp_path)
    keys = personal_data.identity_keys(keyed)
    conn = await asyncpg.connect(old_database)
    try:
        await migrate(conn)
        # Between the migration and the step the old rows still hold numbers; new ones cannot.
        assert len(await _clear_anywhere(conn)) > 0
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("INSERT INTO owner (community_id, version, owner_id, phone) VALUES ('c', 2, 'N', '1')")
        assert await personal_data.protect_stored_identities(conn, keyed) == 4
        assert await _clear_anywhere(conn) == []
        rows = await _rows(conn)
        for version, owner_id, phone, id_number in OWNERS:
            row = rows[(version, owner_id)]
            assert row["phone"] == row["id_number"] == ""
            assert row["phone_masked"] == (mask_phone(phone) if phone else "")
            assert row["id_masked"] == (mask_id_number(id_number.upper()) if id_number else "")
            assert row["identity_key_id"] == (keys.key_id if phone or id_number else None)
            if phone:
                assert identity.open_phone(keys.phone_aead, "c", version, owner_id, bytes(row["phone_enc"])) == phone
            else:
                assert row["phone_enc"] is None
            for number, kind in ((phone, identity.PHONE), (id_number, identity.ID_NUMBER)):
                typed = last4(number).lower()
                assert identity.identity_matches_digests(
                    keys.hmac_key, typed, community_id="c", owner_id=owner_id,
                    phone_hmac=row["phone_hmac"], id_hmac=row["id_hmac"]) == bool(number), (owner_id, kind)
        assert rows[(2, "C")]["id_masked"] == "350***************"
        # Done once: the constraint is valid now, the step a no-op, and no clear number gets in.
        assert await conn.fetchval("SELECT convalidated FROM pg_constraint WHERE conname = 'owner_identity_not_in_clear'")
        assert await personal_data.protect_stored_identities(conn, keyed) == 0
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE owner SET id_number = '350502198001011234' WHERE owner_id = 'A'")
    finally:
        await conn.close()


async def test_evote_migrate_runs_the_step_and_without_a_master_key_keeps_no_full_phone(old_database, tmp_path):
    env = {**os.environ, "EVOTE_DATABASE_URL": old_database, "EVOTE_DATA_DIR": str(tmp_path)}
    env.pop("EVOTE_MASTER_KEY", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", "migrate", env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "0073_personal_data" in out.decode() and "protected the phone and ID numbers of 4 owner row(s)" in out.decode()
    for value in CLEAR:
        assert value not in out.decode() + err.decode()
    conn = await asyncpg.connect(old_database)
    try:
        assert await _clear_anywhere(conn) == []
        rows = await _rows(conn)
        assert all(r["phone_enc"] is None for r in rows.values())
        key_file = tmp_path / "keys" / personal_data.KEY_FILE
        assert {r["identity_key_id"] for r in rows.values()} == {
            None, identity.key_id(bytes.fromhex(key_file.read_text().strip()))}
    finally:
        await conn.close()
