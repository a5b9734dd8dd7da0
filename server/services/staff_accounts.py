"""Staff accounts after creation: login lockouts, token revocation, password changes and the
administrator's actions (disable, enable, role and scope changes, password reset), all audited.

Login lockouts are kept in PostgreSQL (``staff_login_throttle``) so every worker shares them:
per account (by user name, whether or not the account exists, so the answer does not tell) and
per client address, each escalating 15 minutes → 1 hour → 24 hours.  A locked key refuses a
login without checking the password.  Every change that must end the account's sessions bumps its
``token_generation``; logout revokes the one token's ``jti``.
"""
from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import asyncpg

from server.auth.staff import ROLES, StaffPrincipal, check_password, hash_password
from server.errors import Conflict, Forbidden, NotFound, TooManyAttempts, ValidationFailed
from server.repositories import staff as staff_repo
from server.services import audit

MIN_PASSWORD_LENGTH = 10
ADMIN_ROLES = frozenset({"district_admin", "street_admin"})
SCOPED_ROLES = frozenset({"prep_group", "committee", "auditor"})


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int                  # failures that start a lockout
    durations_s: tuple[int, ...]    # the lockouts in turn; the last one repeats
    forget_failures_s: int = 3600   # failures older than this (with no lockout running) are forgotten
    forget_level_s: int = 7 * 86400  # a key without a failure for this long starts again at 15 minutes


ESCALATION_S = (15 * 60, 3600, 24 * 3600)
ACCOUNT_POLICY = LockoutPolicy(threshold=5, durations_s=ESCALATION_S)
ADDRESS_POLICY = LockoutPolicy(threshold=30, durations_s=ESCALATION_S)


