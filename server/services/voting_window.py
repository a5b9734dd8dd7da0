"""The voting window: voiding a meeting with a reason, and extending its close (延期公告).

voting-rules.md: voting runs for the whole noticed period and cannot be closed early (the close
refusal is in server.services.meetings: ``early_close_refused``); a meeting may only be voided,
with a reason, audited and published; it may be extended, when its rules allow it, by a published
extension notice made before the original close.

- :func:`void_meeting`: draft / noticed / open -> ``voided`` (transition row with the reason,
  audit entry, an event for live views). A voided meeting takes no more votes, and no result is
  ever signed for it; the public results page and the owner page say why.
- :func:`extend_meeting`: a later ``closes_at``, while the meeting is noticed or open and strictly
  before its current close, within the meeting's ``max_extensions`` and ``max_extension_days``
  (set on the draft, frozen at the notice). The meeting row is locked first and the UPDATE is
  guarded (``closes_at > now``), the closes are guarded the other way (``closes_at <= now``), so an
  extension and a close at the same moment never both win.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg

from server.errors import Conflict, NotFound, ValidationFailed, missing_field
from server.repositories import clock
from server.repositories import meetings as meetings_repo
from server.repositories import window as window_repo
from server.services import audit
from server.services import meetings as meetings_service
from server.services.effects import Effects
from server.services.meeting_input import beijing_time, check_reason, iso, parse_time

VOIDABLE_STATES = ("draft", "noticed", "open")
EXTENDABLE_STATES = ("noticed", "open")


async def _locked_meeting(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict:
    meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id, lock="update")
    if meeting is None:
        raise NotFound("找不到该会议", code="meeting_not_found")
    return meeting


def _voided(meeting: dict) -> Conflict:
    return Conflict(f"会议已于 {beijing_time(meeting['voided_at'])} 宣布作废（理由：{meeting['void_reason']}）",
                    code="meeting_voided", fields={"voided_at": iso(meeting["voided_at"]),
                                                   "reason": meeting["void_reason"]})


# ---------------------------------------------------------------- void

async def void_meeting(pool: asyncpg.Pool, effects: Effects, *, community_id: str, meeting_id: str, data: Any,
                       actor: str) -> dict:
    """Declare a meeting void before its close; returns the meeting document."""
    reason = check_reason(data, label="作废理由")
    async with pool.acquire() as conn, conn.transaction():
        meeting = await _locked_meeting(conn, community_id, meeting_id)
        if meeting["state"] == "voided":
            raise _voided(meeting)
        if meeting["state"] not in VOIDABLE_STATES:
            raise Conflict(f"会议当前为“{meetings_service.STATE_NAMES[meeting['state']]}”，投票已经结束，"
                           "不能再宣布作废", code="wrong_state", fields={"state": meeting["state"]})
        row = await window_repo.void_meeting(conn, community_id, meeting_id, reason)
        if row is None:   # the row is locked: its state cannot have changed since it was read
            raise RuntimeError(f"{community_id}/{meeting_id}: void refused on a locked row")
        await meetings_repo.insert_transition(conn, community_id=community_id, meeting_id=meeting_id,
                                              from_state=meeting["state"], to_state="voided", actor=actor,
                                              note=reason)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.void",
                           detail={"meeting_id": meeting_id, "from_state": meeting["state"], "reason": reason,
                                   "voided_at": iso(row["voided_at"])})
        doc = await meetings_service.load_document(conn, community_id, meeting_id)
    await effects.meeting_event(community_id, meeting_id, {"type": "state", "state": "voided", "reason": reason,
                                                           "voided_at": doc["voided_at"]})
    return doc


async def void_notice(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict | None:
    """What the public and the owners are told of a voided meeting; None if it is not voided."""
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None or meeting["state"] != "voided":
        return None
    return {"community_id": community_id, "meeting_id": meeting_id, "title": meeting["title"],
            "state": "voided", "voided_at": iso(meeting["voided_at"]), "reason": meeting["void_reason"],
            "message": _voided(meeting).message}


def refuse_if_voided(meeting: dict) -> None:
    """Raise 409 ``meeting_voided`` (with the time and reason) for a voided meeting."""
    if meeting["state"] == "voided":
        raise _voided(meeting)


# ---------------------------------------------------------------- extensions

def _extension_input(data: Any) -> tuple[datetime, str]:
    if not isinstance(data, dict):
        raise ValidationFailed("请求内容应为对象")
    unknown = sorted(set(data) - {"closes_at", "reason"})
    if unknown:
        raise ValidationFailed(f"不认识的字段：{', '.join(unknown)}", fields={k: "未知字段" for k in unknown})
    closes_at = parse_time(data.get("closes_at"), "closes_at")
    if closes_at is None:
        raise missing_field("closes_at", label="延期后的投票结束时间（closes_at）")
    return closes_at, check_reason(data, label="延期理由")


def _check_extension(meeting: dict, extensions: list, now: datetime, closes_at: datetime) -> None:
    """The extension rules, checked on the locked meeting row (the UPDATE checks the time again)."""
    state, current = meeting["state"], meeting["closes_at"]
    if state == "voided":
        raise _voided(meeting)
    if state == "draft":
        raise Conflict("会议通知尚未发布：草稿的投票时间可直接修改（PATCH closes_at），无需延期",
                       code="wrong_state", fields={"state": state})
    if state not in EXTENDABLE_STATES or current is None or now >= current:
        when = f"（{beijing_time(current)}）" if current is not None else ""
        raise Conflict(f"投票期已经结束{when}，不能延期：延期公告须在投票结束前发布", code="voting_period_over",
                       fields={"state": state, "closes_at": iso(current)})
    if meeting["max_extensions"] == 0:
        raise Conflict("本次会议的议事规则不允许延期（max_extensions 为 0）", code="extension_not_allowed")
    if len(extensions) >= meeting["max_extensions"]:
        raise Conflict(f"本次会议最多可延期 {meeting['max_extensions']} 次，已延期 {len(extensions)} 次",
                       code="extension_limit_reached",
                       fields={"max_extensions": meeting["max_extensions"], "extensions": len(extensions)})
    if closes_at <= current:
        raise ValidationFailed(f"延期后的结束时间须晚于当前的结束时间 {beijing_time(current)}",
                               code="extension_not_later", fields={"closes_at": "应晚于当前结束时间"})
    original = extensions[0]["previous_closes_at"] if extensions else current
    latest = original + timedelta(days=meeting["max_extension_days"])
    if closes_at > latest:
        raise Conflict(f"延期总计不能超过 {meeting['max_extension_days']} 天（自原定结束时间 "
                       f"{beijing_time(original)} 起），最晚可延至 {beijing_time(latest)}",
                       code="extension_too_long",
                       fields={"max_extension_days": meeting["max_extension_days"], "latest": latest.isoformat()})


async def extend_meeting(pool: asyncpg.Pool, effects: Effects, *, community_id: str, meeting_id: str, data: Any,
                         actor: str) -> dict:
    """Publish an extension notice: a later close; returns the meeting document (with ``extensions``)."""
    closes_at, reason = _extension_input(data)
    async with pool.acquire() as conn, conn.transaction():
        # FOR UPDATE first: a close by hand waits for this transaction, the scheduler skips the row.
        meeting = await _locked_meeting(conn, community_id, meeting_id)
        extensions = await window_repo.list_extensions(conn, community_id, meeting_id)
        _check_extension(meeting, extensions, await clock.now(conn), closes_at)
        published_at = await window_repo.move_close(conn, community_id, meeting_id, closes_at)
        if published_at is None:   # the close time came between the check and the UPDATE
            raise Conflict(f"投票期已经结束（{beijing_time(meeting['closes_at'])}），不能延期：延期公告须在投票结束前发布",
                           code="voting_period_over", fields={"closes_at": iso(meeting["closes_at"])})
        row = await window_repo.insert_extension(
            conn, community_id=community_id, meeting_id=meeting_id, previous_closes_at=meeting["closes_at"],
            closes_at=closes_at, reason=reason, actor=actor, published_at=published_at)
        extension = meetings_service.extension_document(row)
        await audit.append(conn, community_id=community_id, actor=actor, action="meeting.extend",
                           detail={"meeting_id": meeting_id, **{k: extension[k] for k in (
                               "number", "previous_closes_at", "closes_at", "reason", "published_at")}})
        doc = await meetings_service.load_document(conn, community_id, meeting_id)
    await effects.meeting_event(community_id, meeting_id, {"type": "extension", **{k: extension[k] for k in (
        "number", "previous_closes_at", "closes_at", "reason", "published_at")}})
    return doc
