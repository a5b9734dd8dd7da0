"""DEMO ONLY: the 2022 鲤城区 plan (../shared/seed) as a campaign of 222 generated communities.

海滨 48, 开元 83, 鲤中 57, 临江 34 old communities in 28 社区; batches of 20 % by 2022-03-30 (at least
one per 社区), 40 % by 06-30 and 40 % by 09-30; 江南新区 as a special area due 06-30.  The facts each
community's stage is derived from (preparatory group, notices, votes, committees, filings, seals,
management choices) are written with SQL as they would stand on ``DEMO_DAY`` (2022-07-15), so the board
shows a campaign in its third batch: most communities of batches 1–2 done, some behind, batch 3 under
way.  Demo meetings have no owners and never open or close by themselves (their times lie far ahead).
``prepare_demo_campaign`` is idempotent.
"""
from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import asyncpg

from server.ballot.definitions import Rules
from server.repositories import communities as community_repo
from server.services import campaigns as campaigns_service

CAMPAIGN_ID = "licheng-2022"
DISTRICT = ("licheng", "鲤城区")
DEMO_DAY = date(2022, 7, 15)
STREETS = [("haibin", "海滨街道", 48, 6), ("kaiyuan", "开元街道", 83, 10), ("lizhong", "鲤中街道", 57, 7),
           ("linjiang", "临江街道", 34, 5)]
PLAN = {"campaign_id": CAMPAIGN_ID, "name": "鲤城区老旧小区成立业主大会、选举业主委员会工作（2022）",
        "district_id": DISTRICT[0], "starts_on": "2022-01-01",
        "batches": [{"name": "第一批", "due_on": "2022-03-30", "share_percent": 20, "one_per_shequ": True},
                    {"name": "第二批", "due_on": "2022-06-30", "share_percent": 40},
                    {"name": "第三批", "due_on": "2022-09-30", "share_percent": 40}],
        "areas": [{"area_id": "jiangnan", "name": "江南新区", "due_on": "2022-06-30"}]}
FAR = datetime(2099, 1, 1, tzinfo=UTC)   # demo meetings never reach their own times
ROAD = ["中山路", "新华路", "东街", "西街", "南俊路", "胜利街", "温陵路", "庄府巷", "金鱼巷", "打锡巷", "聚宝街", "象峰", "浮桥", "江滨", "后城", "花巷"]
KIND = ["小区", "花园", "公寓", "新村", "大厦", "宿舍楼"]


def generated_communities(seed: int = 2022) -> list[dict]:
    """222 communities: id, name, street, 社区, households, batch and the stage they reached by DEMO_DAY."""
    rng = random.Random(seed)
    out = []
    for street_id, street_name, count, shequs in STREETS:
        for i in range(count):
            shequ = i % shequs + 1
            out.append({"community_id": f"{street_id}-{i + 1:03d}", "street_id": street_id, "street_name": street_name,
                        "shequ_id": f"{street_id}-sq{shequ:02d}", "shequ_name": f"{street_name[:2]}第{shequ}社区",
                        "name": f"{rng.choice(ROAD)}{rng.choice(KIND)}{i + 1}号", "households": rng.randint(24, 260)})
    # batches: the first community of each 社区 and then others up to 20 % go first, then 40 %, 40 %
    first = {c["shequ_id"]: c for c in reversed(out)}
    order = list(first.values()) + [c for c in out if c not in first.values()]
    b1, b2 = round(len(out) * 0.2), round(len(out) * 0.6)
    for n, c in enumerate(order):
        c["batch_no"] = 1 if n < b1 else 2 if n < b2 else 3
        roll = rng.random()
        if c["batch_no"] == 1:
            c["stage"] = "management" if roll < .35 else "sealed" if roll < .6 else "filed" if roll < .9 else "voted"
        elif c["batch_no"] == 2:
            c["stage"] = ("sealed" if roll < .15 else "filed" if roll < .45 else "committee_formed" if roll < .75
                          else "voting" if roll < .85 else "noticed" if roll < .92 else "prep_group")
        else:
            c["stage"] = ("committee_formed" if roll < .1 else "voting" if roll < .25 else "noticed" if roll < .4
                          else "prep_group" if roll < .8 else "not_started")
    return out


def _day(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, max((end - start).days, 0)))


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 2, 0, tzinfo=UTC)    # 10:00 in Beijing


