#!/usr/bin/env python3
"""Measure register uploads against a running server: time, the server's memory growth, and how
long a concurrent GET /healthz waits while the import runs.

    python scripts/bench_register_upload.py [--only csv64,csv64-over,xlsx,xlsx-over]

Starts `evote serve` (one worker, a fresh one for each file) on a free port against a fresh database on the configured
PostgreSQL (EVOTE_DATABASE_URL, else the embedded one), logs in a staff account and posts:

- csv64:       a 64 MiB CSV of 190,000 rows (long names and evidence), preview then import;
- csv64-over:  a 64 MiB CSV of ~700,000 short rows: refused at the 200,000-row limit (413);
- xlsx:        an xlsx of 200,000 rows (the limit), preview then import;
- xlsx-over:   an xlsx of 300,000 rows: refused at the limit (413).

For each it prints one JSON line: status, seconds, the server's resident memory before and at its
peak (sampled every 20 ms from /proc), and /healthz latencies (median, p95, max; one request
every 50 ms while the upload runs; first the same for 5 s with the server idle, for comparison).
No figure is asserted.  Stop it with Ctrl-C (SIGINT), which stops the server and drops the database.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import secrets
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from server.db.pool import create_pool, migrate
from server.devtools.bench_database import create_bench_database, drop_bench_database
from server.repositories import communities as community_repo
from server.services import staff as staff_service
from server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
HEADER = "单元号,楼栋,类型,专有面积,面积来源,持有人,业主编号,代表投票人,业主姓名,手机号,证件号码,合法占有凭证\n"


def csv_long_rows(rows: int, target_bytes: int) -> bytes:
    """``rows`` valid rows, their names and evidence padded so the file is just under ``target_bytes``."""
    pad = 200
    while True:
        name, evidence = "张" * 30, "证" * pad
        out = io.StringIO()
        out.write(HEADER)
        for i in range(rows):
            out.write(f"B{i // 1000}-{i % 1000},{i // 1000}号楼,住宅,88.5,不动产登记,业主,O{i:07d},是,{name},"
                      f"138{i:08d},,{evidence}\n")
        data = out.getvalue().encode()
        if len(data) <= target_bytes:
            return data
        pad -= max(1, (len(data) - target_bytes) // (3 * rows) + 1)


def csv_short_rows(target_bytes: int) -> bytes:
    out = io.StringIO()
    out.write(HEADER)
    size, i = len(HEADER.encode()), 0
    while size < target_bytes - 200:
        line = f"U{i},{i // 500}号楼,住宅,88.5,不动产登记,业主,O{i},是,,138{i:08d},,\n"
        out.write(line)
        size += len(line.encode())
        i += 1
    return out.getvalue().encode()


def xlsx_rows(rows: int) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("业主登记册")
    sheet.append(HEADER.strip().split(","))
    for i in range(rows):
        sheet.append([f"B{i // 1000}-{i % 1000}", f"{i // 1000}号楼", "住宅", 88.5, "不动产登记", "业主", f"O{i:07d}",
                      "是", "张三", f"138{i:08d}", None, None])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def measure(session: aiohttp.ClientSession, base: str, pid: int, url: str, data: bytes,
                  headers: dict) -> dict:
    before = rss_kib(pid)
    peak = before
    latencies: list[float] = []
    done = asyncio.Event()

    async def sample_memory():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            await asyncio.sleep(0.02)

    async def poll_health():
        while not done.is_set():
            t = time.perf_counter()
            async with session.get(f"{base}/healthz") as resp:
                await resp.read()
            latencies.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(sample_memory()), asyncio.create_task(poll_health())]
    t0 = time.perf_counter()
    async with session.post(url, data=data, headers=headers) as resp:
        body = await resp.json()
        status = resp.status
    seconds = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*tasks)
    latencies.sort()
    summary = {"status": status, "seconds": round(seconds, 2), "rss_before_mib": round(before / 1024, 1),
               "rss_peak_mib": round(peak / 1024, 1), "rss_growth_mib": round((peak - before) / 1024, 1),
               "healthz_n": len(latencies),
               "healthz_median_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
               "healthz_p95_ms": round(latencies[int(len(latencies) * 0.95)], 1) if latencies else None,
               "healthz_max_ms": round(latencies[-1], 1) if latencies else None}
    if status >= 400:
        summary["error"] = body["error"]["code"]
    elif "problem_count" in body:
        summary.update(ok=body["ok"], rows=body["rows"], problem_count=body["problem_count"],
                       warning_count=body["warning_count"])
    else:
        summary.update(version=body["version"], units=body["units"], warning_count=body["warning_count"])
    return summary


async def start_server(url: str, data_dir: str) -> asyncio.subprocess.Process:
    port = free_port()
    env = dict(os.environ, EVOTE_DATABASE_URL=url, EVOTE_PORT=str(port), EVOTE_HOST="127.0.0.1",
               EVOTE_DATA_DIR=data_dir, EVOTE_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    server = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", "serve", env=env, cwd=ROOT)
    server.port = port  # type: ignore[attr-defined]
    return server


async def stop(server: asyncio.subprocess.Process) -> None:
    if server.returncode is None:
        server.terminate()
        await asyncio.wait_for(server.wait(), 30)


async def ready(session: aiohttp.ClientSession, server, password: str) -> tuple[str, dict]:
    base = f"http://127.0.0.1:{server.port}"
    for _ in range(300):
        try:
            async with session.get(f"{base}/healthz") as resp:
                if resp.status == 200:
                    break
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    async with session.post(f"{base}/api/staff/login",
                            json={"username": "bench-admin", "password": password}) as resp:
        token = (await resp.json())["token"]
    return base, {"Authorization": f"Bearer {token}"}


async def idle_figures(session: aiohttp.ClientSession, base: str, pid: int) -> dict:
    """The same /healthz polling for 5 s with nothing else asked of the server, for comparison."""
    idle: list[float] = []
    until = time.perf_counter() + 5
    while time.perf_counter() < until:
        t = time.perf_counter()
        async with session.get(f"{base}/healthz") as resp:
            await resp.read()
        idle.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.05)
    idle.sort()
    return {"file": "none (idle)", "rss_mib": round(rss_kib(pid) / 1024, 1), "healthz_n": len(idle),
            "healthz_median_ms": round(idle[len(idle) // 2], 1),
            "healthz_p95_ms": round(idle[int(len(idle) * 0.95)], 1), "healthz_max_ms": round(idle[-1], 1)}


async def run(only: set[str]) -> None:
    settings = load_settings()
    server_url, url = await create_bench_database(settings)
    pool = await create_pool(url, min_size=1, max_size=2)
    server = None
    with tempfile.TemporaryDirectory() as data_dir:
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await community_repo.upsert_district(conn, "bench-district", "测试区")
                await community_repo.upsert_street(conn, "bench-street", "bench-district", "测试街道")
                for community in ("bench-a", "bench-b"):
                    await community_repo.insert_community(conn, community_id=community, name="bench",
                                                          street_id="bench-street", count_parking_area=False,
                                                          prep_group_formed_on=None)
            password = secrets.token_urlsafe(16)
            await staff_service.create_staff(pool, actor="bench", username="bench-admin", password=password,
                                             role="district_admin", street_id=None, communities=[])
            jobs = [
                ("csv64", lambda: csv_long_rows(190_000, 64 * MIB - 4096), "bench-a"),
                ("csv64-over", lambda: csv_short_rows(64 * MIB - 4096), "bench-a"),
                ("xlsx", lambda: xlsx_rows(200_000), "bench-b"),
                ("xlsx-over", lambda: xlsx_rows(300_000), "bench-b"),
            ]
            first = True
            for label, make, community in jobs:
                if only and label not in only:
                    continue
                data = await asyncio.to_thread(make)
                # a fresh server for each file, so its memory growth is this file's alone
                server = await start_server(url, data_dir)
                async with aiohttp.ClientSession() as session:
                    base, headers = await ready(session, server, password)
                    if first:
                        print(json.dumps(await idle_figures(session, base, server.pid)), flush=True)
                        first = False
                    target = f"{base}/api/admin/communities/{community}/register"
                    modes = ("preview", "import") if not label.endswith("over") else ("import",)
                    for mode in modes:
                        figures = await measure(session, base, server.pid,
                                                target + ("?preview=1" if mode == "preview" else ""), data,
                                                headers)
                        print(json.dumps({"file": label, "mode": mode, "mib": round(len(data) / MIB, 1),
                                          **figures}, ensure_ascii=False), flush=True)
                await stop(server)
                server = None
        finally:
            if server is not None:
                await stop(server)
            await pool.close()
            await drop_bench_database(server_url, url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated: csv64,csv64-over,xlsx,xlsx-over")
    args = parser.parse_args()
    asyncio.run(run({name for name in args.only.split(",") if name}))


if __name__ == "__main__":
    main()
