"""Owners' sign-in: redeem a ballot code for a ballot token.

Rules (docs/owner-signin.md):
- unknown or revoked code → 404 ``code_invalid``;
- the first redemption, and any from another device, needs the last 4 characters of
  the phone or ID number on record of the code's holder: the voting subject's
  representative (for joint owners, the one they chose; for a sole owner, that owner),
  in the meeting's frozen register version, or the new owner once the subject changed hands
  during the meeting (server/services/transfers.py); the same device (same ``device_id``) or the WeChat user
  bound to the code may sign in again without it;
- neither the register nor a transfer keeps a number in clear: the typed four characters are
  hashed with the identity key (server.services.personal_data), bound to the holder's owner id
  (a new owner's is ``transfer:<transfer_id>``), and compared in constant time with the stored
  hashes; a row hashed under another key (the master key was changed) is a server fault, not a
  wrong guess;
- every identity check is counted before it is made, in one atomic UPDATE of the code's
  row, so parallel guesses from any worker count; after ``MAX_FAILED_ATTEMPTS`` the
  code is locked, longer each time (``LOCK_LADDER_SECONDS``: 15 minutes, then 4 hours;
  429 ``code_locked`` saying until when, Beijing time), and after that until staff unlock it
  (403 ``code_locked``, ``fields.unlock_required``; server/services/codes.py ``unlock_code``);
- the token: ``server.auth.ballot.issue_ballot_token``, ``exp`` = close + margin.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import asyncpg

from server.auth.ballot import issue_ballot_token
from server.auth.tokens import TokenKeys
from server.ballot import codes as codes_core
from server.ballot import identity
from server.ballot.masking import mask_name
from server.ballot.weights import SUBJECT_SEPARATOR
from server.errors import ApiError, Conflict, NotFound, Unauthorized
from server.repositories import clock
from server.repositories import codes as codes_repo
from server.services import audit, voting_window
from server.services.personal_data import IdentityKeys, load_identity_keys
from server.settings import Settings, load_settings

SIGNIN_STATES = ("noticed", "open")
# A token for a meeting with no close time set yet lasts this long (refresh by signing in again).
DEFAULT_TOKEN_TTL = timedelta(hours=24)
_CN_TZ = timezone(timedelta(hours=8))
log = logging.getLogger("evote.signin")


class CodeInvalid(NotFound):
    code, message = "code_invalid", "二维码无效，请核对后重试，或联系业委会/筹备组补发"


class CodeLocked(ApiError):
    status, code, message = 429, "code_locked", "尝试次数过多，请稍后再试"


UNLOCK_MESSAGE = "核对错误次数太多，该二维码已锁定，请联系业委会/筹备组核实身份后解锁"


class IdentityCheckUnavailable(ApiError):
    status, code, message = 503, "identity_check_unavailable", "暂时无法核对身份，请联系业委会/筹备组"


@dataclass(frozen=True)
class RedeemRequest:
    code: str
    last4: str | None = None
    device_id: str | None = None
    openid: str | None = None     # from WeChat code2Session, when the mini program sent wx_code


def _retry_message(locked_until: datetime) -> str:
    at = locked_until.astimezone(_CN_TZ).strftime("%m月%d日 %H:%M").lstrip("0").replace("月0", "月")
    return f"核对错误次数太多，已暂时锁定，请在北京时间 {at} 以后再试"


def until_unlock(locked_until: datetime) -> bool:
    """Whether a lock lasts until a staff unlock: 'infinity', which asyncpg reads as a naive datetime.max."""
    return locked_until.tzinfo is None or locked_until.year >= 9999


def locked_now(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and (until_unlock(locked_until) or locked_until > now)


def _locked(locked_until: datetime) -> CodeLocked:
    if until_unlock(locked_until):
        return CodeLocked(UNLOCK_MESSAGE, status=403, fields={"retry_at": None, "unlock_required": True})
    return CodeLocked(_retry_message(locked_until),
                      fields={"retry_at": locked_until.astimezone(UTC).isoformat(), "unlock_required": False})


def token_expiry(closes_at: datetime | None, now: datetime, margin_s: int) -> datetime:
    if closes_at is None:
        return now + DEFAULT_TOKEN_TTL
    return max(closes_at, now) + timedelta(seconds=margin_s)


async def find_code(conn: asyncpg.Connection, code_text: str) -> tuple[bytes, asyncpg.Record]:
    """The live code's row (with its meeting), or CodeInvalid."""
    code = codes_core.normalize_code(code_text)
    if code is None:
        raise CodeInvalid()
    digest = codes_core.code_hash(code)
    row = await codes_repo.find_by_hash(conn, digest)
    if row is None:
        raise CodeInvalid()
    if row["revoked_at"] is not None:
        if row["state"] in ENDED_STATES:   # nothing to reissue any more: say the voting is over
            raise meeting_closed(row)
        raise CodeInvalid("该二维码已作废（已补发新码），请使用新的二维码", code="code_invalid")
    return digest, row


