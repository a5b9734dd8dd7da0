"""`evote staff add`: create a staff account (bootstraps the first admin)."""
from __future__ import annotations

import getpass
import os
import secrets
import sys

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.services import staff as staff_service


def register(sub) -> None:
    parser = sub.add_parser("staff", help="staff accounts (工作人员账号)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="add a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True,
                     choices=["district_admin", "street_admin", "prep_group", "committee", "auditor"])
    add.add_argument("--name", default="", help="display name")
    add.add_argument("--street", help="street id (street_admin)")
    add.add_argument("--community", action="append", default=[],
                     help="community id the account may touch (repeatable)")
    add.add_argument("--password-env", metavar="VAR",
                     help="read the password from this environment variable instead of a prompt")
    add.add_argument("--generate-password", action="store_true",
                     help="generate a random password and print it once")
    add.set_defaults(func=add_main)


def add_main(args) -> int:
    if args.generate_password:
        password = secrets.token_urlsafe(12)
    elif args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            print(f"evote staff add: environment variable {args.password_env} is empty", file=sys.stderr)
            return 2
    else:
        password = getpass.getpass("password: ")

    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                staff_id = await staff_service.create_staff(
                    pool, actor="cli", username=args.username, password=password, role=args.role,
                    display_name=args.name, street_id=args.street, communities=args.community)
            except ApiError as exc:
                detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
                raise CommandFailed(f"{exc.message}{' (' + detail + ')' if detail else ''} [{exc.code}]") from None
        print(f"staff {args.username} created (id {staff_id}, role {args.role})")
        if args.generate_password:
            print(f"password: {password}")
        return 0

    return run("evote staff add", go())
