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


# ---------------------------------------------------------------- the short receipt of a ballot

# One ballot (an owner's submission of one or more matters in one request) gets one short receipt:
# 10 characters of Crockford base32 (50 bits), shown as XXXXX-XXXXX, that a person can copy and read
# aloud.  It is the first 50 bits of SHA-256 over a label and the ballot's receipts (32 bytes each,
# sorted bytewise), so a page shown the receipts a code stands for can check that the code names
# exactly them (static/results/receipt_code.js does the same in the browser).
BALLOT_RECEIPT_LABEL = b"evote-ballot-receipt/1\n"
BALLOT_RECEIPT_CHARS = 10
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BALLOT_RECEIPT_ALPHABET = _CROCKFORD   # the vote path's statement derives the code in SQL with it
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0"})


def ballot_receipt_code(receipts: Sequence[bytes]) -> str:
    """The short receipt (10 characters, no hyphen) of a ballot with these per-matter receipts."""
    if not receipts or any(len(r) != 32 for r in receipts):
        raise ValueError("a ballot has one or more 32-byte receipts")
    digest = hashlib.sha256(BALLOT_RECEIPT_LABEL + b"".join(sorted(receipts))).digest()
    bits = int.from_bytes(digest[:7], "big") >> (56 - 5 * BALLOT_RECEIPT_CHARS)
    return "".join(_CROCKFORD[(bits >> (5 * (BALLOT_RECEIPT_CHARS - 1 - i))) & 31]
                   for i in range(BALLOT_RECEIPT_CHARS))


def format_ballot_receipt(code: str) -> str:
    """How a short receipt is shown: two groups of five, ``XXXXX-XXXXX``."""
    return f"{code[:5]}-{code[5:]}"


def normalize_ballot_receipt(text: str) -> str | None:
    """The stored form (10 characters) of a typed short receipt, or None if it cannot be one.

    Case, spaces and hyphens are ignored; I/L read as 1 and O as 0 (Crockford), as for ballot codes.
    """
    if not isinstance(text, str) or len(text) > 32:
        return None
    cleaned = "".join(text.split()).replace("-", "").upper().translate(_CONFUSABLE)
    if len(cleaned) != BALLOT_RECEIPT_CHARS or any(c not in _CROCKFORD for c in cleaned):
        return None
    return cleaned
