"""SQL for ballot codes (table ballot_code) and what a code sheet or sign-in needs to know."""
from __future__ import annotations

import asyncpg

from server.ballot import identity
from server.repositories import locks


async def lock_meeting_codes(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> None:
    """Serialise code issuing for one meeting (any worker) without locking the meeting row."""
    await locks.xact_lock(conn, "codes", community_id, meeting_id)


async def get_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT community_id, meeting_id, title, state, opens_at, closes_at, register_version
             FROM meeting WHERE community_id = $1 AND meeting_id = $2""", community_id, meeting_id)


# The latest transfer of the subject ``e`` during its meeting, with its new owner (who then holds the
# subject's code instead of the representative: docs/meetings.md "Transfers during voting").
_LATEST_TRANSFER = """
    SELECT t.transfer_id, n.name, n.phone_hmac, n.id_hmac, n.identity_key_id
      FROM subject_transfer t
      LEFT JOIN transfer_new_owner n ON n.community_id = t.community_id AND n.meeting_id = t.meeting_id
                                    AND n.transfer_id = t.transfer_id
     WHERE t.community_id = e.community_id AND t.meeting_id = e.meeting_id AND t.voter_id = e.voter_id
     ORDER BY t.transfer_id DESC LIMIT 1"""


async def voters_for_sheets(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            voter_ids: list[str] | None = None) -> list[asyncpg.Record]:
    """Every voting subject of the meeting: its representative, the code holder's name, first building,
    counted units.

    The code of a subject is held by its representative (the owner who casts its ballot), named
    from the frozen register version; once the subject changed hands during the meeting, by the
    new owner of its latest transfer (``new_owner``).  Order: building, then first unit.
    """
    return await conn.fetch(
        f"""SELECT e.voter_id, e.representative, e.building, e.units,
                   CASE WHEN h.transfer_id IS NULL THEN coalesce(o.name, '') ELSE coalesce(h.name, '') END AS name,
                   h.transfer_id IS NOT NULL AS new_owner
             FROM electorate e
             JOIN meeting m ON m.community_id = e.community_id AND m.meeting_id = e.meeting_id
             LEFT JOIN owner o ON o.community_id = e.community_id AND o.version = m.register_version
                              AND o.owner_id = e.representative
             LEFT JOIN LATERAL ({_LATEST_TRANSFER}) h ON true
            WHERE e.community_id = $1 AND e.meeting_id = $2
              AND ($3::text[] IS NULL OR e.voter_id = any($3::text[]))
            ORDER BY e.building, e.units[1], e.voter_id""",
        community_id, meeting_id, voter_ids)


async def live_serials(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT voter_id, serial FROM ballot_code
            WHERE community_id = $1 AND meeting_id = $2 AND revoked_at IS NULL""", community_id, meeting_id)
    return {r["voter_id"]: r["serial"] for r in rows}


async def max_serials(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        """SELECT voter_id, max(serial) AS serial FROM ballot_code
            WHERE community_id = $1 AND meeting_id = $2 GROUP BY voter_id""", community_id, meeting_id)
    return {r["voter_id"]: r["serial"] for r in rows}


async def revoke_live_codes(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                            voter_ids: list[str] | None) -> list[asyncpg.Record]:
    """Revoke the live code of the given voters (all when None); returns (voter_id, serial) revoked."""
    return await conn.fetch(
        """UPDATE ballot_code SET revoked_at = clock_timestamp()
            WHERE community_id = $1 AND meeting_id = $2 AND revoked_at IS NULL
              AND ($3::text[] IS NULL OR voter_id = any($3::text[]))
        RETURNING voter_id, serial""", community_id, meeting_id, voter_ids)


async def revoke_sessions_of_codes(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                                   revoked: list[tuple[str, int]]) -> int:
    """Revoke every ballot session redeemed from the given (voter_id, serial) codes."""
    if not revoked:
        return 0
    result = await conn.execute(
        """UPDATE ballot_session s SET revoked_at = clock_timestamp()
             FROM unnest($3::text[], $4::int[]) AS r(voter_id, serial)
            WHERE s.community_id = $1 AND s.meeting_id = $2 AND s.revoked_at IS NULL
              AND s.voter_id = r.voter_id AND s.code_serial = r.serial""",
        community_id, meeting_id, [v for v, _ in revoked], [s for _, s in revoked])
    return int(result.split()[-1])


