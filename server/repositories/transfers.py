"""SQL for voting subjects changing hands during voting (tables subject_transfer, transfer_new_owner).

server/services/transfers.py decides the transaction and its locks.
"""
from __future__ import annotations

from datetime import date

import asyncpg

from server.ballot.identity import ProtectedIdentity

TRANSFER_COLUMNS = """t.transfer_id, t.voter_id, t.units, t.evidence_kind, t.evidence_reference, t.evidence_date,
       t.note, t.voted_matters, t.open_matters, t.revoked_serials, t.sessions_revoked, t.proxies_revoked,
       t.code_serial, t.recorded_by, t.recorded_at"""


async def meeting_clock(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record | None:
    """The meeting row FOR SHARE (as votes in flight hold it: a close waits for the transfer, and
    votes go on) with the server's time."""
    return await conn.fetchrow(
        """SELECT state, title, opens_at, closes_at, clock_timestamp() AS now FROM meeting
            WHERE community_id = $1 AND meeting_id = $2 FOR SHARE""", community_id, meeting_id)


async def subject(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                  voter_id: str) -> asyncpg.Record | None:
    """A frozen voting subject: its representative, first building and units."""
    return await conn.fetchrow(
        """SELECT voter_id, representative, building, units FROM electorate
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3""", community_id, meeting_id, voter_id)


async def subjects_holding(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           units: list[str]) -> list[asyncpg.Record]:
    """The frozen voting subjects holding any of ``units`` (each with all its units)."""
    return await conn.fetch(
        """SELECT voter_id, representative, building, units FROM electorate
            WHERE community_id = $1 AND meeting_id = $2 AND units && $3::text[]
            ORDER BY voter_id""", community_id, meeting_id, units)


async def matter_ids(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[str]:
    """The meeting's matters in ballot order."""
    rows = await conn.fetch(
        """SELECT matter_id FROM matter WHERE community_id = $1 AND meeting_id = $2 ORDER BY position""",
        community_id, meeting_id)
    return [r["matter_id"] for r in rows]


async def voted_matters(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> list[str]:
    """Matters the subject has a submission for (any channel, cast by a proxy too)."""
    rows = await conn.fetch(
        """SELECT DISTINCT matter_id FROM submission
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 ORDER BY matter_id""",
        community_id, meeting_id, voter_id)
    return [r["matter_id"] for r in rows]


async def paper_being_entered(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                              voter_id: str) -> int | None:
    """The paper ballot of the subject whose double entry is unfinished (pending or mismatch), if any."""
    return await conn.fetchval(
        """SELECT paper_id FROM paper_ballot
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND status IN ('pending', 'mismatch')""",
        community_id, meeting_id, voter_id)


async def end_sessions(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> int:
    """Revoke every live ballot session of the subject (whatever code or path made it).

    An electronic vote holds its session row FOR SHARE from its check to its commit
    (repositories/casting.py), so this waits for the subject's votes in flight, and a vote checked
    after it sees the session revoked.
    """
    result = await conn.execute(
        """UPDATE ballot_session SET revoked_at = clock_timestamp()
            WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND revoked_at IS NULL""",
        community_id, meeting_id, voter_id)
    return int(result.split()[-1])


async def revoke_proxies(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str, *,
                         actor: str, reason: str) -> list[int]:
    """Revoke the live written authorizations the subject gave or holds; returns their ids."""
    rows = await conn.fetch(
        """UPDATE proxy_authorization SET revoked_at = clock_timestamp(), revoked_by = $4, revoke_reason = $5
            WHERE community_id = $1 AND meeting_id = $2 AND revoked_at IS NULL
              AND (owner_voter_id = $3 OR proxy_voter_id = $3)
        RETURNING authorization_id""", community_id, meeting_id, voter_id, actor, reason)
    return sorted(r["authorization_id"] for r in rows)


async def insert_transfer(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, voter_id: str,
                          units: list[str], evidence_kind: str, evidence_reference: str, evidence_date: date,
                          note: str, voted_matters: list[str], open_matters: list[str],
                          revoked_serials: list[int], sessions_revoked: int, proxies_revoked: list[int],
                          code_serial: int | None, recorded_by: str) -> asyncpg.Record:
    return await conn.fetchrow(
        f"""INSERT INTO subject_transfer AS t (community_id, meeting_id, voter_id, units, evidence_kind,
                                              evidence_reference, evidence_date, note, voted_matters, open_matters,
                                              revoked_serials, sessions_revoked, proxies_revoked, code_serial,
                                              recorded_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         RETURNING {TRANSFER_COLUMNS}""",
        community_id, meeting_id, voter_id, units, evidence_kind, evidence_reference, evidence_date, note,
        voted_matters, open_matters, revoked_serials, sessions_revoked, proxies_revoked, code_serial, recorded_by)


async def store_new_owner(conn: asyncpg.Connection, community_id: str, meeting_id: str, transfer_id: int, *,
                          name: str, protected: ProtectedIdentity, identity_key_id: str | None) -> None:
    """The new owner's identity, in the columns and forms the register's owner table holds an owner's:
    the name, the keyed hashes of the last four, the masked forms and (with a master key) the sealed
    phone, made by ``IdentityKeys.protect_new_owner`` (server/services/personal_data.py).  Never a
    number in clear (constraint ``transfer_new_owner_identity_not_in_clear``).

    The one place a transfer stores personal data: a change in how the register keeps an owner's
    identity is made here too.
    """
    await conn.execute(
        """INSERT INTO transfer_new_owner (community_id, meeting_id, transfer_id, name, phone_hmac, id_hmac,
                                           identity_key_id, phone_masked, id_masked, phone_enc)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)""",
        community_id, meeting_id, transfer_id, name, protected.phone_hmac, protected.id_hmac, identity_key_id,
        protected.phone_masked, protected.id_masked, protected.phone_enc)


async def list_transfers(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """Every transfer of the meeting, oldest first, with the new owner's name and the masked forms of
    their numbers (the numbers are not stored)."""
    return await conn.fetch(
        f"""SELECT {TRANSFER_COLUMNS}, coalesce(n.name, '') AS new_owner_name,
                   coalesce(n.phone_masked, '') AS new_owner_phone_masked,
                   coalesce(n.id_masked, '') AS new_owner_id_masked
              FROM subject_transfer t
              LEFT JOIN transfer_new_owner n ON n.community_id = t.community_id AND n.meeting_id = t.meeting_id
                                            AND n.transfer_id = t.transfer_id
             WHERE t.community_id = $1 AND t.meeting_id = $2
             ORDER BY t.transfer_id""", community_id, meeting_id)
