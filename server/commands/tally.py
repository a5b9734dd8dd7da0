"""`evote tally BUNDLE`: recount a published meeting record with no database and no network."""
from __future__ import annotations

import argparse
import sys

from server.record import BundleError, canonical_json, read_bundle

DESCRIPTION = """\
Recount an evote-bundle/2 meeting record (a directory, .zip or .tar.gz) and print
the evote-result/2 document on stdout.  Exits 2 with one line on stderr,
FILE:LINE: problem, if the bundle is malformed (nothing on stdout).

按 evote-bundle/2 会议记录（目录、.zip 或 .tar.gz）重新计票，在标准输出打印
evote-result/2 结果。记录有误时以状态 2 退出，并在标准错误输出一行“文件:行号: 问题”。
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tally",
        help="recount a meeting record bundle (重新计票)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle directory or archive (会议记录目录或压缩包)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        result = read_bundle(args.bundle).tally()
    except BundleError as exc:
        # Exactly one line, "FILE:LINE: problem" (bundle-format.md), even if a message
        # quotes a value with a line break in it.
        print(" ".join(str(exc).splitlines()), file=sys.stderr)
        return 2
    text = canonical_json(result)
    # Write UTF-8 whatever the locale says: the result is a public record and
    # must not depend on the auditor's terminal settings.
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        sys.stdout.flush()
        buffer.write(text.encode("utf-8"))
        buffer.flush()
    else:
        sys.stdout.write(text)
    return 0
