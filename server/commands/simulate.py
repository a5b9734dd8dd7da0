"""`evote simulate --units N --turnout P --out DIR [--seed S] [--invalid-ballot RULE]`: a whole meeting end to end.

The simulation itself is server/devtools/simulate.py; this command checks the arguments and prints
the report.

Runs on the configured database (EVOTE_DATABASE_URL) or the embedded one with no
other set-up.  Exit 0 when the exported record verifies and the independent
recount agrees; 1 when anything differs; 2 for bad arguments.
"""
from __future__ import annotations

import sys
from pathlib import Path

from server.commands._runtime import run, settings_from_env
from server.devtools.simulate import INVALID_BALLOT_RULES, SimulationFailed, run_simulation
from server.logging_setup import setup_logging
from server.record.verify import VerifyFailed


def register(sub) -> None:
    parser = sub.add_parser("simulate", help="simulate a whole meeting through the API and verify it (模拟)")
    parser.add_argument("--units", type=int, required=True, metavar="N", help="units in the generated register")
    parser.add_argument("--turnout", type=float, required=True, metavar="P", help="share of owners voting, 0–1")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for the exported record")
    parser.add_argument("--seed", type=int, default=2026, metavar="S")
    parser.add_argument("--invalid-ballot", choices=INVALID_BALLOT_RULES, default="abstain",
                        help="the meeting's rule for blank or unclear ballots: abstain (default) or not_counted")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=main)


def main(args) -> int:
    if args.units < 3 or args.units > 100_000:
        print(f"evote simulate: --units:0: must be between 3 and 100000, got {args.units}", file=sys.stderr)
        return 2
    if not 0 < args.turnout <= 1:
        print(f"evote simulate: --turnout:0: must be in (0, 1], got {args.turnout}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"evote simulate: {out}:0: exists and is not an empty directory", file=sys.stderr)
        return 2

    async def go() -> int:
        settings = settings_from_env()
        setup_logging("WARNING", False)
        progress = (lambda _: None) if args.quiet else (lambda line: print(f"  {line}", file=sys.stderr))
        try:
            report = await run_simulation(settings, units=args.units, turnout=args.turnout, out=out,
                                          seed=args.seed, invalid_ballot=args.invalid_ballot, progress=progress)
        except (SimulationFailed, VerifyFailed) as exc:   # the record does not verify: a failure too
            print(f"evote simulate: FAILED: {exc}", file=sys.stderr)
            return 1
        print("\n".join(report.lines()))
        return 0

    return run("evote simulate", go())
