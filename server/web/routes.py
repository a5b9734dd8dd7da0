"""Every handler module registers its own routes; this is the list of them."""
from __future__ import annotations

import importlib

from aiohttp import web

HANDLER_MODULES = [
    "health",
    "staff",
    "register",
    "results",
    "signin",
    "codes",
    "openapi",
    "live",
    "meetings",
    "owner",
    "elections",
    "paper",
    "proxies",
    "transfers",
    "canvass",
    "attachments",
    "notifications",
    "campaigns",
    "prep_groups",
    "documents",
    "console",
]


def setup_routes(app: web.Application) -> None:
    for name in HANDLER_MODULES:
        importlib.import_module(f"server.web.handlers.{name}").setup(app)
