"""Staff accounts (creation, login) and communities (creation)."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import date
from typing import NoReturn

import asyncpg

from server.auth.staff import ROLES, StaffPrincipal, check_password, dummy_check, hash_password, needs_rehash
from server.auth.tokens import STAFF_AUDIENCE, STAFF_TYP, TokenKeys
from server.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from server.repositories import campaigns as campaigns_repo
from server.repositories import communities as community_repo
from server.repositories import staff as staff_repo
from server.services import audit
from server.services import staff_accounts as lockout

MIN_PASSWORD_LENGTH = lockout.MIN_PASSWORD_LENGTH
SCOPE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def validate_new_staff(username: str, password: str, role: str, street_id: str | None,
                       communities: list[str], shequ_id: str | None = None) -> None:
    fields = {}
    if role not in ROLES:
        fields["role"] = f"角色必须是 {', '.join(ROLES)} 之一"
    if len(password) < MIN_PASSWORD_LENGTH:
        fields["password"] = f"密码至少 {MIN_PASSWORD_LENGTH} 位"
    if not username or len(username) > 64:
        fields["username"] = "用户名须为 2–64 位字母、数字或 _.@-"
    if role == "street_admin" and not street_id:
        fields["street_id"] = "街道管理员必须指定街道"
    if role == "shequ_admin" and not shequ_id:
        fields["shequ_id"] = "社区管理员必须指定社区"
    if role in ("prep_group", "committee", "auditor") and not communities:
        fields["communities"] = "该角色必须至少指定一个小区"
    if fields:
        raise ValidationFailed(fields=fields)


async def create_staff(pool: asyncpg.Pool, *, actor: str, username: str, password: str, role: str,
                       display_name: str = "", street_id: str | None = None,
                       communities: list[str] | None = None, shequ_id: str | None = None) -> int:
    communities = sorted(set(communities or []))
    validate_new_staff(username, password, role, street_id, communities, shequ_id)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with pool.acquire() as conn, conn.transaction():
        try:
            staff_id = await staff_repo.insert_staff(conn, username=username, display_name=display_name,
                                                     password_hash=password_hash, role=role,
                                                     street_id=street_id)
            await staff_repo.add_staff_communities(conn, staff_id, communities)
            if role == "shequ_admin" and shequ_id:
                await staff_repo.add_staff_shequ(conn, staff_id, shequ_id)
        except asyncpg.UniqueViolationError:
            raise Conflict("该用户名已存在", code="username_taken") from None
        except asyncpg.CheckViolationError:
            raise ValidationFailed(fields={"username": "用户名须为 2–64 位字母、数字或 _.@-"}) from None
        except asyncpg.ForeignKeyViolationError:
            raise ValidationFailed("指定的街道、社区或小区不存在", code="unknown_scope") from None
        scopes: list[str | None] = [*communities] or [None]   # no community: the global chain
        for community_id in scopes:
            await audit.append(conn, community_id=community_id, actor=actor, action="staff.create",
                               detail={"username": username, "role": role, "street_id": street_id,
                                       **({"shequ_id": shequ_id} if shequ_id else {})})
    return staff_id


async def ensure_may_grant(conn: asyncpg.Connection, granter: StaffPrincipal, *, role: str,
                           street_id: str | None, communities: list[str], shequ_id: str | None = None) -> None:
    """A district admin grants anything; a street admin only non-admin roles within its street, and
    社区 admins of its street's 社区."""
    if granter.role == "district_admin":
        return
    if granter.role != "street_admin" or role in ("district_admin", "street_admin"):
        raise Forbidden("您不能创建该角色的账号", code="role_forbidden")
    if role == "shequ_admin" and not await staff_repo.shequ_in_street(conn, shequ_id, granter.street_id):
        raise Forbidden("只能为本街道的社区创建账号", code="shequ_forbidden")
    for community_id in communities:
        if not await staff_repo.may_touch_community(conn, staff_id=granter.staff_id, role=granter.role,
                                                    street_id=granter.street_id, community_id=community_id):
            raise Forbidden("您无权访问该小区", code="community_forbidden")


async def login(pool: asyncpg.Pool, keys: TokenKeys, *, username: str, password: str, ttl_s: int,
                address: str | None = None) -> dict:
    """Sign in; refused (429 ``login_locked``) without a password check while the account or the
    client ``address`` is locked out (see ``staff_accounts``)."""
    await lockout.begin_attempt(pool, username, address)
    async with pool.acquire() as conn:
        row = await staff_repo.get_staff_by_username(conn, username)
    if row is None or not row["active"]:
        await asyncio.to_thread(dummy_check, password)
        await _failed(pool, username, address, audit_it=False)
    elif not await asyncio.to_thread(check_password, row["password_hash"], password):
        await _failed(pool, username, address, audit_it=True)
    assert row is not None
    async with pool.acquire() as conn, conn.transaction():
        if needs_rehash(row["password_hash"]):
            await staff_repo.update_password_hash(conn, row["staff_id"], hash_password(password))
        await lockout.finish_success(conn, username, address)
        await audit.append(conn, community_id=None, actor=f"staff:{username}", action="staff.login")
        communities = await staff_repo.staff_communities(conn, row["staff_id"])
    token, claims = keys.issue(typ=STAFF_TYP, audience=STAFF_AUDIENCE, subject=str(row["staff_id"]),
                               ttl_s=ttl_s, claims={"role": row["role"], "gen": row["token_generation"]})
    return {"token": token, "expires_at": claims["exp"], "role": row["role"], "username": row["username"],
            "street_id": row["street_id"], "communities": communities}


