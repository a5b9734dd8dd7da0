"""SQL for communities' result keys (``community_key``); keys are made and loaded in server.services.result_keys."""
from __future__ import annotations

import asyncpg

KEY_COLUMNS = ("community_id, key_id, public_key, private_key_enc, key_file, created_at, created_by, retired_at, "
               "rotated_by")


async def insert_key(conn: asyncpg.Connection, *, community_id: str, key_id: str, public_key: bytes,
                     private_key_enc: bytes | None, key_file: str | None, created_by: str) -> None:
    await conn.execute(
        """INSERT INTO community_key (community_id, key_id, public_key, private_key_enc, key_file, created_by)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        community_id, key_id, public_key, private_key_enc, key_file, created_by)


async def active_key(conn: asyncpg.Connection, community_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {KEY_COLUMNS} FROM community_key WHERE community_id = $1 AND retired_at IS NULL", community_id)


async def retire_active_key(conn: asyncpg.Connection, community_id: str, *, rotated_by: str) -> str | None:
    """Retire the community's active key now; returns its id (None when it had none)."""
    return await conn.fetchval(
        """UPDATE community_key SET retired_at = clock_timestamp(), rotated_by = $2
            WHERE community_id = $1 AND retired_at IS NULL RETURNING key_id""", community_id, rotated_by)


async def public_keys(conn: asyncpg.Connection, community_id: str) -> list[asyncpg.Record]:
    """Every key of the community (public part and times), newest first."""
    return await conn.fetch(
        """SELECT key_id, public_key, created_at, retired_at FROM community_key
            WHERE community_id = $1 ORDER BY created_at DESC, key_id""", community_id)
