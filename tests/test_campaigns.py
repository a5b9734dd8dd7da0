"""The district level: stages from recorded facts, batch targets, the boards in each scope, the
property-management choice, subsidies, 社区 admins, and the xlsx reports."""
from __future__ import annotations

import io
from datetime import date, timedelta

import openpyxl
import pytest

from server.ballot import campaign as rules
from tests.conftest import unique_id
from tests.helpers_elections import (
    close,
    community_with_areas,
    draft_meeting,
    election_matter,
    spread,
    vote_electronically,
)
from tests.helpers_meetings import ballot_token, cast, vet_inline_candidates_for_tests

TEN = ["100"] * 10


# --- the pure rules ---

def test_the_stage_is_the_furthest_recorded_fact():
    assert rules.stage_of(rules.Facts()) == "not_started"
    assert rules.stage_of(rules.Facts(prep_group_formed_on=date(2022, 1, 5))) == "prep_group"
    # a later fact implies the earlier steps
    assert rules.stage_of(rules.Facts(first_noticed_on=date(2022, 2, 1))) == "noticed"
    assert rules.stage_of(rules.Facts(first_noticed_on=date(2022, 2, 1), voting_open=True)) == "voting"
    assert rules.stage_of(rules.Facts(voted_on=date(2022, 3, 1), voting_open=True)) == "voted"
    assert rules.stage_of(rules.Facts(committee_formed_on=date(2022, 3, 1), filed_on=date(2022, 3, 20))) == "filed"
    assert rules.stage_of(rules.Facts(filed_on=date(2022, 3, 20), sealed=True)) == "sealed"
    assert rules.stage_of(rules.Facts(management_on=date(2022, 5, 1))) == "management"
    assert rules.is_done("committee_formed") and not rules.is_done("voted")
    assert rules.missing("not_started") == "成立筹备组" and rules.missing("management") == ""


def member(i: int, stage: str, done_on: date | None = None, *, shequ: str = "q1", area: str | None = None,
           batch: int | None = None, area_due: date | None = None) -> rules.Member:
    return rules.Member(f"c{i}", f"小区{i}", "s1", shequ, stage, done_on, batch, area, area_due)


def test_batch_targets_round_up_and_count_by_their_due_date():
    assert rules.target_count(222, 20) == 45 and rules.target_count(222, 60) == 134
    assert rules.target_count(222, 100) == 222
    batches = [rules.Batch(1, "第一批", date(2022, 3, 30), 20, one_per_shequ=True),
               rules.Batch(2, "第二批", date(2022, 6, 30), 40)]
    done = date(2022, 3, 1)
    members = ([member(i, "committee_formed", done, shequ="q1") for i in range(2)]
               + [member(i, "voted", shequ="q2") for i in range(2, 10)]
               + [member(99, "not_started", area="jn", area_due=date(2022, 6, 30))])   # a special area: apart
    # before the first due date: 2 of 10 done meets 20 %, but 社区 q2 has none yet
    [first, second] = rules.batch_progress(members, batches, date(2022, 3, 10), ["q1", "q2"])
    assert (first.target, first.done_now, first.state, first.shequ_without) == (2, 2, "behind", ["q2"])
    assert (second.cumulative_percent, second.target, second.state) == (60, 6, "behind")
    # one in q2 done after batch 1's date: batch 1 stays missed, batch 2 still behind
    members[2] = member(2, "filed", date(2022, 4, 2), shequ="q2")
    [first, second] = rules.batch_progress(members, batches, date(2022, 4, 5), ["q1", "q2"])
    assert (first.done_by_due, first.state, first.shequ_without) == (2, "missed", ["q2"])
    assert second.done_now == 3 and second.state == "behind"
    # overdue: planned communities past their own date, and the special area after its date
    planned = [member(1, "voted", batch=1), member(2, "committee_formed", done, batch=1),
               member(3, "prep_group", area="jn", area_due=date(2022, 6, 30))]
    late = rules.overdue(planned, batches, date(2022, 7, 1))
    assert [(m.community_id, due.isoformat()) for m, due in late] == [("c1", "2022-03-30"), ("c3", "2022-06-30")]


def test_subsidy_follows_the_contract():
    assert rules.subsidy_fen(120, "state_owned") == 120 * 100 * 100
    assert rules.subsidy_fen(120, "community") == 1_200_000
    assert rules.subsidy_fen(120, "other") == 120 * 30 * 100
    assert rules.subsidy_fen(120, None) == 0


