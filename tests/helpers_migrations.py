"""A database as an older release left it: created fresh, migrated up to a given migration."""
from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.db.pool import migrate


@asynccontextmanager
async def database_before(database_url: str, version: str) -> AsyncIterator[str]:
    """A new database with every migration numbered below ``version`` applied; yields its URL and
    drops it afterwards."""
    name = f"evote_m{version}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = urlunsplit(urlsplit(database_url)._replace(path="/" + name))
    try:
        conn = await asyncpg.connect(url)
        try:
            await migrate(conn, before=version)
        finally:
            await conn.close()
        yield url
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
