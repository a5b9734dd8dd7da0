"""`evote migrate`: apply the numbered SQL migrations."""
from __future__ import annotations

from server.commands._runtime import database, run, settings_from_env
from server.db.pool import migrate
from server.services import personal_data


def register(sub) -> None:
    parser = sub.add_parser("migrate", help="apply database migrations (数据库迁移)")
    parser.set_defaults(func=main)


def main(args) -> int:
    async def go() -> int:
        settings = settings_from_env()
        async with database(settings, apply_migrations=False) as pool, pool.acquire() as conn:
            applied = await migrate(conn)
            # Migrations 0073/0075's data step: numbers stored in clear (owners, transfers' new owners)
            # become keyed hashes and masked forms.
            converted = await personal_data.protect_stored_identities(conn, settings)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
        if converted:
            print(f"protected the phone and ID numbers of {converted} owner row(s) (docs/privacy.md)")
        return 0

    return run("evote migrate", go())
