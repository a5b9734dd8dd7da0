"""The record's paper and proxy extension: proxies.csv, paper.csv and the participation split by channel.

Files beside the bundle, which the bundle reader ignores (docs/paper-and-proxy.md).  The
signing service writes them (server/services/proxies.py: ``record_extension``)
with the names and columns below and signs :func:`channel_split`;
:func:`check_record_extension` is what ``evote verify`` checks about them.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from server.ballot.amounts import area_places, format_area
from server.ballot.tally import Rules, Submission, select_counted
from server.record.format import Bundle

__all__ = [
    "AUTHORIZATION_KINDS",
    "CHANNEL_LABELS",
    "PAPER_COLUMNS",
    "PAPER_FILE",
    "PROXIES_FILE",
    "PROXY_COLUMNS",
    "ExtensionProblem",
    "channel_split",
    "check_record_extension",
]

PROXIES_FILE = "proxies.csv"
PAPER_FILE = "paper.csv"
PROXY_COLUMNS = ("ballot_id", "proxy_voter_id", "authorization_id", "kind")
PAPER_COLUMNS = ("ballot_id", "paper_id", "paper_date")
CHANNEL_LABELS = ("electronic", "paper", "proxy")
# A written authorization (书面委托) names a proxy or a guardian.
AUTHORIZATION_KINDS = ("proxy", "guardian")


def channel_split(rules: Rules, submissions: Iterable[Submission], areas: Mapping[str, int],
                  proxy_ballot_ids: set[str], places: int | None = None) -> dict[str, Any]:
    """Participation by channel among COUNTED submissions (after the duplicate policy).

    ``proxy`` = electronic submissions cast by a proxy; ``electronic`` = the owner's own.
    Per channel: persons and area of owners with at least one counted submission in it, and
    the number of counted submissions.  An owner counted in two channels (different matters)
    appears in both; ``participants`` counts each owner once.  Areas are printed with
    ``places`` decimals: the register's (``Electorate.places``), as in the result; without it,
    three when any of ``areas`` needs them, else two.
    """
    if places is None:
        places = area_places(areas.values())
    counted = select_counted(submissions, rules)
    voters: dict[str, set[str]] = {label: set() for label in CHANNEL_LABELS}
    ballots = dict.fromkeys(CHANNEL_LABELS, 0)
    everyone: set[str] = set()
    for (voter_id, _), submission in counted.items():
        label = "proxy" if submission.ballot_id in proxy_ballot_ids else submission.channel
        voters[label].add(voter_id)
        ballots[label] += 1
        everyone.add(voter_id)
    doc: dict[str, Any] = {}
    for label in CHANNEL_LABELS:
        doc[label] = {"area": format_area(sum(areas[v] for v in voters[label]), places), "persons": len(voters[label]),
                      "ballots": ballots[label]}
    doc["participants"] = {"area": format_area(sum(areas[v] for v in everyone), places), "persons": len(everyone)}
    return doc


class ExtensionProblem(ValueError):
    """The record's paper/proxy extension does not check out (message names file and line)."""


