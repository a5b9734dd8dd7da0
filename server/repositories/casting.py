"""SQL of the vote-casting hot path (server/services/casting.py decides the transaction)."""
from __future__ import annotations

import asyncpg

# The electronic vote path in ONE statement, committed on its own (no BEGIN/COMMIT: a single statement
# is atomic, and the vote is durable when the answer arrives).  What it does, in order:
#
# - ``mt``: lock the meeting row FOR SHARE (a close waits for votes in flight, and a vote after the close
#   sees it) and read the server's receive time ``clock_timestamp()`` (the legal vote time);
# - ``chk``: the token's session, held FOR SHARE too (revoking it, a voting subject changing hands
#   (repositories/transfers.py), waits for this vote; a vote checked while it is being revoked sees the
#   outcome); this voter's earlier electronic submissions for the matters; and the submissions of the
#   idempotency key, with their choices, to tell a replay from a reuse;
# - ``ok``: one row when the vote may be stored: the session is live, the key is new, the meeting is open
#   at ``now`` and, unless revisions are allowed, nothing was voted yet (server/services/casting.py
#   refuses with the same conditions, from the same row);
# - ``s`` and ``choices``: every submission and choice, only when ``ok`` has its row.  The receipt is
#   ``sha256(head || cast_at || tail || salt)``: the canonical form built in Python around the time's
#   text (receipts.canonical_around_cast_at), the time written as receipts.format_cast_at does;
# - ``digest`` to ``ballot_code_items``: the ballot's short receipt (回执码, migration 0120), derived from
#   those receipts as receipts.ballot_receipt_code derives it, and the submissions it covers.
#
# The database decides races as before: a second submission of a voter and matter breaks
# ``UNIQUE (community_id, meeting_id, voter_id, matter_id, channel, revision)`` and the caller runs the
# statement again, which then sees the winner.
_CAST = """
WITH mt AS MATERIALIZED (
    SELECT m.state, m.opens_at, m.closes_at, clock_timestamp() AS now
      FROM meeting m
     WHERE m.community_id = $1 AND m.meeting_id = $2
       FOR SHARE OF m
), chk AS MATERIALIZED (
    SELECT mt.state, mt.opens_at, mt.closes_at, mt.now,
           (SELECT b.revoked_at IS NULL FROM ballot_session b
             WHERE b.community_id = $1 AND b.meeting_id = $2 AND b.jti = $3 FOR SHARE) AS session_live,
           ARRAY(SELECT s.matter_id FROM submission s
                  WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $4
                    AND s.matter_id = any($7::text[]) AND s.channel = 'electronic') AS voted,
           ARRAY(SELECT s.matter_id || ' ' || s.ballot_id::text || ' ' || encode(s.receipt, 'hex') || ' '
                        || to_char(s.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || ' '
                        || coalesce((SELECT json_agg(json_build_array(c.candidate_id, c.choice))::text
                                       FROM submission_choice c
                                      WHERE c.community_id = s.community_id AND c.meeting_id = s.meeting_id
                                        AND c.ballot_id = s.ballot_id), '[]')
                   FROM submission s
                  WHERE $6::text IS NOT NULL AND s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $4
                    AND s.idempotency_key = $6) AS previous
      FROM mt
), ok AS MATERIALIZED (
    SELECT chk.now, to_char(chk.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS cast_at
      FROM chk
     WHERE chk.session_live AND cardinality(chk.previous) = 0
       AND chk.state = 'open' AND (chk.opens_at IS NULL OR chk.now >= chk.opens_at)
       AND (chk.closes_at IS NULL OR chk.now < chk.closes_at)
       AND ($5 OR cardinality(chk.voted) = 0)
), s AS (
    INSERT INTO submission (community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
                            received_at, idempotency_key, salt, receipt)
    SELECT $1, $2, t.ballot_id, $4, t.matter_id, 'electronic',
           CASE WHEN $5 THEN coalesce((SELECT max(p.revision) FROM submission p
                                        WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.voter_id = $4
                                          AND p.matter_id = t.matter_id AND p.channel = 'electronic'), 0) + 1
                ELSE 0 END,
           ok.now, $6, t.salt, sha256(t.head || convert_to(ok.cast_at, 'UTF8') || t.tail || t.salt)
      FROM ok, unnest($8::uuid[], $7::text[], $9::bytea[], $10::bytea[], $11::bytea[])
               AS t(ballot_id, matter_id, salt, head, tail)
    RETURNING ballot_id, matter_id, receipt
), choices AS (
    INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, choice)
    SELECT $1, $2, c.ballot_id, c.candidate_id, c.choice
      FROM unnest($12::uuid[], $13::text[], $14::text[]) AS c(ballot_id, candidate_id, choice)
      JOIN s ON s.ballot_id = c.ballot_id
), digest AS MATERIALIZED (
    -- the ballot's short receipt (receipts.ballot_receipt_code): the first 5 x $17 bits of
    -- sha256(label || the receipts in byte order), in the alphabet $16
    SELECT ('x' || encode(substring(sha256($15::bytea || string_agg(s.receipt, ''::bytea ORDER BY s.receipt))
                                    FROM 1 FOR 7), 'hex'))::bit(56)::bigint >> (56 - 5 * $17::int) AS bits
      FROM s
    HAVING count(*) > 0
), code AS MATERIALIZED (
    SELECT string_agg(substr($16::text, ((d.bits >> (5 * ($17::int - 1 - i))) & 31)::int + 1, 1), ''
                      ORDER BY i) AS short_code
      FROM digest d, generate_series(0, $17::int - 1) AS i
), ballot_code AS (
    INSERT INTO ballot_receipt (community_id, meeting_id, short_code, voter_id, received_at)
    SELECT $1, $2, code.short_code, $4, ok.now FROM code, ok WHERE code.short_code IS NOT NULL
), ballot_code_items AS (
    INSERT INTO ballot_receipt_item (community_id, meeting_id, ballot_id, short_code)
    SELECT $1, $2, s.ballot_id, code.short_code FROM s, code WHERE code.short_code IS NOT NULL
)
SELECT chk.state, chk.opens_at, chk.closes_at, chk.now, chk.session_live, chk.voted, chk.previous,
       ARRAY(SELECT s.matter_id || ' ' || encode(s.receipt, 'hex') FROM s) AS stored,
       (SELECT code.short_code FROM code) AS short_code
  FROM chk
"""


