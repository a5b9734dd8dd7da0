"""The skeleton: migrations, /healthz, the error envelope, body limits, settings."""
from __future__ import annotations

import asyncpg
import pytest

from server.db.pool import migrate, migration_files
from server.settings import SettingsError, load_settings


async def test_migrations_apply_to_an_empty_database_and_are_idempotent(database_url, db_pool):
    # database_url was created empty and migrated by the fixture; a second run applies nothing.
    async with db_pool.acquire() as conn:
        assert await migrate(conn) == []
        applied = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migration ORDER BY name")]
        assert applied == [name for name, _ in migration_files()]
        # community_id leads the primary key of every table holding community data.
        rows = await conn.fetch(
            """SELECT c.relname AS table, a.attname AS first_column
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
                WHERE i.indisprimary""")
        for row in rows:
            if row["table"] in ("district", "street", "staff", "schema_migration",
                                "staff_token_revoked", "staff_login_throttle", "wechat_access_token", "shequ",
                                "staff_shequ", "campaign", "campaign_batch", "campaign_area"):   # no community data
                continue
            assert row["first_column"] == "community_id", row["table"]


async def test_healthz_checks_the_database(client):
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "database": "ok"}


async def test_unknown_route_gets_the_error_envelope(client):
    resp = await client.get("/no/such/thing")
    assert resp.status == 404
    body = await resp.json()
    assert body["error"]["code"] == "not_found"
    assert body["error"]["message"]


async def test_invalid_json_is_a_clear_400(client):
    resp = await client.post("/api/staff/login", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_json"


async def test_a_missing_required_field_is_named_in_one_wording(client):
    resp = await client.post("/api/staff/login", json={"password": "x"})
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["code"] == "validation_failed" and error["fields"] == {"username": "必填"}
    assert error["message"] == "请填写字段 username"


async def test_oversized_body_is_refused(client, settings):
    big = b"x" * (settings.max_body_bytes + 10)
    resp = await client.post("/api/staff/login", data=big, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


def test_settings_are_typed_and_hide_secrets():
    s = load_settings({"EVOTE_PORT": "9000", "EVOTE_DATABASE_URL": "postgresql://u:hunter2pw@h/db",
                       "EVOTE_MASTER_KEY": "k" * 32})
    assert s.port == 9000 and s.public_url == "http://127.0.0.1:9000"
    assert "hunter2pw" not in repr(s) and "kkkk" not in repr(s)
    with pytest.raises(SettingsError):
        load_settings({"EVOTE_PORT": "eighty"})


async def test_register_history_cannot_be_rewritten(db_pool, imported_community):
    community_id, _ = await imported_community(10)
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("UPDATE unit SET area = area + 1 WHERE community_id = $1", community_id)


async def test_sessions_stay_in_utc_after_the_pool_resets_them(database_url):
    from server.db.pool import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=1)
    try:
        for _ in range(3):  # the pool runs RESET ALL on every release
            async with pool.acquire() as conn:
                assert await conn.fetchval("SHOW timezone") == "UTC"
                await conn.execute("SET TIME ZONE 'Asia/Shanghai'")
    finally:
        await pool.close()
