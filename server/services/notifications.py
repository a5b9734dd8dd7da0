"""WeChat subscribe messages (订阅消息) to owners, and the mini-program code (docs/notifications.md).

An owner who signed in through the mini program (so the code knows their WeChat ``openid``) accepts
templates in WeChat and the page records each acceptance here, per voting subject.  WeChat's
subscriptions are one-time: each acceptance allows one message, so each opt-in row is also the
message's outbox entry.  Every worker runs ``run_once`` in the background (``notify_interval_s``):

1. queue: one guarded UPDATE per kind moves waiting opt-ins whose event happened after the acceptance
   (the notice of the community's next meeting, voting opened, an extension, the result published) or,
   for reminders, whose meeting closes within ``reminder_days_before_close`` days while the subject has
   not voted by any channel.  A row moves once, whichever worker gets there first.
2. send: claim due rows with a lease (``FOR UPDATE SKIP LOCKED``; a worker that dies mid-send leaves
   them to the next), send through WeChat's message API with the shared access token, then record
   ``sent``, a retry with exponential backoff, or ``given_up`` with WeChat's error.

Nothing here runs on a vote's path: a vote only inserts its submission, and the reminder query reads
the submissions later.
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import asyncpg

from server.auth.ballot import BallotPrincipal
from server.auth.wechat import ERR_PERMANENT, ERR_TOKEN_STALE, WeChatUnreachable
from server.errors import Conflict, ValidationFailed
from server.repositories import locks
from server.repositories import notifications as repo
from server.services import audit
from server.settings import NOTIFICATION_KINDS, Settings

log = logging.getLogger("evote.notify")

BEIJING = ZoneInfo("Asia/Shanghai")
TOKEN_REFRESH_MARGIN_S = 300       # refresh the shared token this long before WeChat says it expires
SEND_BATCH = 50
LEASE_S = 120                      # a claimed message is another worker's to retry after this long
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 60
BACKOFF_MAX_S = 3600

# What the owner sees beside each template on the page.
KIND_TEXT = {
    "notice_published": ("下次业主大会公告", "本小区发布下一次业主大会公告时通知我"),
    "voting_opened": ("投票开始", "本次业主大会开始投票时通知我"),
    "reminder": ("投票提醒", "截止前几天我还没有投票时提醒我"),
    "extension": ("延期公告", "表决期延长时通知我"),
    "result_published": ("表决结果公告", "表决结果公布时通知我"),
}
# thing3 of each message (WeChat's "thing" values hold at most 20 characters).
KIND_NOTE = {
    "notice_published": "业主大会公告已发布，请留意投票时间",
    "voting_opened": "投票已开始，请在截止前表决",
    "reminder": "您尚未投票，请在截止前表决",
    "extension": "表决期已延长",
    "result_published": "表决结果已公布，可查看核对",
}
THING_MAX = 20


class WeChatApi(Protocol):
    """What this service needs of server.auth.wechat.WeChatClient (a fake in tests)."""

    @property
    def appid(self) -> str: ...

    @property
    def configured(self) -> bool: ...

    async def stable_token(self, *, force_refresh: bool = False) -> tuple[str, int]: ...

    async def send_subscribe_message(self, token: str, message: dict) -> Any: ...

    async def unlimited_wxacode(self, token: str, *, scene: str, page: str, env_version: str = "release",
                                width: int = 430) -> Any: ...


# --- pure: message text ---

def thing(text: str) -> str:
    """A WeChat ``thing`` value: at most 20 characters, cut with an ellipsis."""
    text = " ".join(str(text).split())
    return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"


def beijing_time(value: str | datetime | None) -> str:
    """``2026年12月08日 18:00`` in Beijing time (WeChat's ``time`` format)."""
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M")


def build_message(row: dict, settings: Settings) -> dict:
    """The body of ``subscribe/send`` for one queued opt-in (its payload was filled when it was queued)."""
    payload = row["payload"]
    note = KIND_NOTE[row["kind"]]
    if row["kind"] == "extension" and payload.get("reason"):
        note = f"{note}：{payload['reason']}"
    # the time that matters to the owner: when voting starts, or until when they can act
    when = payload.get("until") or payload.get("at")
    meeting_id = row["about_meeting_id"] or row["meeting_id"]
    return {
        "touser": row["openid"],
        "template_id": row["template_id"],
        "page": f"{settings.wechat_page}?community={row['community_id']}&meeting={meeting_id}",
        "miniprogram_state": settings.wechat_miniprogram_state,
        "lang": "zh_CN",
        "data": {"thing1": {"value": thing(payload.get("title", ""))},
                 "time2": {"value": beijing_time(when)},
                 "thing3": {"value": thing(note)}},
    }


def backoff_s(attempts: int) -> float:
    return float(min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


# --- the owner's choices ---

def offered(settings: Settings) -> dict[str, str]:
    """{kind: template_id} offered to owners: the configured templates, when WeChat is configured."""
    if not (settings.wechat_appid and settings.wechat_secret):
        return {}
    return settings.wechat_template_ids


async def owner_choices(pool: asyncpg.Pool, settings: Settings, principal: BallotPrincipal) -> dict:
    templates = offered(settings)
    async with pool.acquire() as conn:
        openid = await repo.bound_openid(conn, principal.community_id, principal.meeting_id, principal.voter_id)
        rows = {r["kind"]: r for r in await repo.optins(conn, principal.community_id, principal.meeting_id,
                                                          principal.voter_id)}
    return {
        "wechat_bound": openid is not None,
        "templates": [
            {"kind": kind, "template_id": template_id, "title": KIND_TEXT[kind][0],
             "description": KIND_TEXT[kind][1],
             "state": rows[kind]["state"] if kind in rows else "none"}
            for kind, template_id in templates.items()],
    }


def _kinds(value: Any, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
        raise ValidationFailed(f"{name} 应为提醒类型的列表", fields={name: "列表"})
    unknown = [k for k in value if k not in NOTIFICATION_KINDS]
    if unknown:
        raise ValidationFailed("没有这种提醒", code="unknown_notification", fields={name: ", ".join(unknown)[:100]})
    return list(dict.fromkeys(value))


async def record_choices(pool: asyncpg.Pool, settings: Settings, principal: BallotPrincipal, data: dict) -> dict:
    """Record what the owner accepted and declined in WeChat's subscription dialog (audited)."""
    accepted, declined = _kinds(data.get("accepted"), "accepted"), _kinds(data.get("declined"), "declined")
    if set(accepted) & set(declined):
        raise ValidationFailed("同一种提醒不能既订阅又拒绝", fields={"accepted": "与 declined 重复"})
    templates = offered(settings)
    not_offered = [k for k in accepted if k not in templates]
    if not_offered:
        raise Conflict("本小区暂未开通这种微信提醒", code="notification_not_offered",
                       fields={"accepted": ", ".join(not_offered)})
    async with pool.acquire() as conn, conn.transaction():
        openid = await repo.bound_openid(conn, principal.community_id, principal.meeting_id, principal.voter_id)
        if openid is None and accepted:
            raise Conflict("请在微信小程序中打开选票（用微信确认身份）后再订阅提醒", code="wechat_not_bound")
        for kind in accepted:
            await repo.accept(conn, community_id=principal.community_id, meeting_id=principal.meeting_id,
                              voter_id=principal.voter_id, kind=kind, openid=openid or "",
                              template_id=templates[kind])
        for kind in declined:
            await repo.withdraw(conn, community_id=principal.community_id, meeting_id=principal.meeting_id,
                                voter_id=principal.voter_id, kind=kind)
        if accepted or declined:
            await audit.append(conn, community_id=principal.community_id, actor=principal.actor,
                               action="notifications.choose",
                               detail={"meeting_id": principal.meeting_id, "accepted": accepted,
                                       "declined": declined})
    return await owner_choices(pool, settings, principal)


async def meeting_summary(pool: asyncpg.Pool, community_id: str, meeting_id: str) -> dict:
    """Per kind, how many opt-ins are waiting, queued, sent, given up or withdrawn (no owner named)."""
    async with pool.acquire() as conn:
        rows = await repo.counts(conn, community_id, meeting_id)
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["kind"], {})[r["state"]] = r["n"]
    return {"community_id": community_id, "meeting_id": meeting_id, "kinds": out}


# --- the access token, one refresher across workers ---

async def access_token(pool: asyncpg.Pool, client: WeChatApi, *, stale: str | None = None) -> str:
    """The shared access token; fetched (once, under an advisory lock) when missing, near expiry, or when
    WeChat refused ``stale``.  Other workers wait on the lock and then read what was stored."""
    def usable(row: asyncpg.Record | None) -> str | None:
        if (row is not None and row["token"] != stale
                and (row["expires_at"] - row["now"]).total_seconds() > TOKEN_REFRESH_MARGIN_S):
            return str(row["token"])
        return None

    async with pool.acquire() as conn:
        row = await repo.cached_token(conn, client.appid)
        if cached := usable(row):
            return cached
        async with conn.transaction():
            await locks.xact_lock(conn, "wechat-token", client.appid)
            row = await repo.cached_token(conn, client.appid)
            if cached := usable(row):
                return cached
            token, expires_in = await client.stable_token(force_refresh=row is not None and row["token"] == stale)
            await repo.store_token(conn, client.appid, token, expires_in)
            log.info("WeChat access token refreshed (expires in %s s)", expires_in)
            return token


# --- the background passes ---

@dataclass
class PassResult:
    queued: dict[str, int]
    sent: int = 0
    retried: int = 0
    given_up: int = 0


async def queue_due(pool: asyncpg.Pool, settings: Settings) -> dict[str, int]:
    async with pool.acquire() as conn, conn.transaction():
        queued = {
            "notice_published": len(await repo.queue_notices(conn)),
            "voting_opened": len(await repo.queue_voting_opened(conn)),
            "extension": len(await repo.queue_extensions(conn)),
            "result_published": len(await repo.queue_results(conn)),
            "reminder": len(await repo.queue_reminders(
                conn, days_before_close=settings.reminder_days_before_close)),
        }
        await repo.expire_reminders(conn)
    return queued


async def send_due(pool: asyncpg.Pool, client: WeChatApi, settings: Settings, result: PassResult) -> None:
    async with pool.acquire() as conn, conn.transaction():
        claimed = [dict(r) for r in await repo.claim_due(conn, limit=SEND_BATCH, lease_s=LEASE_S)]
    if not claimed:
        return
    token: str | None = None
    for row in claimed:
        row["payload"] = json.loads(row["payload"])
        key = (row["community_id"], row["meeting_id"], row["voter_id"], row["kind"])
        error: str
        permanent = False
        try:
            token = token or await access_token(pool, client)
            reply = await client.send_subscribe_message(token, build_message(row, settings))
            if reply.errcode in ERR_TOKEN_STALE:
                token = await access_token(pool, client, stale=token)
                reply = await client.send_subscribe_message(token, build_message(row, settings))
            if reply.ok:
                async with pool.acquire() as conn:
                    await repo.mark_sent(conn, key)
                result.sent += 1
                continue
            error = f"errcode {reply.errcode}: {reply.errmsg}"
            permanent = reply.errcode in ERR_PERMANENT
        except WeChatUnreachable as exc:
            error = f"unreachable: {exc}"
        async with pool.acquire() as conn:
            if permanent or row["attempts"] >= MAX_ATTEMPTS:
                await repo.mark_given_up(conn, key, error=error[:500])
                result.given_up += 1
                log.warning("gave up a %s message after %s attempts (%s)", row["kind"], row["attempts"], error)
            else:
                await repo.mark_retry(conn, key, delay_s=backoff_s(row["attempts"]), error=error[:500])
                result.retried += 1


async def run_once(pool: asyncpg.Pool, client: WeChatApi, settings: Settings) -> PassResult:
    result = PassResult(queued=await queue_due(pool, settings))
    if client.configured:
        await send_due(pool, client, settings, result)
    return result


# --- the mini-program code on code sheets ---

async def miniprogram_codes(pool: asyncpg.Pool, client: WeChatApi, settings: Settings, codes: list[str],
                            *, concurrency: int = 8) -> dict[str, bytes]:
    """{code: image} for the codes WeChat drew; a code WeChat failed to draw is left out (its sheet keeps
    the web address QR, which WeChat's scanner opens as well).  The scene is the ballot code itself."""
    if not client.configured or not codes:
        return {}
    images: dict[str, bytes] = {}
    gate = asyncio.Semaphore(concurrency)
    try:
        token = await access_token(pool, client)
    except WeChatUnreachable as exc:
        log.warning("mini-program codes unavailable: %s", exc)
        return {}

    async def draw(code: str) -> None:
        nonlocal token
        async with gate:
            try:
                got = await client.unlimited_wxacode(token, scene=code, page=settings.wechat_page)
                if not isinstance(got, bytes) and got.errcode in ERR_TOKEN_STALE:
                    token = await access_token(pool, client, stale=token)
                    got = await client.unlimited_wxacode(token, scene=code, page=settings.wechat_page)
            except WeChatUnreachable:
                return
            if isinstance(got, bytes):
                images[code] = got

    await asyncio.gather(*(draw(c) for c in codes))
    return images