ENDED_STATES = ("closed", "published")


def meeting_closed(row: asyncpg.Record) -> Conflict:
    """409 ``meeting_closed``, with the meeting for the owner page (its outcome and the results page)."""
    return Conflict("本次会议投票已结束，不能再登录投票", code="meeting_closed", fields={
        "community_id": row["community_id"], "meeting_id": row["meeting_id"], "title": row["title"],
        "state": row["state"], "opens_at": _iso(row["opens_at"]), "closes_at": _iso(row["closes_at"])})


def needs_identity_check(row: asyncpg.Record, device: bytes | None, openid: str | None) -> bool:
    if row["redeemed_at"] is None:
        return True
    if device is not None and row["redeemed_device"] is not None and bytes(row["redeemed_device"]) == device:
        return False
    return not (openid is not None and row["wechat_openid"] is not None and row["wechat_openid"] == openid)


async def _check_identity(pool: asyncpg.Pool, keys: IdentityKeys, digest: bytes, row: asyncpg.Record,
                          last4: str | None) -> None:
    if last4 is None or last4 == "":
        raise Unauthorized("请输入登记的手机号或身份证号的后四位", code="identity_required")
    if not codes_core.valid_last4(last4):
        raise ApiError("请输入 4 位数字（身份证最后一位可以是 X）", code="validation_failed", status=422,
                       fields={"last4": "4 位数字或字母"})
    async with pool.acquire() as conn:
        # The code of a voting subject is held by its representative (or, once the subject changed
        # hands during the meeting, by its new owner): check their digits.
        owner = await codes_repo.holder_identity(conn, row["community_id"], row["meeting_id"], row["voter_id"],
                                                 row["register_version"], row["representative"])
        if owner is not None and owner["identity_key_id"] not in (None, keys.key_id):
            # Hashed under another identity key: nobody's digits can match; not the owner's fault.
            log.error("identity hashes of the code holder (%s) of community %s meeting %s (register version %s) "
                      "were made with key %s, not the configured %s (EVOTE_MASTER_KEY changed?)", owner["holder"],
                      row["community_id"], row["meeting_id"], row["register_version"], owner["identity_key_id"],
                      keys.key_id)
            raise IdentityCheckUnavailable()
        reserved = await codes_repo.reserve_attempt(conn, digest, max_failed=codes_core.MAX_FAILED_ATTEMPTS,
                                                    lock_seconds=list(codes_core.LOCK_LADDER_SECONDS))
        if reserved is None:
            state = await codes_repo.lock_state(conn, digest)
            if state is None or state["revoked_at"] is not None:
                raise CodeInvalid("该二维码已作废（已补发新码），请使用新的二维码")
            raise _locked(state["locked_until"])
    ok = owner is not None and identity.identity_matches_digests(
        keys.hmac_key, last4, community_id=row["community_id"], owner_id=owner["owner_id"],
        phone_hmac=owner["phone_hmac"], id_hmac=owner["id_hmac"])
    if ok:
        return
    if reserved["locked_until"] is not None:
        async with pool.acquire() as conn, conn.transaction():
            await audit.append(conn, community_id=row["community_id"], actor=f"voter:{row['voter_id']}",
                               action="code.locked",
                               detail={"meeting_id": row["meeting_id"], "serial": row["serial"],
                                       "lock_level": reserved["lock_level"],
                                       "until_unlock": until_unlock(reserved["locked_until"])})
        raise _locked(reserved["locked_until"])
    left = codes_core.attempts_left(reserved["failed_attempts"])
    raise ApiError(f"后四位不正确，还可以再试 {left} 次", code="identity_mismatch", status=403,
                   fields={"attempts_left": left})