async def cast(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, jti: str, voter_id: str,
               allow_revision: bool, idempotency_key: str | None, matter_ids: list[str], ballot_ids: list,
               salts: list[bytes], heads: list[bytes], tails: list[bytes], choice_ballots: list,
               choice_candidates: list[str], choice_values: list[str], short_label: bytes, short_alphabet: str,
               short_chars: int) -> asyncpg.Record | None:
    """Check and store one electronic ballot in one statement (``_CAST``); None when the meeting does not
    exist.  ``stored`` lists "matter receipt-hex" of what was written (empty when refused), ``short_code``
    the ballot's short receipt written with it (None when refused)."""
    return await conn.fetchrow(_CAST, community_id, meeting_id, jti, voter_id, allow_revision, idempotency_key,
                               matter_ids, ballot_ids, salts, heads, tails, choice_ballots, choice_candidates,
                               choice_values, short_label, short_alphabet, short_chars)


async def matters_voted_by_proxy(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                                 matter_ids: list[str]) -> list[str] | None:
    return await conn.fetchval(
        """SELECT array_agg(DISTINCT matter_id ORDER BY matter_id) FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND matter_id = any($4::text[])
              AND channel = 'electronic' AND proxy_voter_id IS NOT NULL""",
        community_id, meeting_id, voter_id, matter_ids)
