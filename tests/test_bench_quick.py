"""`scripts/bench/bench.py --quick` end to end: correctness only, never timing.

Runs the bench in a subprocess against the test session's PostgreSQL server (the bench creates and
drops its own ``evote_bench_*`` database there) and checks what its last line reports: no failed
request, every acknowledged vote stored, every watcher served every vote, the batch paths done.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "scripts" / "bench" / "bench.py"


def server_url(database_url: str) -> str:
    """The same server, its maintenance database (the bench makes its own database next to ours)."""
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/postgres"))


def test_quick_bench_runs_and_every_acknowledged_vote_is_stored(database_url, tmp_path):
    env = dict(os.environ, EVOTE_LOG_LEVEL="WARNING", TMPDIR=str(tmp_path))
    env.pop("EVOTE_REDIS_URL", None)
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--database-url", server_url(database_url),
                           "--redis-url", ""],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result = json.loads(lines[-1])
    assert result["ok"] is True and result["failures"] == []
    assert result["quick"] is True
    # Ingest: every request answered 201, and every acknowledged ballot id is in the database.
    assert result["errors"] == 0
    assert result["requests"] > 0
    assert result["acknowledged_votes"] == 3 * result["requests"]
    assert result["acknowledged_missing"] == 0 and result["lost"] == 0
    assert isinstance(result["server_cpu_ms_per_ballot"], (int, float))
    # the same ingest against `evote serve --workers 2` (votes_per_s_2w): no error, nothing lost
    assert isinstance(result["votes_per_s_2w"], (int, float)) and result["votes_per_s_2w"] > 0
    assert result["errors_2w"] == 0 and result["lost_2w"] == 0
    # Fan-out: every watcher connected and saw every vote cast while it listened.
    assert result["watchers"] == 50 and result["watchers_failed"] == 0
    assert result["fanout_votes"] > 0 and result["fanout_missed"] == 0
    # Batch paths ran (export signed, tally equal to the signed result, verify OK), timings only reported.
    for key in ("import_50k_s", "export_50k_s", "tally_50k_s", "verify_50k_s"):
        assert isinstance(result[key], (int, float)), key
    # pgbench is optional in --quick: a figure when installed, null when not.
    assert result["pgbench_tps"] is None or result["pgbench_tps"] > 0
    # The table is printed before the JSON line.
    assert "== ingest" in proc.stdout and "== batch" in proc.stdout
