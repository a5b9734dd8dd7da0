"""GET /healthz: the service and its database answer."""
from __future__ import annotations

import asyncio

from aiohttp import web

from server import appkeys
from server.db.pool import ping
from server.errors import ServiceUnavailable


async def healthz(request: web.Request) -> web.Response:
    pool = request.app[appkeys.DB_POOL]
    try:
        async with asyncio.timeout(2):
            await ping(pool)
    except (TimeoutError, OSError, Exception) as exc:  # any failure means not healthy
        raise ServiceUnavailable("数据库暂时不可用", code="database_unavailable") from exc
    return web.json_response({"status": "ok", "database": "ok"})


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
