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


def canonical_submission(*, community_id: str, meeting_id: str, ballot_id: str, voter_id: str, matter_id: str,
                         channel: str, cast_at: datetime, choices: Sequence[tuple[str, str]]) -> bytes:
    return json.dumps(
        {"community_id": community_id, "meeting_id": meeting_id, "ballot_id": str(ballot_id),
         "voter_id": voter_id, "matter_id": matter_id, "channel": channel, "cast_at": format_cast_at(cast_at),
         "choices": sorted([list(c) for c in choices])},
        ensure_ascii=False, separators=(",", ":"), sort_keys=True,
    ).encode()


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def receipt_for(canonical: bytes, salt: bytes) -> bytes:
    return hashlib.sha256(canonical + salt).digest()


def receipt_code(receipt: bytes) -> str:
    """How a receipt is shown and typed: lowercase hex (64 characters)."""
    return receipt.hex()
