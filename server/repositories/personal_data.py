"""SQL for owners' personal data: the start-up conversion of clear numbers, and the purge.

Decisions (what to convert, what may be purged) are made in server.services.personal_data
and server.services.purge.
"""
from __future__ import annotations

from datetime import datetime

import asyncpg

CLEAR_CHECK = "owner_identity_not_in_clear"
NEW_OWNER_CLEAR_CHECK = "transfer_new_owner_identity_not_in_clear"
# table -> the constraint keeping its phone and id_number columns empty
CLEAR_CHECKS = {"owner": CLEAR_CHECK, "transfer_new_owner": NEW_OWNER_CLEAR_CHECK}
# A meeting's decision: the state it ended in, and when it got there (its last state change).
DECIDED_STATES = ("closed", "published", "voided")


# ---------------------------------------------------------------- converting clear numbers

async def clear_checks_validated(conn: asyncpg.Connection) -> bool:
    """Whether the database already guarantees that no owner or new-owner row holds a clear number."""
    validated = await conn.fetchval(
        """SELECT count(*) FROM pg_constraint c
             JOIN unnest($1::text[], $2::text[]) AS k(tablename, conname)
               ON c.conname = k.conname AND c.conrelid = k.tablename::regclass
            WHERE c.convalidated""", list(CLEAR_CHECKS), list(CLEAR_CHECKS.values()))
    return validated == len(CLEAR_CHECKS)


