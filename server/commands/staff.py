"""`evote staff`: create (bootstraps the first admin), list, disable, enable, set-roles,
reset-password and revoke staff accounts.  Every change is audited with the actor ``cli`` and
ends the account's sessions (its tokens are refused from then on)."""
from __future__ import annotations

import getpass
import os
import secrets
import sys

from server.auth.staff import ROLES
from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.services import staff as staff_service
from server.services import staff_accounts


def register(sub) -> None:
    parser = sub.add_parser("staff", help="staff accounts (工作人员账号)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="add a staff account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=list(ROLES))
    add.add_argument("--name", default="", help="display name")
    _scope_arguments(add)
    _password_arguments(add)
    add.set_defaults(func=add_main)

    listing = actions.add_parser("list", help="list the staff accounts")
    listing.set_defaults(func=list_main)
    for name, text in (("disable", "disable an account and end its sessions"),
                       ("enable", "enable a disabled account (and lift its login lockout)"),
                       ("revoke", "end every session of an account")):
        action = actions.add_parser(name, help=text)
        action.add_argument("username")
        action.set_defaults(func=simple_main)
    roles = actions.add_parser("set-roles", help="change an account's role and scope; ends its sessions")
    roles.add_argument("username")
    roles.add_argument("--role", required=True, choices=list(ROLES))
    _scope_arguments(roles)
    roles.set_defaults(func=set_roles_main)
    reset = actions.add_parser("reset-password",
                               help="set a new password; ends its sessions and lifts its login lockout")
    reset.add_argument("username")
    _password_arguments(reset)
    reset.set_defaults(func=reset_password_main)


def _scope_arguments(parser) -> None:
    parser.add_argument("--street", help="street id (street_admin)")
    parser.add_argument("--shequ", help="社区 id (shequ_admin)")
    parser.add_argument("--community", action="append", default=[],
                        help="community id the account may touch (repeatable)")


def _password_arguments(parser) -> None:
    parser.add_argument("--password-env", metavar="VAR",
                        help="read the password from this environment variable instead of a prompt")
    parser.add_argument("--generate-password", action="store_true",
                        help="generate a random password and print it once")


def _password(args, prog: str) -> str | None:
    if args.generate_password:
        return secrets.token_urlsafe(12)
    if args.password_env:
        password = os.environ.get(args.password_env, "")
        if not password:
            print(f"{prog}: environment variable {args.password_env} is empty", file=sys.stderr)
            return None
        return password
    return getpass.getpass("password: ")


def _failed(exc: ApiError) -> CommandFailed:
    detail = "; ".join(f"{k}: {v}" for k, v in exc.fields.items())
    return CommandFailed(f"{exc.message}{' (' + detail + ')' if detail else ''} [{exc.code}]")


def add_main(args) -> int:
    password = _password(args, "evote staff add")
    if password is None:
        return 2

    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                staff_id = await staff_service.create_staff(
                    pool, actor="cli", username=args.username, password=password, role=args.role,
                    display_name=args.name, street_id=args.street, communities=args.community,
                    shequ_id=args.shequ)
            except ApiError as exc:
                raise _failed(exc) from None
        print(f"staff {args.username} created (id {staff_id}, role {args.role})")
        if args.generate_password:
            print(f"password: {password}")
        return 0

    return run("evote staff add", go())


def list_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            accounts = await staff_accounts.list_accounts(pool, None)
        print(f"{'id':>5}  {'username':<24} {'role':<15} {'state':<8} scope")
        for a in accounts:
            scope = a["street_id"] or ",".join(a["communities"]) or "-"
            state = "active" if a["active"] else "disabled"
            print(f"{a['staff_id']:>5}  {a['username']:<24} {a['role']:<15} {state:<8} {scope}")
        return 0

    return run("evote staff list", go())


def simple_main(args) -> int:
    prog = f"evote staff {args.action}"

    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                if args.action == "revoke":
                    await staff_accounts.revoke_sessions(pool, None, args.username)
                else:
                    await staff_accounts.set_active(pool, None, args.username, active=args.action == "enable")
            except ApiError as exc:
                raise _failed(exc) from None
        done = {"disable": "disabled", "enable": "enabled", "revoke": "sessions revoked"}[args.action]
        print(f"staff {args.username} {done}")
        return 0

    return run(prog, go())


def set_roles_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                await staff_accounts.set_roles(pool, None, args.username, role=args.role,
                                               street_id=args.street, communities=args.community)
            except ApiError as exc:
                raise _failed(exc) from None
        print(f"staff {args.username} is now {args.role} (sessions revoked)")
        return 0

    return run("evote staff set-roles", go())


def reset_password_main(args) -> int:
    password = _password(args, "evote staff reset-password")
    if password is None:
        return 2

    async def go() -> int:
        async with database(settings_from_env()) as pool:
            try:
                await staff_accounts.reset_password(pool, None, args.username, new_password=password)
            except ApiError as exc:
                raise _failed(exc) from None
        print(f"staff {args.username}: password reset (sessions revoked)")
        if args.generate_password:
            print(f"password: {password}")
        return 0

    return run("evote staff reset-password", go())
