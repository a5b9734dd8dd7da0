"""Legal test vectors: `evote tally` on each bundle of tests/vectors/ prints exactly its expected.json.

Each expected result was worked out by hand from bundle-format.md and
voting-rules.md (tests/vectors/README.md explains every case), not by running
the engine.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from server.commands import tally as tally_command
from server.record import canonical_json

VECTORS = Path(__file__).resolve().parent / "vectors"
CASES = sorted(path.name for path in VECTORS.iterdir() if (path / "meeting.json").exists())


def test_there_are_vectors():
    assert len(CASES) >= 10
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    for case in CASES:
        assert f"`{case}`" in readme, f"{case} is not explained in tests/vectors/README.md"


@pytest.mark.parametrize("case", CASES)
def test_tally_prints_the_expected_result(case, capsys):
    parser = argparse.ArgumentParser(prog="evote")
    tally_command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["tally", str(VECTORS / case)])
    status = args.func(args)
    captured = capsys.readouterr()
    assert (status, captured.err) == (0, "")
    expected = json.loads((VECTORS / case / "expected.json").read_text(encoding="utf-8"))
    assert json.loads(captured.out) == expected
    # Same keys in the same order, same bytes.
    assert captured.out == canonical_json(expected)