def _read_csv(files: Mapping[str, bytes], name: str, header: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = files[name].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExtensionProblem(f"{name}: 不是 UTF-8 文本") from None
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    if first is None or tuple(first) != header:
        raise ExtensionProblem(f"{name}:1: 表头应为 {','.join(header)}")
    rows = []
    for fields in reader:
        if not fields:
            continue
        if len(fields) != len(header):
            raise ExtensionProblem(f"{name}:{reader.line_num}: 应有 {len(header)} 个字段")
        rows.append((reader.line_num, dict(zip(header, fields))))
    return rows


def check_record_extension(bundle: Bundle, files: Mapping[str, bytes], payload: Mapping[str, Any]) -> None:
    """What ``evote verify`` checks about paper and proxy ballots; raises ExtensionProblem.

    - an extension file in the record must be listed (with its hash) in the signed payload;
    - proxies.csv: each row names an existing electronic ballot of a voter other than the proxy,
      at most once, and the proxy is a voting subject; no counted proxy ballot was cast after a
      personal submission of the same owner for the same matter;
    - paper.csv: exactly the paper ballots of ballots.csv, once each;
    - the signed ``channels`` split (if present) equals the one recomputed from the record.
    """
    signed_files = payload.get("files") or {}
    for name in (PROXIES_FILE, PAPER_FILE):
        if name in files and name not in signed_files:
            raise ExtensionProblem(f"{name}: 不在签名的文件清单中（签名后被添加）")
    by_id = {s.ballot_id: s for s in bundle.submissions}
    subjects = bundle.electorate.subjects
    proxy_ids: set[str] = set()
    if PROXIES_FILE in files:
        for line, row in _read_csv(files, PROXIES_FILE, PROXY_COLUMNS):
            ballot = by_id.get(row["ballot_id"])
            where = f"{PROXIES_FILE}:{line}"
            if ballot is None:
                raise ExtensionProblem(f"{where}: 选票 {row['ballot_id']} 不在 ballots.csv 中")
            if ballot.channel != "electronic":
                raise ExtensionProblem(f"{where}: 代理投票 {row['ballot_id']} 应为电子选票")
            if row["ballot_id"] in proxy_ids:
                raise ExtensionProblem(f"{where}: 选票 {row['ballot_id']} 重复出现")
            if row["proxy_voter_id"] == ballot.voter_id:
                raise ExtensionProblem(f"{where}: 代理人与被代理业主是同一人")
            if row["proxy_voter_id"] not in subjects:
                raise ExtensionProblem(f"{where}: 代理人 {row['proxy_voter_id']} 不在表决名单中")
            if row["kind"] not in AUTHORIZATION_KINDS:
                raise ExtensionProblem(f"{where}: kind 应为 proxy 或 guardian")
            proxy_ids.add(row["ballot_id"])
        counted = select_counted(bundle.submissions, bundle.rules)
        personal: dict[tuple[str, str], list[datetime]] = {}
        for s in bundle.submissions:
            if s.ballot_id not in proxy_ids:
                personal.setdefault((s.voter_id, s.matter_id), []).append(s.cast_at)
        for key, submission in counted.items():
            if submission.ballot_id in proxy_ids and any(t < submission.cast_at for t in personal.get(key, ())):
                raise ExtensionProblem(
                    f"{PROXIES_FILE}: 代理投票 {submission.ballot_id} 在业主本人对议题 {key[1]} 投票之后仍被计入")
    if PAPER_FILE in files:
        seen: set[str] = set()
        for line, row in _read_csv(files, PAPER_FILE, PAPER_COLUMNS):
            ballot = by_id.get(row["ballot_id"])
            if ballot is None or ballot.channel != "paper":
                raise ExtensionProblem(f"{PAPER_FILE}:{line}: 选票 {row['ballot_id']} 不是 ballots.csv 中的纸质票")
            if row["ballot_id"] in seen:
                raise ExtensionProblem(f"{PAPER_FILE}:{line}: 选票 {row['ballot_id']} 重复出现")
            seen.add(row["ballot_id"])
        missing = [s.ballot_id for s in bundle.submissions if s.channel == "paper" and s.ballot_id not in seen]
        if missing:
            raise ExtensionProblem(f"{PAPER_FILE}: 纸质票 {missing[0]} 没有记录（共缺 {len(missing)} 张）")
    signed_channels = payload.get("channels")
    if signed_channels is not None:
        areas = {v: s.area for v, s in subjects.items()}
        recomputed = channel_split(bundle.rules, bundle.submissions, areas, proxy_ids, bundle.electorate.places)
        if recomputed != signed_channels:
            label = next((k for k in recomputed if recomputed[k] != signed_channels.get(k)), "?")
            raise ExtensionProblem(f"签名的分渠道参与数据与重新计算的不符：{label} "
                                   f"{json.dumps(signed_channels.get(label), ensure_ascii=False)} ≠ "
                                   f"{json.dumps(recomputed[label], ensure_ascii=False)}")