async def owners_in_clear(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every owner row (any register version) still holding a phone or ID number in clear, locked."""
    return await conn.fetch(
        """SELECT community_id, version, owner_id, phone, id_number FROM owner
            WHERE phone <> '' OR id_number <> ''
            ORDER BY community_id, version, owner_id FOR UPDATE""")


async def store_protected(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """Replace clear numbers by their protected forms and blank them.

    records: (community_id, version, owner_id, phone_hmac, id_hmac, identity_key_id, phone_masked,
    id_masked, phone_enc).
    """
    if not records:
        return
    columns = list(zip(*records, strict=True))
    await conn.execute(
        """UPDATE owner o SET phone = '', id_number = '', phone_hmac = r.phone_hmac, id_hmac = r.id_hmac,
                  identity_key_id = r.identity_key_id, phone_masked = r.phone_masked,
                  id_masked = r.id_masked, phone_enc = r.phone_enc
             FROM unnest($1::text[], $2::int[], $3::text[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                         $8::text[], $9::bytea[])
                  AS r(community_id, version, owner_id, phone_hmac, id_hmac, identity_key_id, phone_masked,
                       id_masked, phone_enc)
            WHERE o.community_id = r.community_id AND o.version = r.version AND o.owner_id = r.owner_id""",
        *[list(c) for c in columns])


async def new_owners_in_clear(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every transfer's new owner still holding a phone or ID number in clear (stored before 0075), locked."""
    return await conn.fetch(
        """SELECT community_id, meeting_id, transfer_id, phone, id_number FROM transfer_new_owner
            WHERE phone <> '' OR id_number <> ''
            ORDER BY community_id, meeting_id, transfer_id FOR UPDATE""")


async def store_new_owners_protected(conn: asyncpg.Connection, records: list[tuple]) -> None:
    """:func:`store_protected` for transfers' new owners.

    records: (community_id, meeting_id, transfer_id, phone_hmac, id_hmac, identity_key_id, phone_masked,
    id_masked, phone_enc).
    """
    if not records:
        return
    columns = list(zip(*records, strict=True))
    await conn.execute(
        """UPDATE transfer_new_owner n SET phone = '', id_number = '', phone_hmac = r.phone_hmac,
                  id_hmac = r.id_hmac, identity_key_id = r.identity_key_id, phone_masked = r.phone_masked,
                  id_masked = r.id_masked, phone_enc = r.phone_enc
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[], $7::text[],
                         $8::text[], $9::bytea[])
                  AS r(community_id, meeting_id, transfer_id, phone_hmac, id_hmac, identity_key_id, phone_masked,
                       id_masked, phone_enc)
            WHERE n.community_id = r.community_id AND n.meeting_id = r.meeting_id
              AND n.transfer_id = r.transfer_id""",
        *[list(c) for c in columns])


async def validate_clear_checks(conn: asyncpg.Connection) -> None:
    for table, constraint in CLEAR_CHECKS.items():
        await conn.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}")


async def identity_key_ids(conn: asyncpg.Connection) -> list[str]:
    """The identity keys the stored hashes were made with (register owners and transfers' new owners)."""
    rows = await conn.fetch(
        """SELECT identity_key_id FROM owner WHERE identity_key_id IS NOT NULL
           UNION SELECT identity_key_id FROM transfer_new_owner WHERE identity_key_id IS NOT NULL""")
    return sorted(r["identity_key_id"] for r in rows)


async def sealed_phone(conn: asyncpg.Connection, community_id: str, version: int,
                       owner_id: str) -> bytes | None:
    value = await conn.fetchval(
        "SELECT phone_enc FROM owner WHERE community_id = $1 AND version = $2 AND owner_id = $3",
        community_id, version, owner_id)
    return None if value is None else bytes(value)


# ---------------------------------------------------------------- purge

_DECIDED_AT = """coalesce((SELECT max(t.at) FROM meeting_transition t
                            WHERE t.community_id = m.community_id AND t.meeting_id = m.meeting_id),
                           m.published_at, m.closed_at)"""


async def purgeable_meetings(conn: asyncpg.Connection, before: datetime,
                             community_id: str | None = None) -> list[asyncpg.Record]:
    """Decided meetings whose last state change was before ``before`` and that were not purged yet."""
    return await conn.fetch(
        f"""SELECT m.community_id, m.meeting_id, m.state, m.register_version, {_DECIDED_AT} AS decided_at
              FROM meeting m
             WHERE m.state = any($2::text[]) AND {_DECIDED_AT} < $1
               AND ($3::text IS NULL OR m.community_id = $3)
               AND NOT EXISTS (SELECT 1 FROM personal_data_purge p
                                WHERE p.community_id = m.community_id AND p.meeting_id = m.meeting_id)
             ORDER BY m.community_id, m.meeting_id""",
        before, list(DECIDED_STATES), community_id)


async def purgeable_register_versions(conn: asyncpg.Connection, before: datetime,
                                      community_id: str | None = None) -> list[asyncpg.Record]:
    """Register versions whose owners' personal data no kept meeting needs any more.

    A version qualifies when it was imported before ``before``, was not purged yet, every
    meeting that froze it is decided (its last state change before ``before``), and either a
    newer version exists or the community has no meeting still to decide (a draft would
    freeze the latest version at its notice).
    """
    return await conn.fetch(
        f"""SELECT v.community_id, v.version, v.created_at,
                   (SELECT count(*) FROM owner o
                     WHERE o.community_id = v.community_id AND o.version = v.version) AS owners
              FROM register_version v
             WHERE v.created_at < $1 AND v.personal_data_purged_at IS NULL
               AND ($3::text IS NULL OR v.community_id = $3)
               AND NOT EXISTS (SELECT 1 FROM meeting m
                                WHERE m.community_id = v.community_id AND m.register_version = v.version
                                  AND NOT (m.state = any($2::text[]) AND {_DECIDED_AT} < $1))
               AND (v.version < (SELECT max(w.version) FROM register_version w
                                  WHERE w.community_id = v.community_id)
                    OR NOT EXISTS (SELECT 1 FROM meeting m
                                    WHERE m.community_id = v.community_id
                                      AND NOT m.state = any($2::text[])))
             ORDER BY v.community_id, v.version""",
        before, list(DECIDED_STATES), community_id)


async def meeting_personal_counts(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record:
    """What a meeting's purge removes: codes (with sign-in attempts and WeChat openids), sessions, and the
    personal data of the new owners of its transfers during voting."""
    return await conn.fetchrow(
        """SELECT (SELECT count(*) FROM ballot_code WHERE community_id = $1 AND meeting_id = $2) AS codes,
                  (SELECT count(*) FROM ballot_code WHERE community_id = $1 AND meeting_id = $2
                      AND wechat_openid IS NOT NULL) AS wechat_openids,
                  (SELECT count(*) FROM ballot_code WHERE community_id = $1 AND meeting_id = $2
                      AND (failed_attempts > 0 OR locked_until IS NOT NULL)) AS signin_attempts,
                  (SELECT count(*) FROM ballot_session WHERE community_id = $1 AND meeting_id = $2) AS sessions,
                  (SELECT count(*) FROM transfer_new_owner WHERE community_id = $1 AND meeting_id = $2)
                      AS new_owners""",
        community_id, meeting_id)


async def purge_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str, *, actor: str,
                        before_date) -> None:
    """Remove a decided meeting's codes and sessions and its result's pseudonym key; mark it purged."""
    await conn.execute("DELETE FROM ballot_session WHERE community_id = $1 AND meeting_id = $2",
                       community_id, meeting_id)
    await conn.execute("DELETE FROM ballot_code WHERE community_id = $1 AND meeting_id = $2",
                       community_id, meeting_id)
    # The key that links the record's pseudonyms back to owner ids; the record itself is kept.
    await conn.execute(
        "UPDATE meeting_result SET pseudonym_key = ''::bytea WHERE community_id = $1 AND meeting_id = $2",
        community_id, meeting_id)
    await conn.execute(
        """INSERT INTO personal_data_purge (community_id, meeting_id, purged_by, before)
           VALUES ($1, $2, $3, $4)""", community_id, meeting_id, actor, before_date)


async def new_owner_names(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> list[asyncpg.Record]:
    """The new owners of a meeting's transfers during voting, locked."""
    return await conn.fetch(
        """SELECT transfer_id, name FROM transfer_new_owner WHERE community_id = $1 AND meeting_id = $2
            ORDER BY transfer_id FOR UPDATE""", community_id, meeting_id)


async def purge_new_owners(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                           masked_names: list[tuple[int, str]]) -> None:
    """Mask the names of a meeting's transfers' new owners and blank their numbers' hashes, masked forms
    and encrypted phones (the transfers themselves stay)."""
    await conn.execute(
        """UPDATE transfer_new_owner n SET name = r.name, phone = '', id_number = '', phone_hmac = NULL,
                  id_hmac = NULL, identity_key_id = NULL, phone_masked = '', id_masked = '', phone_enc = NULL
             FROM unnest($3::bigint[], $4::text[]) AS r(transfer_id, name)
            WHERE n.community_id = $1 AND n.meeting_id = $2 AND n.transfer_id = r.transfer_id""",
        community_id, meeting_id, [t for t, _ in masked_names], [n for _, n in masked_names])


async def owner_names(conn: asyncpg.Connection, community_id: str, version: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT owner_id, name FROM owner WHERE community_id = $1 AND version = $2 FOR UPDATE",
        community_id, version)


async def purge_register_version(conn: asyncpg.Connection, community_id: str, version: int,
                                 masked_names: list[tuple[str, str]]) -> None:
    """Mask the owners' names, blank their numbers' hashes, masked forms, encrypted phones and
    possession evidence, and mark the version purged."""
    await conn.execute(
        """UPDATE owner o SET name = r.name, phone = '', id_number = '', phone_hmac = NULL, id_hmac = NULL,
                  identity_key_id = NULL, phone_masked = '', id_masked = '', phone_enc = NULL,
                  possession_evidence = CASE WHEN o.possession_evidence = '' THEN '' ELSE '已按保存期限清除' END
             FROM unnest($3::text[], $4::text[]) AS r(owner_id, name)
            WHERE o.community_id = $1 AND o.version = $2 AND o.owner_id = r.owner_id""",
        community_id, version, [o for o, _ in masked_names], [n for _, n in masked_names])
    await conn.execute(
        """UPDATE register_version SET personal_data_purged_at = clock_timestamp()
            WHERE community_id = $1 AND version = $2""", community_id, version)


async def purged_version(conn: asyncpg.Connection, community_id: str, version: int) -> bool:
    return bool(await conn.fetchval(
        """SELECT personal_data_purged_at IS NOT NULL FROM register_version
            WHERE community_id = $1 AND version = $2""", community_id, version))
