"""Proxies (书面委托) and guardians: authorizations, votes on an owner's behalf, the record extension.

Rules (docs/paper-and-proxy.md):

- Staff register an owner's written authorization: the proxy (another voting subject of the
  meeting, who signs in with their own code), kind ``proxy`` or ``guardian``, the matters it
  covers (all the owner votes on when omitted; a matter scoped to buildings where the owner has
  no counted unit cannot be named), ``valid_until`` and a reference to the scanned document.  One live
  authorization per owner (database); at most ``Settings.proxy_cap`` live ones per proxy
  (counted under an advisory lock per proxy, so concurrent registrations cannot pass it).
- The proxy votes with their own ballot token and ``on_behalf_of``: the submission's
  ``voter_id`` is the owner (their area, their person), ``proxy_voter_id`` the proxy, channel
  ``electronic``.  The authorization must be live, unexpired at the server's receive time and
  cover every matter voted, and every matter must be in the owner's scope (422
  ``matter_out_of_scope``: the ballot counts under the owner, so the owner's scope decides).
- An owner's own vote (either channel) for a matter ends the proxy's power for that matter:
  the proxy is refused afterwards (checked again inside the INSERT statement, so a concurrent
  personal vote cannot slip in between).  If the proxy voted first, the owner's later electronic
  vote is refused by the casting service (unless revision is allowed); the meeting's
  duplicate policy decides a later paper ballot, exactly as ``evote tally`` will.
- The record gets ``proxies.csv`` and ``paper.csv`` (extension files a version-1 reader
  ignores) and the signed payload a ``channels`` split; their format and what ``evote verify``
  checks are in server/record/extension.py.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import asyncpg

from server.auth.ballot import BallotPrincipal, ensure_session_live
from server.ballot.amounts import format_area
from server.ballot.receipts import format_cast_at, receipt_code
from server.ballot.tally import Rules, Submission
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.record.extension import AUTHORIZATION_KINDS as KINDS
from server.record.extension import PAPER_COLUMNS, PAPER_FILE, PROXIES_FILE, PROXY_COLUMNS, channel_split
from server.repositories import clock
from server.repositories import meetings as meetings_repo
from server.repositories import paper as repo
from server.services import audit, casting
from server.services.effects import Effects
from server.services.input_dates import iso_datetime

KIND_NAMES = {"proxy": "委托代理人", "guardian": "监护人"}
AUTHORIZABLE_STATES = ("noticed", "open")


# ================================================================ pure: figures and the record extension

def _csv_bytes(header: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else str(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


async def record_extension(conn: asyncpg.Connection, community_id: str, meeting_id: str, alias, *,
                           rules: Rules, submissions: Iterable[Submission],
                           areas: Mapping[str, int]) -> tuple[dict[str, bytes], dict[str, Any]]:
    """(extension files, channel split) for a meeting's record; no files when it had no paper or proxy ballot.

    ``alias`` turns an owner id into the record's pseudonym; ``submissions`` and ``areas`` are
    the record's (pseudonymous) ones.
    """
    proxy_rows = await repo.proxy_record_rows(conn, community_id, meeting_id)
    paper_rows = await repo.paper_record_rows(conn, community_id, meeting_id)
    proxy_ids = await repo.proxy_ballot_ids(conn, community_id, meeting_id)
    files: dict[str, bytes] = {}
    if proxy_rows or proxy_ids or paper_rows:
        files[PROXIES_FILE] = _csv_bytes(PROXY_COLUMNS, (
            (r["ballot_id"], alias(r["proxy_voter_id"]), r["authorization_id"], r["kind"]) for r in proxy_rows))
        files[PAPER_FILE] = _csv_bytes(PAPER_COLUMNS, (
            (r["ballot_id"], r["paper_id"], r["paper_date"].isoformat() if r["paper_date"] else "")
            for r in paper_rows))
    return files, channel_split(rules, submissions, areas, proxy_ids)


# ================================================================ authorizations (staff)

def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def authorization_doc(row: asyncpg.Record, now: datetime | None = None) -> dict:
    doc = {"authorization_id": row["authorization_id"], "owner_voter_id": row["owner_voter_id"],
           "proxy_voter_id": row["proxy_voter_id"], "kind": row["kind"], "kind_name": KIND_NAMES[row["kind"]],
           "matters": list(row["matters"]) if row["matters"] is not None else None,
           "valid_until": _iso(row["valid_until"]), "document_ref": row["document_ref"], "note": row["note"],
           "created_by": row["created_by"], "created_at": _iso(row["created_at"]),
           "revoked_at": _iso(row["revoked_at"]), "revoked_by": row["revoked_by"],
           "revoke_reason": row["revoke_reason"]}
    if now is not None:
        doc["live"] = row["revoked_at"] is None and row["valid_until"] > now
    return doc


def parse_valid_until(raw: Any) -> datetime:
    if not isinstance(raw, str):
        raise ValidationFailed("请填写委托有效期 valid_until（如 2026-03-01T18:00:00+08:00）",
                               code="bad_valid_until", fields={"valid_until": "ISO 8601 时间"})
    try:
        moment = iso_datetime(raw, "valid_until")
    except ValueError:
        raise ValidationFailed("委托有效期格式不正确", code="bad_valid_until",
                               fields={"valid_until": "ISO 8601 时间"}) from None
    if moment.tzinfo is None:
        raise ValidationFailed("委托有效期须带时区（如 +08:00）", code="bad_valid_until",
                               fields={"valid_until": "需要时区"})
    return moment


async def register_authorization(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str,
                                 owner_voter_id: str, proxy_voter_id: str, kind: str, matters: list[str] | None,
                                 valid_until: datetime, document_ref: str, note: str, cap: int) -> dict:
    if kind not in KINDS:
        raise ValidationFailed("kind 只能是 proxy（委托代理）或 guardian（监护人）", code="bad_kind",
                               fields={"kind": "proxy / guardian"})
    if owner_voter_id == proxy_voter_id:
        raise ValidationFailed("业主不能委托自己", code="proxy_is_owner", fields={"proxy_voter_id": "不能与业主相同"})
    if not document_ref.strip():
        raise ValidationFailed("请填写书面委托书扫描件的编号或文件名", code="document_required",
                               fields={"document_ref": "必填"})
    definition = await casting.meeting_definition(pool, community_id, meeting_id)
    if matters is not None:
        unknown = [m for m in matters if m not in definition.matters]
        if not matters or unknown or len(set(matters)) != len(matters):
            raise ValidationFailed("委托的议题有误：" + ("、".join(map(str, unknown[:5])) or "不能为空或重复"),
                                   code="bad_matters", fields={"matters": unknown[:5]})
        matters = [m for m in definition.matters if m in set(matters)]   # meeting order
    async with pool.acquire() as conn, conn.transaction():
        clock = await repo.meeting_clock(conn, community_id, meeting_id)
        if clock is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        if clock["state"] not in AUTHORIZABLE_STATES:
            raise Conflict("会议不在公告或投票期间，不能登记委托", code="meeting_not_open",
                           fields={"state": clock["state"]})
        if valid_until <= clock["now"]:
            raise ValidationFailed("委托有效期已过", code="authorization_expired",
                                   fields={"valid_until": valid_until.isoformat()})
        for who in (owner_voter_id, proxy_voter_id):
            if not await repo.in_electorate(conn, community_id, meeting_id, who):
                raise NotFound(f"{who[:40]} 不在本次会议的表决名单中", code="voter_not_found",
                               fields={"voter_id": who[:40]})
        casting.refuse_out_of_scope(definition, owner_voter_id, matters or ())
        await repo.lock_proxy(conn, community_id, meeting_id, proxy_voter_id)
        if await repo.holds_live_authorization(conn, community_id, meeting_id, proxy_voter_id):
            raise Conflict("该代理人本人已委托他人投票，不能再代理别人", code="proxy_has_delegated")
        held = await repo.live_count_for_proxy(conn, community_id, meeting_id, proxy_voter_id)
        if held >= cap:
            raise Conflict(f"该代理人已代理 {held} 户，已达上限 {cap} 户，不能再接受委托", code="proxy_cap_reached",
                           fields={"cap": cap, "held": held})
        try:
            async with conn.transaction():
                row = await repo.insert_authorization(
                    conn, community_id, meeting_id, owner_voter_id=owner_voter_id, proxy_voter_id=proxy_voter_id,
                    kind=kind, matters=matters, valid_until=valid_until, document_ref=document_ref.strip(),
                    note=note, created_by=actor)
        except asyncpg.UniqueViolationError:
            raise Conflict("该业主已有有效的委托，请先撤销原委托", code="already_authorized") from None
        await audit.append(conn, community_id=community_id, actor=actor, action="proxy.authorize",
                           detail={"meeting_id": meeting_id, "authorization_id": row["authorization_id"],
                                   "owner": owner_voter_id, "proxy": proxy_voter_id, "kind": kind,
                                   "matters": matters, "valid_until": valid_until.isoformat(),
                                   "document_ref": document_ref.strip()})
        return authorization_doc(row, clock["now"])


async def revoke_authorization(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str,
                               authorization_id: int, reason: str) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        if await repo.get_authorization(conn, community_id, meeting_id, authorization_id) is None:
            raise NotFound("找不到该委托", code="authorization_not_found")
        row = await repo.revoke_authorization(conn, community_id, meeting_id, authorization_id, actor=actor,
                                              reason=reason)
        if row is None:
            raise Conflict("该委托已经撤销", code="already_revoked")
        await audit.append(conn, community_id=community_id, actor=actor, action="proxy.revoke",
                           detail={"meeting_id": meeting_id, "authorization_id": authorization_id,
                                   "reason": reason})
        return authorization_doc(row, await clock.now(conn))


def _matter_status(auth: asyncpg.Record, definition: casting.MeetingDefinition,
                   subs: list[asyncpg.Record]) -> list[dict]:
    """Where each matter the authorization covers stands (only matters in the owner's scope)."""
    covered = set(auth["matters"]) if auth["matters"] is not None else None
    out = []
    for matter_id in definition.matter_ids_for(auth["owner_voter_id"]):
        if covered is not None and matter_id not in covered:
            continue
        mine = [s for s in subs if s["voter_id"] == auth["owner_voter_id"] and s["matter_id"] == matter_id]
        personal = [s for s in mine if s["proxy_voter_id"] is None]
        by_proxy = [s for s in mine if s["proxy_voter_id"] is not None]
        if personal and (not by_proxy or personal[0]["received_at"] < by_proxy[0]["received_at"]):
            status, text = "owner_voted", "业主已亲自投票，委托对此议题失效"
        elif by_proxy:
            status, text = "proxy_voted", "代理人已代为投票"
        else:
            status, text = "open", "可代为投票"
        out.append({"matter_id": matter_id, "status": status, "status_text": text})
    return out


async def list_for_meeting(pool: asyncpg.Pool, *, community_id: str, meeting_id: str) -> dict:
    definition = await casting.meeting_definition(pool, community_id, meeting_id)
    async with pool.acquire() as conn:
        rows = await repo.list_authorizations(conn, community_id, meeting_id)
        subs = await repo.owners_submissions(conn, community_id, meeting_id, [r["owner_voter_id"] for r in rows])
        now = await clock.now(conn)
    return {"community_id": community_id, "meeting_id": meeting_id, "authorizations": [
        {**authorization_doc(r, now), "matter_status": _matter_status(r, definition, subs)} for r in rows]}


# ================================================================ the proxy's side (ballot token)

async def held_by(pool: asyncpg.Pool, principal: BallotPrincipal) -> dict:
    """The owners the signed-in voter may vote for, and where each matter stands."""
    definition = await casting.meeting_definition(pool, principal.community_id, principal.meeting_id)
    async with pool.acquire() as conn:
        rows = await repo.list_authorizations(conn, principal.community_id, principal.meeting_id,
                                              proxy_voter_id=principal.voter_id)
        subs = await repo.owners_submissions(conn, principal.community_id, principal.meeting_id,
                                             [r["owner_voter_id"] for r in rows])
        members = {r["owner_voter_id"]: await meetings_repo.electorate_member(
            conn, principal.community_id, principal.meeting_id, r["owner_voter_id"]) for r in rows}
        now = await clock.now(conn)
        places = await meetings_repo.area_places(conn, principal.community_id, principal.meeting_id) or 2
    owners = []
    for r in rows:
        member = members[r["owner_voter_id"]]
        owners.append({
            "owner_voter_id": r["owner_voter_id"], "authorization_id": r["authorization_id"], "kind": r["kind"],
            "kind_name": KIND_NAMES[r["kind"]], "valid_until": _iso(r["valid_until"]),
            "live": r["valid_until"] > now,
            "units": list(member["units"]) if member else [], "area": format_area(member["area"], places) if member else None,
            "matters": _matter_status(r, definition, subs)})
    return {"meeting_id": principal.meeting_id, "proxy_voter_id": principal.voter_id, "owners": owners}


def _replay(previous: list[asyncpg.Record], owner_voter_id: str, votes: list[casting.Vote]) -> casting.CastResult:
    """A retry with the same idempotency key: the earlier receipts when it is for the same owner,
    matters and choices; 409 ``idempotency_key_reused`` otherwise (as for an owner's own vote)."""
    by_matter = {r["matter_id"]: r for r in previous}
    asked = {v.matter_id: sorted(v.choices) for v in votes}
    earlier = {m: sorted((c, v) for c, v in json.loads(r["choices"])) for m, r in by_matter.items()}
    if {r["voter_id"] for r in previous} != {owner_voter_id} or earlier != asked:
        raise Conflict("该提交编号已用于另一次投票，请刷新页面后重新提交", code="idempotency_key_reused",
                       fields={"matters": sorted(by_matter)})
    return casting.replay_receipts(
        {m: {"matter_id": m, "ballot_id": str(r["ballot_id"]), "receipt": receipt_code(bytes(r["receipt"])),
             "received_at": format_cast_at(r["received_at"])} for m, r in by_matter.items()}, votes)


class OwnerVotedPersonally(Conflict):
    code = "owner_voted_personally"


async def cast_for_owner(pool: asyncpg.Pool, effects: Effects, principal: BallotPrincipal, *, owner_voter_id: Any,
                         votes_raw: Any, idempotency_key: str | None) -> casting.CastResult:
    """The proxy (``principal``) votes for ``owner_voter_id``; counted under the owner's area and person.

    Live views are told which ballots were added once the transaction has committed."""
    result = await _cast_for_owner(pool, principal, owner_voter_id=owner_voter_id, votes_raw=votes_raw,
                                   idempotency_key=idempotency_key)
    # announced on a replay too (see casting.cast_votes)
    await casting.announce_submissions(effects, principal.community_id, principal.meeting_id, result.receipts)
    return result


async def _cast_for_owner(pool: asyncpg.Pool, principal: BallotPrincipal, *, owner_voter_id: Any, votes_raw: Any,
                          idempotency_key: str | None) -> casting.CastResult:
    cid, mid, proxy = principal.community_id, principal.meeting_id, principal.voter_id
    if not isinstance(owner_voter_id, str) or not owner_voter_id or len(owner_voter_id) > 200:
        raise ValidationFailed("请写明代哪位业主投票 on_behalf_of", code="bad_on_behalf_of",
                               fields={"on_behalf_of": "业主编号"})
    if owner_voter_id == proxy:
        raise ValidationFailed("为自己投票请直接投票，不需要 on_behalf_of", code="proxy_is_owner",
                               fields={"on_behalf_of": "不能是自己"})
    definition = await casting.meeting_definition(pool, cid, mid)
    votes = casting.parse_votes(definition, votes_raw)
    matter_ids = [v.matter_id for v in votes]
    casting.refuse_out_of_scope(definition, owner_voter_id, matter_ids)
    async with pool.acquire() as conn, conn.transaction():
        clock = await repo.meeting_clock(conn, cid, mid)
        if clock is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        await ensure_session_live(conn, principal)
        await repo.lock_voter(conn, cid, mid, owner_voter_id)
        auth = await repo.live_authorization(conn, cid, mid, owner_voter_id, proxy)
        if auth is None:
            raise Forbidden("您没有该业主有效的书面委托，不能代为投票", code="proxy_not_authorized")
        existing = await repo.voter_matter_submissions(conn, cid, mid, owner_voter_id, list(definition.matters))
        if idempotency_key is not None:
            previous = await repo.proxy_submissions_by_key(conn, cid, mid, proxy, idempotency_key)
            if previous:
                return _replay(previous, owner_voter_id, votes)
        now: datetime = clock["now"]
        casting.refuse_outside_window(clock)
        if auth["valid_until"] <= now:
            raise Forbidden("该业主的书面委托已过期，不能再代为投票", code="proxy_authorization_expired",
                            fields={"valid_until": auth["valid_until"].isoformat()})
        if auth["matters"] is not None:
            outside = [m for m in matter_ids if m not in set(auth["matters"])]
            if outside:
                raise Forbidden(f"书面委托不包括议题 {'、'.join(outside)}，不能代为投票", code="proxy_matter_not_covered",
                                fields={"matters": outside})
        personal = sorted({r["matter_id"] for r in existing if r["matter_id"] in matter_ids
                           and r["proxy_voter_id"] is None})
        if personal:
            raise OwnerVotedPersonally(f"业主本人已对议题 {'、'.join(personal)} 投票，委托对这些议题已失效，不能代为投票",
                                       fields={"matters": personal})
        done = sorted({r["matter_id"] for r in existing if r["matter_id"] in matter_ids and r["channel"] == "electronic"})
        if done and not definition.allow_revision:
            raise Conflict(f"已代该业主对议题 {'、'.join(done)} 投过票，每个议题只能投一次", code="already_voted",
                           fields={"matters": done})
        rows, choices, receipts = casting.build_rows(cid, mid, owner_voter_id, "electronic", now, votes)
        try:
            async with conn.transaction():
                inserted = await repo.insert_submissions(
                    conn, community_id=cid, meeting_id=mid, voter_id=owner_voter_id, channel="electronic",
                    received_at=now, allow_revision=definition.allow_revision, paper_date=None,
                    proxy_voter_id=proxy, idempotency_key=idempotency_key, rows=rows, choices=choices)
        except asyncpg.UniqueViolationError:
            raise Conflict("该业主的另一次投票正在处理，请稍后刷新查看", code="concurrent_submission") from None
        if len(inserted) != len(rows):
            # The owner's own vote committed between our check and the INSERT: the owner wins.
            raise OwnerVotedPersonally("业主本人刚刚已投票，委托对该议题已失效，不能代为投票")
        await repo.link_proxy_submissions(conn, cid, mid, auth["authorization_id"], [r[0] for r in rows])
        await audit.append(conn, community_id=cid, actor=principal.actor, action="proxy.vote",
                           detail={"meeting_id": mid, "owner": owner_voter_id, "authorization_id":
                                   auth["authorization_id"], "kind": auth["kind"], "matters": matter_ids,
                                   "ballot_ids": [str(r[0]) for r in rows]})
    return casting.CastResult(True, now, receipts)


__all__ = [
    "cast_for_owner",
    "held_by",
    "list_for_meeting",
    "record_extension",
    "register_authorization",
    "revoke_authorization",
]
