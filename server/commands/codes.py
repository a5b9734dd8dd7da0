"""`evote codes issue MEETING --community ID --out DIR`, `evote codes reissue ... --voter SUBJECT_ID` and
`evote codes unlock MEETING --community ID --voter SUBJECT_ID --reason TEXT`.

Writes per-building PDFs (sheets/*.pdf: the code sheets, then the building's sign-off list 签收表),
codes.csv and QR PNGs (qr/*.png) into DIR.
codes.csv holds every plaintext code: whoever has it can vote for those owners. Keep it
offline and delete it once the sheets are printed.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.printing.code_sheets import SheetContext, building_pdf, by_building, safe_filename
from server.services import codes as codes_service


def register(sub) -> None:
    parser = sub.add_parser("codes", help="ballot codes (选票二维码): issue sheets, reissue a lost code")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    iss = actions.add_parser("issue", help="issue a code to every voting subject: PDFs per building, codes.csv, QR PNGs")
    iss.add_argument("meeting")
    iss.add_argument("--community", required=True)
    iss.add_argument("--out", required=True, type=Path, help="directory to write into (created; must be empty)")
    iss.add_argument("--replace", action="store_true",
                     help="revoke every live code of the meeting and issue new ones to all")
    iss.add_argument("--test", action="store_true",
                     help="a test run: issue even though EVOTE_PUBLIC_URL is unset or loopback "
                          "(the QR codes then open on this machine only)")
    iss.set_defaults(func=issue_main)
    re = actions.add_parser("reissue", help="revoke one voter's code (lost) and issue a new one")
    re.add_argument("meeting")
    re.add_argument("--community", required=True)
    re.add_argument("--voter", required=True, help="the voting subject's id (its owners' ids joined with +)")
    re.add_argument("--out", required=True, type=Path)
    re.add_argument("--reason", default="")
    re.set_defaults(func=reissue_main)
    un = actions.add_parser("unlock", help="clear a voter's failed sign-ins and lockout (after checking who they are)")
    un.add_argument("meeting")
    un.add_argument("--community", required=True)
    un.add_argument("--voter", required=True, help="the voting subject's id (its owners' ids joined with +)")
    un.add_argument("--reason", required=True, help="why (audited), e.g. identity checked in person")
    un.set_defaults(func=unlock_main)


def _prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CommandFailed(f"{out}: must be a new or empty directory (codes are never overwritten)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "sheets").mkdir(exist_ok=True)
        (out / "qr").mkdir(exist_ok=True)
    except OSError as exc:
        raise CommandFailed(f"{out}: cannot create: {exc.strerror}") from None


def _write_outputs(out: Path, result: codes_service.IssueResult) -> int:
    """PDFs (per building, with a progress bar on stderr), codes.csv and QR PNGs; returns files written."""
    from tqdm import tqdm

    from server.printing.qr import qr_png

    written = 0
    groups = by_building(result.codes)
    with tqdm(total=len(result.codes), unit="户", desc="sheets", file=sys.stderr,
              disable=not result.codes) as bar:
        used: set[str] = set()
        for building, codes in groups.items():
            name = safe_filename(building)
            while name in used:
                name += "_"
            used.add(name)
            ctx = result.context or SheetContext(result.meeting_title)
            # the building's sheets, then its sign-off list (签收表)
            (out / "sheets" / f"{name}.pdf").write_bytes(building_pdf(ctx, building, codes, signoff=True))
            written += 1
            for code in codes:   # while the QR matrices are cached
                (out / "qr" / f"{safe_filename(code.voter_id)}-{code.serial}.png").write_bytes(qr_png(code.url))
                written += 1
            bar.update(len(codes))
    csv_bytes = dict(codes_service.output_files_csv(result))
    (out / "codes.csv").write_bytes(csv_bytes["codes.csv"])
    written += 1
    return written


def issue_main(args) -> int:
    prog = "evote codes issue"

    async def go() -> int:
        settings = settings_from_env()
        problem = codes_service.public_url_problem(settings.public_url)
        if problem:
            print(f"{prog}: 警告：{problem}", file=sys.stderr)
            if not args.test:
                raise CommandFailed(f"EVOTE_PUBLIC_URL={settings.public_url!r} is not usable for printed sheets "
                                    "[public_url_not_usable]; set it, or pass --test for a test run")
        _prepare_out(args.out)
        async with database(settings) as pool:
            try:
                result = await codes_service.issue_codes(
                    pool, community_id=args.community, meeting_id=args.meeting, actor="cli",
                    public_url=settings.public_url, replace_existing=args.replace, test=args.test)
            except ApiError as exc:
                raise CommandFailed(f"{args.community}/{args.meeting}: {exc.message} [{exc.code}]") from None
        files = _write_outputs(args.out, result)
        print(json.dumps({**result.summary(), "out": str(args.out), "files": files}, ensure_ascii=False))
        if not result.codes:
            print(f"{prog}: every voter already has a live code; nothing issued (use --replace or reissue)",
                  file=sys.stderr)
        print(f"{prog}: {args.out / 'codes.csv'} holds the plaintext codes: keep it secret", file=sys.stderr)
        return 0

    return run(prog, go())


def reissue_main(args) -> int:
    prog = "evote codes reissue"

    async def go() -> int:
        _prepare_out(args.out)
        settings = settings_from_env()
        async with database(settings) as pool:
            try:
                title, code = await codes_service.reissue_code(
                    pool, community_id=args.community, meeting_id=args.meeting, voter_id=args.voter,
                    actor="cli", public_url=settings.public_url, reason=args.reason)
            except ApiError as exc:
                raise CommandFailed(f"{args.community}/{args.meeting}/{args.voter}: {exc.message} [{exc.code}]") from None
        result = codes_service.IssueResult(args.community, args.meeting, title, [code], 0, 1)
        files = _write_outputs(args.out, result)
        print(json.dumps({**result.summary(), "voter_id": code.voter_id, "serial": code.serial,
                          "out": str(args.out), "files": files}, ensure_ascii=False))
        return 0

    return run(prog, go())


def unlock_main(args) -> int:
    prog = "evote codes unlock"
    reason = args.reason.strip()

    async def go() -> int:
        if not reason:
            raise CommandFailed("--reason must not be empty")
        settings = settings_from_env()
        async with database(settings) as pool:
            try:
                doc = await codes_service.unlock_code(pool, community_id=args.community, meeting_id=args.meeting,
                                                      voter_id=args.voter, actor="cli", reason=reason)
            except ApiError as exc:
                raise CommandFailed(f"{args.community}/{args.meeting}/{args.voter}: {exc.message} [{exc.code}]") from None
        print(json.dumps(doc, ensure_ascii=False))
        return 0

    return run(prog, go())
