"""`evote serve [--workers N]`: run the HTTP service.

With several workers the parent starts the embedded PostgreSQL (if no
EVOTE_DATABASE_URL is set) and hands its address to each worker; the workers
share the port with SO_REUSEPORT and share state only through PostgreSQL and
Redis (EVOTE_REDIS_URL; without it each worker has its own in-process broker).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import subprocess
import sys

from aiohttp import web

from server.app import create_app
from server.commands._runtime import CommandFailed, settings_from_env
from server.db.pool import resolve_database_url
from server.logging_setup import setup_logging
from server.settings import Settings


def register(sub) -> None:
    parser = sub.add_parser("serve", help="run the HTTP service (运行服务)")
    add_server_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    # Set by the parent of several workers on each child: they share the port.
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(func=main)


def add_server_arguments(parser) -> None:
    parser.add_argument("--host", default=None, help=f"listen address (EVOTE_HOST, default {Settings.host})")
    parser.add_argument("--port", type=int, default=None, help=f"listen port (EVOTE_PORT, default {Settings.port})")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop (libuv; asyncpg is built for it: ~20 % less CPU per ballot, docs/performance.md);
    asyncio's own where uvloop is not installed (it does not exist on Windows)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _freeze_startup_heap(_app) -> None:
    """Once started (modules, routes, pool, keys): one collection, then everything alive now is left
    out of later ones (gc.freeze).  The full collections during a rush then walk only what requests
    and live tallies keep, not the whole program (docs/performance.md)."""
    gc.collect()
    gc.freeze()


def run_single(settings: Settings, *, reuse_port: bool = False, print_ready=None) -> None:
    app = create_app(settings)
    app.on_startup.append(_freeze_startup_heap)
    if print_ready is not None:
        async def announce(_app):
            print_ready()
        app.on_startup.append(announce)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    web.run_app(app, host=settings.host, port=settings.port, reuse_port=reuse_port, print=None,
                access_log=None, handle_signals=True, loop=loop)


def run_workers(settings: Settings, workers: int) -> int:
    env = dict(os.environ)
    embedded = None
    if not settings.database_url:
        dsn, embedded = resolve_database_url(settings)
        env["EVOTE_DATABASE_URL"] = dsn
    env["EVOTE_HOST"], env["EVOTE_PORT"] = settings.host, str(settings.port)
    env.setdefault("EVOTE_PUBLIC_URL", settings.public_url)
    env.setdefault("EVOTE_DATA_DIR", str(settings.data_dir))
    children = [subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--workers", "1", "--reuse-port"],
                                 env=env) for _ in range(workers)]

    def forward(signum, _frame):
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        status = max(status, child.wait())
    del embedded
    return status


def main(args) -> int:
    try:
        settings = settings_from_env(host=args.host, port=args.port)
    except CommandFailed as exc:
        print(f"evote serve: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_json)
    if args.workers < 1:
        print("evote serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1:
        return run_workers(settings, args.workers)
    run_single(settings, reuse_port=args.reuse_port)
    return 0
