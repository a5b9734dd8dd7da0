#!/usr/bin/env python3
"""Measure the register import (and the weights) at scale.

    python scripts/bench_register.py --units 50000

Creates a fresh database on the configured PostgreSQL (EVOTE_DATABASE_URL) or the
embedded one, imports a generated register of UNITS units through the same service
the API and `evote register import` use, and prints the figures.  No asserts on time.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from server.db.pool import create_pool, migrate
from server.devtools.bench_database import create_bench_database, drop_bench_database
from server.devtools.demo_data import generate_register_rows, register_csv
from server.repositories import communities as community_repo
from server.services import register as register_service
from server.settings import load_settings


async def run(units: int) -> dict:
    settings = load_settings()
    server_url, url = await create_bench_database(settings)
    pool = await create_pool(url, min_size=1, max_size=4)
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await community_repo.insert_community(conn, community_id="bench", name="bench", street_id=None,
                                                  count_parking_area=False, prep_group_formed_on=None)
        t0 = time.perf_counter()
        rows = generate_register_rows(units, seed=1)
        data = register_csv(rows)
        t1 = time.perf_counter()
        result = await register_service.import_register(pool, community_id="bench", data=data,
                                                        filename="bench.csv", actor="bench", settings=settings)
        t2 = time.perf_counter()
        totals = await register_service.register_totals(pool, "bench")
        t3 = time.perf_counter()
        return {"units": result.units, "rows": result.rows, "owners": result.owners,
                "csv_mb": round(len(data) / 1e6, 2), "generate_s": round(t1 - t0, 2),
                "import_s": round(t2 - t1, 2), "totals_s": round(t3 - t2, 2),
                "total_area": totals["totals"]["area"], "total_persons": totals["totals"]["persons"]}
    finally:
        await pool.close()
        await drop_bench_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=50_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.units)), ensure_ascii=False))


if __name__ == "__main__":
    main()
