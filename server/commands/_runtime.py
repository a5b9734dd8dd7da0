"""What the sub-commands share: settings, a database connection, clean failure."""
from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager

import asyncpg

from server.db.pool import create_pool, migrate, resolve_database_url
from server.services import personal_data
from server.settings import Settings, SettingsError, load_settings


class CommandFailed(Exception):
    """Bad input to a command: printed as one line, exit status 2."""


def settings_from_env(**overrides) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        raise CommandFailed(str(exc)) from None


@asynccontextmanager
async def database(settings: Settings, *, apply_migrations: bool = True):
    """A small pool on the configured (or embedded) PostgreSQL, migrated."""
    dsn, embedded = await asyncio.to_thread(resolve_database_url, settings)
    pool = await create_pool(dsn, min_size=1, max_size=4)
    try:
        if apply_migrations:
            async with pool.acquire() as conn:
                await migrate(conn)
                await personal_data.protect_stored_identities(conn, settings)
        yield pool
    finally:
        await pool.close()
        del embedded  # pgserver stops the embedded server when its last user exits


def run(prog: str, coro) -> int:
    try:
        return asyncio.run(coro) or 0
    except CommandFailed as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except (OSError, asyncpg.PostgresConnectionError) as exc:
        print(f"{prog}: cannot reach the database: {exc}", file=sys.stderr)
        return 1
