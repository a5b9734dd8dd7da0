"""A small fake of WeChat's code2Session on localhost, for the WeChat client's tests.

- ``GET /sns/jscode2session``: js_code ``ok-<name>`` → openid ``openid-<name>`` (and a session_key);
  ``bad`` → errcode 40029; ``busy`` → errcode 45011; a wrong appid/secret → errcode 40013.
- Answers use ``text/plain`` like the real service.  Every request is kept in ``requests``.
"""
from __future__ import annotations

import json

from aiohttp import web

APPID = "wx-test-appid"
SECRET = "wx-test-secret"
SESSION_KEY_PREFIX = "sk-secret-"


CALLS = web.AppKey("calls", list)


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

    app.router.add_get("/sns/jscode2session", jscode2session)
    return app
