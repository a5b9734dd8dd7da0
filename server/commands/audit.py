"""`evote audit verify [--community ID]`: recompute the hash chains of the audit trail.

Exit 0 with the number of entries checked; 1 with one line per problem (an
edited row, a missing row in the middle, a broken link).  Removal of the last
rows of a chain is shown by comparing with the audit head signed into each
meeting result (docs/verification.md).
"""
from __future__ import annotations

import sys

from server.commands._runtime import database, run, settings_from_env
from server.services import audit


def register(sub) -> None:
    parser = sub.add_parser("audit", help="the audit trail (审计日志)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    verify = actions.add_parser("verify", help="check the hash chain(s)")
    verify.add_argument("--community", metavar="ID", default=None, help="only this community's chain")
    verify.set_defaults(func=verify_main)


def verify_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            count, problems = await audit.verify_audit(pool, args.community)
        if problems:
            for problem in problems:
                print(f"evote audit verify: {problem}", file=sys.stderr)
            return 1
        print(f"OK {count} audit entries, every chain intact")
        return 0

    return run("evote audit verify", go())
