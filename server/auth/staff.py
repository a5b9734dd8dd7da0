"""Staff authentication (argon2 passwords, EdDSA session tokens) and authorisation.

Roles: district_admin (every community), street_admin (its street's
communities), prep_group / committee / auditor (the communities listed for
them).  ``require_staff`` is called by every admin handler; with a
``community_id`` it also proves the staff member may touch that community.  A token is refused
once its jti is revoked (logout) or its ``gen`` claim is older than the account's
``token_generation`` (password change, disable, role change, revoke); both are read in the one
query that reads the account.
"""
from __future__ import annotations

from dataclasses import dataclass

import argon2
from aiohttp import web

from server import appkeys
from server.auth.tokens import STAFF_AUDIENCE, STAFF_TYP
from server.errors import Forbidden, Unauthorized
from server.repositories import staff as staff_repo

ROLES = ("district_admin", "street_admin", "shequ_admin", "prep_group", "committee", "auditor")
# Roles that may change things (imports, meetings, codes); auditors only read.
WRITER_ROLES = frozenset({"district_admin", "street_admin", "shequ_admin", "prep_group", "committee"})
ALL_ROLES = frozenset(ROLES)
# Roles that run a meeting (筹备组, 业委会, 社区/街道 and district staff): they may see who has not
# voted yet, for door-to-door visits (the canvass list); auditors check, they do not canvass.
ORGANISER_ROLES = WRITER_ROLES

_hasher = argon2.PasswordHasher()
# A hash to verify against when the user does not exist, so timing does not tell.
_DUMMY_HASH = _hasher.hash("evote-no-such-user")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (argon2.exceptions.VerifyMismatchError, argon2.exceptions.InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def dummy_check(password: str) -> None:
    check_password(_DUMMY_HASH, password)


@dataclass(frozen=True)
class StaffPrincipal:
    staff_id: int
    username: str
    role: str
    street_id: str | None
    jti: str = ""          # the token of this request, for logout
    expires_at: int = 0

    @property
    def actor(self) -> str:
        return f"staff:{self.username}"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:].strip() or None
    return None


async def require_staff(request: web.Request, *, community_id: str | None = None,
                        roles: frozenset[str] = ALL_ROLES) -> StaffPrincipal:
    token = _bearer(request)
    if not token:
        raise Unauthorized("请先登录管理账号", code="login_required")
    claims = request.app[appkeys.TOKEN_KEYS].verify(token, typ=STAFF_TYP, audience=STAFF_AUDIENCE)
    pool = request.app[appkeys.DB_POOL]
    async with pool.acquire() as conn:
        row = await staff_repo.get_staff_for_token(conn, int(claims["sub"]), str(claims["jti"]))
        if row is None or not row["active"]:
            raise Unauthorized("账号已停用，请联系管理员", code="account_disabled")
        if row["revoked"] or claims.get("gen", 0) != row["token_generation"]:
            raise Unauthorized("登录已失效，请重新登录", code="token_revoked")
        principal = StaffPrincipal(row["staff_id"], row["username"], row["role"], row["street_id"],
                                   jti=str(claims["jti"]), expires_at=int(claims["exp"]))
        if principal.role not in roles:
            raise Forbidden("您的角色不能进行此操作", code="role_forbidden")
        if community_id is not None and not await staff_repo.may_touch_community(
                conn, staff_id=principal.staff_id, role=principal.role,
                street_id=principal.street_id, community_id=community_id):
            # Same answer whether the community exists or not: do not reveal other communities.
            raise Forbidden("您无权访问该小区", code="community_forbidden")
    return principal
