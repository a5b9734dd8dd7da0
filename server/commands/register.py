"""`evote register import FILE --community ID [--preview]`, `evote register template --out FILE` and
`evote register totals --community ID`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.services import register as register_service
from server.services import register_template


def register(sub) -> None:
    parser = sub.add_parser("register", help="owner register (业主名册): import, preview, template, totals")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    imp = actions.add_parser("import", help="import a register file (CSV or .xlsx) as a new version")
    imp.add_argument("file", type=Path)
    imp.add_argument("--community", required=True)
    imp.add_argument("--preview", action="store_true",
                     help="only check the file: list every problem and warning and the totals; write nothing")
    imp.set_defaults(func=import_main)
    tpl = actions.add_parser("template", help="write the register template (.xlsx, Chinese headers)")
    tpl.add_argument("--out", type=Path, required=True, help="where to write it (e.g. 业主登记册模板.xlsx)")
    tpl.set_defaults(func=template_main)
    tot = actions.add_parser("totals", help="voting subjects' total area and persons, per building")
    tot.add_argument("--community", required=True)
    tot.add_argument("--version", type=int)
    tot.set_defaults(func=totals_main)


def _print_findings(path: Path, findings: list[dict], count: int, *, warning: bool) -> None:
    """``FILE:LINE: column: message [code]`` per problem (``warning: `` before the column for a warning)."""
    for p in findings:
        line = p["line"] if p["line"] is not None else "-"
        column = f"{p['column']}: " if p["column"] else ""
        kind = "warning: " if warning else ""
        print(f"{path}:{line}: {kind}{column}{p['message']} [{p['code']}]", file=sys.stderr)
    if count > len(findings):
        what = "warnings" if warning else "problems"
        print(f"{path}: ... {count - len(findings)} more {what} not listed ({count} in all)", file=sys.stderr)


def import_main(args) -> int:
    prog = "evote register import"
    try:
        source = args.file.open("rb")
    except OSError as exc:
        print(f"{prog}: {args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2

    async def go() -> int:
        settings = settings_from_env()
        async with database(settings) as pool:
            try:
                if args.preview:
                    doc = await register_service.preview_register(
                        pool, community_id=args.community, data=source, filename=args.file.name, settings=settings)
                    _print_findings(args.file, doc["problems"], doc["problem_count"], warning=False)
                    _print_findings(args.file, doc["warnings"], doc["warning_count"], warning=True)
                    print(json.dumps({k: doc[k] for k in ("ok", "rows", "problem_count", "warning_count", "totals")},
                                     ensure_ascii=False))
                    return 0 if doc["ok"] else 2
                result = await register_service.import_register(
                    pool, community_id=args.community, data=source, filename=args.file.name, actor="cli",
                    settings=settings)
            except register_service.RegisterRejected as exc:
                _print_findings(args.file, [p.as_dict() for p in exc.problems], exc.problem_count, warning=False)
                print(f"{prog}: {exc.problem_count} problem(s); nothing was imported", file=sys.stderr)
                return 2
            except ApiError as exc:
                raise CommandFailed(f"{exc.message} [{exc.code}]") from None
        doc = result.as_dict()
        _print_findings(args.file, doc["warnings"], doc["warning_count"], warning=True)
        print(json.dumps(doc, ensure_ascii=False))
        return 0

    with source:
        return run(prog, go())


def template_main(args) -> int:
    try:
        args.out.write_bytes(register_template.template_xlsx())
    except OSError as exc:
        print(f"evote register template: {args.out}: cannot write: {exc.strerror}", file=sys.stderr)
        return 2
    print(args.out)
    return 0


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
