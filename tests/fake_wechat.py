"""A small fake of WeChat's server API on localhost, for the WeChat client's tests.

- ``GET /sns/jscode2session``: js_code ``ok-<name>`` → openid ``openid-<name>`` (and a session_key);
  ``bad`` → errcode 40029; ``busy`` → errcode 45011; a wrong appid/secret → errcode 40013.
- ``POST /cgi-bin/stable_token``: a new token ``tok-N`` (expires_in 7200) on each call with the right
  appid/secret; every call kept in ``TOKEN_CALLS``.  Only the newest token is accepted afterwards.
- ``POST /cgi-bin/message/subscribe/send?access_token=``: checks the body's shape as WeChat documents it
  (touser, template_id, page, data of ``{key: {"value": str}}`` with ``thing`` values ≤ 20 characters,
  miniprogram_state, lang); a stale token → 40001; a bad shape → 47003; touser ``openid-refuser`` → 43101
  (the user did not accept); ``openid-flaky`` → -1 (system busy) on its first message only.  Accepted
  messages are kept in ``SENT``.
- ``POST /wxa/getwxacodeunlimit?access_token=``: scene ≤ 32 characters of WeChat's charset → a PNG
  QR code of ``wxacode:<scene>`` (so tests can decode which scene a printed code carries).
- Answers use ``text/plain`` like the real service.
"""
from __future__ import annotations

import io
import json
import re

import qrcode
from aiohttp import web

APPID = "wx-test-appid"
SECRET = "wx-test-secret"
SESSION_KEY_PREFIX = "sk-secret-"


CALLS = web.AppKey("calls", list)
TOKEN_CALLS = web.AppKey("token_calls", list)
SENT = web.AppKey("sent", list)
SEND_CALLS = web.AppKey("send_calls", list)
WXACODE_CALLS = web.AppKey("wxacode_calls", list)
TOKENS = web.AppKey("tokens", list)

SCENE = re.compile(r"^[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}$")
DATA_KEY = re.compile(r"^(thing|time|date|number|phrase|character_string|name|amount|phone_number|letter|symbol)\d+$")


def _text(body: dict) -> web.Response:
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="text/plain")


def shape_problem(body: object) -> str | None:
    """Why a subscribe/send body is not what WeChat takes, or None."""
    if not isinstance(body, dict):
        return "body is not an object"
    for key in ("touser", "template_id", "page", "miniprogram_state", "lang"):
        if not isinstance(body.get(key), str) or not body[key]:
            return f"{key} missing"
    if body["miniprogram_state"] not in ("formal", "trial", "developer"):
        return "miniprogram_state"
    data = body.get("data")
    if not isinstance(data, dict) or not data:
        return "data missing"
    for key, value in data.items():
        if not DATA_KEY.match(key) or not isinstance(value, dict) or set(value) != {"value"}:
            return f"data.{key} shape"
        if not isinstance(value["value"], str) or not value["value"]:
            return f"data.{key} empty"
        if key.startswith("thing") and len(value["value"]) > 20:
            return f"data.{key} longer than 20"
    return None


def make_app() -> web.Application:
    app = web.Application()
    calls: list[dict] = []
    app[CALLS] = calls

    async def jscode2session(request: web.Request) -> web.Response:
        q = dict(request.query)
        calls.append(q)
        if q.get("appid") != APPID or q.get("secret") != SECRET:
            body = {"errcode": 40013, "errmsg": "invalid appid"}
        elif q.get("grant_type") != "authorization_code":
            body = {"errcode": 40002, "errmsg": "invalid grant_type"}
        elif q.get("js_code") == "busy":
            body = {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
        elif q.get("js_code", "").startswith("ok-"):
            name = q["js_code"][3:]
            body = {"openid": f"openid-{name}", "session_key": f"{SESSION_KEY_PREFIX}{name}"}
        else:
            body = {"errcode": 40029, "errmsg": "invalid code"}
        return web.Response(text=json.dumps(body), content_type="text/plain")

    tokens: list[str] = []
    app[TOKENS] = tokens
    app[TOKEN_CALLS] = []
    app[SENT] = []
    app[SEND_CALLS] = []
    app[WXACODE_CALLS] = []
    flaky_seen: set[str] = set()

    async def stable_token(request: web.Request) -> web.Response:
        body = await request.json()
        app[TOKEN_CALLS].append(body)
        if body.get("appid") != APPID or body.get("secret") != SECRET:
            return _text({"errcode": 40013, "errmsg": "invalid appid"})
        if body.get("grant_type") != "client_credential":
            return _text({"errcode": 40002, "errmsg": "invalid grant_type"})
        tokens.append(f"tok-{len(tokens) + 1}")
        return _text({"access_token": tokens[-1], "expires_in": 7200})

    def token_ok(request: web.Request) -> bool:
        return bool(tokens) and request.query.get("access_token") == tokens[-1]

    async def subscribe_send(request: web.Request) -> web.Response:
        body = await request.json()
        app[SEND_CALLS].append(body)
        if not token_ok(request):
            return _text({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if (problem := shape_problem(body)) is not None:
            return _text({"errcode": 47003, "errmsg": f"argument invalid! {problem}"})
        if body["touser"] == "openid-refuser":
            return _text({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
        if body["touser"] == "openid-flaky" and body["touser"] not in flaky_seen:
            flaky_seen.add(body["touser"])
            return _text({"errcode": -1, "errmsg": "system error"})
        app[SENT].append(body)
        return _text({"errcode": 0, "errmsg": "ok", "msgid": len(app[SENT])})

    async def wxacode(request: web.Request) -> web.Response:
        body = await request.json()
        app[WXACODE_CALLS].append(body)
        if not token_ok(request):
            return _text({"errcode": 40001, "errmsg": "invalid credential"})
        if not isinstance(body.get("scene"), str) or not SCENE.match(body["scene"]):
            return _text({"errcode": 40169, "errmsg": "invalid length for scene"})
        out = io.BytesIO()
        qrcode.make(f"wxacode:{body['scene']}", border=2).save(out)
        return web.Response(body=out.getvalue(), content_type="image/png")

    app.router.add_get("/sns/jscode2session", jscode2session)
    app.router.add_post("/cgi-bin/stable_token", stable_token)
    app.router.add_post("/cgi-bin/message/subscribe/send", subscribe_send)
    app.router.add_post("/wxa/getwxacodeunlimit", wxacode)
    return app
