"""The owner-facing API document: GET /api/openapi.yaml (and .json), and a small page at /api/docs."""
from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import yaml
from aiohttp import web

from server.errors import NotFound

# The document lives in the repository's miniapp_api_spec/; an installed wheel carries a copy
# under {prefix}/share/evote/ (pyproject data-files).
SPEC_PATHS = (
    Path(__file__).resolve().parents[3] / "miniapp_api_spec" / "openapi.yaml",
    Path(sys.prefix) / "share" / "evote" / "openapi.yaml",
)

_DOCS_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>evote 业主端接口文档</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.6">
<h1>evote 业主端接口文档</h1>
<p>OpenAPI 3 文档：<a href="/api/openapi.yaml">openapi.yaml</a> ·
<a href="/api/openapi.json">openapi.json</a></p>
<p>可用任意 OpenAPI 工具（如 Swagger UI、Redoc、schemathesis）打开。</p>
</body></html>
"""


@lru_cache(maxsize=1)
def _spec_text() -> str:
    for path in SPEC_PATHS:
        try:
            return path.read_text("utf-8")
        except OSError:
            continue
    raise NotFound("接口文档不在本安装中", code="openapi_missing")


@lru_cache(maxsize=1)
def _spec_json() -> str:
    return json.dumps(yaml.safe_load(_spec_text()), ensure_ascii=False)


async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(text=_spec_text(), content_type="application/yaml", charset="utf-8")


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=_spec_json(), content_type="application/json", charset="utf-8")


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_PAGE, content_type="text/html", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/openapi.yaml", openapi_yaml)
    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/api/docs", docs)
