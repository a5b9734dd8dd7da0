"""The API documents: the owner API at GET /api/openapi.yaml (and .json) with a small page at
/api/docs, and the staff API at GET /api/admin/openapi.yaml (and .json)."""
from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import yaml
from aiohttp import web

from server.errors import NotFound

# The documents live in the repository's miniapp_api_spec/; an installed wheel carries copies
# under {prefix}/share/evote/ (pyproject data-files).
OWNER_SPEC = "openapi.yaml"
STAFF_SPEC = "staff-openapi.yaml"


def spec_paths(name: str) -> tuple[Path, ...]:
    return (Path(__file__).resolve().parents[3] / "miniapp_api_spec" / name,
            Path(sys.prefix) / "share" / "evote" / name)


_DOCS_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>evote 接口文档</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.6">
<h1>evote 接口文档</h1>
<p>业主端 OpenAPI 3 文档：<a href="/api/openapi.yaml">openapi.yaml</a> ·
<a href="/api/openapi.json">openapi.json</a></p>
<p>工作人员（管理端）OpenAPI 3 文档：<a href="/api/admin/openapi.yaml">/api/admin/openapi.yaml</a> ·
<a href="/api/admin/openapi.json">/api/admin/openapi.json</a></p>
<p>可用任意 OpenAPI 工具（如 Swagger UI、Redoc、schemathesis）打开。</p>
</body></html>
"""


@lru_cache(maxsize=2)
def _spec_text(name: str) -> str:
    for path in spec_paths(name):
        try:
            return path.read_text("utf-8")
        except OSError:
            continue
    raise NotFound("接口文档不在本安装中", code="openapi_missing")


@lru_cache(maxsize=2)
def _spec_json(name: str) -> str:
    return json.dumps(yaml.safe_load(_spec_text(name)), ensure_ascii=False)


def _yaml_handler(name: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=_spec_text(name), content_type="application/yaml", charset="utf-8")
    return handler


def _json_handler(name: str):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=_spec_json(name), content_type="application/json", charset="utf-8")
    return handler


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_DOCS_PAGE, content_type="text/html", charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get("/api/openapi.yaml", _yaml_handler(OWNER_SPEC))
    app.router.add_get("/api/openapi.json", _json_handler(OWNER_SPEC))
    app.router.add_get("/api/docs", docs)
    app.router.add_get("/api/admin/openapi.yaml", _yaml_handler(STAFF_SPEC))
    app.router.add_get("/api/admin/openapi.json", _json_handler(STAFF_SPEC))
