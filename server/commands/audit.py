"""`evote audit verify [--community ID]`: recompute the hash chains of the audit trail.

Exit 0 with the number of entries checked; 1 with one line per problem (an
edited row, a missing row in the middle, a broken link).  Removal of the last
rows of a chain is shown by comparing with the audit head signed into each
meeting result (docs/verification.md).
"""
from __future__ import annotations

import json
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


async def verify_audit(pool, community_id: str | None = None) -> tuple[int, list]:
    async with pool.acquire() as conn:
        count, problems = await audit.verify_chain(conn, community_id)
        heads = await _signed_heads(conn, community_id)
    for chain, seq, digest, meeting_id in heads:
        row = await _row(pool, chain, seq)
        if row is None:
            problems.append(audit.ChainProblem(chain, seq, f"entry signed into the result of meeting {meeting_id} "
                                                           "is missing (rows removed from the end?)"))
        elif bytes(row["hash"]).hex() != digest:
            problems.append(audit.ChainProblem(chain, seq, f"hash differs from the one signed into the result "
                                                           f"of meeting {meeting_id}"))
    return count, problems


async def _signed_heads(conn, community_id):
    rows = await conn.fetch(
        """SELECT meeting_id, signed_json FROM meeting_result WHERE $1::text IS NULL OR community_id = $1""",
        community_id)
    heads = []
    for row in rows:
        head = json.loads(row["signed_json"])["payload"].get("audit_head") or {}
        if head.get("seq"):
            heads.append((head["chain"], head["seq"], head["hash"], row["meeting_id"]))
    return heads


async def _row(pool, chain, seq):
    async with pool.acquire() as conn:
        return await conn.fetchrow("SELECT hash FROM audit_log WHERE community_id = $1 AND seq = $2", chain, seq)


def verify_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            count, problems = await verify_audit(pool, args.community)
        if problems:
            for problem in problems:
                print(f"evote audit verify: {problem}", file=sys.stderr)
            return 1
        print(f"OK {count} audit entries, every chain intact")
        return 0

    return run("evote audit verify", go())
