"""The database server's clock: the one time every worker agrees on (legal receive times are its)."""
from __future__ import annotations

from datetime import datetime

import asyncpg


async def now(conn: asyncpg.Connection) -> datetime:
    """``clock_timestamp()``: the server's time now (not the transaction's start)."""
    return await conn.fetchval("SELECT clock_timestamp()")
