"""WeChat mini program login: code2Session through our own async client.

``GET {base_url}/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code``
answers ``{"openid", "session_key", "unionid"?}`` or ``{"errcode", "errmsg"}``.  The
base URL is a setting so tests talk to a fake server on localhost.  ``session_key``
stays in this process: it is kept off ``repr`` and logs and never returned to a client.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

import aiohttp

from server.errors import ApiError, ServiceUnavailable

log = logging.getLogger("evote.wechat")

# WeChat error codes we tell apart (others are "WeChat could not log you in").
ERR_INVALID_CODE = 40029
ERR_RATE_LIMIT = 45011
ERR_CODE_USED = 40163
ERR_SYSTEM_BUSY = -1


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str | None = None
    session_key: str = field(default="", repr=False)


class WeChatLoginFailed(ApiError):
    status, code, message = 400, "wechat_login_failed", "微信登录失败，请退出后重新打开小程序再试"


class WeChatClient:
    def __init__(self, session: aiohttp.ClientSession, *, base_url: str, appid: str, secret: str,
                 timeout_s: float = 5.0):
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._appid = appid
        self._secret = secret
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @property
    def configured(self) -> bool:
        return bool(self._appid and self._secret)

    async def code2session(self, js_code: str) -> WeChatSession:
        if not self.configured:
            raise ServiceUnavailable("暂未开通微信登录，请用手机号或身份证号后四位确认身份",
                                     code="wechat_not_configured")
        params = {"appid": self._appid, "secret": self._secret, "js_code": js_code,
                  "grant_type": "authorization_code"}
        try:
            async with self._session.get(f"{self._base_url}/sns/jscode2session", params=params,
                                         timeout=self._timeout) as resp:
                # WeChat answers JSON with a text/plain content type.
                body = await resp.text()
                status = resp.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("code2Session unreachable: %s", exc.__class__.__name__)
            raise ServiceUnavailable("暂时连不上微信，请稍后再试", code="wechat_unavailable") from None
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict):
            log.warning("code2Session answered HTTP %s", status)
            raise ServiceUnavailable("暂时连不上微信，请稍后再试", code="wechat_unavailable")
        errcode = data.get("errcode") or 0
        if errcode:
            # errmsg may be logged; the js_code, secret and session_key never are.
            log.info("code2Session errcode %s (%s)", errcode, str(data.get("errmsg", ""))[:80])
            if errcode in (ERR_INVALID_CODE, ERR_CODE_USED):
                raise WeChatLoginFailed("微信登录已失效，请退出后重新打开小程序再试", code="wechat_code_invalid")
            if errcode == ERR_RATE_LIMIT:
                raise ApiError("微信登录太频繁，请一分钟后再试", code="wechat_rate_limited", status=429)
            if errcode == ERR_SYSTEM_BUSY:
                raise ServiceUnavailable("微信系统繁忙，请稍后再试", code="wechat_unavailable")
            raise WeChatLoginFailed()
        openid = data.get("openid")
        if not isinstance(openid, str) or not openid:
            raise ServiceUnavailable("暂时连不上微信，请稍后再试", code="wechat_unavailable")
        return WeChatSession(openid=openid, unionid=data.get("unionid") or None,
                             session_key=str(data.get("session_key") or ""))


async def wechat_ctx(app):
    """Cleanup context: one HTTP client session for WeChat, closed on shutdown."""
    from server import appkeys

    settings = app[appkeys.SETTINGS]
    session = aiohttp.ClientSession(headers={"User-Agent": "evote"})
    app[appkeys.WECHAT] = WeChatClient(session, base_url=settings.wechat_base_url,
                                       appid=settings.wechat_appid, secret=settings.wechat_secret)
    yield
    await session.close()
