"""The `evote` command line.

Each sub-command lives in its own module under ``server/commands`` and exposes
``register(subparsers)``; the module sets ``func`` on its parser.  ``func(args)``
returns the process exit status.  Bad input exits 2 with one line on stderr
naming the file, the line and the problem; nothing is written to stdout then.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown by `evote --help`.
COMMAND_MODULES = [
    "serve",
    "demo",
    "migrate",
    "community",
    "register",
    "staff",
    "tally",
    "export",
    "verify",
    "audit",
    "simulate",
    "codes",
    "documents",
    "purge",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evote",
        description="evote — 业主大会电子表决 (owners' assembly voting)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"server.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        return 130
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
