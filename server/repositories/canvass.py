"""SQL for the canvass list: the counted units of voting subjects that have cast nothing yet."""
from __future__ import annotations

import asyncpg


async def units_not_voted(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                          building: str | None) -> list[asyncpg.Record]:
    """Every counted unit whose voting subject has no submission in the meeting (any matter, any channel).

    With the unit's building (from the frozen register version), the subject, and who holds its code:
    the representative named in that version, or the new owner of the subject's latest transfer during
    the meeting (``name``, ``phone_masked``).  ``building`` narrows to one building.
    """
    return await conn.fetch(
        """SELECT u.building, x.unit_id, e.voter_id,
                  CASE WHEN h.transfer_id IS NULL THEN coalesce(o.name, '') ELSE coalesce(h.name, '') END AS name,
                  CASE WHEN h.transfer_id IS NULL THEN coalesce(o.phone_masked, '')
                       ELSE coalesce(h.phone_masked, '') END AS phone_masked
             FROM electorate e
             JOIN meeting m ON m.community_id = e.community_id AND m.meeting_id = e.meeting_id
             CROSS JOIN LATERAL unnest(e.units) AS x(unit_id)
             JOIN unit u ON u.community_id = e.community_id AND u.version = m.register_version
                        AND u.unit_id = x.unit_id
             LEFT JOIN owner o ON o.community_id = e.community_id AND o.version = m.register_version
                              AND o.owner_id = e.representative
             LEFT JOIN LATERAL (
                 SELECT t.transfer_id, n.name, n.phone_masked
                   FROM subject_transfer t
                   LEFT JOIN transfer_new_owner n ON n.community_id = t.community_id
                        AND n.meeting_id = t.meeting_id AND n.transfer_id = t.transfer_id
                  WHERE t.community_id = e.community_id AND t.meeting_id = e.meeting_id AND t.voter_id = e.voter_id
                  ORDER BY t.transfer_id DESC LIMIT 1) h ON true
            WHERE e.community_id = $1 AND e.meeting_id = $2
              AND ($3::text IS NULL OR u.building = $3)
              AND NOT EXISTS (SELECT 1 FROM submission s
                               WHERE s.community_id = e.community_id AND s.meeting_id = e.meeting_id
                                 AND s.voter_id = e.voter_id)
            ORDER BY u.building, x.unit_id""",
        community_id, meeting_id, building)


async def meeting_buildings(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> set[str]:
    """The buildings of the meeting's frozen register version that hold a counted unit."""
    rows = await conn.fetch(
        """SELECT DISTINCT u.building
             FROM electorate e
             JOIN meeting m ON m.community_id = e.community_id AND m.meeting_id = e.meeting_id
             CROSS JOIN LATERAL unnest(e.units) AS x(unit_id)
             JOIN unit u ON u.community_id = e.community_id AND u.version = m.register_version
                        AND u.unit_id = x.unit_id
            WHERE e.community_id = $1 AND e.meeting_id = $2""", community_id, meeting_id)
    return {row["building"] for row in rows}
