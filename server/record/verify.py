"""Verifying a signed meeting record offline (what ``evote verify`` runs).

Checks, in this order, and stops at the first that fails (:class:`VerifyFailed`,
one line naming it):

1. the signature over result.sig.json's payload (with a pinned key: by that key);
2. result.json equals the signed result;
3. a recount of meeting.json + register.csv + ballots.csv (the tally engine) equals result.json;
4. receipts.csv: every ballot has exactly one receipt and every receipt a ballot,
   and the Merkle root and leaf count equal the signed ones;
5. the sha256 of each file equals the one signed;
6. the paper/proxy extension (proxies.csv, paper.csv, the signed channel split):
   server.record.extension.check_record_extension, docs/paper-and-proxy.md;
7. the attached documents under ``attachments/``, when present: each is listed in meeting.json
   with the same size and sha256 (:func:`check_attachments`).

A record that cannot be read raises :class:`~server.record.format.BundleError`
(the same errors, and the same archive size limits, as ``evote tally``).
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.ballot.attachments import ATTACHMENTS_FOLDER, record_name
from server.ballot.merkle import merkle_root, sorted_leaves
from server.ballot.signing import SignatureProblem, load_public_key, sha256_hex, verify_signed
from server.record.archive import read_files
from server.record.extension import ExtensionProblem, check_record_extension
from server.record.format import BundleError
from server.record.reader import parse_bundle
from server.record.signed import RECEIPT_COLUMNS, RECEIPTS_FILE, RESULT_FILE, SIGNATURE_FILE

__all__ = ["EXTENSION_FILES", "VerifyFailed", "VerifyReport", "check_attachments", "first_difference",
           "verify_bundle"]

EXTENSION_FILES = (RECEIPTS_FILE, RESULT_FILE, SIGNATURE_FILE)


class VerifyFailed(Exception):
    """The record does not verify; ``str()`` names the first difference."""


@dataclass
class VerifyReport:
    key_id: str
    meeting_id: str
    ballots: int
    receipts: int
    root: str
    pinned_key: bool
    result: dict[str, Any] = field(repr=False)
    attachments_listed: int = 0
    attachments_checked: int = 0

    def summary(self) -> str:
        who = "所给公钥" if self.pinned_key else "记录内所附公钥（请与小区公布的公钥核对 key id）"
        attached = (f"；附件 {self.attachments_checked}/{self.attachments_listed} 个与公告的 sha256 一致"
                    if self.attachments_listed else "")
        return (f"OK 会议 {self.meeting_id}：签名有效（密钥 {self.key_id}，{who}）；"
                f"重新计票与 result.json 一致；{self.ballots} 份选票、{self.receipts} 个回执，"
                f"Merkle 根 {self.root}{attached}")


def first_difference(expected: Any, actual: Any, path: str = "") -> str | None:
    """Where two JSON values first differ, as ``path: expected ≠ actual``; None if equal."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual or key not in expected:
                return f"{path}.{key}: {'缺少' if key not in actual else '多出'}"
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        for i, (a, b) in enumerate(zip(expected, actual)):
            label = a.get("id", i) if isinstance(a, dict) else i
            found = first_difference(a, b, f"{path}[{label}]")
            if found:
                return found
        if len(expected) != len(actual):
            return f"{path}: 应有 {len(expected)} 项，实有 {len(actual)} 项"
        return None
    if expected != actual or type(expected) is not type(actual):
        return f"{path or '.'}: {json.dumps(expected, ensure_ascii=False)} ≠ {json.dumps(actual, ensure_ascii=False)}"
    return None


