"""The ``evote-bundle/2`` format: file names, columns, errors, canonical JSON, meeting.json.

A bundle is a directory (or a .zip / .tar.gz archive of one) holding
``meeting.json``, ``register.csv`` and ``ballots.csv``; see
docs/bundle-format.md.  All JSON this project writes goes through
:func:`canonical_json`, so an exported bundle and a re-written one are
byte-identical.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.ballot.attachments import ATTACHMENT_KEYS
from server.ballot.tally import ELECTION, Matter, Rules, Submission, tally
from server.ballot.weights import Electorate, RegisterRow

__all__ = [
    "BALLOTS_FILE",
    "BALLOT_COLUMNS",
    "BUNDLE_FILES",
    "BUNDLE_FORMAT",
    "EXTENSION_KEYS",
    "MEETING_FILE",
    "REGISTER_FILE",
    "WINDOW_KEYS",
    "Bundle",
    "BundleError",
    "canonical_json",
    "matter_json",
    "meeting_document",
    "parse_moment",
]

BUNDLE_FORMAT = "evote-bundle/2"
MEETING_FILE = "meeting.json"
REGISTER_FILE = "register.csv"
BALLOTS_FILE = "ballots.csv"
BUNDLE_FILES = (MEETING_FILE, REGISTER_FILE, BALLOTS_FILE)
BALLOT_COLUMNS = ("ballot_id", "voter_id", "matter_id", "candidate_id", "choice", "channel", "cast_at")
# The voting window of meeting.json's ``meeting`` object and each published extension of it.
WINDOW_KEYS = ("opens_at", "closes_at")
EXTENSION_KEYS = ("published_at", "reason", "closes_at")

Moment = str | datetime  # an ISO 8601 text with a UTC offset, or a timezone-aware datetime


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
        """The evote-result/2 document of this bundle."""
        return tally(self.meeting_id, self.rules, self.matters, self.electorate, self.submissions)


def canonical_json(obj: Any) -> str:
    """The one JSON style of the project: key order as built, UTF-8 text
    (``ensure_ascii=False``), two-space indent, trailing newline."""
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date and time with a UTC offset (``2026-01-10T09:00:00+08:00``, ``…Z``).

    Raises ``ValueError`` with a Chinese message quoting ``text``.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} 不是 ISO 8601 时间（如 2026-01-10T09:00:00+08:00）") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} 缺少 UTC 时差（如 +08:00 或 Z）")
    return moment


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
    if matter.scope:
        out["scope"] = {"buildings": list(matter.scope)}
    return out


def _moment_text(value: Moment, what: str) -> str:
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"{what} must be timezone-aware")
        return value.isoformat()
    parse_moment(value)  # a text is written as given, once it is known to read back
    return value


def _timed_object(value: Mapping[str, Any], keys: Sequence[str], what: str) -> dict[str, Any]:
    """``value`` with exactly ``keys``, in that order; times as ISO 8601 text (``reason`` as given)."""
    if set(value) != set(keys):
        raise ValueError(f"{what} has the keys {', '.join(keys)}, not {', '.join(value)}")
    out: dict[str, Any] = {}
    for key in keys:
        if key == "reason":
            if not isinstance(value[key], str):
                raise ValueError(f"{what}: reason must be a string")
            out[key] = value[key]
        else:
            out[key] = _moment_text(value[key], f"{what}: {key}")
    return out


def meeting_document(
    meeting_id: str,
    title: str,
    rules: Rules,
    matters: Sequence[Matter],
    community_id: str = "",
    community_name: str = "",
    *,
    window: Mapping[str, Moment] | None = None,
    extensions: Sequence[Mapping[str, Any]] = (),
    attachments: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """meeting.json content in the key order of the format description.

    ``window`` (``opens_at``, ``closes_at``) and ``extensions`` (each
    ``published_at``, ``reason``, ``closes_at``, in publication order) are
    written into the ``meeting`` object when given; times may be ISO 8601 texts
    with an offset or timezone-aware datetimes (written with ``isoformat()``).
    ``attachments`` (the documents noticed with the meeting, each with the keys of
    :data:`server.ballot.attachments.ATTACHMENT_KEYS`) likewise, when there are any.
    """
    meeting: dict[str, Any] = {"id": meeting_id, "title": title}
    if window is not None:
        meeting["window"] = _timed_object(window, WINDOW_KEYS, "window")
    if extensions:
        meeting["extensions"] = [
            _timed_object(extension, EXTENSION_KEYS, f"extension {number}")
            for number, extension in enumerate(extensions, start=1)
        ]
    if attachments:
        meeting["attachments"] = [{key: attachment[key] for key in ATTACHMENT_KEYS} for attachment in attachments]
    return {
        "format": BUNDLE_FORMAT,
        "community": {"id": community_id, "name": community_name},
        "meeting": meeting,
        "rules": rules.to_json(),
        "matters": [matter_json(matter) for matter in matters],
    }
