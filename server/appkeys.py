"""Typed keys for what the application holds (web.AppKey), all in one place."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from server.settings import Settings

if TYPE_CHECKING:
    from server.live.broker import Broker
    from server.live.hub import LiveHub

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
# The pgserver handle when running on the embedded PostgreSQL (else None).
EMBEDDED_PG = web.AppKey("embedded_pg", object)
TOKEN_KEYS = web.AppKey("token_keys", Any)        # server.auth.tokens.TokenKeys
BROKER: web.AppKey[Broker] = web.AppKey("broker")
LIVE: web.AppKey[LiveHub] = web.AppKey("live")
BACKGROUND_TASKS = web.AppKey("background_tasks", list)
EFFECTS = web.AppKey("effects", Any)          # server.services.effects.Effects
WECHAT = web.AppKey("wechat", Any)                # server.auth.wechat.WeChatClient
REQUEST_ID = web.RequestKey("request_id", str)
