"""SQL of the vote-casting hot path (server/services/casting.py decides the transaction)."""
from __future__ import annotations

from datetime import datetime

import asyncpg

# One statement: lock the meeting row FOR SHARE (a close waits for votes in flight), read the
# server's receive time, check the token's session, and find this voter's earlier submissions for
# the matters and for the idempotency key (with their choices, to tell a replay from a reuse).  The session row is held FOR SHARE too: revoking it
# (a voting subject changing hands, repositories/transfers.py) waits for this vote to commit, and a
# vote checked while it is being revoked sees the outcome.
_PRECHECK = """
SELECT m.state, m.opens_at, m.closes_at, clock_timestamp() AS now,
       (SELECT b.revoked_at IS NULL FROM ballot_session b
         WHERE b.community_id = $1 AND b.meeting_id = $2 AND b.jti = $3 FOR SHARE) AS session_live,
       ARRAY(SELECT s.matter_id FROM submission s
              WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $4
                AND s.matter_id = any($5::text[]) AND s.channel = 'electronic') AS voted,
       ARRAY(SELECT s.matter_id || ' ' || s.ballot_id::text || ' ' || encode(s.receipt, 'hex') || ' '
                    || to_char(s.received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') || ' '
                    || coalesce((SELECT json_agg(json_build_array(c.candidate_id, c.choice))::text
                                   FROM submission_choice c
                                  WHERE c.community_id = s.community_id AND c.meeting_id = s.meeting_id
                                    AND c.ballot_id = s.ballot_id), '[]')
               FROM submission s
              WHERE $6::text IS NOT NULL AND s.community_id = $1 AND s.meeting_id = $2 AND s.voter_id = $4
                AND s.idempotency_key = $6) AS previous
  FROM meeting m
 WHERE m.community_id = $1 AND m.meeting_id = $2
   FOR SHARE OF m
"""

_INSERT = """
WITH s AS (
    INSERT INTO submission (community_id, meeting_id, ballot_id, voter_id, matter_id, channel, revision,
                            received_at, idempotency_key, salt, receipt)
    SELECT $1, $2, t.ballot_id, $3, t.matter_id, 'electronic',
           CASE WHEN $5 THEN coalesce((SELECT max(p.revision) FROM submission p
                                        WHERE p.community_id = $1 AND p.meeting_id = $2 AND p.voter_id = $3
                                          AND p.matter_id = t.matter_id AND p.channel = 'electronic'), 0) + 1
                ELSE 0 END,
           $4, $6, t.salt, t.receipt
      FROM unnest($7::uuid[], $8::text[], $9::bytea[], $10::bytea[]) AS t(ballot_id, matter_id, salt, receipt)
    RETURNING ballot_id
)
INSERT INTO submission_choice (community_id, meeting_id, ballot_id, candidate_id, choice)
SELECT $1, $2, c.ballot_id, c.candidate_id, c.choice
  FROM unnest($11::uuid[], $12::text[], $13::text[]) AS c(ballot_id, candidate_id, choice)
  JOIN s ON s.ballot_id = c.ballot_id
"""


async def precheck(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, jti: str, voter_id: str,
                   matter_ids: list[str], idempotency_key: str | None) -> asyncpg.Record | None:
    return await conn.fetchrow(_PRECHECK, community_id, meeting_id, jti, voter_id, matter_ids, idempotency_key)


async def matters_voted_by_proxy(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                                 matter_ids: list[str]) -> list[str] | None:
    return await conn.fetchval(
        """SELECT array_agg(DISTINCT matter_id ORDER BY matter_id) FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND matter_id = any($4::text[])
              AND channel = 'electronic' AND proxy_voter_id IS NOT NULL""",
        community_id, meeting_id, voter_id, matter_ids)


async def insert_votes(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                       received_at: datetime, allow_revision: bool, idempotency_key: str | None,
                       ballot_ids: list, matter_ids: list[str], salts: list[bytes], receipts: list[bytes],
                       choice_ballots: list, choice_candidates: list[str], choice_values: list[str]) -> None:
    """Every submission and choice of one request in one statement (a data-modifying CTE over unnest)."""
    await conn.execute(_INSERT, community_id, meeting_id, voter_id, received_at, allow_revision, idempotency_key,
                       ballot_ids, matter_ids, salts, receipts, choice_ballots, choice_candidates, choice_values)