class LoginLocked(TooManyAttempts):
    """A login refused while its account or address is locked; ``retry_after_s`` for the header."""

    code = "login_locked"

    def __init__(self, retry_after_s: int):
        minutes = max(1, -(-retry_after_s // 60))
        super().__init__(f"登录失败次数过多，请 {minutes} 分钟后再试", code="login_locked",
                         fields={"retry_after_s": retry_after_s})
        self.retry_after_s = retry_after_s


def account_key(username: str) -> str:
    return f"user:{username.lower()}"


def address_key(address: str | None) -> str | None:
    return f"addr:{address}" if address else None


def _keys(username: str, address: str | None) -> list[tuple[str, LockoutPolicy]]:
    keys = [(account_key(username), ACCOUNT_POLICY)]
    addr = address_key(address)
    if addr:
        keys.append((addr, ADDRESS_POLICY))
    return sorted(keys)   # one order everywhere, so concurrent failures never deadlock


def _forget(row, policy: LockoutPolicy) -> tuple[int, int]:
    """The row's (failures, level) once old failures are forgotten."""
    idle = (row["now"] - row["last_failure_at"]).total_seconds()
    if idle > policy.forget_level_s:
        return 0, 0
    if idle > policy.forget_failures_s:
        return 0, row["level"]
    return row["failures"], row["level"]


def _locked_s(row) -> int | None:
    if row["locked_until"] is not None and row["locked_until"] > row["now"]:
        return max(1, math.ceil((row["locked_until"] - row["now"]).total_seconds()))
    return None


async def begin_attempt(pool: asyncpg.Pool, username: str, address: str | None) -> None:
    """Count a login attempt before its password is checked, or refuse it (429 ``login_locked``).

    The attempt counts as a failure until ``finish_success`` takes it back, so guesses sent in
    parallel are counted as they arrive (row locks make the counting atomic): once the failures
    and attempts in flight reach the threshold, further attempts are refused unchecked.
    """
    async with pool.acquire() as conn, conn.transaction():
        refuse: int | None = None
        for key, policy in _keys(username, address):
            row = await staff_repo.lock_throttle_row(conn, key)
            locked = _locked_s(row)
            failures, level = _forget(row, policy)
            if locked is None and failures >= policy.threshold:
                locked = policy.durations_s[min(level, len(policy.durations_s) - 1)]
            if locked is not None:
                refuse = max(refuse or 0, locked)
                continue
            await staff_repo.update_throttle(conn, key, failures=failures + 1, level=level, lock_seconds=None)
        if refuse is not None:
            # nothing is counted for a refused attempt (the transaction is rolled back)
            raise LoginLocked(refuse)


async def finish_failure(pool: asyncpg.Pool, username: str, address: str | None) -> int | None:
    """The attempt's password was wrong: start the lockout of every key at its threshold; returns
    the seconds of the longest lockout this started, if any."""
    started: int | None = None
    async with pool.acquire() as conn, conn.transaction():
        for key, policy in _keys(username, address):
            row = await staff_repo.lock_throttle_row(conn, key)
            if _locked_s(row) is not None:
                continue   # a racing attempt locked it already: no double escalation
            failures, level = row["failures"], row["level"]
            if failures >= policy.threshold:
                lock_s = policy.durations_s[min(level, len(policy.durations_s) - 1)]
                started = max(started or 0, lock_s)
                await staff_repo.update_throttle(conn, key, failures=0, level=level + 1, lock_seconds=lock_s)
    return started


async def finish_success(conn: asyncpg.Connection, username: str, address: str | None) -> None:
    """The attempt signed in: the account's failures are reset, the address's attempt taken back,
    and the counts of keys idle past every policy's memory deleted (guessed names pile up)."""
    await staff_repo.clear_throttle(conn, account_key(username))
    addr = address_key(address)
    if addr:
        await staff_repo.uncount_attempt(conn, addr)
    await delete_stale_counts(conn)


async def delete_stale_counts(conn: asyncpg.Connection) -> int:
    """Delete the login counts that no policy remembers any more (idle past ``forget_level_s``)."""
    idle_s = max(ACCOUNT_POLICY.forget_level_s, ADDRESS_POLICY.forget_level_s)
    return await staff_repo.delete_stale_throttles(conn, idle_s)


async def clear_account_failures(conn: asyncpg.Connection, username: str) -> None:
    await staff_repo.clear_throttle(conn, account_key(username))


def validate_password(password: str, name: str = "password") -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"密码至少 {MIN_PASSWORD_LENGTH} 位", code="weak_password",
                               fields={name: f"至少 {MIN_PASSWORD_LENGTH} 位"})


# -- token revocation -------------------------------------------------------------------------

async def logout(pool: asyncpg.Pool, principal: StaffPrincipal) -> None:
    """Revoke the token of this request (its jti) until it would have expired."""
    async with pool.acquire() as conn, conn.transaction():
        await staff_repo.revoke_token(conn, jti=principal.jti, staff_id=principal.staff_id,
                                      expires_at=principal.expires_at)
        await staff_repo.delete_expired_revocations(conn)
        await audit.append(conn, community_id=None, actor=principal.actor, action="staff.logout")


async def _revoke_all(conn: asyncpg.Connection, staff_id: int) -> None:
    await staff_repo.bump_token_generation(conn, staff_id)


async def change_own_password(pool: asyncpg.Pool, principal: StaffPrincipal, *, old_password: str,
                              new_password: str) -> None:
    """The signed-in user changes its password (the old one required); ends all its sessions."""
    validate_password(new_password, "new_password")
    async with pool.acquire() as conn:
        row = await staff_repo.get_staff_by_username(conn, principal.username)
    if row is None or not await asyncio.to_thread(check_password, row["password_hash"], old_password):
        raise Forbidden("原密码不正确", code="bad_old_password", fields={"old_password": "原密码不正确"})
    if old_password == new_password:
        raise ValidationFailed("新密码不能与原密码相同", code="weak_password", fields={"new_password": "与原密码相同"})
    new_hash = await asyncio.to_thread(hash_password, new_password)
    async with pool.acquire() as conn, conn.transaction():
        await staff_repo.get_staff_for_update(conn, principal.staff_id)
        await staff_repo.update_password_hash(conn, principal.staff_id, new_hash)
        await _revoke_all(conn, principal.staff_id)
        await audit.append(conn, community_id=None, actor=principal.actor, action="staff.password_change",
                           detail={"username": principal.username})


# -- administration ---------------------------------------------------------------------------

async def _target(conn: asyncpg.Connection, manager: StaffPrincipal | None, username: str, *,
                  self_allowed: bool) -> asyncpg.Record:
    """The account ``username`` locked for update, after proving ``manager`` may manage it
    (``None`` is the command line, which may manage every account)."""
    staff_id = await staff_repo.get_staff_id(conn, username)
    row = await staff_repo.get_staff_for_update(conn, staff_id) if staff_id is not None else None
    if row is None:
        raise NotFound("账号不存在", code="staff_not_found")
    if manager is None:
        return row
    if not self_allowed and row["staff_id"] == manager.staff_id:
        raise Conflict("不能对自己的账号进行此操作", code="self_change_forbidden")
    if manager.role == "district_admin":
        return row
    if manager.role == "street_admin" and row["role"] in SCOPED_ROLES:
        communities = await staff_repo.staff_communities(conn, row["staff_id"])
        if not await staff_repo.communities_outside_street(conn, communities, manager.street_id):
            return row
    raise Forbidden("您无权管理该账号", code="staff_forbidden")


def _actor(manager: StaffPrincipal | None) -> str:
    return manager.actor if manager is not None else "cli"


async def set_active(pool: asyncpg.Pool, manager: StaffPrincipal | None, username: str, *, active: bool) -> None:
    """Disable (ending every session) or enable an account."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _target(conn, manager, username, self_allowed=False)
        await staff_repo.set_active(conn, row["staff_id"], active)
        await _revoke_all(conn, row["staff_id"])
        if active:
            await clear_account_failures(conn, username)
        await audit.append(conn, community_id=None, actor=_actor(manager),
                           action="staff.enable" if active else "staff.disable", detail={"username": username})


async def set_roles(pool: asyncpg.Pool, manager: StaffPrincipal | None, username: str, *, role: str,
                    street_id: str | None, communities: list[str]) -> None:
    """Change an account's role and scope; ends every session (the tokens name the old role)."""
    communities = sorted(set(communities))
    fields = {}
    if role not in ROLES:
        fields["role"] = f"角色必须是 {', '.join(ROLES)} 之一"
    if role == "street_admin" and not street_id:
        fields["street_id"] = "街道管理员必须指定街道"
    if role in SCOPED_ROLES and not communities:
        fields["communities"] = "该角色必须至少指定一个小区"
    if fields:
        raise ValidationFailed(fields=fields)
    if role != "street_admin":
        street_id = None
    if role not in SCOPED_ROLES:
        communities = []
    async with pool.acquire() as conn, conn.transaction():
        row = await _target(conn, manager, username, self_allowed=False)
        if manager is not None and manager.role == "street_admin":
            if role not in SCOPED_ROLES:
                raise Forbidden("您不能授予该角色", code="role_forbidden")
            if await staff_repo.communities_outside_street(conn, communities, manager.street_id):
                raise Forbidden("您无权访问该小区", code="community_forbidden")
        try:
            await staff_repo.set_role(conn, row["staff_id"], role=role, street_id=street_id)
            await staff_repo.replace_staff_communities(conn, row["staff_id"], communities)
        except asyncpg.ForeignKeyViolationError:
            raise ValidationFailed("指定的街道或小区不存在", code="unknown_scope") from None
        await _revoke_all(conn, row["staff_id"])
        await audit.append(conn, community_id=None, actor=_actor(manager), action="staff.set_roles",
                           detail={"username": username, "role": role, "street_id": street_id,
                                   "communities": communities,
                                   "previous": {"role": row["role"], "street_id": row["street_id"]}})


async def reset_password(pool: asyncpg.Pool, manager: StaffPrincipal | None, username: str, *,
                         new_password: str) -> None:
    """An administrator sets a new password; ends every session and lifts the account's lockout."""
    validate_password(new_password)
    new_hash = await asyncio.to_thread(hash_password, new_password)
    async with pool.acquire() as conn, conn.transaction():
        row = await _target(conn, manager, username, self_allowed=False)
        await staff_repo.update_password_hash(conn, row["staff_id"], new_hash)
        await _revoke_all(conn, row["staff_id"])
        await clear_account_failures(conn, username)
        await audit.append(conn, community_id=None, actor=_actor(manager), action="staff.password_reset",
                           detail={"username": username})


async def revoke_sessions(pool: asyncpg.Pool, manager: StaffPrincipal | None, username: str) -> None:
    """End every session of the account (its tokens are refused from now on)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _target(conn, manager, username, self_allowed=True)
        await _revoke_all(conn, row["staff_id"])
        await audit.append(conn, community_id=None, actor=_actor(manager), action="staff.revoke",
                           detail={"username": username})


async def list_accounts(pool: asyncpg.Pool, manager: StaffPrincipal | None) -> list[dict]:
    """The accounts ``manager`` may manage (all for a district admin or the command line)."""
    async with pool.acquire() as conn:
        rows = await staff_repo.list_staff(conn)
        out = []
        for r in rows:
            item = {"staff_id": r["staff_id"], "username": r["username"], "display_name": r["display_name"],
                    "role": r["role"], "street_id": r["street_id"], "active": r["active"],
                    "communities": list(r["communities"])}
            if manager is not None and manager.role == "street_admin":
                if r["role"] not in SCOPED_ROLES or await staff_repo.communities_outside_street(
                        conn, item["communities"], manager.street_id):
                    continue
            out.append(item)
    return out
