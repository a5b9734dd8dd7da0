"""`evote export MEETING --community ID --out DIR`: write a meeting's signed record to a directory.

Signs the result first if the meeting is closed and has none yet (as the close
hook would have).  The files are exactly those stored when the result was
signed, so `evote verify DIR` checks them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import asyncpg

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.record.writer import write_directory
from server.services import results as results_service
from server.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export a meeting's signed record (导出会议记录)")
    parser.add_argument("meeting_id", metavar="MEETING")
    parser.add_argument("--community", required=True, metavar="ID")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory to write the record into")
    parser.set_defaults(func=main)


async def export_meeting(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str,
                        out: Path) -> dict[str, bytes]:
    try:
        await results_service.sign_result(pool, settings, community_id, meeting_id, actor="cli")
        files = await results_service.export_files(pool, community_id, meeting_id)
    except ApiError as exc:
        raise CommandFailed(f"{community_id}/{meeting_id}: {exc.message}") from None
    write_directory(out, files)
    return files


def main(args: argparse.Namespace) -> int:
    async def go() -> int:
        settings = settings_from_env()
        async with database(settings) as pool:
            files = await export_meeting(pool, settings, args.community, args.meeting_id, Path(args.out))
        print(f"exported {len(files)} files to {args.out}: {', '.join(sorted(files))}")
        return 0

    if Path(args.out).exists() and not Path(args.out).is_dir():
        print(f"evote export: {args.out}:0: exists and is not a directory", file=sys.stderr)
        return 2
    return run("evote export", go())
