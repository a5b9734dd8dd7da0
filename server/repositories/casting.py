"""SQL of the vote-casting hot path (server/services/casting.py decides what a row means,
server/services/group_commit.py gathers the ballots that one statement stores)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import asyncpg

# Electronic ballots of ONE meeting in ONE statement, committed on its own (no BEGIN/COMMIT: a single
# statement is atomic, and every ballot in it is durable when the answer arrives).  A batch holds at
# most one ballot per voter (server/services/group_commit.py sees to it), so the ballots of one
# statement never depend on each other; one ballot is a batch of one.  What it does, in order:
#
# - ``mt``: lock the meeting row FOR SHARE (a close waits for votes in flight, and a vote after the close
#   sees it) and read the server's receive time ``clock_timestamp()`` (the legal vote time, the same for
#   every ballot of the statement: they are committed together);
# - ``job``, ``sub``: the ballots (index, token id, voter, idempotency key) and their submissions;
# - ``chk``, per ballot: the token's session, held FOR SHARE too (revoking it, a voting subject changing
#   hands (repositories/transfers.py), waits for this vote; a vote checked while it is being revoked sees
#   the outcome); this voter's earlier electronic submissions for the ballot's matters; and the
#   submissions of its idempotency key, with their choices, to tell a replay from a reuse;
# - ``ok``: a row for each ballot that may be stored: the session is live, the key is new, the meeting is
#   open at ``now`` and, unless revisions are allowed, nothing was voted yet (server/services/casting.py
#   refuses with the same conditions, from the same row);
# - ``s`` and ``choices``: the submissions and choices of those ballots.  The receipt is
#   ``sha256(head || cast_at || tail || salt)``: the canonical form built in Python around the time's
#   text (receipts.canonical_around_cast_at), the time written as receipts.format_cast_at does;
# - ``digest`` to ``ballot_code_items``: each ballot's short receipt (回执码, migration 0120), derived from
#   its receipts as receipts.ballot_receipt_code derives it, and the submissions it covers.
#
# The database decides races with other statements: a second submission of a voter and matter breaks
# ``UNIQUE (community_id, meeting_id, voter_id, matter_id, channel, revision)``; the statement fails as
# a whole and the caller runs each of its ballots again alone, which then sees the winner.
_CAST = """
WITH mt AS MATERIALIZED (
    SELECT m.state, m.opens_at, m.closes_at, clock_timestamp() AS now
      FROM meeting m
     WHERE m.community_id = $1 AND m.meeting_id = $2
       FOR SHARE OF m
), job AS MATERIALIZED (
    SELECT j.idx, j.jti, j.voter, j.ikey
      FROM unnest($3::int[], $4::text[], $5::text[], $6::text[]) AS j(idx, jti, voter, ikey)
), sub AS MATERIALIZED (
    SELECT t.job, t.matter_id, t.ballot_id, t.salt, t.head, t.tail
      FROM unnest($8::int[], $9::text[], $10::uuid[], $11::bytea[], $12::bytea[], $13::bytea[])
           AS t(job, matter_id, ballot_id, salt, head, tail)
), chk AS MATERIALIZED (
    SELECT job.idx, job.voter, job.ikey, mt.state, mt.opens_at, mt.closes_at, mt.now,
           (SELECT b.revoked_at IS NULL FROM ballot_session b
             WHERE b.community_id = $1 AND b.meeting_id = $2 AND b.jti = job.jti FOR SHARE) AS session_live,
           ARRAY(SELECT s.matter_id FROM submission s
                  WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = job.voter
                    AND s.matter_id IN (SELECT sub.matter_id FROM sub WHERE sub.job = job.idx)
                    AND s.channel = 'electronic') AS voted,
           ARRAY(SELECT s.matter_id || ' ' || s.ballot_id::text || ' ' || encode(s.receipt, 'hex') || ' '
                        || to_char(s.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || ' '
                        || coalesce((SELECT json_agg(json_build_array(c.candidate_id, c.choice))::text
                                       FROM submission_choice c
                                      WHERE c.community_id = s.community_id AND c.meeting_id = s.meeting_id
                                        AND c.ballot_id = s.ballot_id), '[]')
                   FROM submission s
                  WHERE job.ikey IS NOT NULL AND s.community_id = $1 AND s.meeting_id = $2
                    AND s.voter_id = job.voter AND s.idempotency_key = job.ikey) AS previous
      FROM mt, job
), ok AS MATERIALIZED (
    SELECT chk.idx, chk.voter, chk.ikey, chk.now,
           to_char(chk.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS cast_at
      FROM chk
     WHERE chk.session_live AND cardinality(chk.previous) = 0
       AND chk.state = 'open' AND (chk.opens_at IS NULL OR chk.now >= chk.opens_at)
       AND (chk.closes_at IS NULL OR chk.now < chk.closes_at)
       AND ($7 OR cardinality(chk.voted) = 0)
), s AS (
    INSERT INTO submission (community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
                            received_at, idempotency_key, salt, receipt)
    SELECT $1, $2, t.ballot_id, ok.voter, t.matter_id, 'electronic',
           CASE WHEN $7 THEN coalesce((SELECT max(p.revision) FROM submission p
                                        WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.voter_id = ok.voter
                                          AND p.matter_id = t.matter_id AND p.channel = 'electronic'), 0) + 1
                ELSE 0 END,
           ok.now, ok.ikey, t.salt, sha256(t.head || convert_to(ok.cast_at, 'UTF8') || t.tail || t.salt)
      FROM ok JOIN sub t ON t.job = ok.idx
    RETURNING voter_id, ballot_id, matter_id, receipt
), choices AS (
    INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, choice)
    SELECT $1, $2, c.ballot_id, c.candidate_id, c.choice
      FROM unnest($14::uuid[], $15::text[], $16::text[]) AS c(ballot_id, candidate_id, choice)
      JOIN s ON s.ballot_id = c.ballot_id
), digest AS MATERIALIZED (
    -- each ballot's short receipt (receipts.ballot_receipt_code): the first 5 x $19 bits of
    -- sha256(label || the ballot's receipts in byte order), in the alphabet $18
    SELECT s.voter_id,
           ('x' || encode(substring(sha256($17::bytea || string_agg(s.receipt, ''::bytea ORDER BY s.receipt))
                                    FROM 1 FOR 7), 'hex'))::bit(56)::bigint >> (56 - 5 * $19::int) AS bits
      FROM s
     GROUP BY s.voter_id
), code AS MATERIALIZED (
    SELECT d.voter_id,
           string_agg(substr($18::text, ((d.bits >> (5 * ($19::int - 1 - i))) & 31)::int + 1, 1), ''
                      ORDER BY i) AS short_code
      FROM digest d, generate_series(0, $19::int - 1) AS i
     GROUP BY d.voter_id
), ballot_code AS (
    INSERT INTO ballot_receipt (community_id, meeting_id, short_code, voter_id, received_at)
    SELECT $1, $2, code.short_code, code.voter_id, mt.now FROM code, mt
), ballot_code_items AS (
    INSERT INTO ballot_receipt_item (community_id, meeting_id, ballot_id, short_code)
    SELECT $1, $2, s.ballot_id, code.short_code FROM s JOIN code ON code.voter_id = s.voter_id
)
SELECT chk.idx, chk.state, chk.opens_at, chk.closes_at, chk.now, chk.session_live, chk.voted, chk.previous,
       ARRAY(SELECT s.matter_id || ' ' || encode(s.receipt, 'hex') FROM s WHERE s.voter_id = chk.voter) AS stored,
       (SELECT code.short_code FROM code WHERE code.voter_id = chk.voter) AS short_code
  FROM chk
 ORDER BY chk.idx
"""


class BallotRows(NamedTuple):
    """One electronic ballot as the statement takes it: who casts it and its submissions and choices."""
    jti: str
    voter_id: str
    idempotency_key: str | None
    matter_ids: list[str]
    ballot_ids: list
    salts: list[bytes]
    heads: list[bytes]
    tails: list[bytes]
    choice_ballots: list
    choice_candidates: list[str]
    choice_values: list[str]


async def cast_ballots(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, allow_revision: bool,
                       ballots: Sequence[BallotRows], short_label: bytes, short_alphabet: str,
                       short_chars: int) -> list[asyncpg.Record]:
    """Check and store electronic ballots of one meeting, at most one per voter, in one statement
    (``_CAST``): one row per ballot, in order (``idx``), or none when the meeting does not exist.  A row's
    ``stored`` lists "matter receipt-hex" of what was written (empty when refused), ``short_code`` the
    ballot's short receipt written with it (None when refused)."""
    idx: list[int] = []
    jtis: list[str] = []
    voters: list[str] = []
    keys: list[str | None] = []
    sub_job: list[int] = []
    matter_ids: list[str] = []
    ballot_ids: list = []
    salts: list[bytes] = []
    heads: list[bytes] = []
    tails: list[bytes] = []
    choice_ballots: list = []
    choice_candidates: list[str] = []
    choice_values: list[str] = []
    for i, b in enumerate(ballots):
        idx.append(i)
        jtis.append(b.jti)
        voters.append(b.voter_id)
        keys.append(b.idempotency_key)
        sub_job.extend([i] * len(b.matter_ids))
        matter_ids.extend(b.matter_ids)
        ballot_ids.extend(b.ballot_ids)
        salts.extend(b.salts)
        heads.extend(b.heads)
        tails.extend(b.tails)
        choice_ballots.extend(b.choice_ballots)
        choice_candidates.extend(b.choice_candidates)
        choice_values.extend(b.choice_values)
    return await conn.fetch(_CAST, community_id, meeting_id, idx, jtis, voters, keys, allow_revision,
                            sub_job, matter_ids, ballot_ids, salts, heads, tails, choice_ballots,
                            choice_candidates, choice_values, short_label, short_alphabet, short_chars)


async def cast(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, allow_revision: bool,
               ballot: BallotRows, short_label: bytes, short_alphabet: str,
               short_chars: int) -> asyncpg.Record | None:
    """One ballot alone (a batch of one); None when the meeting does not exist."""
    rows = await cast_ballots(conn, community_id, meeting_id, allow_revision=allow_revision, ballots=[ballot],
                              short_label=short_label, short_alphabet=short_alphabet, short_chars=short_chars)
    return rows[0] if rows else None


async def matters_voted_by_proxy(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                                 matter_ids: list[str]) -> list[str] | None:
    return await conn.fetchval(
        """SELECT array_agg(DISTINCT matter_id ORDER BY matter_id) FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND matter_id = any($4::text[])
              AND channel = 'electronic' AND proxy_voter_id IS NOT NULL""",
        community_id, meeting_id, voter_id, matter_ids)