async def _failed(pool: asyncpg.Pool, username: str, address: str | None, *, audit_it: bool) -> NoReturn:
    locked_s = await lockout.finish_failure(pool, username, address)
    if audit_it:
        async with pool.acquire() as conn, conn.transaction():
            await audit.append(conn, community_id=None, actor=f"staff:{username}", action="staff.login_failed",
                               detail={"locked_s": locked_s} if locked_s else None)
    if locked_s:
        raise lockout.LoginLocked(locked_s)
    raise Unauthorized("用户名或密码错误", code="bad_credentials")


@dataclass(frozen=True)
class StreetScope:
    """A district and street to create (or rename) together with a community."""

    district_id: str
    district_name: str
    street_id: str
    street_name: str


async def create_community(pool: asyncpg.Pool, *, actor: str, community_id: str, name: str,
                           street_id: str | None, count_parking_area: bool, prep_group_formed_on: date | None,
                           new_street: StreetScope | None = None) -> None:
    """Create a community (audited); with ``new_street``, its district and street are upserted first."""
    async with pool.acquire() as conn, conn.transaction():
        if new_street is not None:
            await community_repo.upsert_district(conn, new_street.district_id, new_street.district_name)
            await community_repo.upsert_street(conn, new_street.street_id, new_street.district_id,
                                               new_street.street_name)
        try:
            await community_repo.insert_community(conn, community_id=community_id, name=name, street_id=street_id,
                                                  count_parking_area=count_parking_area,
                                                  prep_group_formed_on=prep_group_formed_on)
        except asyncpg.UniqueViolationError:
            raise Conflict("该小区编号已存在", code="community_exists") from None
        except asyncpg.CheckViolationError:
            raise ValidationFailed(fields={"community_id": "小区编号须为 1–64 位字母、数字、_ 或 -"}) from None
        except asyncpg.ForeignKeyViolationError:
            raise ValidationFailed("街道不存在", fields={"street_id": "街道不存在"}) from None
        await audit.append(conn, community_id=community_id, actor=actor, action="community.create",
                           detail={"street_id": street_id})


async def list_shequs(pool: asyncpg.Pool, street_id: str | None) -> list[dict]:
    async with pool.acquire() as conn:
        return [dict(r) for r in await campaigns_repo.list_shequs(conn, street_id)]


async def create_shequ(pool: asyncpg.Pool, granter: StaffPrincipal, *, shequ_id: str, street_id: str,
                       name: str) -> dict:
    """A 社区 (居委会) of a street; a street admin may create them in its own street only."""
    if granter.role == "street_admin" and street_id != granter.street_id:
        raise Forbidden("街道管理员只能在本街道创建社区", code="street_forbidden")
    if not SCOPE_ID.match(shequ_id):
        raise ValidationFailed("社区编号只能用字母、数字、_ 或 -", fields={"shequ_id": shequ_id[:40]})
    async with pool.acquire() as conn, conn.transaction():
        if await campaigns_repo.get_shequ(conn, shequ_id) is not None:
            raise Conflict("该社区编号已存在", code="shequ_exists")
        try:
            await campaigns_repo.upsert_shequ(conn, shequ_id, street_id, name)
        except asyncpg.ForeignKeyViolationError:
            raise ValidationFailed("街道不存在", code="unknown_scope", fields={"street_id": "不存在"}) from None
        await audit.append(conn, community_id=None, actor=granter.actor, action="shequ.create",
                           detail={"shequ_id": shequ_id, "street_id": street_id})
    return {"shequ_id": shequ_id, "street_id": street_id, "name": name}


async def assign_shequ(pool: asyncpg.Pool, granter: StaffPrincipal, *, community_id: str,
                       shequ_id: str | None) -> dict:
    """Put a community in a 社区 of its own street (None: in none)."""
    async with pool.acquire() as conn, conn.transaction():
        community = await community_repo.get_community(conn, community_id)
        if community is None:
            raise NotFound("小区不存在", code="community_not_found")
        if shequ_id is not None:
            shequ = await campaigns_repo.get_shequ(conn, shequ_id)
            if shequ is None:
                raise ValidationFailed("社区不存在", code="unknown_scope", fields={"shequ_id": "不存在"})
            if shequ["street_id"] != community["street_id"]:
                raise ValidationFailed("社区与小区不在同一街道", code="shequ_street_mismatch",
                                       fields={"shequ_id": shequ_id})
        await campaigns_repo.set_community_shequ(conn, community_id, shequ_id)
        await audit.append(conn, community_id=community_id, actor=granter.actor, action="community.shequ",
                           detail={"shequ_id": shequ_id})
    return {"community_id": community_id, "shequ_id": shequ_id}
