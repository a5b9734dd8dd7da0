"""`evote community add ID --name NAME`: create a community (with its district and street)."""
from __future__ import annotations

import datetime as dt

from server.commands._runtime import CommandFailed, database, run, settings_from_env
from server.errors import ApiError
from server.services import staff as staff_service


def register(sub) -> None:
    parser = sub.add_parser("community", help="communities (小区)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    add = actions.add_parser("add", help="add a community")
    add.add_argument("community_id")
    add.add_argument("--name", required=True)
    add.add_argument("--district", default="licheng", help="district id (default licheng)")
    add.add_argument("--district-name", default="鲤城区")
    add.add_argument("--street", default=None, help="street id")
    add.add_argument("--street-name", default=None)
    add.add_argument("--count-parking", action="store_true", help="parking spaces count as exclusive parts")
    add.add_argument("--prep-group-formed", type=dt.date.fromisoformat, default=None,
                     help="date the preparatory group was formed (YYYY-MM-DD)")
    add.set_defaults(func=add_main)


async def add_community(pool, *, community_id: str, name: str, district: str, district_name: str,
                        street: str | None, street_name: str | None, count_parking: bool,
                        prep_group_formed, actor: str) -> None:
    new_street = (staff_service.StreetScope(district, district_name, street, street_name or street)
                  if street else None)
    try:
        await staff_service.create_community(pool, actor=actor, community_id=community_id, name=name,
                                             street_id=street, count_parking_area=count_parking,
                                             prep_group_formed_on=prep_group_formed, new_street=new_street)
    except ApiError as exc:
        if exc.code == "community_exists":
            raise CommandFailed(f"community {community_id} already exists") from None
        if "community_id" in exc.fields:
            raise CommandFailed("community id must be 1-64 letters, digits, _ or -") from None
        raise


def add_main(args) -> int:
    async def go() -> int:
        async with database(settings_from_env()) as pool:
            await add_community(pool, community_id=args.community_id, name=args.name, district=args.district,
                                district_name=args.district_name, street=args.street,
                                street_name=args.street_name, count_parking=args.count_parking,
                                prep_group_formed=args.prep_group_formed, actor="cli")
        print(f"community {args.community_id} created")
        return 0

    return run("evote community add", go())
