"""`evote verify BUNDLE [--pubkey FILE]`: check a published meeting record offline.

The checks are server.record.verify's (signature, result.json, recount, receipts
and their Merkle root, file hashes, the paper/proxy extension); this module
reads the arguments and prints.  Exit 0 prints a short "OK" summary; exit 1
names the first check that failed; exit 2 means the record cannot be read
(the same one-line errors, and archive size limits, as `evote tally`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from server.record.format import BundleError
from server.record.verify import VerifyFailed, verify_bundle

DESCRIPTION = """\
Verify a signed meeting record (directory, .zip or .tar.gz): the signature, the
recount against result.json, the receipts' Merkle root and the file hashes.
Exit 0: OK.  Exit 1: the record does not verify (the first difference is named).
Exit 2: the record cannot be read.

核验已签名的会议记录：签名、重新计票与 result.json 是否一致、回执 Merkle 根、文件哈希。
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("verify", help="verify a signed meeting record (核验会议记录)",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", metavar="BUNDLE", help="record directory or archive (会议记录目录或压缩包)")
    parser.add_argument("--pubkey", metavar="FILE",
                        help="the community's published public key (PEM, or base64 of the raw key)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    key_data = None
    if args.pubkey:
        try:
            key_data = Path(args.pubkey).read_bytes()
        except OSError as exc:
            print(f"evote verify: {args.pubkey}:0: 无法读取公钥文件：{exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        report = verify_bundle(args.bundle, key_data)
    except BundleError as exc:
        print(f"evote verify: {' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 2
    except VerifyFailed as exc:
        print(f"evote verify: 核验未通过：{' '.join(str(exc).splitlines())}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0

