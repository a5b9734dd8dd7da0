"""The demo community: a generated register of about 1,000 units and a staff login.

``prepare_demo`` is idempotent: run twice, it keeps the community and register
and gives the demo admin a fresh password (printed once, never stored in clear).
Later steps (a demo meeting, codes, the dashboard link) are listed in ``DEMO_STEPS``.
``end_demo_voting`` (``evote demo --end-voting``) ends the demo meeting's voting period now.
"""
from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import asyncpg

from server.auth.staff import hash_password
from server.devtools.demo_codes import demo_codes_step
from server.devtools.demo_dashboard import demo_dashboard_step
from server.devtools.demo_data import generate_register_rows, register_csv
from server.devtools.demo_meeting import DEMO_MEETING, demo_meeting_step
from server.devtools.fixtures import end_voting_now
from server.repositories import communities as community_repo
from server.repositories import meetings as meetings_repo
from server.repositories import staff as staff_repo
from server.services import audit
from server.services import register as register_service
from server.services import staff as staff_service
from server.settings import Settings

DEMO_COMMUNITY = "demo-haibin"
DEMO_ADMIN = "admin"
DEMO_UNITS = 1000

DemoStep = Callable[[asyncpg.Pool, Settings, dict], Awaitable[None]]

# Each step: async fn(pool, settings, info: dict) -> None, adding what it made to info; in order:
# the open demo meeting first, then what uses it (ballot codes for sample owners, the live
# dashboard's link).
DEMO_STEPS: list[DemoStep] = [demo_meeting_step, demo_codes_step, demo_dashboard_step]


async def prepare_demo(pool: asyncpg.Pool, settings: Settings) -> dict:
    info: dict = {"community_id": DEMO_COMMUNITY}
    async with pool.acquire() as conn, conn.transaction():
        await community_repo.upsert_district(conn, "licheng", "鲤城区")
        await community_repo.upsert_street(conn, "haibin", "licheng", "海滨街道")
        if await community_repo.get_community(conn, DEMO_COMMUNITY) is None:
            await community_repo.insert_community(conn, community_id=DEMO_COMMUNITY, name="海滨演示小区",
                                                  street_id="haibin", count_parking_area=False,
                                                  prep_group_formed_on=None)
            await audit.append(conn, community_id=DEMO_COMMUNITY, actor="demo", action="community.create")
        version = await conn.fetchval(
            "SELECT max(version) FROM register_version WHERE community_id = $1", DEMO_COMMUNITY)
    if version is None:
        rows = generate_register_rows(DEMO_UNITS, seed=2026, buildings=8)
        await register_service.import_register(pool, community_id=DEMO_COMMUNITY, data=register_csv(rows),
                                               filename="demo-register.csv", actor="demo", settings=settings)
    password = secrets.token_urlsafe(9)
    async with pool.acquire() as conn:
        existing = await staff_repo.get_staff_by_username(conn, DEMO_ADMIN)
    if existing is None:
        await staff_service.create_staff(pool, actor="demo", username=DEMO_ADMIN, password=password,
                                         role="district_admin", display_name="演示管理员")
    else:
        async with pool.acquire() as conn:
            await staff_repo.update_password_hash(conn, existing["staff_id"], hash_password(password))
    info.update(admin_username=DEMO_ADMIN, admin_password=password)
    info["totals"] = await register_service.register_totals(pool, DEMO_COMMUNITY)
    for step in DEMO_STEPS:
        await step(pool, settings, info)
    return info


class DemoNotOpen(Exception):
    """The demo meeting is missing or not open: there is no voting period to end."""


async def end_demo_voting(pool: asyncpg.Pool) -> dict:
    """DEMO ONLY: the voting period of the demo meeting (and no other) ends now.

    Through ``server.devtools.fixtures.end_voting_now``: its close time moves to now, so the running
    service's scheduler closes it (and signs the result) within seconds, or staff close it by hand.
    Returns the community, meeting and new close time.
    """
    if not await end_voting_now(pool, DEMO_COMMUNITY, DEMO_MEETING):
        async with pool.acquire() as conn:
            meeting = await meetings_repo.get_meeting(conn, DEMO_COMMUNITY, DEMO_MEETING)
        state = meeting["state"] if meeting else "missing"
        raise DemoNotOpen(f"the demo meeting {DEMO_COMMUNITY}/{DEMO_MEETING} is not open (state: {state})")
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, DEMO_COMMUNITY, DEMO_MEETING)
    assert meeting is not None
    return {"community_id": DEMO_COMMUNITY, "meeting_id": DEMO_MEETING, "closes_at": meeting["closes_at"]}
