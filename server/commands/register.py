"""`evote register import FILE --community ID` and `evote register totals --community ID`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.services import register as register_service


def register(sub) -> None:
    parser = sub.add_parser("register", help="owner register (业主名册): import, totals")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    imp = actions.add_parser("import", help="import a register file (CSV or .xlsx) as a new version")
    imp.add_argument("file", type=Path)
    imp.add_argument("--community", required=True)
    imp.set_defaults(func=import_main)
    tot = actions.add_parser("totals", help="voting subjects' total area and persons, per building")
    tot.add_argument("--community", required=True)
    tot.add_argument("--version", type=int)
    tot.set_defaults(func=totals_main)


def import_main(args) -> int:
    prog = "evote register import"
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"{prog}: {args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2

    async def go() -> int:
        settings = settings_from_env()
        async with database(settings) as pool:
            try:
                result = await register_service.import_register(
                    pool, community_id=args.community, data=data, filename=args.file.name, actor="cli",
                    settings=settings)
            except register_service.RegisterRejected as exc:
                for p in exc.problems:
                    line = p.line if p.line is not None else "-"
                    column = f"{p.column}: " if p.column else ""
                    print(f"{args.file}:{line}: {column}{p.message} [{p.code}]", file=sys.stderr)
                print(f"{prog}: {len(exc.problems)} problem(s); nothing was imported", file=sys.stderr)
                return 2
            except ApiError as exc:
                raise CommandFailed(f"{exc.message} [{exc.code}]") from None
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return 0

    return run(prog, go())


def totals_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                doc = await register_service.register_totals(pool, args.community, args.version)
            except ApiError as exc:
                raise CommandFailed(f"{exc.message} [{exc.code}]") from None
        print(json.dumps(doc, ensure_ascii=False, indent=2))
        return 0

    return run("evote register totals", go())