async def voter_summary(conn: asyncpg.Connection, community_id: str, meeting_id: str, voter_id: str) -> dict:
    """The voting subject signed in: its representative's masked name, first building and counted units."""
    voters = await codes_repo.voters_for_sheets(conn, community_id, meeting_id, [voter_id])
    if not voters:
        return {"voter_id": voter_id, "name": "", "building": "", "units": [], "joint": False}
    v = voters[0]
    return {"voter_id": voter_id, "name": mask_name(v["name"]), "building": v["building"],
            "units": list(v["units"]), "joint": SUBJECT_SEPARATOR in voter_id}


async def redeem(pool: asyncpg.Pool, keys: TokenKeys, request: RedeemRequest, *, margin_s: int,
                 row_and_digest: tuple[bytes, asyncpg.Record] | None = None,
                 settings: Settings | None = None) -> dict:
    """Check the code (and identity when needed) and sign a ballot token.

    ``settings`` names the identity key (None: read from the environment, as the server does).
    """
    if row_and_digest is None:
        async with pool.acquire() as conn:
            row_and_digest = await find_code(conn, request.code)
    digest, row = row_and_digest
    if row["state"] == "voided":   # say so, with the reason, rather than "voting is over"
        notice = await voting_window.void_notice(pool, row["community_id"], row["meeting_id"])
        raise Conflict(notice["message"] if notice else "本次会议已宣布作废", code="meeting_voided")
    if row["state"] not in SIGNIN_STATES:
        raise meeting_closed(row)
    if locked_now(row["locked_until"], row["now"]):
        raise _locked(row["locked_until"])
    device = codes_core.device_hash(request.device_id)
    checked = needs_identity_check(row, device, request.openid)
    if checked:
        identity_keys = await load_identity_keys(settings or load_settings())
        await _check_identity(pool, identity_keys, digest, row, request.last4)
    async with pool.acquire() as conn, conn.transaction():
        marked = await codes_repo.mark_redeemed(conn, digest, device=device, openid=request.openid)
        if marked is None:
            raise CodeInvalid("该二维码已作废（已补发新码），请使用新的二维码")
        now = await clock.now(conn)
        expires_at = token_expiry(row["closes_at"], now, margin_s)
        token, claims = await issue_ballot_token(
            conn, keys, community_id=row["community_id"], meeting_id=row["meeting_id"],
            voter_id=row["voter_id"], expires_at=expires_at, code_serial=row["serial"], device_hash=device)
        voter = await voter_summary(conn, row["community_id"], row["meeting_id"], row["voter_id"])
        await audit.append(conn, community_id=row["community_id"], actor=f"voter:{row['voter_id']}",
                           action="code.redeem",
                           detail={"meeting_id": row["meeting_id"], "serial": row["serial"], "jti": claims["jti"],
                                   "identity_checked": checked, "wechat": request.openid is not None,
                                   "device": device.hex()[:16] if device else None})
    return {
        "token": token,
        "token_type": "Bearer",
        "expires_at": expires_at.astimezone(UTC).isoformat(),
        "identity_checked": checked,
        "wechat_bound": bool(marked["wechat_openid"]),
        "meeting": {"community_id": row["community_id"], "meeting_id": row["meeting_id"], "title": row["title"],
                    "state": row["state"],
                    "opens_at": row["opens_at"].isoformat() if row["opens_at"] else None,
                    "closes_at": row["closes_at"].isoformat() if row["closes_at"] else None},
        "voter": voter,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
