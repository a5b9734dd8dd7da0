"""Staff sign-in, staff accounts and communities (admin API)."""
from __future__ import annotations

import datetime as dt

from aiohttp import web

from server import appkeys
from server.auth.client_address import client_address
from server.auth.staff import require_staff
from server.errors import NotFound, ValidationFailed
from server.repositories import communities as community_repo
from server.services import staff as staff_service
from server.services import staff_accounts
from server.services.input_dates import iso_date
from server.web.handlers.common import field, json_response, pool, read_json, settings


async def login(request: web.Request) -> web.Response:
    data = await read_json(request)
    username = field(data, "username", str, max_length=64)
    password = field(data, "password", str, max_length=256)
    try:
        result = await staff_service.login(pool(request), request.app[appkeys.TOKEN_KEYS], username=username,
                                           password=password, ttl_s=settings(request).staff_token_ttl_s,
                                           address=client_address(request, settings(request).trusted_proxy_networks))
    except staff_accounts.LoginLocked as locked:
        return json_response(locked.envelope(), status=locked.status,
                             headers={"Retry-After": str(locked.retry_after_s), "Cache-Control": "no-store"})
    return json_response(result, headers={"Cache-Control": "no-store"})


async def logout(request: web.Request) -> web.Response:
    principal = await require_staff(request)
    await staff_accounts.logout(pool(request), principal)
    return json_response({"logged_out": True})


async def change_password(request: web.Request) -> web.Response:
    principal = await require_staff(request)
    data = await read_json(request)
    await staff_accounts.change_own_password(
        pool(request), principal, old_password=field(data, "old_password", str, max_length=256),
        new_password=field(data, "new_password", str, max_length=256))
    return json_response({"changed": True, "relogin_required": True})


_MANAGERS = frozenset({"district_admin", "street_admin"})


async def list_staff(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=_MANAGERS)
    return json_response({"staff": await staff_accounts.list_accounts(pool(request), principal)})


async def staff_action(request: web.Request) -> web.Response:
    """POST /api/admin/staff/{username}/{action}: disable, enable, roles, password, revoke."""
    principal = await require_staff(request, roles=_MANAGERS)
    username, action = request.match_info["username"], request.match_info["action"]
    db = pool(request)
    if action in ("disable", "enable"):
        await staff_accounts.set_active(db, principal, username, active=action == "enable")
    elif action == "revoke":
        await staff_accounts.revoke_sessions(db, principal, username)
    elif action == "password":
        data = await read_json(request)
        await staff_accounts.reset_password(db, principal, username,
                                            new_password=field(data, "new_password", str, max_length=256))
    elif action == "roles":
        data = await read_json(request)
        communities = field(data, "communities", list, required=False, default=[], max_length=500)
        if not all(isinstance(c, str) for c in communities):
            raise ValidationFailed(fields={"communities": "必须是小区编号列表"})
        await staff_accounts.set_roles(db, principal, username, role=field(data, "role", str, max_length=32),
                                       street_id=field(data, "street_id", str, required=False, max_length=64),
                                       communities=communities)
    else:
        raise NotFound("没有该操作", code="not_found")
    return json_response({"username": username, "action": action})


async def me(request: web.Request) -> web.Response:
    principal = await require_staff(request)
    async with pool(request).acquire() as conn:
        communities = await community_repo.list_communities_for(
            conn, staff_id=principal.staff_id, role=principal.role, street_id=principal.street_id)
    return json_response({"username": principal.username, "role": principal.role,
                          "street_id": principal.street_id,
                          "communities": [dict(r) for r in communities]})


async def create_staff(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=frozenset({"district_admin", "street_admin"}))
    data = await read_json(request)
    role = field(data, "role", str)
    communities = field(data, "communities", list, required=False, default=[], max_length=500)
    if not all(isinstance(c, str) for c in communities):
        raise ValidationFailed(fields={"communities": "必须是小区编号列表"})
    street_id = field(data, "street_id", str, required=False)
    shequ_id = field(data, "shequ_id", str, required=False, max_length=64)
    async with pool(request).acquire() as conn:
        await staff_service.ensure_may_grant(conn, principal, role=role, street_id=street_id,
                                             communities=communities, shequ_id=shequ_id)
    staff_id = await staff_service.create_staff(
        pool(request), actor=principal.actor, username=field(data, "username", str, max_length=64),
        password=field(data, "password", str, max_length=256), role=role,
        display_name=field(data, "display_name", str, required=False, default="", max_length=100),
        street_id=street_id, communities=communities, shequ_id=shequ_id)
    return json_response({"staff_id": staff_id}, status=201)


def _parse_date(value: str | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return iso_date(value, name)
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} 应为日期（如 2026-03-01）", fields={name: "日期格式 YYYY-MM-DD"}) from None


async def create_community(request: web.Request) -> web.Response:
    principal = await require_staff(request, roles=frozenset({"district_admin", "street_admin"}))
    data = await read_json(request)
    community_id = field(data, "community_id", str, max_length=64)
    street_id = field(data, "street_id", str, required=False, default=principal.street_id)
    if principal.role == "street_admin" and street_id != principal.street_id:
        raise ValidationFailed("街道管理员只能在本街道创建小区", fields={"street_id": "只能是本街道"})
    await staff_service.create_community(
        pool(request), actor=principal.actor, community_id=community_id,
        name=field(data, "name", str, max_length=100), street_id=street_id,
        count_parking_area=field(data, "count_parking_area", bool, required=False, default=False),
        prep_group_formed_on=_parse_date(field(data, "prep_group_formed_on", str, required=False),
                                         "prep_group_formed_on"))
    return json_response({"community_id": community_id}, status=201)


async def list_communities(request: web.Request) -> web.Response:
    principal = await require_staff(request)
    async with pool(request).acquire() as conn:
        rows = await community_repo.list_communities_for(
            conn, staff_id=principal.staff_id, role=principal.role, street_id=principal.street_id)
    return json_response({"communities": [dict(r) for r in rows]})


async def get_community(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    async with pool(request).acquire() as conn:
        row = await community_repo.get_community(conn, community_id)
    if row is None:
        raise NotFound("小区不存在", code="community_not_found")
    return json_response(dict(row))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/staff/login", login)
    app.router.add_post("/api/staff/logout", logout)
    app.router.add_post("/api/staff/password", change_password)
    app.router.add_get("/api/staff/me", me)
    app.router.add_post("/api/admin/staff", create_staff)
    app.router.add_get("/api/admin/staff", list_staff)
    app.router.add_post("/api/admin/staff/{username}/{action}", staff_action)
    app.router.add_post("/api/admin/communities", create_community)
    app.router.add_get("/api/admin/communities", list_communities)
    app.router.add_get("/api/admin/communities/{community_id}", get_community)

