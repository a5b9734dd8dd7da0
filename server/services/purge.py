"""Removing personal data once it has been kept long enough (``evote purge``; docs/privacy.md).

The unit of a purge is the meeting, not the community, so an active community's old data goes too:

- a **meeting** is purged once it is decided (closed, published or voided) and its last state
  change happened before the date: its ballot codes (with the sign-in attempt counts, the
  remembered devices and the WeChat openids bound to them) and its ballot sessions are deleted,
  and its result's pseudonym key (which links the record's pseudonyms back to owner ids) is
  blanked; the new owners of its transfers during voting keep their masked name only (their
  numbers' hashes, masked forms and encrypted phones are removed; the transfers stay).  The
  signed result, its signature, the record files, the receipts and the audit chain are kept:
  they name voters by pseudonym only.
- a **register version** is purged once it was imported before the date, every meeting that froze
  it is purged (decided before the date), and it cannot be frozen again: a newer version exists,
  or the community has no meeting still to decide.  Its owners' names are masked (张**), their
  numbers' hashes, masked forms and encrypted phones and any possession evidence are removed.
  A notice can no longer freeze a purged version (the database refuses it): import a current
  register first.

Each community's purge is one transaction with one audit entry (``personal_data.purge``) listing
what went.  A dry run changes nothing and writes no audit entry.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone

import asyncpg

from server.ballot.masking import mask_name
from server.repositories import locks
from server.repositories import personal_data as repo
from server.services import audit

RETENTION_YEARS = 5
# Dates are China's calendar days: "before 2021-06-01" means before 2021-06-01 00:00 UTC+8.
CN_TZ = timezone(timedelta(hours=8))
AUDIT_ACTION = "personal_data.purge"
# What a meeting's purge counts: its codes, sessions, bound WeChat users, codes with sign-in attempts,
# and the new owners of its transfers during voting.
MEETING_COUNTS = ("codes", "sessions", "wechat_openids", "signin_attempts", "new_owners")


class BadPurgeDate(ValueError):
    """The purge date cannot be used (not a date, or after today)."""


def default_before(today: date) -> date:
    """Five years before ``today`` (29 February falls back to the 28th)."""
    try:
        return today.replace(year=today.year - RETENTION_YEARS)
    except ValueError:
        return today.replace(year=today.year - RETENTION_YEARS, day=28)


def parse_before(text: str | None, today: date) -> date:
    """The ``--before`` date: ``YYYY-MM-DD``, not after today; None gives :func:`default_before`."""
    if text is None:
        return default_before(today)
    try:
        before = date.fromisoformat(text.strip())
    except ValueError:
        raise BadPurgeDate(f"--before must be a date written YYYY-MM-DD, got {text!r}") from None
    if before > today:
        raise BadPurgeDate(f"--before {before.isoformat()} is after today ({today.isoformat()}): "
                           "only data of meetings already decided can be purged")
    return before


def today_cn(now: datetime) -> date:
    return now.astimezone(CN_TZ).date()


def boundary(before: date) -> datetime:
    """The first moment of ``before`` in China: everything decided earlier is purged."""
    return datetime.combine(before, time(0), tzinfo=CN_TZ)


@dataclass
class CommunityPurge:
    community_id: str
    meetings: list[dict] = field(default_factory=list)
    register_versions: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        totals = {"meetings": len(self.meetings), "register_versions": len(self.register_versions),
                  "owners": sum(v["owners"] for v in self.register_versions)}
        for name in MEETING_COUNTS:
            totals[name] = sum(m[name] for m in self.meetings)
        return totals

    def as_dict(self) -> dict:
        return {"community_id": self.community_id, "counts": self.counts(),
                "meetings": [{k: v for k, v in m.items() if k != "decided_at"} for m in self.meetings],
                "register_versions": self.register_versions}


async def _plan(conn: asyncpg.Connection, before: date, community_id: str | None) -> dict[str, CommunityPurge]:
    moment = boundary(before)
    plans: dict[str, CommunityPurge] = {}
    for m in await repo.purgeable_meetings(conn, moment, community_id):
        counts = await repo.meeting_personal_counts(conn, m["community_id"], m["meeting_id"])
        plans.setdefault(m["community_id"], CommunityPurge(m["community_id"])).meetings.append({
            "meeting_id": m["meeting_id"], "state": m["state"], "decided_at": m["decided_at"],
            **{k: int(counts[k]) for k in MEETING_COUNTS}})
    for v in await repo.purgeable_register_versions(conn, moment, community_id):
        plans.setdefault(v["community_id"], CommunityPurge(v["community_id"])).register_versions.append(
            {"version": v["version"], "owners": int(v["owners"])})
    return plans


def _summary(before: date, plans: list[CommunityPurge], dry_run: bool) -> dict:
    totals: dict[str, int] = {}
    for plan in plans:
        for name, value in plan.counts().items():
            totals[name] = totals.get(name, 0) + value
    return {"before": before.isoformat(), "dry_run": dry_run, "totals": totals,
            "communities": [p.as_dict() for p in plans]}


async def purge_personal_data(pool: asyncpg.Pool, *, before: date, actor: str, dry_run: bool = False,
                              community_id: str | None = None) -> dict:
    """Purge (or, with ``dry_run``, count) the personal data of everything decided before ``before``.

    Returns ``{"before", "dry_run", "totals", "communities": [...]}`` with the counts of meetings,
    codes, sessions, WeChat openids, codes with sign-in attempts, transfers' new owners, register
    versions and owners.
    """
    async with pool.acquire() as conn:
        planned = await _plan(conn, before, community_id)
    if dry_run:
        return _summary(before, list(planned.values()), dry_run=True)
    done = []
    for cid in planned:
        async with pool.acquire() as conn, conn.transaction():
            await locks.xact_lock(conn, "purge", cid)
            plan = (await _plan(conn, before, cid)).get(cid)   # again, under the lock
            if plan is None:
                continue
            await _purge_community(conn, plan, before=before, actor=actor)
            done.append(plan)
    return _summary(before, done, dry_run=False)


async def _purge_community(conn: asyncpg.Connection, plan: CommunityPurge, *, before: date, actor: str) -> None:
    cid = plan.community_id
    for m in plan.meetings:
        await repo.purge_meeting(conn, cid, m["meeting_id"], actor=actor, before_date=before)
        new_owners = await repo.new_owner_names(conn, cid, m["meeting_id"])
        await repo.purge_new_owners(conn, cid, m["meeting_id"],
                                    [(r["transfer_id"], mask_name(r["name"])) for r in new_owners])
    for v in plan.register_versions:
        names = await repo.owner_names(conn, cid, v["version"])
        await repo.purge_register_version(conn, cid, v["version"],
                                          [(r["owner_id"], mask_name(r["name"])) for r in names])
    await audit.append(conn, community_id=cid, actor=actor, action=AUDIT_ACTION, detail={
        "before": before.isoformat(), "counts": plan.counts(),
        "meetings": [m["meeting_id"] for m in plan.meetings],
        "register_versions": [v["version"] for v in plan.register_versions]})
