"""Owners' ballot tokens: issuing them at sign-in and checking them on every owner request.

Claims: ``sub`` = voter id (the voting subject's id: its owners' ids joined with "+", just the
owner_id of a sole owner; the subject's representative signed in for it), ``cid`` = community,
``mid`` = meeting, ``jti`` (a row of ballot_session, so it can be revoked),
``exp`` = the meeting's close plus a margin; header ``typ`` = evote-ballot+jwt.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import jwt
from aiohttp import web

from server import appkeys
from server.auth.tokens import BALLOT_AUDIENCE, BALLOT_TYP, TokenKeys
from server.errors import Unauthorized
from server.repositories import ballot_sessions


@dataclass(frozen=True)
class BallotPrincipal:
    community_id: str
    meeting_id: str
    voter_id: str
    jti: str

    @property
    def actor(self) -> str:
        return f"voter:{self.voter_id}"


async def issue_ballot_token(conn: asyncpg.Connection, keys: TokenKeys, *, community_id: str, meeting_id: str,
                             voter_id: str, expires_at: datetime, code_serial: int | None,
                             device_hash: bytes | None) -> tuple[str, dict]:
    """Sign a token and record its session (in the caller's transaction)."""
    token, claims = keys.issue(typ=BALLOT_TYP, audience=BALLOT_AUDIENCE, subject=voter_id,
                               expires_at=int(expires_at.timestamp()),
                               claims={"cid": community_id, "mid": meeting_id})
    await ballot_sessions.insert_session(conn, community_id=community_id, meeting_id=meeting_id, jti=claims["jti"],
                                         voter_id=voter_id, code_serial=code_serial, device_hash=device_hash,
                                         expires_at=expires_at)
    return token, claims


def has_ballot_bearer(request: web.Request) -> bool:
    """Whether the bearer token claims to be a ballot token (its header only; not verified here)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    try:
        return jwt.get_unverified_header(header[7:].strip()).get("typ") == BALLOT_TYP
    except jwt.PyJWTError:
        return False


def read_ballot_token(request: web.Request) -> BallotPrincipal:
    """Verify the bearer token's signature and claims (no database access)."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise Unauthorized("请先扫描选票二维码并确认身份", code="ballot_login_required")
    claims = request.app[appkeys.TOKEN_KEYS].verify(header[7:].strip(), typ=BALLOT_TYP, audience=BALLOT_AUDIENCE)
    if not isinstance(claims.get("cid"), str) or not isinstance(claims.get("mid"), str):
        raise Unauthorized("登录凭证无效，请重新扫码", code="invalid_token")
    return BallotPrincipal(claims["cid"], claims["mid"], claims["sub"], claims["jti"])


async def ensure_session_live(conn: asyncpg.Connection, principal: BallotPrincipal) -> None:
    """The token's session exists and was not revoked (a reissued code revokes it)."""
    revoked = await ballot_sessions.session_revoked(conn, principal.community_id, principal.meeting_id,
                                                    principal.jti)
    if revoked is None or revoked:
        raise Unauthorized("该选票凭证已失效，请重新扫码登录", code="ballot_session_revoked")


async def require_ballot(request: web.Request) -> BallotPrincipal:
    principal = read_ballot_token(request)
    async with request.app[appkeys.DB_POOL].acquire() as conn:
        await ensure_session_live(conn, principal)
    return principal
