"""Writing a bundle in canonical form: UTF-8 without BOM, LF line ends, rows in the order given.

:func:`bundle_files` gives the three files as bytes (what the exporter signs and
stores); :func:`write_bundle` writes them to a directory.  Reading them back with
:func:`server.record.reader.read_bundle` and writing again gives the same bytes.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from server.ballot.amounts import area_places, format_area
from server.ballot.receipts import format_cast_at
from server.ballot.tally import Submission
from server.ballot.weights import REGISTER_COLUMNS, RegisterRow
from server.record.format import BALLOT_COLUMNS, BALLOTS_FILE, MEETING_FILE, REGISTER_FILE, canonical_json

__all__ = ["bundle_files", "csv_text", "write_bundle", "write_directory"]


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """CSV in the record's style: LF line ends (diff-friendly; the reader takes CRLF too), minimal quoting."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def bundle_files(
    meeting: Mapping[str, Any], register_rows: Iterable[RegisterRow], submissions: Iterable[Submission]
) -> dict[str, bytes]:
    """The three files of a bundle in canonical form (UTF-8, no BOM, LF line ends).

    Rows keep the order given; areas are written with the register's decimals
    (three when any area needs them, else two: :func:`area_places`); a
    submission becomes one ballots.csv row per choice (a blank election ballot
    is its single row ``("", "invalid")``).
    """
    register_rows = tuple(register_rows)
    places = area_places(row.area for row in register_rows)
    register = csv_text(
        REGISTER_COLUMNS,
        (
            (
                row.unit_id,
                row.building,
                row.kind,
                format_area(row.area, places),
                row.area_source,
                row.holder,
                row.owner_id,
                "1" if row.representative else "0",
            )
            for row in register_rows
        ),
    )
    ballots = csv_text(
        BALLOT_COLUMNS,
        (
            (s.ballot_id, s.voter_id, s.matter_id, candidate_id, choice, s.channel, format_cast_at(s.cast_at))
            for s in submissions
            for candidate_id, choice in s.choices
        ),
    )
    return {
        MEETING_FILE: canonical_json(meeting).encode("utf-8"),
        REGISTER_FILE: register.encode("utf-8"),
        BALLOTS_FILE: ballots.encode("utf-8"),
    }


def write_directory(directory: str | Path, files: Mapping[str, bytes]) -> Path:
    """Write ``{name: content}`` into a directory (created if needed); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if "/" in name:   # attachments/3.pdf
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return directory


def write_bundle(
    directory: str | Path,
    meeting: Mapping[str, Any],
    register_rows: Iterable[RegisterRow],
    submissions: Iterable[Submission],
) -> Path:
    """Write a bundle directory (created if needed) in canonical form; returns its path."""
    return write_directory(directory, bundle_files(meeting, register_rows, submissions))
