"""Owners' sign-in (POST /api/ballot/redeem) and the owner web page (GET /b/{code}, /static/owner/)."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server import appkeys
from server.ballot.codes import valid_device_id
from server.errors import ValidationFailed
from server.services import signin as signin_service
from server.web.handlers.common import field, json_response, pool, read_json, settings

OWNER_STATIC = Path(__file__).resolve().parent.parent / "static" / "owner"


async def redeem(request: web.Request) -> web.Response:
    data = await read_json(request)
    code = field(data, "code", str, max_length=64)
    last4 = field(data, "last4", str, required=False, max_length=8)
    device_id = field(data, "device_id", str, required=False, max_length=128)
    wx_code = field(data, "wx_code", str, required=False, max_length=128)
    if device_id is not None and not valid_device_id(device_id):
        raise ValidationFailed("设备标识格式不正确", fields={"device_id": "8–128 位字母、数字、_ 或 -"})
    if wx_code is not None and not wx_code.strip():
        raise ValidationFailed("微信登录凭证为空", fields={"wx_code": "不能为空"})
    async with pool(request).acquire() as conn:
        found = await signin_service.find_code(conn, code)
    openid = None
    if wx_code is not None:
        # Only for a real code: nobody can make us call WeChat with junk.
        wx = await request.app[appkeys.WECHAT].code2session(wx_code)
        openid = wx.openid            # session_key stays here and is dropped
    result = await signin_service.redeem(
        pool(request), request.app[appkeys.TOKEN_KEYS],
        signin_service.RedeemRequest(code=code, last4=last4, device_id=device_id, openid=openid),
        margin_s=settings(request).ballot_token_margin_s, row_and_digest=found, settings=settings(request))
    return json_response(result, headers={"Cache-Control": "no-store"})


async def owner_page(request: web.Request) -> web.StreamResponse:
    """The page itself; the code in the path is read by the page's script."""
    return web.FileResponse(OWNER_STATIC / "index.html",
                            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                     "X-Content-Type-Options": "nosniff"})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/ballot/redeem", redeem)
    app.router.add_get("/b/{code}", owner_page)
    app.router.add_get("/b/", owner_page)
    app.router.add_static("/static/owner/", OWNER_STATIC, append_version=False)
