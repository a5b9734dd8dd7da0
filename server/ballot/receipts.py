"""Ballot receipts: what an owner keeps to find their ballot in the published record.

A receipt is ``sha256(canonical(submission) || salt)`` with a 16-byte secret salt
per submission, so the public record alone (which lists choices) does not let
anyone link a receipt to a choice by trying the three possible choices.  The
canonical form names every field the bundle publishes for the submission, so a
receipt commits to exactly what is counted.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

SALT_BYTES = 16


def format_cast_at(moment: datetime) -> str:
    """The one text form of a legal vote time (UTC, microseconds), used in receipts and bundles."""
    if moment.tzinfo is None:
        raise ValueError("cast_at must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical_text(*, community_id: str, meeting_id: str, ballot_id: str, voter_id: str, matter_id: str,
                    channel: str, cast_at: str, choices: Sequence[tuple[str, str]]) -> str:
    return json.dumps(
        {"community_id": community_id, "meeting_id": meeting_id, "ballot_id": str(ballot_id),
         "voter_id": voter_id, "matter_id": matter_id, "channel": channel, "cast_at": cast_at,
         "choices": sorted([list(c) for c in choices])},
        ensure_ascii=False, separators=(",", ":"), sort_keys=True,
    )


def canonical_submission(*, community_id: str, meeting_id: str, ballot_id: str, voter_id: str, matter_id: str,
                         channel: str, cast_at: datetime, choices: Sequence[tuple[str, str]]) -> bytes:
    return _canonical_text(community_id=community_id, meeting_id=meeting_id, ballot_id=ballot_id,
                           voter_id=voter_id, matter_id=matter_id, channel=channel,
                           cast_at=format_cast_at(cast_at), choices=choices).encode()


_CAST_AT_MARK = "cast-at"


def canonical_around_cast_at(*, community_id: str, meeting_id: str, ballot_id: str, voter_id: str, matter_id: str,
                             channel: str, choices: Sequence[tuple[str, str]]) -> tuple[bytes, bytes]:
    """``canonical_submission`` before and after the text of ``cast_at``: ``head + format_cast_at(t) + tail``
    is the canonical form for any time ``t``.  The vote path hands both parts to the database, which
    puts its own receive time between them (the time is known only inside the inserting statement).

    Keys are sorted, so the object opens with ``ballot_id`` (a UUID: nothing to escape) and then
    ``cast_at``; the time's text needs no escaping either.
    """
    text = _canonical_text(community_id=community_id, meeting_id=meeting_id, ballot_id=ballot_id,
                           voter_id=voter_id, matter_id=matter_id, channel=channel, cast_at=_CAST_AT_MARK,
                           choices=choices)
    head = '{"ballot_id":' + json.dumps(str(ballot_id)) + ',"cast_at":"'
    if not text.startswith(head + _CAST_AT_MARK + '"'):
        raise ValueError("canonical form does not open with ballot_id and cast_at")
    return head.encode(), text[len(head) + len(_CAST_AT_MARK):].encode()


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def receipt_for(canonical: bytes, salt: bytes) -> bytes:
    return hashlib.sha256(canonical + salt).digest()


def receipt_code(receipt: bytes) -> str:
    """How a receipt is shown and typed: lowercase hex (64 characters)."""
    return receipt.hex()
