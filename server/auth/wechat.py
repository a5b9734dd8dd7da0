"""WeChat's server API through our own async client: mini program login (code2Session), the access token
(stable_token), subscribe messages (订阅消息) and the mini-program code (小程序码).

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
    def appid(self) -> str:
        return self._appid

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

    # --- calls that need the access token (docs/notifications.md) ---

    async def _post(self, path: str, body: dict, *, token: str | None = None) -> tuple[int, str, bytes]:
        """POST JSON; (HTTP status, content type, body).  Raises WeChatUnreachable on transport errors."""
        params = {"access_token": token} if token is not None else None
        try:
            async with self._session.post(f"{self._base_url}{path}", params=params, json=body,
                                          timeout=self._timeout) as resp:
                return resp.status, resp.content_type, await resp.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise WeChatUnreachable(exc.__class__.__name__) from None

    @staticmethod
    def _json(status: int, raw: bytes) -> dict:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if status != 200 or not isinstance(data, dict):
            raise WeChatUnreachable(f"HTTP {status}")
        return data

    async def stable_token(self, *, force_refresh: bool = False) -> tuple[str, int]:
        """``POST /cgi-bin/stable_token``: (access_token, expires_in seconds).  Unlike ``/cgi-bin/token`` a
        fetch does not invalidate the token other callers hold, so a refresh never breaks a send in flight."""
        if not self.configured:
            raise WeChatUnreachable("not configured")
        status, _, raw = await self._post("/cgi-bin/stable_token", {
            "grant_type": "client_credential", "appid": self._appid, "secret": self._secret,
            "force_refresh": force_refresh})
        data = self._json(status, raw)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if data.get("errcode") or not isinstance(token, str) or not isinstance(expires_in, int):
            log.warning("stable_token errcode %s (%s)", data.get("errcode"), str(data.get("errmsg", ""))[:80])
            raise WeChatUnreachable(f"errcode {data.get('errcode')}")
        return token, expires_in

    async def send_subscribe_message(self, token: str, message: dict) -> WeChatReply:
        """``POST /cgi-bin/message/subscribe/send``: {touser, template_id, page, data, miniprogram_state, lang}."""
        status, _, raw = await self._post("/cgi-bin/message/subscribe/send", message, token=token)
        data = self._json(status, raw)
        return WeChatReply(errcode=int(data.get("errcode") or 0), errmsg=str(data.get("errmsg", ""))[:200])

    async def unlimited_wxacode(self, token: str, *, scene: str, page: str, env_version: str = "release",
                                width: int = 430) -> bytes | WeChatReply:
        """``POST /wxa/getwxacodeunlimit``: the image, or WeChat's error (a JSON body) as a reply."""
        status, content_type, raw = await self._post("/wxa/getwxacodeunlimit", {
            "scene": scene, "page": page, "check_path": False, "env_version": env_version, "width": width},
            token=token)
        if status == 200 and content_type.startswith("image/"):
            return raw
        data = self._json(status, raw)
        return WeChatReply(errcode=int(data.get("errcode") or -1), errmsg=str(data.get("errmsg", ""))[:200])


class WeChatUnreachable(Exception):
    """WeChat did not answer usably (transport error, HTTP error, not JSON, no token)."""


# errcodes of the token-bearing calls: the token is stale; the message can never be delivered
ERR_TOKEN_STALE = frozenset({40001, 40014, 42001})
ERR_PERMANENT = frozenset({40003, 40037, 41030, 43101, 47003})


@dataclass(frozen=True)
class WeChatReply:
    errcode: int
    errmsg: str = ""

    @property
    def ok(self) -> bool:
        return self.errcode == 0


async def wechat_ctx(app):
    """Cleanup context: one HTTP client session for WeChat, closed on shutdown."""
    from server import appkeys

    settings = app[appkeys.SETTINGS]
    session = aiohttp.ClientSession(headers={"User-Agent": "evote"})
    app[appkeys.WECHAT] = WeChatClient(session, base_url=settings.wechat_base_url,
                                       appid=settings.wechat_appid, secret=settings.wechat_secret)
    yield
    await session.close()
