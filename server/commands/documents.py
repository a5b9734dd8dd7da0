"""`evote documents KIND --community C --meeting M --out DIR`: a meeting's printable document.

KIND: notice (会议公告), extension (延期公告), sheets (签收表 of the live codes), results (表决结果公告),
committee (成立公告) or filing (备案材料: the PDF and the zip of its sources).  Writes into DIR (created)
and prints one JSON line: the files written and when (Beijing time).  A document that does not apply
yet (results before the result is published, say) exits 2 with the reason.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.printing.text import BEIJING
from server.services import documents as documents_service


def register(sub) -> None:
    parser = sub.add_parser("documents", help="printable documents (公告、签收表、表决结果公告、备案材料) as PDF")
    parser.add_argument("kind", choices=documents_service.KINDS)
    parser.add_argument("--community", required=True)
    parser.add_argument("--meeting", required=True)
    parser.add_argument("--out", required=True, type=Path, help="directory to write into (created)")
    parser.set_defaults(func=main)


async def write_documents(pool, settings, *, community_id: str, meeting_id: str, kind: str, out: Path) -> list[str]:
    try:
        files = [(documents_service.filename(meeting_id, kind),
                  await documents_service.render(pool, settings, community_id, meeting_id, kind))]
        if kind == "filing":
            files.append((documents_service.filename(meeting_id, kind, "zip"),
                          await documents_service.filing_zip(pool, settings, community_id, meeting_id)))
    except ApiError as exc:
        raise CommandFailed(f"{community_id}/{meeting_id}: {exc.message} [{exc.code}]") from None

    def write() -> None:
        out.mkdir(parents=True, exist_ok=True)
        for name, body in files:
            (out / name).write_bytes(body)

    try:
        await asyncio.to_thread(write)
    except OSError as exc:
        raise CommandFailed(f"{out}: cannot write: {exc.strerror}") from None
    return [str(out / name) for name, _ in files]


def main(args) -> int:
    async def go() -> int:
        settings = settings_from_env()
        async with database(settings) as pool:
            written = await write_documents(pool, settings, community_id=args.community, meeting_id=args.meeting,
                                            kind=args.kind, out=args.out)
        at = datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"
        print(json.dumps({"kind": args.kind, "files": written, "generated_at": at}, ensure_ascii=False))
        return 0

    return run("evote documents", go())