# --- through the API ---

PLAN = {"name": "2022 年老旧小区成立业主大会工作", "district_id": "test-district", "starts_on": "2022-01-01",
        "batches": [{"name": "第一批", "due_on": "2022-03-30", "share_percent": 20, "one_per_shequ": True},
                    {"name": "第二批", "due_on": "2022-06-30", "share_percent": 40},
                    {"name": "第三批", "due_on": "2022-09-30", "share_percent": 40}],
        "areas": [{"area_id": "jiangnan", "name": "江南新区", "due_on": "2022-06-30"}]}


async def create_plan(client, headers, **changes) -> str:
    campaign_id = unique_id("plan")
    resp = await client.post("/api/admin/campaigns", json=PLAN | {"campaign_id": campaign_id} | changes,
                             headers=headers)
    assert resp.status == 201, await resp.text()
    return campaign_id


def communities_csv(rows: list[tuple]) -> bytes:
    lines = ["小区编号,小区名称,街道编号,街道名称,社区编号,社区名称,户数,批次,片区"]
    lines += [",".join(str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8-sig")


async def upload(client, headers, campaign_id: str, data: bytes):
    return await client.post(f"/api/admin/campaigns/{campaign_id}/communities", data=data,
                             headers=headers | {"Content-Type": "text/csv"})


async def test_a_plan_is_checked_and_its_communities_imported_all_or_nothing(client, staff_headers, db_pool,
                                                                              make_community):
    await make_community()          # the test district and street exist
    headers = await staff_headers("district_admin")
    resp = await client.post("/api/admin/campaigns", headers=headers, json=PLAN | {
        "campaign_id": unique_id("plan"), "batches": [{"due_on": "2022-03-30", "share_percent": 70},
                                                      {"due_on": "2022-06-30", "share_percent": 40}]})
    assert (resp.status, (await resp.json())["error"]["code"]) == (422, "shares_over_100")
    resp = await client.post("/api/admin/campaigns", headers=headers, json=PLAN | {
        "campaign_id": unique_id("plan"), "batches": [{"due_on": "2021-12-01", "share_percent": 20}]})
    assert resp.status == 422
    street_headers = await staff_headers("street_admin", street_id="test-street")
    resp = await client.post("/api/admin/campaigns", headers=street_headers, json=PLAN | {"campaign_id": "x"})
    assert resp.status == 403
    campaign_id = await create_plan(client, headers)
    prefix = unique_id("k")
    bad = communities_csv([(f"{prefix}-1", "甲小区", "test-street", "测试街道", f"{prefix}-q", "一社区", 80, 1, ""),
                           (f"{prefix}-2", "", "test-street", "测试街道", "", "", "many", 7, ""),
                           (f"{prefix}-3", "丙小区", "test-street", "测试街道", "", "", 50, 2, "jiangnan")])
    resp = await upload(client, headers, campaign_id, bad)
    body = await resp.json()
    assert resp.status == 422 and body["error"]["code"] == "invalid_rows"
    problems = body["error"]["fields"]["problems"]
    assert [p["line"] for p in problems] == [3, 4]
    assert "小区名称必填" in problems[0]["message"] and "户数" in problems[0]["message"]
    assert "没有第 7 批" in problems[0]["message"] and "不再分批" in problems[1]["message"]
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM community WHERE community_id LIKE $1", prefix + "%") == 0
    good = communities_csv([(f"{prefix}-1", "甲小区", "test-street", "测试街道", f"{prefix}-q", "一社区", 80, 1, ""),
                            (f"{prefix}-2", "乙小区", "test-street", "测试街道", f"{prefix}-q", "一社区", 60, "第2批", ""),
                            (f"{prefix}-3", "丙小区", "test-street", "测试街道", "", "", 50, "", "jiangnan")])
    resp = await upload(client, headers, campaign_id, good)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"campaign_id": campaign_id, "communities": 3, "created": 3}
    doc = await (await client.get(f"/api/admin/campaigns/{campaign_id}", headers=headers)).json()
    assert doc["communities"] == 3 and [b["share_percent"] for b in doc["batches"]] == [20, 40, 40]


async def elected_community(client, db_pool, staff_headers, make_community) -> tuple[str, dict]:
    """A community whose first assembly elected a committee and passed a 选聘物业 matter (published)."""
    cid, owners = await community_with_areas(db_pool, make_community, TEN,
                                             prep_group_formed_on=date.today() - timedelta(days=40))
    headers = await staff_headers("district_admin")
    property_matter = {"matter_id": "P1", "kind": "resolution", "title": "选聘鲤城物业公司", "category": 4}
    await draft_meeting(client, headers, cid, [election_matter(seats=5), property_matter], meeting_id="first")
    await vet_inline_candidates_for_tests(db_pool, cid, "first")
    from tests.helpers_elections import notice_and_open
    await notice_and_open(db_pool, client, headers, cid, "first")
    await vote_electronically(client, db_pool, cid, "first", spread({"C1": 9, "C2": 9, "C3": 8, "C4": 8, "C5": 8}, owners, 5))
    for voter in owners[:8]:
        token = await ballot_token(db_pool, client, cid, "first", voter)
        resp = await cast(client, token, [{"matter_id": "P1", "choice": "yes"}])
        assert resp.status == 201, await resp.text()
    await close(client, headers, cid, "first")
    resp = await client.post(f"/api/admin/communities/{cid}/meetings/first/publish", json={}, headers=headers)
    assert resp.status == 200, await resp.text()
    return cid, headers


async def test_the_board_derives_stages_and_scopes_by_street_and_shequ(client, db_pool, staff_headers,
                                                                      make_community):
    done_cid, headers = await elected_community(client, db_pool, staff_headers, make_community)
    other_street = await make_community(street_id="other-street")
    campaign_id = await create_plan(client, headers, starts_on="2020-01-01",
                                    batches=[{"name": "第一批", "due_on": "2020-03-30", "share_percent": 50,
                                              "one_per_shequ": True},
                                             {"name": "第二批", "due_on": "2099-06-30", "share_percent": 50}])
    q = unique_id("q")
    idle, prepared = unique_id("c"), unique_id("c")
    rows = [(done_cid, "完成小区", "test-street", "测试街道", f"{q}-a", "甲社区", 120, 1, ""),
            (idle, "未启动小区", "test-street", "测试街道", f"{q}-b", "乙社区", 90, 1, ""),
            (prepared, "筹备小区", "test-street", "测试街道", f"{q}-a", "甲社区", 70, 2, ""),
            (other_street, "别处小区", "other-street", "别的街道", "", "", 40, 2, "")]
    resp = await upload(client, headers, campaign_id, communities_csv(rows))
    assert resp.status == 200, await resp.text()
    async with db_pool.acquire() as conn:     # the preparatory group's formation, as recorded
        await conn.execute("UPDATE community SET prep_group_formed_on = '2020-02-01' WHERE community_id = $1",
                           prepared)
    board = await (await client.get(f"/api/admin/campaigns/{campaign_id}/board", headers=headers)).json()
    stages = {r["community_id"]: r["stage"] for r in board["rows"]}
    assert stages == {done_cid: "committee_formed", idle: "not_started", prepared: "prep_group",
                      other_street: "not_started"}
    assert board["done"] == 1 and board["communities"] == 4
    first, second = board["batches"]
    # batch 1 (50 % of 4 = 2 by 2020-03-30): the committee was elected this year, so it was missed
    assert (first["target"], first["done_by_due"], first["done_now"], first["state"]) == (2, 0, 1, "missed")
    assert {s["shequ_id"] for s in first["shequ_without"]} == {f"{q}-a", f"{q}-b"}
    assert (second["target"], second["state"]) == (4, "behind")
    overdue = {o["community_id"]: o for o in board["overdue"]}
    assert set(overdue) == {idle} and overdue[idle]["missing"] == "成立筹备组"
    # the committee's later steps move the stage on; the management choice needs a passed category-4 matter
    committees = await (await client.get(f"/api/admin/communities/{done_cid}/committees", headers=headers)).json()
    committee = committees["committees"][0]
    cbase = f"/api/admin/communities/{done_cid}/committees/{committee['committee_id']}"
    chair = committee["members"][0]["member_no"]
    assert (await client.post(f"{cbase}/first-meeting", headers=headers,
                              json={"held_on": committee["elected_on"], "chair": chair})).status == 200
    assert (await client.post(f"{cbase}/filing", headers=headers,
                              json={"filing_date": committee["elected_on"], "filing_ref": "鲤住建备〔2026〕1号"})).status == 200
    mbase = f"/api/admin/communities/{done_cid}/management"
    resp = await client.post(mbase, headers=headers, json={"mode": "property_company", "company": "鲤城物业",
                                                           "contract_type": "state_owned", "meeting_id": "first",
                                                           "matter_id": "E1"})
    assert (resp.status, (await resp.json())["error"]["code"]) == (409, "not_a_management_matter")
    resp = await client.post(mbase, headers=headers, json={"mode": "property_company", "company": "鲤城物业",
                                                           "meeting_id": "first", "matter_id": "P1"})
    assert resp.status == 422
    resp = await client.post(mbase, headers=headers, json={"mode": "property_company", "company": "鲤城物业",
                                                           "contract_type": "state_owned", "meeting_id": "first",
                                                           "matter_id": "P1"})
    assert resp.status == 201, await resp.text()
    board = await (await client.get(f"/api/admin/campaigns/{campaign_id}/board", headers=headers)).json()
    assert {r["community_id"]: r["stage"] for r in board["rows"]}[done_cid] == "management"
    # a street admin sees its street only, and may not ask for another
    street_headers = await staff_headers("street_admin", street_id="test-street")
    mine = await (await client.get(f"/api/admin/campaigns/{campaign_id}/board", headers=street_headers)).json()
    assert {r["community_id"] for r in mine["rows"]} == {done_cid, idle, prepared}
    resp = await client.get(f"/api/admin/campaigns/{campaign_id}/board?street_id=other-street",
                            headers=street_headers)
    assert resp.status == 403
    # a 社区 admin (created by the street admin) sees its 社区's communities, on the board and in its scope
    username = unique_id("shequ")
    resp = await client.post("/api/admin/staff", headers=street_headers, json={
        "username": username, "password": "shequ-password-1", "role": "shequ_admin", "shequ_id": f"{q}-a"})
    assert resp.status == 201, await resp.text()
    login = await (await client.post("/api/staff/login", json={"username": username,
                                                               "password": "shequ-password-1"})).json()
    shequ_headers = {"Authorization": f"Bearer {login['token']}"}
    ours = await (await client.get(f"/api/admin/campaigns/{campaign_id}/board", headers=shequ_headers)).json()
    assert {r["community_id"] for r in ours["rows"]} == {done_cid, prepared}
    me = await (await client.get("/api/staff/me", headers=shequ_headers)).json()
    assert {c["community_id"] for c in me["communities"]} == {done_cid, prepared}
    assert (await client.get(f"/api/admin/communities/{idle}", headers=shequ_headers)).status == 403
    assert (await client.get(f"/api/admin/communities/{prepared}", headers=shequ_headers)).status == 200
    # others may not look at boards
    prep = await staff_headers("prep_group", communities=[done_cid])
    assert (await client.get(f"/api/admin/campaigns/{campaign_id}/board", headers=prep)).status == 403
    # the 通报 export
    resp = await client.get(f"/api/admin/campaigns/{campaign_id}/board.xlsx", headers=headers)
    assert resp.status == 200
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    assert wb.sheetnames == ["批次进度", "逾期小区", "街道汇总", "全部小区"]
    overdue_rows = list(wb["逾期小区"].iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in overdue_rows] == [idle] and overdue_rows[0][5] == "成立筹备组"
    assert [r[6] for r in wb["批次进度"].iter_rows(min_row=2, values_only=True)] == ["未完成", "进度落后"]

    # subsidies: 120 households with a state-owned company → 12,000 yuan; a civil servant may not be paid
    for person in ({"name": "张三", "duty": "筹备组组长", "employment": "civil_servant"},
                   {"name": "李四", "duty": "业主代表", "employment": "other"}):
        resp = await client.post(f"/api/admin/communities/{done_cid}/subsidy-recipients", json=person,
                                 headers=headers)
        assert resp.status == 201, await resp.text()
    report = await (await client.get(f"/api/admin/campaigns/{campaign_id}/subsidies", headers=headers)).json()
    row = {c["community_id"]: c for c in report["communities"]}[done_cid]
    assert (row["eligible"], row["yuan_per_household"], row["amount_fen"]) == (True, 100, 1_200_000)
    assert [(p["name"], p["payable"], p["reason"]) for p in row["recipients"]] == [
        ("张三", False, "公务员"), ("李四", True, "")]
    assert report["total_fen"] == 1_200_000 and report["eligible"] == 1
    resp = await client.get(f"/api/admin/campaigns/{campaign_id}/subsidies.xlsx", headers=headers)
    wb = openpyxl.load_workbook(io.BytesIO(await resp.read()))
    totals = list(wb["街道汇总"].iter_rows(values_only=True))[-1]
    assert totals[0] == "合计" and totals[-1] == "12000.00"


async def test_shequ_admins_need_a_shequ_of_the_granting_street(client, staff_headers, make_community):
    await make_community()
    await make_community(street_id="other-street")
    headers = await staff_headers("district_admin")
    q = unique_id("q")
    resp = await client.post("/api/admin/shequs", headers=headers,
                             json={"shequ_id": q, "street_id": "other-street", "name": "别的社区"})
    assert resp.status == 201, await resp.text()
    assert (await client.post("/api/admin/shequs", headers=headers,
                              json={"shequ_id": q, "street_id": "other-street", "name": "x"})).status == 409
    street_headers = await staff_headers("street_admin", street_id="test-street")
    resp = await client.post("/api/admin/staff", headers=street_headers, json={
        "username": unique_id("u"), "password": "shequ-password-1", "role": "shequ_admin", "shequ_id": q})
    assert (resp.status, (await resp.json())["error"]["code"]) == (403, "shequ_forbidden")
    resp = await client.post("/api/admin/staff", headers=headers, json={
        "username": unique_id("u"), "password": "shequ-password-1", "role": "shequ_admin"})
    assert resp.status == 422 and "shequ_id" in (await resp.json())["error"]["fields"]
    resp = await client.post("/api/admin/shequs", headers=street_headers,
                             json={"shequ_id": unique_id("q"), "street_id": "other-street", "name": "越界"})
    assert resp.status == 403
    listed = await (await client.get("/api/admin/shequs?street_id=other-street", headers=headers)).json()
    assert q in {s["shequ_id"] for s in listed["shequs"]}


@pytest.mark.parametrize("today", ["2022-13-01", "yesterday"])
async def test_a_bad_day_is_a_422(client, staff_headers, today):
    headers = await staff_headers("district_admin")
    resp = await client.get(f"/api/admin/campaigns/none/board?today={today}", headers=headers)
    assert resp.status == 422 and (await resp.json())["error"]["fields"] == {"today": today}


async def test_the_demo_campaign_is_the_2022_plan_in_its_third_batch(client, db_pool, staff_headers):
    from server.devtools.demo_campaign import CAMPAIGN_ID, DEMO_DAY, prepare_demo_campaign

    info = await prepare_demo_campaign(db_pool)
    assert info == {"campaign_id": CAMPAIGN_ID, "communities": 222, "demo_day": "2022-07-15"}
    assert (await prepare_demo_campaign(db_pool))["communities"] == 222          # idempotent
    headers = await staff_headers("district_admin")
    board = await (await client.get(f"/api/admin/campaigns/{CAMPAIGN_ID}/board?today={DEMO_DAY}",
                                    headers=headers)).json()
    assert board["communities"] == 222
    assert {s["street_name"]: s["communities"] for s in board["streets"]} == {
        "海滨街道": 48, "开元街道": 83, "鲤中街道": 57, "临江街道": 34}
    counts = {s["stage"]: s["count"] for s in board["stages"]}
    assert all(counts[k] > 0 for k in ("not_started", "prep_group", "noticed", "voting", "committee_formed",
                                       "filed", "sealed", "management"))
    first, second, third = board["batches"]
    assert (first["target"], second["target"], third["target"]) == (45, 134, 222)
    assert first["state"] in ("met", "missed") and third["state"] == "behind"
    assert board["overdue"] and all(o["due_on"] <= "2022-07-15" for o in board["overdue"])
    # on the day it started nothing had happened yet: the stages follow the facts' dates
    start = await (await client.get(f"/api/admin/campaigns/{CAMPAIGN_ID}/board?today=2022-01-01",
                                    headers=headers)).json()
    assert {s["stage"]: s["count"] for s in start["stages"]}["not_started"] == 222
    report = await (await client.get(f"/api/admin/campaigns/{CAMPAIGN_ID}/subsidies", headers=headers)).json()
    assert report["eligible"] == counts["management"] and report["total_fen"] > 0
