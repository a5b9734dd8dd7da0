"""Time the printed documents (docs/documents.md): 1,000 owners' code sheets with their sign-off lists, and a
result announcement.  No database: the layouts are pure, fed with made-up data of that size.

    python scripts/bench_documents.py [--owners 1000] [--buildings 10] [--repeat 3]

Prints one line per figure (wall and CPU seconds) and a last JSON line with the load average.  Targets:
sheets + sign-off lists ≤ 10 s, the result announcement ≤ 2 s (best of ``--repeat`` runs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.ballot.codes import code_url, generate_code
from server.printing.code_sheets import SheetContext, building_pdf, by_building
from server.printing.qr import _matrix
from server.printing.result_notice import result_announcement_pdf
from server.services.codes import IssuedCode, sheet_number

PUBLIC_URL = "https://evote.example.cn"
CONTEXT = SheetContext("2026年第一次业主大会会议", public_url=PUBLIC_URL, opens_at="2026-12-01T01:00:00+00:00",
                       closes_at="2026-12-15T12:00:00+00:00", contact="筹备组 王女士 0595-22000000，物业服务中心一楼")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"


def make_codes(owners: int, buildings: int) -> list[IssuedCode]:
    codes = []
    for n in range(owners):
        building = str(n % buildings + 1)
        place = n // buildings + 1
        code = generate_code()
        codes.append(IssuedCode(f"O{n:05d}", building, (f"{building}-{place // 4 + 1:02d}{place % 4 + 1:02d}",),
                                SURNAMES[n % len(SURNAMES)] + "**", 1, code, code_url(PUBLIC_URL, code),
                                sheet_no=sheet_number(building, place, 1)))
    return codes


def result_data(matters: int = 8, candidates: int = 15) -> dict:
    total = {"area": "98765.43", "persons": 1000}
    part = {"area": "70000.00", "persons": 700}

    def fig(share: int) -> dict:
        return {"area": f"{70000 * share // 100}.00", "persons": 7 * share}

    result_matters = []
    info = []
    for i in range(1, matters + 1):
        result_matters.append({"id": f"M{i}", "kind": "resolution", "category": i % 9 + 1,
                               "threshold": "three_quarters" if i % 9 + 1 in (6, 7, 8) else "majority",
                               "electorate": total, "participating": part, "invalid": {"area": "0.00", "persons": 0},
                               "yes": fig(60), "no": fig(30), "abstain": fig(10), "quorum_met": True,
                               "outcome": "passed" if i % 3 else "failed"})
        info.append({"id": f"M{i}", "title": f"第 {i} 项：关于小区公共事务的决定", "kind": "resolution",
                     "category": i % 9 + 1})
    ids = [f"C{j}" for j in range(1, candidates + 1)]
    result_matters.append({"id": "E1", "kind": "election", "category": 3, "threshold": "majority",
                           "electorate": total, "participating": part, "invalid": {"area": "0.00", "persons": 0},
                           "quorum_met": True,
                           "candidates": [{"id": c, "yes": fig(90 - 3 * j), "passed": 90 - 3 * j > 50}
                                          for j, c in enumerate(ids)],
                           "elected": ids[:7], "alternates": ids[7:9], "runoff_needed": [], "outcome": "elected"})
    info.append({"id": "E1", "title": "选举第一届业主委员会委员", "kind": "election", "category": 3, "seats": 7,
                 "alternates": 2, "candidates": [{"id": c, "name": f"候选人{c}"} for c in ids]})
    return {"community_name": "海滨小区", "meeting_title": "2026年第一次业主大会会议", "convener": "业主大会筹备组",
            "status_name": "初步结果（异议期内）", "opened_at": "2026-12-01T01:00:00+00:00",
            "closed_at": "2026-12-15T12:00:00+00:00", "published_at": "2026-12-15T13:00:00+00:00",
            "objection_ends_at": "2026-12-22T13:00:00+00:00", "finalized_at": None,
            "signed_at": "2026-12-15T12:00:05+00:00",
            "result": {"totals": total, "matters": result_matters}, "matters": info, "formations": {},
            "results_url": f"{PUBLIC_URL}/r/lc-haibin/2026-01", "key_id": "0123456789abcdef",
            "key_fingerprint": "ab" * 32, "receipts_root": "cd" * 32, "receipt_count": 6300}


def best(repeat: int, run) -> tuple[float, float, int]:
    """(best wall seconds, best CPU seconds of this process, bytes).  CPU time is what the work costs on a
    machine that other processes share; wall time is what a user waits for on an idle one."""
    walls, cpus, size = [], [], 0
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        size = run()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=1000)
    parser.add_argument("--buildings", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, object] = {"owners": args.owners, "buildings": args.buildings}

    def one_file() -> int:
        _matrix.cache_clear()          # each run makes its QR codes afresh
        codes = make_codes(args.owners, args.buildings)
        return len(building_pdf(CONTEXT, "全部楼栋", codes, signoff=True))

    def per_building() -> int:
        _matrix.cache_clear()
        codes = make_codes(args.owners, args.buildings)
        return sum(len(building_pdf(CONTEXT, b, group, signoff=True)) for b, group in by_building(codes).items())

    def announcement() -> int:
        return len(result_announcement_pdf(result_data()))

    for name, run in (("sheets_and_signoff_one_file", one_file), ("sheets_and_signoff_per_building", per_building),
                      ("result_announcement", announcement)):
        seconds, cpu, size = best(args.repeat, run)
        figures[name] = {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "bytes": size}
        print(f"{name}: {seconds:.2f} s wall, {cpu:.2f} s CPU, {size / 1e6:.1f} MB", flush=True)
    figures["targets"] = {"sheets_and_signoff_s": 10, "result_announcement_s": 2}
    figures["load_average"] = [round(x, 1) for x in os.getloadavg()]
    print(json.dumps(figures, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
