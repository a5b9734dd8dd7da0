"""`evote demo`: the service with a demo community, on the embedded PostgreSQL by default."""
from __future__ import annotations

import sys

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.commands.serve import add_server_arguments, run_single
from server.devtools.demo import DemoNotOpen, end_demo_voting, prepare_demo
from server.devtools.demo_campaign import prepare_demo_campaign
from server.logging_setup import setup_logging
from server.services.meeting_input import beijing_time
from server.settings import Settings


def register(sub) -> None:
    parser = sub.add_parser("demo", help="run the service with a demo community (演示)")
    add_server_arguments(parser)
    parser.add_argument("--end-voting", action="store_true",
                        help="DEMO ONLY: end the demo meeting's voting period now and exit (the running "
                             "service's scheduler then closes it); acts on the demo community only")
    parser.add_argument("--campaign", action="store_true",
                        help="also load the 2022 鲤城 district plan with 222 generated communities "
                             "(docs/district.md) and print its board")
    parser.set_defaults(func=main)


def end_voting(settings: Settings) -> int:
    """`evote demo --end-voting`: the demo meeting's close time moves to now; the service closes it."""
    ended: dict = {}

    async def go():
        async with database(settings) as pool:
            try:
                ended.update(await end_demo_voting(pool))
            except DemoNotOpen as exc:
                raise CommandFailed(str(exc)) from None

    status = run("evote demo", go())
    if status:
        return status
    print(f"evote demo: voting of {ended['community_id']}/{ended['meeting_id']} ended at "
          f"{beijing_time(ended['closes_at'])} (demo only). The running service closes the meeting and signs "
          f"its result within {settings.scheduler_interval_s:g} s; or POST …/close now.")
    return 0


def main(args) -> int:
    try:
        settings = settings_from_env(host=args.host, port=args.port)
    except CommandFailed as exc:
        print(f"evote demo: {exc}", file=sys.stderr)
        return 2
    setup_logging("WARNING", settings.log_json)
    if args.end_voting:
        return end_voting(settings)

    async def prepare() -> dict:
        async with database(settings) as pool:
            info = await prepare_demo(pool, settings)
            if args.campaign:
                info["campaign"] = await prepare_demo_campaign(pool)
            return info

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
        f"  console:    {base}/admin/   user {info['admin_username']}  password {info['admin_password']}",
        f"  staff API:  {base}/api/staff/login   (same user and password)",
    ]
    for label, value in info.get("links", []):
        lines.append(f"  {label:<11} {value}")
    if "campaign" in info:
        c = info["campaign"]
        lines.append(f"  campaign:   {c['campaign_id']} ({c['communities']} 个小区) — board as of {c['demo_day']}: "
                     f"{base}/api/admin/campaigns/{c['campaign_id']}/board?today={c['demo_day']}")
    lines.append("  Ctrl+C to stop.")
    run_single(settings, print_ready=lambda: print("\n".join(lines), flush=True))
    return 0