async def _record_facts(conn: asyncpg.Connection, c: dict, rng: random.Random) -> None:
    """The recorded facts of one community's stage, dated on or before DEMO_DAY."""
    from server.ballot.campaign import STAGE_INDEX

    reached = STAGE_INDEX[c["stage"]]
    due = {1: date(2022, 3, 30), 2: date(2022, 6, 30), 3: date(2022, 9, 30)}[c["batch_no"]]
    formed = _day(rng, date(2022, 1, 5), min(due, DEMO_DAY) - timedelta(days=45))
    if reached >= STAGE_INDEX["prep_group"]:
        await conn.execute("UPDATE community SET prep_group_formed_on = $2 WHERE community_id = $1",
                           c["community_id"], formed)
    if reached < STAGE_INDEX["noticed"]:
        return
    noticed = formed + timedelta(days=rng.randint(8, 20))
    meeting_id = "first"
    await conn.execute(
        """INSERT INTO meeting (community_id, meeting_id, title, rules, opens_at, closes_at, created_by)
           VALUES ($1, $2, '首次业主大会会议', $3::jsonb, $4, $5, 'demo')""",
        c["community_id"], meeting_id, json.dumps(Rules().to_json()), FAR, FAR + timedelta(days=10))
    await conn.execute(
        """INSERT INTO matter (community_id, meeting_id, matter_id, position, kind, title, category, seats, alternates,
                               body)
           VALUES ($1, 'first', 'E1', 1, 'election', '选举第一届业主委员会委员', 3, 5, 2, 'committee'),
                  ($1, 'first', 'P1', 2, 'resolution', '选聘物业服务企业', 4, NULL, NULL, NULL)""",
        c["community_id"])
    households = c["households"]
    await conn.execute(
        """UPDATE meeting SET state = 'noticed', register_version = 1, total_area = $3, total_persons = $4,
                              area_places = 2, noticed_at = $5 WHERE community_id = $1 AND meeting_id = $2""",
        c["community_id"], meeting_id, households * 85_000, households, _at(noticed))
    if reached < STAGE_INDEX["voting"]:
        return
    opened = noticed + timedelta(days=15)
    await conn.execute("UPDATE meeting SET state = 'open', opened_at = $3 WHERE community_id = $1 AND meeting_id = $2",
                       c["community_id"], meeting_id, _at(opened))
    if reached < STAGE_INDEX["voted"]:
        return
    closed = opened + timedelta(days=7)
    await conn.execute("UPDATE meeting SET state = 'closed', closed_at = $3 WHERE community_id = $1 AND meeting_id = $2",
                       c["community_id"], meeting_id, _at(closed))
    if reached < STAGE_INDEX["committee_formed"]:
        return
    elected = closed
    filed = elected + timedelta(days=rng.randint(10, 28)) if reached >= STAGE_INDEX["filed"] else None
    await conn.execute(
        """INSERT INTO committee (community_id, committee_id, body, meeting_id, matter_id, seats, alternate_places,
                                  formed, elected_on, first_meeting_on, filing_date, filing_ref, seal_status,
                                  created_by)
           VALUES ($1, 1, 'committee', 'first', 'E1', 5, 2, true, $2, $3, $4, $5, $6, 'demo')""",
        c["community_id"], elected, elected + timedelta(days=2), filed,
        f"鲤住建备〔2022〕{rng.randint(1, 300)}号" if filed else None,
        "made" if reached >= STAGE_INDEX["sealed"] else "none")
    if reached >= STAGE_INDEX["management"]:
        contract = rng.choice(["state_owned", "state_owned", "street", "community", "other"])
        await conn.execute(
            """INSERT INTO management_choice (community_id, choice_no, mode, company, contract_type, decided_on,
                                              meeting_id, matter_id, recorded_by)
               VALUES ($1, 1, 'property_company', $2, $3, $4, 'first', 'P1', 'demo')""",
            c["community_id"], "鲤城文旅物业" if contract == "state_owned" else "泉州某物业服务有限公司", contract,
            (filed or elected) + timedelta(days=10))


async def prepare_demo_campaign(pool: asyncpg.Pool) -> dict:
    """The demo campaign and its 222 communities (once); returns what the board link needs."""
    async with pool.acquire() as conn:
        await community_repo.upsert_district(conn, *DISTRICT)
        exists = await conn.fetchval("SELECT 1 FROM campaign WHERE campaign_id = $1", CAMPAIGN_ID)
    communities = generated_communities()
    if not exists:
        await campaigns_service.create_campaign(pool, actor="demo", data=PLAN)
        lines = ["小区编号,小区名称,街道编号,街道名称,社区编号,社区名称,户数,批次"]
        lines += [f"{c['community_id']},{c['name']},{c['street_id']},{c['street_name']},{c['shequ_id']},"
                  f"{c['shequ_name']},{c['households']},{c['batch_no']}" for c in communities]
        await campaigns_service.import_communities(pool, actor="demo", campaign_id=CAMPAIGN_ID,
                                                   data="\n".join(lines).encode(), filename="licheng-2022.csv")
        rng = random.Random(7)
        async with pool.acquire() as conn, conn.transaction():
            for c in communities:
                await _record_facts(conn, c, rng)
    return {"campaign_id": CAMPAIGN_ID, "communities": len(communities), "demo_day": DEMO_DAY.isoformat()}
