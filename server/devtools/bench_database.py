"""NOT FOR PRODUCTION: a fresh, empty database for a benchmark script, and its removal.

The scripts under scripts/ measure on the configured PostgreSQL (``EVOTE_DATABASE_URL``) or the embedded
one; each works in its own ``evote_bench_*`` database so it never touches real data.
"""
from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from server.db.pool import resolve_database_url
from server.settings import Settings


async def create_bench_database(settings: Settings) -> tuple[str, str]:
    """(server URL, URL of a new empty database ``evote_bench_<random>`` on it)."""
    server_url, _embedded = await asyncio.to_thread(resolve_database_url, settings)
    name = f"evote_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server_url, with_database(server_url, name)


def with_database(url: str, name: str) -> str:
    """``url`` with its database replaced by ``name`` (the query string, e.g. a socket's host, kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def drop_bench_database(server_url: str, url: str) -> None:
    name = url.split("?")[0].rsplit("/", 1)[1]
    assert name.startswith("evote_bench_"), name
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
