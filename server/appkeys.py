"""Typed keys for what the application holds (web.AppKey), all in one place."""
from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from server.settings import Settings

if TYPE_CHECKING:   # these modules read their keys from here
    from server.auth.tokens import TokenKeys
    from server.auth.wechat import WeChatClient
    from server.live.broker import Broker
    from server.live.hub import LiveHub
    from server.services.effects import Effects

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
# The pgserver handle when running on the embedded PostgreSQL (else None).
EMBEDDED_PG = web.AppKey("embedded_pg", object)
TOKEN_KEYS: web.AppKey[TokenKeys] = web.AppKey("token_keys")
BROKER: web.AppKey[Broker] = web.AppKey("broker")
LIVE: web.AppKey[LiveHub] = web.AppKey("live")
BACKGROUND_TASKS = web.AppKey("background_tasks", list)
EFFECTS: web.AppKey[Effects] = web.AppKey("effects")
WECHAT: web.AppKey[WeChatClient] = web.AppKey("wechat")
REQUEST_ID = web.RequestKey("request_id", str)
