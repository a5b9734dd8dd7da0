#!/usr/bin/env python3
"""A live-stream watcher in its own process: every event it receives, one JSON line each.

    python scripts/live_watch.py --url http://127.0.0.1:8080/api/public/meetings/CID/MID/turnout \
        --connections 4 --out events.jsonl [--ws-url ws://.../api/ballot/live/ws --token T ...]

Each SSE connection (the public turnout stream) and each owner WebSocket writes, for every
document it receives, ``{"c": connection, "t": wall time, "type", "epoch", "seq", "persons"}``
(and ``{"c", "t", "note": ...}`` when it connects, loses the stream or reconnects).  A lost
stream is reopened after 0.2 s with ``Last-Event-ID`` (SSE) or ``last_event_id`` (WebSocket),
as a browser or the mini program does.  It runs until SIGTERM.  scripts/faulttest.py starts it
and reads the file: the gaps between events, the order of the sequence numbers, the recovery
after an outage.  Running in another process than the load, its clock readings are not delayed
by the votes being sent.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

import aiohttp


class Out:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1, encoding="utf-8")

    def write(self, **fields) -> None:
        self.file.write(json.dumps(fields, ensure_ascii=False) + "\n")


def _record(out: Out, c: int, doc: dict) -> str | None:
    if not isinstance(doc, dict) or doc.get("type") not in ("snapshot", "update"):
        return None
    event_id = str(doc.get("event_id", ""))
    epoch, _, seq = event_id.partition(".")
    out.write(c=c, t=time.time(), type=doc["type"], epoch=epoch, seq=int(seq or 0),
              persons=doc.get("turnout", {}).get("persons"))
    return event_id


async def sse(session: aiohttp.ClientSession, url: str, c: int, out: Out) -> None:
    last: str | None = None
    while True:
        headers = {"Accept": "text/event-stream"}
        if last:
            headers["Last-Event-ID"] = last
        try:
            async with session.get(url, headers=headers) as resp:
                out.write(c=c, t=time.time(), note=f"connected {resp.status}")
                if resp.status == 200:
                    async for line in resp.content:
                        if line.startswith(b"data: "):
                            last = _record(out, c, json.loads(line[6:])) or last
        except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as exc:
            out.write(c=c, t=time.time(), note=f"lost {type(exc).__name__}")
        else:
            out.write(c=c, t=time.time(), note="ended")
        await asyncio.sleep(0.2)


async def ws(session: aiohttp.ClientSession, url: str, token: str, c: int, out: Out) -> None:
    last: str | None = None
    while True:
        try:
            async with session.ws_connect(url, heartbeat=None, max_msg_size=0) as sock:
                await sock.send_str(json.dumps({"token": token, "last_event_id": last or ""}))
                out.write(c=c, t=time.time(), note="connected ws")
                async for msg in sock:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        last = _record(out, c, json.loads(msg.data)) or last
                    elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                        break
        except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as exc:
            out.write(c=c, t=time.time(), note=f"lost {type(exc).__name__}")
        else:
            out.write(c=c, t=time.time(), note="ended")
        await asyncio.sleep(0.2)


async def main_async(args: argparse.Namespace) -> None:
    out = Out(args.out)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        tasks = [asyncio.create_task(sse(session, args.url, c, out)) for c in range(args.connections)]
        tasks += [asyncio.create_task(ws(session, args.ws_url, token, args.connections + k, out))
                  for k, token in enumerate(args.token)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    out.file.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the public turnout stream (SSE)")
    p.add_argument("--connections", type=int, default=4, help="SSE connections")
    p.add_argument("--ws-url", default="", help="the owners' WebSocket")
    p.add_argument("--token", action="append", default=[], help="an owner's ballot token (one WebSocket each)")
    p.add_argument("--out", required=True, help="file to append the JSON lines to")
    asyncio.run(main_async(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
