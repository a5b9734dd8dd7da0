"""The ``evote-bundle/1`` format: file names, columns, errors, canonical JSON, meeting.json.

A bundle is a directory (or a .zip / .tar.gz archive of one) holding
``meeting.json``, ``register.csv`` and ``ballots.csv``; see
docs/bundle-format.md.  All JSON this project writes goes through
:func:`canonical_json`, so an exported bundle and a re-written one are
byte-identical.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from server.ballot.tally import ELECTION, Matter, Rules, Submission, tally
from server.ballot.weights import Electorate, RegisterRow

__all__ = [
    "BALLOTS_FILE",
    "BALLOT_COLUMNS",
    "BUNDLE_FILES",
    "BUNDLE_FORMAT",
    "MEETING_FILE",
    "REGISTER_FILE",
    "Bundle",
    "BundleError",
    "canonical_json",
    "matter_json",
    "meeting_document",
]

BUNDLE_FORMAT = "evote-bundle/1"
MEETING_FILE = "meeting.json"
REGISTER_FILE = "register.csv"
BALLOTS_FILE = "ballots.csv"
BUNDLE_FILES = (MEETING_FILE, REGISTER_FILE, BALLOTS_FILE)
BALLOT_COLUMNS = ("ballot_id", "voter_id", "matter_id", "candidate_id", "choice", "channel", "cast_at")


class BundleError(Exception):
    """A bundle that breaks the format.  ``str()`` is one line: ``file:line: problem``.

    ``line`` is 1-based; 0 means the file as a whole (a missing file, an empty
    electorate).
    """

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file = file
        self.line = line
        self.message = message
        super().__init__(f"{file}:{line}: {message}")


@dataclass(frozen=True)
class Bundle:
    """A checked bundle, ready to count."""

    meeting: dict[str, Any]  # meeting.json as plain JSON data
    meeting_id: str
    rules: Rules
    matters: tuple[Matter, ...]
    register_rows: tuple[RegisterRow, ...]
    electorate: Electorate
    submissions: tuple[Submission, ...]

    def tally(self) -> dict[str, Any]:
        """The evote-result/1 document of this bundle."""
        return tally(self.meeting_id, self.rules, self.matters, self.electorate, self.submissions)


def canonical_json(obj: Any) -> str:
    """The one JSON style of the project: key order as built, UTF-8 text
    (``ensure_ascii=False``), two-space indent, trailing newline."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def matter_json(matter: Matter) -> dict[str, Any]:
    """One entry of meeting.json's ``matters``, in the key order of the format description."""
    out: dict[str, Any] = {
        "id": matter.id,
        "title": matter.title,
        "kind": matter.kind,
        "category": matter.category,
    }
    if matter.kind == ELECTION:
        out["seats"] = matter.seats
        out["alternates"] = matter.alternates
        out["candidates"] = [{"id": cid, "name": name} for cid, name in matter.candidates]
    return out


def meeting_document(
    meeting_id: str,
    title: str,
    rules: Rules,
    matters: Sequence[Matter],
    community_id: str = "",
    community_name: str = "",
) -> dict[str, Any]:
    """meeting.json content in the key order of the format description."""
    return {
        "format": BUNDLE_FORMAT,
        "community": {"id": community_id, "name": community_name},
        "meeting": {"id": meeting_id, "title": title},
        "rules": rules.to_json(),
        "matters": [matter_json(matter) for matter in matters],
    }
