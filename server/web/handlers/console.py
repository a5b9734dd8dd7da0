"""The organisers' console: a static page at /admin/ that calls only the staff API (docs/console.md)."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

CONSOLE_STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"


async def console_page(request: web.Request) -> web.FileResponse:
    # The page holds no data: it signs in with the staff API and keeps the token in sessionStorage.
    return web.FileResponse(CONSOLE_STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def console_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/")


def setup(app: web.Application) -> None:
    app.router.add_get("/admin", console_redirect)
    app.router.add_get("/admin/", console_page)
    app.router.add_static("/static/admin/", CONSOLE_STATIC, append_version=False)
