"""`evote purge [--before DATE] [--community ID] [--dry-run]`: remove old personal data (docs/privacy.md).

Prints a JSON summary (counts per community and in total) on stdout.  A bad date exits 2 with
one line naming it; nothing is changed then.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.services import purge as purge_service


def register(sub) -> None:
    parser = sub.add_parser("purge", help="remove personal data of long-decided meetings (清除个人信息)")
    parser.add_argument("--before", metavar="DATE", default=None,
                        help="purge what was decided before this day, YYYY-MM-DD (default: five years ago)")
    parser.add_argument("--community", metavar="ID", default=None, help="only this community")
    parser.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    parser.set_defaults(func=main)


def main(args) -> int:
    async def go() -> int:
        today = purge_service.today_cn(datetime.now(UTC))
        try:
            before = purge_service.parse_before(args.before, today)
        except purge_service.BadPurgeDate as exc:
            raise CommandFailed(str(exc)) from None
        async with database(settings_from_env()) as pool:
            summary = await purge_service.purge_personal_data(pool, before=before, actor="cli",
                                                              dry_run=args.dry_run, community_id=args.community)
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0

    return run("evote purge", go())