async def insert_codes(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """records: (community_id, meeting_id, voter_id, serial, code_hash, issued_by)."""
    await conn.copy_records_to_table(
        "ballot_code", records=records,
        columns=["community_id", "meeting_id", "voter_id", "serial", "code_hash", "issued_by"])


async def find_by_hash(conn: asyncpg.Connection, digest: bytes) -> asyncpg.Record | None:
    """A code (live or revoked) with its meeting and the representative who holds it, by the hash of the code."""
    return await conn.fetchrow(
        """SELECT b.community_id, b.meeting_id, b.voter_id, b.serial, b.revoked_at, b.redeemed_at,
                  b.redeemed_device, b.failed_attempts, b.locked_until, b.lock_level, b.wechat_openid,
                  clock_timestamp() AS now, e.representative,
                  m.title, m.state, m.opens_at, m.closes_at, m.register_version
             FROM ballot_code b
             JOIN meeting m ON m.community_id = b.community_id AND m.meeting_id = b.meeting_id
             JOIN electorate e ON e.community_id = b.community_id AND e.meeting_id = b.meeting_id
                              AND e.voter_id = b.voter_id
            WHERE b.code_hash = $1""", digest)


async def reserve_attempt(conn: asyncpg.Connection, digest: bytes, *, max_failed: int,
                          lock_seconds: list[float]) -> asyncpg.Record | None:
    """Count one identity-check attempt before it is checked, atomically (one UPDATE).

    Parallel guesses from any worker serialise on the row: at most ``max_failed``
    of them get through; the one that reaches the limit also raises ``lock_level``
    and sets ``locked_until`` (cleared again if that attempt turns out right): the
    n-th lockout lasts ``lock_seconds[n - 1]``, and the one after the last of them
    lasts until a staff unlock (``'infinity'``).  An expired lock starts a new
    count at the same level.  Returns None when the code is revoked or locked now.
    """
    return await conn.fetchrow(
        """UPDATE ballot_code SET
                  failed_attempts = CASE WHEN locked_until <= clock_timestamp() THEN 1 ELSE failed_attempts + 1 END,
                  lock_level = CASE WHEN (CASE WHEN locked_until <= clock_timestamp() THEN 1 ELSE failed_attempts + 1 END) >= $2
                                    THEN least(lock_level + 1, cardinality($3::float8[]) + 1) ELSE lock_level END,
                  locked_until = CASE WHEN (CASE WHEN locked_until <= clock_timestamp() THEN 1 ELSE failed_attempts + 1 END) < $2 THEN NULL
                                      WHEN least(lock_level + 1, cardinality($3::float8[]) + 1) <= cardinality($3::float8[])
                                      THEN clock_timestamp()
                                           + make_interval(secs => ($3::float8[])[least(lock_level + 1, cardinality($3::float8[]) + 1)])
                                      ELSE 'infinity'::timestamptz END
            WHERE code_hash = $1 AND revoked_at IS NULL
              AND (locked_until IS NULL OR locked_until <= clock_timestamp())
        RETURNING failed_attempts, locked_until, lock_level""",
        digest, max_failed, [float(s) for s in lock_seconds])


async def lock_state(conn: asyncpg.Connection, digest: bytes) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT revoked_at, failed_attempts, locked_until, lock_level, clock_timestamp() AS now
             FROM ballot_code WHERE code_hash = $1""", digest)


async def unlock_live_code(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           voter_id: str) -> asyncpg.Record | None:
    """Clear the attempt count and any lockout of a voter's live code; returns the serial and the state
    it had (None: no live code)."""
    return await conn.fetchrow(
        """WITH old AS (SELECT serial, failed_attempts, locked_until, lock_level FROM ballot_code
                         WHERE community_id = $1 AND meeting_id = $2 AND voter_id = $3 AND revoked_at IS NULL
                           FOR UPDATE)
           UPDATE ballot_code b SET failed_attempts = 0, locked_until = NULL, lock_level = 0
             FROM old
            WHERE b.community_id = $1 AND b.meeting_id = $2 AND b.voter_id = $3 AND b.serial = old.serial
        RETURNING b.serial, old.failed_attempts, old.locked_until, old.lock_level, clock_timestamp() AS now""",
        community_id, meeting_id, voter_id)


async def mark_redeemed(conn: asyncpg.Connection, digest: bytes, *, device: bytes | None,
                        openid: str | None) -> asyncpg.Record | None:
    """Record a successful sign-in: reset the attempt count and lockouts, remember the device and WeChat user.

    Returns None if the code was revoked meanwhile (a reissue won the race).
    """
    return await conn.fetchrow(
        """UPDATE ballot_code SET failed_attempts = 0, locked_until = NULL, lock_level = 0,
                  redeemed_at = coalesce(redeemed_at, clock_timestamp()),
                  redeemed_device = coalesce($2, redeemed_device),
                  wechat_openid = coalesce($3, wechat_openid)
            WHERE code_hash = $1 AND revoked_at IS NULL
        RETURNING community_id, meeting_id, voter_id, serial, redeemed_at, wechat_openid""",
        digest, device, openid)


async def owner_identity(conn: asyncpg.Connection, community_id: str, version: int,
                         owner_id: str) -> asyncpg.Record | None:
    """What sign-in checks of one owner in a register version (a subject's representative): the keyed
    hashes of the last four of their phone and ID number and the key that made them."""
    return await conn.fetchrow(
        """SELECT owner_id, name, phone_hmac, id_hmac, identity_key_id FROM owner
            WHERE community_id = $1 AND version = $2 AND owner_id = $3""", community_id, version, owner_id)


async def holder_identity(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str,
                          version: int, representative: str) -> asyncpg.Record | None:
    """What sign-in checks of whoever holds a subject's code, as :func:`owner_identity` gives it for a
    register owner: ``holder`` ('new_owner' or 'register'), ``owner_id`` (the id the hashes are bound
    to), ``name``, ``phone_hmac``, ``id_hmac``, ``identity_key_id``.

    The holder is the new owner of the subject's latest transfer during the meeting, whose hashes are
    bound to the owner id ``transfer:<transfer_id>`` (server.ballot.identity.transfer_owner_id), else
    its representative in the frozen register version.  None when there is no record to check against.
    """
    return await conn.fetchrow(
        f"""WITH e AS (SELECT $1::text AS community_id, $2::text AS meeting_id, $3::text AS voter_id),
                 h AS (SELECT x.* FROM e CROSS JOIN LATERAL ({_LATEST_TRANSFER}) x)
            SELECT 'new_owner' AS holder, $6::text || h.transfer_id::text AS owner_id, h.name, h.phone_hmac,
                   h.id_hmac, h.identity_key_id
              FROM h WHERE h.name IS NOT NULL
            UNION ALL
            SELECT 'register', o.owner_id, o.name, o.phone_hmac, o.id_hmac, o.identity_key_id FROM owner o
             WHERE o.community_id = $1 AND o.version = $4 AND o.owner_id = $5 AND NOT EXISTS (SELECT 1 FROM h)""",
        community_id, meeting_id, voter_id, version, representative, identity.TRANSFER_OWNER_PREFIX)


async def code_status(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """The live code of each voting subject (no code material): for staff follow-up."""
    return await conn.fetch(
        """SELECT e.voter_id, e.building, b.serial, b.issued_at, b.redeemed_at,
                  (b.locked_until IS NOT NULL AND b.locked_until > clock_timestamp()) AS locked,
                  b.wechat_openid IS NOT NULL AS wechat_bound
             FROM electorate e
             LEFT JOIN ballot_code b ON b.community_id = e.community_id AND b.meeting_id = e.meeting_id
                                    AND b.voter_id = e.voter_id AND b.revoked_at IS NULL
            WHERE e.community_id = $1 AND e.meeting_id = $2
            ORDER BY e.building, e.voter_id""", community_id, meeting_id)


async def live_code_holder(conn: asyncpg.Connection, digest: bytes) -> asyncpg.Record | None:
    """Whose live (not revoked) code this is: for reading a community's record, also after the close."""
    return await conn.fetchrow(
        """SELECT community_id, meeting_id, voter_id, serial FROM ballot_code
            WHERE code_hash = $1 AND revoked_at IS NULL""", digest)
