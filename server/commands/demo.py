"""`evote demo`: the service with a demo community, on the embedded PostgreSQL by default."""
from __future__ import annotations

import sys

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.commands.serve import add_server_arguments, run_single
from server.devtools.demo import prepare_demo
from server.logging_setup import setup_logging


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the service with a demo community (演示)")
    add_server_arguments(parser)
    parser.set_defaults(func=main)


def main(args) -> int:
    try:
        settings = settings_from_env(host=args.host, port=args.port)
    except CommandFailed as exc:
        print(f"evote demo: {exc}", file=sys.stderr)
        return 2
    setup_logging("WARNING", settings.log_json)

    async def prepare() -> dict:
        async with database(settings) as pool:
            return await prepare_demo(pool, settings)

    info: dict = {}

    async def go():
        info.update(await prepare())

    status = run("evote demo", go())
    if status:
        return status
    base = settings.public_url
    lines = [
        "",
        "evote demo — 演示小区已就绪",
        f"  community:  {info['community_id']}  (总面积 {info['totals']['totals']['area']} m², "
        f"总人数 {info['totals']['totals']['persons']})",
        f"  health:     {base}/healthz",
        f"  staff API:  {base}/api/staff/login   user {info['admin_username']}  password {info['admin_password']}",
    ]
    for label, value in info.get("links", []):
        lines.append(f"  {label:<11} {value}")
    lines.append("  Ctrl+C to stop.")
    run_single(settings, print_ready=lambda: print("\n".join(lines), flush=True))
    return 0
