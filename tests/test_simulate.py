"""The end-to-end smoke test: `evote simulate` on the test database, then `evote verify` on its output."""
from __future__ import annotations

import asyncio
import json
import os
import sys


async def _evote(env: dict, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_simulate_then_verify(database_url, tmp_path):
    env = {**os.environ, "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(tmp_path / "data"),
           "EVOTE_LOG_JSON": "false"}
    out = tmp_path / "record"
    status, stdout, stderr = await _evote(env, "simulate", "--units", "120", "--turnout", "0.8", "--out", str(out),
                                          "--seed", "5")
    assert status == 0, stderr
    assert "OK" in stdout and "independent recount" in stdout
    for name in ("meeting.json", "register.csv", "ballots.csv", "receipts.csv", "result.json", "result.sig.json"):
        assert (out / name).is_file(), name
    pubkey = tmp_path / "record.pubkey.pem"
    status, stdout, stderr = await _evote(env, "verify", str(out), "--pubkey", str(pubkey))
    assert status == 0, stderr
    assert stdout.startswith("OK")
    status, stdout, _ = await _evote(env, "tally", str(out))
    assert status == 0 and json.loads(stdout) == json.loads((out / "result.json").read_text())
    # the audit trail of the simulated community is intact
    community = json.loads((out / "meeting.json").read_text())["community"]["id"]
    status, stdout, stderr = await _evote(env, "audit", "verify", "--community", community)
    assert status == 0, stderr


async def test_simulate_refuses_bad_arguments(tmp_path):
    env = {**os.environ, "EVOTE_DATA_DIR": str(tmp_path / "data")}
    status, _, err = await _evote(env, "simulate", "--units", "100", "--turnout", "1.5", "--out", str(tmp_path / "x"))
    assert status == 2 and "--turnout" in err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    status, _, err = await _evote(env, "simulate", "--units", "100", "--turnout", "0.5", "--out",
                                  str(tmp_path / "full"))
    assert status == 2 and "not an empty directory" in err