def _receipts(data: bytes) -> list[tuple[str, bytes, int]]:
    """(ballot_id, receipt, line) of each row of receipts.csv."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise VerifyFailed(f"{RECEIPTS_FILE}: 不是 UTF-8 文本") from None
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise VerifyFailed(f"{RECEIPTS_FILE}:1: CSV 格式错误：{exc}") from None
    if header is None or tuple(header) != RECEIPT_COLUMNS:
        raise VerifyFailed(f"{RECEIPTS_FILE}:1: 表头应为 {','.join(RECEIPT_COLUMNS)}")
    out = []
    try:
        for fields in reader:
            if not fields:
                continue
            line = reader.line_num
            if len(fields) != 2:
                raise VerifyFailed(f"{RECEIPTS_FILE}:{line}: 应有 2 个字段")
            try:
                receipt = bytes.fromhex(fields[1])
            except ValueError:
                receipt = b""
            if len(receipt) != 32:
                raise VerifyFailed(f"{RECEIPTS_FILE}:{line}: 回执应为 64 位十六进制")
            out.append((fields[0], receipt, line))
    except csv.Error as exc:
        raise VerifyFailed(f"{RECEIPTS_FILE}:{reader.line_num}: CSV 格式错误：{exc}") from None
    return out


def _json_file(files: dict[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except (ValueError, UnicodeDecodeError):
        raise VerifyFailed(f"{name}: 不是有效的 JSON") from None


def verify_bundle(path: str | Path, public_key_data: bytes | None = None) -> VerifyReport:
    """Verify a record; raises BundleError (unreadable, exit 2) or VerifyFailed (exit 1)."""
    files = read_files(path, every_file=True)  # BundleError: unreadable, as evote tally
    bundle = parse_bundle(files)
    for name in EXTENSION_FILES:
        if name not in files:
            raise VerifyFailed(f"{name}: 文件缺失（签名记录须包含 {', '.join(EXTENSION_FILES)}）")
    document = _json_file(files, SIGNATURE_FILE)

    # 1. signature
    pinned = None
    if public_key_data is not None:
        try:
            pinned = load_public_key(public_key_data)
        except ValueError as exc:
            raise BundleError("--pubkey", 0, str(exc)) from None
    try:
        payload = verify_signed(document, pinned)
    except SignatureProblem as exc:
        raise VerifyFailed(f"{SIGNATURE_FILE}: {exc}") from None

    # 2. result.json is the signed result
    published = _json_file(files, RESULT_FILE)
    diff = first_difference(payload.get("result"), published)
    if diff:
        raise VerifyFailed(f"{RESULT_FILE} 与签名的结果不符：{diff}（签名 ≠ result.json）")

    # 3. the recount
    try:
        recount = bundle.tally()
    except ValueError as exc:
        raise VerifyFailed(f"无法重新计票：{exc}") from None
    diff = first_difference(recount, published)
    if diff:
        raise VerifyFailed(f"重新计票与 {RESULT_FILE} 不符：{diff}（重新计票 ≠ result.json）")

    # 4. receipts and the Merkle root
    receipts = _receipts(files[RECEIPTS_FILE])
    ballot_ids = {s.ballot_id for s in bundle.submissions}
    seen: dict[str, int] = {}
    for ballot_id, _, line in receipts:
        if ballot_id in seen:
            raise VerifyFailed(f"{RECEIPTS_FILE}:{line}: 选票 {ballot_id} 有两个回执（第 {seen[ballot_id]} 行已有）")
        seen[ballot_id] = line
        if ballot_id not in ballot_ids:
            raise VerifyFailed(f"{RECEIPTS_FILE}:{line}: 选票 {ballot_id} 有回执，但 ballots.csv 中没有这张选票")
    for submission in bundle.submissions:
        if submission.ballot_id not in seen:
            raise VerifyFailed(f"ballots.csv: 选票 {submission.ballot_id} 在 {RECEIPTS_FILE} 中没有回执")
    signed_tree = payload.get("receipts") or {}
    try:
        leaves = sorted_leaves([receipt for _, receipt, _ in receipts])
    except ValueError as exc:
        raise VerifyFailed(f"{RECEIPTS_FILE}: {exc}") from None
    root = merkle_root(leaves).hex()
    if len(leaves) != signed_tree.get("leaves"):
        raise VerifyFailed(f"{RECEIPTS_FILE}: 有 {len(leaves)} 个回执，签名的 Merkle 树有 {signed_tree.get('leaves')} 个叶子")
    if root != signed_tree.get("root"):
        raise VerifyFailed(f"{RECEIPTS_FILE}: Merkle 根 {root} 与签名的根 {signed_tree.get('root')} 不符")

    # 5. every file is the one signed
    signed_files = payload.get("files") or {}
    for name, digest in signed_files.items():
        if name not in files:
            raise VerifyFailed(f"{name}: 文件缺失（签名的结果列出了它）")
        if sha256_hex(files[name]) != digest:
            raise VerifyFailed(f"{name}: 内容在签名后被改动（sha256 与签名的不符）")

    # 6. paper and proxy details (docs/paper-and-proxy.md)
    try:
        check_record_extension(bundle, files, payload)
    except ExtensionProblem as exc:
        raise VerifyFailed(str(exc)) from None

    # 7. the attached documents the record carries, against meeting.json's (signed) list
    listed, checked = check_attachments(bundle.meeting, files)

    return VerifyReport(key_id=document["key_id"], meeting_id=bundle.meeting_id, ballots=len(bundle.submissions),
                        receipts=len(leaves), root=root, pinned_key=pinned is not None, result=recount,
                        attachments_listed=listed, attachments_checked=checked)


def check_attachments(meeting: dict[str, Any], files: dict[str, bytes]) -> tuple[int, int]:
    """Each file under ``attachments/`` is one meeting.json lists, with its size and sha256.

    A listed document may be absent (a record can travel without them); a present one must be
    the one noticed.  Returns (how many are listed, how many were checked).
    """
    listed = meeting.get("meeting", {}).get("attachments", [])
    expected = {record_name(entry["attachment_id"], entry["media_type"]): entry for entry in listed}
    checked = 0
    for name in sorted(files):
        if not name.startswith(ATTACHMENTS_FOLDER + "/"):
            continue
        entry = expected.get(name)
        if entry is None:
            raise VerifyFailed(f"{name}: meeting.json 的 attachments 中没有这个附件")
        content = files[name]
        if len(content) != entry["size"] or sha256_hex(content) != entry["sha256"]:
            raise VerifyFailed(f"{name}: 与会议公告的附件“{entry['title']}”不符（大小或 sha256 不同）")
        checked += 1
    return len(listed), checked
