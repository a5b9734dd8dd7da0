"""The aiohttp application.

``create_app(settings)`` only builds the app; every resource is opened by its
own cleanup context (with a start-up check) and closed after ``yield``.
"""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from server import appkeys
from server.auth.tokens import TokenKeys, load_or_create_private_key
from server.auth.wechat import wechat_ctx
from server.db.pool import create_pool, migrate, ping, resolve_database_url
from server.live.broker import broker_ctx
from server.live.events import publish_meeting_event
from server.live.hub import live_ctx
from server.services import formation as formation_service
from server.services import notifications, personal_data, scheduler
from server.services import results as results_service
from server.services.effects import Effects
from server.settings import Settings
from server.web.middleware import error_middleware, install_security_headers
from server.web.routes import setup_routes

log = logging.getLogger("evote.app")


async def database_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    # Starting the embedded server blocks (initdb, pg_ctl): keep it off the loop.
    dsn, embedded = await asyncio.to_thread(resolve_database_url, settings)
    app[appkeys.EMBEDDED_PG] = embedded
    pool = await create_pool(dsn, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
    async with pool.acquire() as conn:
        await ping(conn)
        await migrate(conn)
        await personal_data.protect_stored_identities(conn, settings)
    app[appkeys.DB_POOL] = pool
    log.info("database ready (%s)", "embedded" if embedded else "external")
    yield
    await pool.close()


async def token_keys_ctx(app: web.Application):
    settings = app[appkeys.SETTINGS]
    key = await asyncio.to_thread(load_or_create_private_key, settings.token_key_path)
    app[appkeys.TOKEN_KEYS] = TokenKeys(private_key=key, issuer=settings.token_issuer)
    yield


async def _every(interval_s: float, run, what: str) -> None:
    """Run ``run()`` every ``interval_s`` seconds; a failed pass (database restart, ...) is retried next time."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s pass failed", what)
        await asyncio.sleep(interval_s)


def _background(what: str, interval_s, run):
    """A cleanup_ctx running ``run(app)`` every ``interval_s(settings)`` seconds (≤ 0 or None: not at all),
    started after the database is ready and cancelled on shutdown."""

    async def ctx(app: web.Application):
        interval = interval_s(app[appkeys.SETTINGS])
        if not interval or interval <= 0:
            yield
            return
        task = asyncio.create_task(_every(interval, lambda: run(app), what), name=f"evote-{what}")
        app[appkeys.BACKGROUND_TASKS].append(task)
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    return ctx


# Opens and closes meetings at their set times, in every worker (server/services/scheduler.py).
scheduler_ctx = _background(
    "scheduler", lambda s: s.scheduler_interval_s,
    lambda app: scheduler.run_once(app[appkeys.DB_POOL], app[appkeys.EFFECTS]))
# Queues and sends owners' WeChat messages when templates are configured (docs/notifications.md).
notify_ctx = _background(
    "notify", lambda s: s.notify_interval_s if notifications.offered(s) else None,
    lambda app: notifications.run_once(app[appkeys.DB_POOL], app[appkeys.WECHAT], app[appkeys.SETTINGS]))


def build_effects(app: web.Application) -> Effects:
    """What follows a commit: events through this app's broker, and the close hooks, in order."""

    async def publish(community_id: str, meeting_id: str, event: dict) -> None:
        await publish_meeting_event(app, community_id, meeting_id, event)

    return Effects(app[appkeys.SETTINGS], publish=publish, close_hooks=[
        results_service.on_meeting_closed,      # sign the result at once
        formation_service.on_meeting_closed,    # form the committee of each committee election
    ])


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[appkeys.SETTINGS] = settings
    app[appkeys.BACKGROUND_TASKS] = []
    app[appkeys.EFFECTS] = build_effects(app)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(token_keys_ctx)
    app.cleanup_ctx.append(wechat_ctx)
    # Meeting-event broker (Redis or in-process), then the live tallies that listen to it.
    app.cleanup_ctx.append(broker_ctx)
    app.cleanup_ctx.append(live_ctx)
    app.cleanup_ctx.append(scheduler_ctx)
    app.cleanup_ctx.append(notify_ctx)
    setup_routes(app)
    install_security_headers(app, public_url=settings.public_url)
    return app
