"""Transaction-level advisory locks, one spelling for all of them.

A lock is named by a kind and the ids it covers (``community_id`` first); the key is
``kind:id1:id2…`` hashed with ``hashtextextended``.  It is held until the transaction ends.
"""
from __future__ import annotations

import asyncpg


async def xact_lock(conn: asyncpg.Connection, kind: str, *ids: str) -> None:
    """Wait for and take the advisory lock ``kind:ids…`` until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", ":".join((kind, *ids)))
