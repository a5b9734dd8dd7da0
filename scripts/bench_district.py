#!/usr/bin/env python3
"""Measure the district board over the demo campaign of 222 communities.

    python scripts/bench_district.py [--rounds 40]

Creates a fresh database on the configured PostgreSQL (EVOTE_DATABASE_URL) or the embedded one, loads
the 2022 鲤城 demo campaign (`evote demo --campaign`), starts the real app on a local port, and asks
for the district board (JSON) and its 通报 workbook as a district admin.  Prints one JSON line:
the service's time (the query and the stage arithmetic, what the server spends) and the HTTP round
trip, p50/p95/max in ms.  No asserts on time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from server.app import create_app
from server.auth.staff import StaffPrincipal
from server.db.pool import create_pool, migrate
from server.devtools.bench_database import create_bench_database, drop_bench_database
from server.devtools.demo_campaign import CAMPAIGN_ID, DEMO_DAY, prepare_demo_campaign
from server.services import campaigns
from server.services import staff as staff_service
from server.settings import load_settings


def _figures(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[max(0, round(len(ordered) * 0.95) - 1)], 1), "max": round(ordered[-1], 1)}


async def run(rounds: int) -> dict:
    settings = load_settings()
    server_url, url = await create_bench_database(settings)
    pool = await create_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        t0 = time.perf_counter()
        await prepare_demo_campaign(pool)
        load_s = time.perf_counter() - t0
        principal = StaffPrincipal(0, "bench", "district_admin", None)
        service_ms = []
        for _ in range(rounds):
            t = time.perf_counter()
            board = await campaigns.board(pool, principal, CAMPAIGN_ID, today=DEMO_DAY)
            service_ms.append((time.perf_counter() - t) * 1000)
        password = secrets.token_urlsafe(12)
        await staff_service.create_staff(pool, actor="bench", username="bench-admin", password=password,
                                         role="district_admin")
        app = create_app(settings.replace(database_url=url, scheduler_interval_s=0, log_level="WARNING"))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        http_ms, xlsx_ms = [], []
        try:
            async with aiohttp.ClientSession() as session:
                login = await (await session.post(f"{base}/api/staff/login",
                                                  json={"username": "bench-admin", "password": password})).json()
                headers = {"Authorization": f"Bearer {login['token']}"}
                for _ in range(rounds):
                    t = time.perf_counter()
                    async with session.get(f"{base}/api/admin/campaigns/{CAMPAIGN_ID}/board?today={DEMO_DAY}",
                                           headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        await resp.read()
                    http_ms.append((time.perf_counter() - t) * 1000)
                for _ in range(max(3, rounds // 8)):
                    t = time.perf_counter()
                    async with session.get(f"{base}/api/admin/campaigns/{CAMPAIGN_ID}/board.xlsx?today={DEMO_DAY}",
                                           headers=headers) as resp:
                        assert resp.status == 200
                        await resp.read()
                    xlsx_ms.append((time.perf_counter() - t) * 1000)
        finally:
            await runner.cleanup()
        return {"communities": board["communities"], "rounds": rounds, "load_demo_s": round(load_s, 2),
                "board_service_ms": _figures(service_ms), "board_http_ms": _figures(http_ms),
                "board_xlsx_http_ms": _figures(xlsx_ms), "target_ms": 300}
    finally:
        await pool.close()
        await drop_bench_database(server_url, url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.rounds)), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
