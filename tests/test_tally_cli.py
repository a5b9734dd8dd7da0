"""`evote tally BUNDLE`: JSON on stdout and status 0, or one line on stderr and status 2."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.commands import tally as tally_command
from tests.test_bundle import BALLOTS, EXPECTED_RESULT, MEETING, REGISTER, make_bundle

ROOT = Path(__file__).resolve().parent.parent

# Run the command module the way server/cli.py does, without needing the other
# sub-command modules to exist.
RUNNER = """
import argparse, sys
from server.commands import tally
parser = argparse.ArgumentParser(prog="evote")
tally.register(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def run_cli(*argv: str, **env: str) -> subprocess.CompletedProcess[bytes]:
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *argv], capture_output=True, cwd=ROOT, env=environment, timeout=60
    )


def call(bundle: Path, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="evote")
    tally_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tally", str(bundle)])
    status = args.func(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_valid_bundle_prints_the_result(tmp_path):
    completed = run_cli("tally", str(make_bundle(tmp_path)))
    assert completed.returncode == 0, completed.stderr.decode()
    assert completed.stderr == b""
    text = completed.stdout.decode("utf-8")
    assert json.loads(text) == EXPECTED_RESULT
    # Canonical form: two-space indent, key order of the format, trailing newline.
    assert text == json.dumps(EXPECTED_RESULT, ensure_ascii=False, indent=2) + "\n"


def test_output_is_utf8_whatever_the_locale(tmp_path):
    completed = run_cli("tally", str(make_bundle(tmp_path)), LC_ALL="C", LANG="C", PYTHONIOENCODING="ascii")
    assert completed.returncode == 0, completed.stderr.decode()
    assert json.loads(completed.stdout.decode("utf-8")) == EXPECTED_RESULT


def test_in_process_call(tmp_path, capsys):
    status, out, err = call(make_bundle(tmp_path), capsys)
    assert (status, err) == (0, "")
    assert json.loads(out) == EXPECTED_RESULT


# Every kind of bad input bundle-format.md lists, and a few more.
BAD = {
    "missing file": ({"ballots_csv": None}, "ballots.csv:0:"),
    "missing column": ({"register_csv": REGISTER.replace(",holder", "", 1)}, "register.csv:1:"),
    "another format": ({"meeting_json": MEETING.replace("evote-bundle/2", "evote-bundle/1")}, "meeting.json:2:"),
    "unknown voter": ({"ballots_csv": BALLOTS.replace("b3,O3", "b3,O9")}, "ballots.csv:4:"),
    "a joint owner as voter": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b", "b2,O2b")}, "ballots.csv:3:"),
    "unknown matter": ({"ballots_csv": BALLOTS.replace("b2,O2+O2b,M1", "b2,O2+O2b,M9")}, "ballots.csv:3:"),
    "bad area": ({"register_csv": REGISTER.replace("1-201,1号楼,dwelling,95,", "1-201,1号楼,dwelling,-3,")},
                 "register.csv:5:"),
    "area with four decimals": ({"register_csv": REGISTER.replace("88.5", "88.5001")}, "register.csv:2:"),
    "rows of one unit disagree": (
        {"register_csv": REGISTER.replace("102.37,survey,owner,O2b", "102.38,survey,owner,O2b")}, "register.csv:4:"),
    "two representatives": ({"register_csv": REGISTER.replace("102.37,survey,owner,O2b,0", "102.37,survey,owner,O2b,1")},
                            "register.csv:4:"),
    "no representative": ({"register_csv": REGISTER.replace("O3,1", "O3,0")}, "register.csv:5:"),
    "units of one subject naming different representatives": (
        {"register_csv": REGISTER.replace("60,registry,owner,O2b,0", "60,registry,owner,O2b,1")
                                 .replace("60,registry,owner,O2,1", "60,registry,owner,O2,0")}, "register.csv:8:"),
    "scope naming no building": ({"meeting_json": MEETING.replace('["2号楼"]', "[]")}, "meeting.json:18:"),
    "scope naming a building not in the register": (
        {"meeting_json": MEETING.replace('["2号楼"]', '["9号楼"]')}, "meeting.json:18:"),
    "scope of the wrong type": ({"meeting_json": MEETING.replace('{"buildings": ["2号楼"]}', '"2号楼"')},
                                "meeting.json:18:"),
    "ballot from outside the scope": ({"ballots_csv": BALLOTS.replace("b11,O5,L2", "b11,O1,L2")},
                                      "ballots.csv:13:"),
    "empty electorate": ({"register_csv": REGISTER.split("\n")[0] + "\n"}, "register.csv:0:"),
    "bad meeting": ({"meeting_json": MEETING.replace('"category": 3', '"category": 10')}, "meeting.json:14:"),
    "bad invalid_ballot rule": ({"meeting_json": MEETING.replace('"invalid_ballot": "abstain"', '"invalid_ballot": "x"')},
                                "meeting.json:10:"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_bundle_exits_2_with_one_line(tmp_path, case):
    changes, prefix = BAD[case]
    completed = run_cli("tally", str(make_bundle(tmp_path, **changes)))
    assert completed.returncode == 2
    assert completed.stdout == b""
    err = completed.stderr.decode("utf-8")
    assert err.startswith(f"{prefix} "), err
    assert err.endswith("\n") and err.count("\n") == 1, err


@pytest.mark.parametrize("case", list(BAD))
def test_bad_bundle_in_process(tmp_path, capsys, case):
    changes, prefix = BAD[case]
    status, out, err = call(make_bundle(tmp_path, **changes), capsys)
    assert (status, out) == (2, "")
    assert err.startswith(f"{prefix} ") and err.count("\n") == 1, err


def test_nonexistent_path(tmp_path, capsys):
    status, out, err = call(tmp_path / "nope", capsys)
    assert (status, out) == (2, "")
    assert err.startswith(f"{tmp_path / 'nope'}:0: ") and err.count("\n") == 1


def test_help_is_bilingual():
    completed = run_cli("tally", "--help")
    assert completed.returncode == 0
    text = completed.stdout.decode("utf-8")
    assert "BUNDLE" in text and "evote-bundle/2" in text and "evote-result/2" in text and "重新计票" in text
