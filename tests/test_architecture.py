"""The layout's rules, checked on the source (docs/architecture.md explains them).

- the pure core (server/ballot/) and the public record (server/record/) import no I/O library;
- SQL is issued only by repositories (server/repositories/) and the database package (server/db/);
  the demo and simulation tools (server/devtools/) are exempt;
- services and repositories do not import the web framework;
- the top of server/ is the composition root only, and no module grows past 600 lines.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent.parent / "server"
IO_LIBRARIES = {"asyncpg", "aiohttp", "aiohttp_sse", "redis"}
SQL_METHODS = {"fetch", "fetchrow", "fetchval", "execute", "executemany", "copy_records_to_table",
               "copy_to_table", "copy_from_table", "copy_from_query"}
SQL_HOMES = ("repositories", "db", "devtools")
TOP_LEVEL_LIMIT = 10
LINE_LIMIT = 600


def _modules(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["ballot", "record"])
def test_pure_packages_import_no_io_library(package):
    offenders = {str(p.relative_to(SERVER)): sorted(_imported(ast.parse(p.read_text())) & IO_LIBRARIES)
                 for p in _modules(SERVER / package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_services_and_repositories_import_no_web_framework():
    """Use cases and SQL do not know about HTTP: handlers and server/app.py do."""
    offenders = {str(p.relative_to(SERVER)): sorted(_imported(ast.parse(p.read_text())) & {"aiohttp", "aiohttp_sse"})
                 for package in ("services", "repositories") for p in _modules(SERVER / package)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_sql_is_issued_only_by_repositories_and_db():
    offenders = []
    for path in _modules(SERVER):
        rel = path.relative_to(SERVER)
        if rel.parts[0] in SQL_HOMES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SQL_METHODS and isinstance(node.func.value, ast.Name | ast.Attribute)):
                offenders.append(f"{rel}:{node.lineno} .{node.func.attr}(")
    assert offenders == []


def test_the_top_of_server_is_the_composition_root():
    top = sorted(p.name for p in SERVER.glob("*.py"))
    assert len(top) <= TOP_LEVEL_LIMIT, top


def test_no_module_is_over_the_line_limit():
    long = {str(p.relative_to(SERVER)): n for p in _modules(SERVER)
            if (n := len(p.read_text().splitlines())) > LINE_LIMIT}
    assert long == {}


def test_the_checks_see_what_they_look_for(tmp_path):
    """The scanners above find an I/O import and a SQL call when there is one."""
    tree = ast.parse("import asyncpg\nfrom aiohttp import web\nasync def f(conn):\n    await conn.fetchrow('SELECT 1')\n")
    assert _imported(tree) & IO_LIBRARIES == {"asyncpg", "aiohttp"}
    calls = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert "fetchrow" in calls and "fetchrow" in SQL_METHODS
