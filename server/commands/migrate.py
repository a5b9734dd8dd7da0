"""`evote migrate`: apply the numbered SQL migrations."""
from __future__ import annotations

from server.commands._runtime import database, run, settings_from_env
from server.db.pool import migrate


def register(sub) -> None:
    parser = sub.add_parser("migrate", help="apply database migrations (数据库迁移)")
    parser.set_defaults(func=main)


def main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env(), apply_migrations=False) as pool, pool.acquire() as conn:
            applied = await migrate(conn)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
        return 0

    return run("evote migrate", go())
