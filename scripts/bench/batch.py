"""Job 3 of the benchmark: the batch paths at 50,000.

Import of a 50,000-unit register (the service `evote register import` uses); a meeting with 50,000
voting subjects, 3 matters and ballots of three quarters of them, closed; `evote export` (signs the
record), `evote tally` and `evote verify` of the exported record, each timed as a CLI process.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from common import (
    ACTOR,
    CHOICES,
    ROOT,
    Bench,
    create_community,
    create_open_meeting,
    electorate_voters,
    log,
    register_for_subjects,
)

from server.ballot.receipts import canonical_submission, new_salt, receipt_for
from server.devtools.demo_data import generate_register_rows, register_csv
from server.devtools.fixtures import end_voting_and_close
from server.services import meetings as meetings_service
from server.services import register as register_service


async def import_register_timed(bench: Bench, units: int) -> float:
    """Import a generated register of ``units`` units (what `evote register import` runs); seconds."""
    community_id = "bench-import"
    await create_community(bench.pool, community_id, "导入测试小区")
    data = register_csv(generate_register_rows(units, seed=1))
    settings = bench.effects.settings.replace(data_dir=bench.data_dir)
    t0 = time.perf_counter()
    result = await register_service.import_register(bench.pool, community_id=community_id, data=data,
                                                    filename="bench.csv", actor=ACTOR, settings=settings)
    seconds = time.perf_counter() - t0
    if result.units != units:
        bench.failures.append(f"import: {result.units} units imported of {units}")
    return seconds


async def cast_in_bulk(pool: asyncpg.Pool, community_id: str, meeting_id: str, voters: list[str]) -> int:
    """Electronic ballots (3 matters each) for ``voters``, written with COPY, receipts computed as casting does."""
    submissions, choices = [], []
    start = datetime.now(UTC) - timedelta(hours=1)
    for n, voter in enumerate(voters):
        cast_at = start + timedelta(microseconds=n * 50)
        for matter_id, offset in (("M1", 0), ("M2", 2), ("M3", 4)):
            marks = (("", CHOICES[(n + offset) % 5]),)
            ballot_id = uuid.uuid4()
            salt = new_salt()
            receipt = receipt_for(canonical_submission(
                community_id=community_id, meeting_id=meeting_id, ballot_id=str(ballot_id), voter_id=voter,
                matter_id=matter_id, channel="electronic", cast_at=cast_at, choices=marks), salt)
            submissions.append((community_id, meeting_id, ballot_id, voter, matter_id, "electronic", 0, cast_at,
                                salt, receipt))
            choices += [(community_id, meeting_id, ballot_id, cand, choice) for cand, choice in marks]
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("submission", records=submissions, columns=[
            "community_id", "meeting_id", "ballot_id", "voter_id", "matter_id", "channel", "revision",
            "received_at", "salt", "receipt"])
        # Without statistics the foreign-key check of every choice row is planned as a scan of the
        # meeting's submissions (quadratic: the COPY did not finish in 60 s); analyze first.
        await conn.execute("ANALYZE submission")
        await conn.copy_records_to_table("submission_choice", records=choices, columns=[
            "community_id", "meeting_id", "ballot_id", "candidate_id", "choice"])
    return len(submissions)


def run_cli(bench: Bench, *argv: str) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ, EVOTE_DATABASE_URL=bench.db_url, EVOTE_DATA_DIR=str(bench.data_dir),
               EVOTE_LOG_LEVEL="WARNING")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "server.cli", *argv], env=env, cwd=ROOT, capture_output=True,
                          timeout=1800)
    return time.perf_counter() - t0, proc


async def batch(bench: Bench) -> None:
    a = bench.args
    seconds = await import_register_timed(bench, a.import_units)
    bench.results["import_50k_s"] = round(seconds, 2)
    bench.row("batch", f"register import, {a.import_units} units", f"{seconds:.2f} s")
    log(f"import of {a.import_units} units: {seconds:.2f} s")

    community_id, meeting_id = "bench-record", "record-2026"
    rows = register_for_subjects(a.record_subjects, seed=3)
    subjects = await create_open_meeting(bench, community_id, meeting_id, rows)
    voters = await electorate_voters(bench.pool, community_id, meeting_id)
    random.Random(9).shuffle(voters)
    voting = voters[: len(voters) * 3 // 4]
    count = await cast_in_bulk(bench.pool, community_id, meeting_id, voting)
    # BENCHMARK ONLY: the voting period ends now (it is never closed early); then close by hand.
    await end_voting_and_close(bench.pool, community_id, meeting_id, lambda: meetings_service.close_meeting(
        bench.pool, bench.effects, community_id=community_id, meeting_id=meeting_id, actor=ACTOR))
    log(f"record meeting: {subjects} voting subjects, {count} submissions; exporting")
    bench.row("batch", "record: voting subjects / submissions", f"{subjects} / {count}")

    out = bench.work_dir / "record"
    seconds, proc = run_cli(bench, "export", meeting_id, "--community", community_id, "--out", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote export failed: {proc.stderr.decode()[-500:]}")
        return
    bench.results["export_50k_s"] = round(seconds, 2)
    bench.row("batch", "evote export (signs the record)", f"{seconds:.2f} s")

    seconds, proc = run_cli(bench, "tally", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote tally failed: {proc.stderr.decode()[-500:]}")
    else:
        published = json.loads((out / "result.json").read_text(encoding="utf-8"))
        if json.loads(proc.stdout) != published:
            bench.failures.append("evote tally differs from the exported result.json")
    bench.results["tally_50k_s"] = round(seconds, 2)
    bench.row("batch", "evote tally of the record", f"{seconds:.2f} s")

    seconds, proc = run_cli(bench, "verify", str(out))
    if proc.returncode != 0:
        bench.failures.append(f"evote verify failed: {(proc.stdout + proc.stderr).decode()[-500:]}")
    bench.results["verify_50k_s"] = round(seconds, 2)
    bench.results["record_subjects"] = subjects
    bench.row("batch", "evote verify of the record", f"{seconds:.2f} s")
