"""Meetings: drafting, the notice freeze, the 15-day rule, opening and closing, the scheduler."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from server import appkeys
from server.services import counting, scheduler
from server.services import meetings as meetings_service
from server.services import register as register_service
from server.services.meeting_input import default_alternates
from tests.helpers_meetings import (
    CANDIDATES,
    backdate_notice,
    close_now,
    meeting_body,
    noticed_meeting,
    open_meeting,
    vet_inline_candidates_for_tests,
)
from tests.helpers_register import ONE_RESOLUTION, THREE_DECIMAL_LINES, import_lines
from tests.helpers_scope import scope_community


def _base(community_id: str) -> str:
    return f"/api/admin/communities/{community_id}/meetings"


async def _draft(client, headers, community_id, **kwargs) -> dict:
    body = meeting_body(**kwargs)
    resp = await client.post(_base(community_id), json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def _error(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    return (await resp.json())["error"]


async def test_create_meeting_derives_thresholds_alternates_and_rules(client, staff_headers, make_community):
    community_id = await make_community(count_parking_area=True)
    headers = await staff_headers("prep_group", communities=[community_id])
    doc = await _draft(client, headers, community_id, matters=[
        {"kind": "resolution", "title": "使用维修资金", "category": 5},
        {"kind": "resolution", "title": "改建车棚", "category": 7},
        {"kind": "election", "title": "选举业主委员会", "body": "committee", "seats": 7, "candidates": CANDIDATES},
        {"kind": "election", "title": "选举监事会", "body": "supervisory", "seats": 3,
         "candidates": [{"name": "赵一"}, {"name": "钱二"}]},
    ])
    assert doc["state"] == "draft"
    # count_parking_area defaults to the community's setting; the rest to bundle-format.md
    assert doc["rules"] == {"count_parking_area": True, "allow_revision": False,
                           "duplicate_policy": "electronic_prevails", "rank_by": "persons_then_area",
                           "invalid_ballot": "abstain"}
    m1, m2, e1, e2 = doc["matters"]
    assert (m1["matter_id"], m1["threshold"], m1["threshold_name"]) == ("M1", "majority", "过半数")
    assert (m2["matter_id"], m2["threshold"], m2["threshold_name"]) == ("M2", "three_quarters", "四分之三以上")
    assert m2["category_name"] == "改建、重建建筑物及其附属设施"
    assert (e1["matter_id"], e1["category"], e1["seats"], e1["alternates"]) == ("E1", 3, 7, 3)  # 2.8 -> 3
    assert [c["candidate_id"] for c in e2["candidates"]] == ["C1", "C2"]
    assert e2["alternates"] == 1  # 1.2 -> 1
    listed = await (await client.get(_base(community_id), headers=headers)).json()
    assert [m["meeting_id"] for m in listed["meetings"]] == [doc["meeting_id"]]


@pytest.mark.parametrize("seats,expected", [(1, 0), (3, 1), (5, 2), (7, 3), (9, 4), (11, 4), (4, 2), (2, 1)])
def test_default_alternates_is_forty_percent_rounded_half_up(seats, expected):
    assert default_alternates(seats) == expected


@pytest.mark.parametrize("matter,code", [
    ({"kind": "election", "title": "选举业主委员会", "body": "committee", "seats": 4, "candidates": []}, "bad_seats"),
    ({"kind": "election", "title": "选举业主委员会", "body": "committee", "seats": 13, "candidates": []}, "bad_seats"),
    ({"kind": "election", "title": "选举监事会", "body": "supervisory", "seats": 6, "candidates": []}, "bad_seats"),
    ({"kind": "election", "title": "选举", "seats": 0, "candidates": []}, "bad_seats"),
    ({"kind": "election", "title": "选举", "seats": 1,
      "candidates": [{"candidate_id": "C1", "name": "甲"}, {"candidate_id": "C1", "name": "乙"}]},
     "duplicate_candidate"),
    ({"kind": "election", "title": "选举", "seats": 1, "candidates": [{"name": "甲"}, {"name": "甲"}]},
     "duplicate_candidate"),
    ({"kind": "resolution", "title": "决议", "category": 10}, "bad_category"),
    ({"kind": "resolution", "title": "决议"}, "validation_failed"),
    ({"kind": "resolution", "title": "决议", "category": 2, "seats": 3}, "validation_failed"),
])
async def test_bad_matters_are_refused(client, staff_headers, make_community, matter, code):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    resp = await client.post(_base(community_id), json=meeting_body(matters=[matter]), headers=headers)
    assert (await _error(resp, 422))["code"] == code


async def test_auditor_reads_but_cannot_create_and_others_cannot_see(client, staff_headers, make_community):
    community_id = await make_community()
    other = await make_community()
    writer = await staff_headers("committee", communities=[community_id])
    doc = await _draft(client, writer, community_id)
    auditor = await staff_headers("auditor", communities=[community_id])
    assert (await client.get(f"{_base(community_id)}/{doc['meeting_id']}", headers=auditor)).status == 200
    resp = await client.post(_base(community_id), json=meeting_body(), headers=auditor)
    assert (await _error(resp, 403))["code"] == "role_forbidden"
    stranger = await staff_headers("prep_group", communities=[other])
    resp = await client.get(f"{_base(community_id)}/{doc['meeting_id']}", headers=stranger)
    assert (await _error(resp, 403))["code"] == "community_forbidden"


async def test_draft_can_be_edited_then_the_notice_freezes_everything(client, db_pool, staff_headers,
                                                                       imported_community):
    community_id, _rows = await imported_community(30)
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id)
    base = f"{_base(community_id)}/{doc['meeting_id']}"
    # while a draft: update, add and remove matters and candidates
    resp = await client.patch(base, json={"title": "第一次业主大会", "rules": {"allow_revision": True}}, headers=headers)
    assert resp.status == 200 and (await resp.json())["rules"]["allow_revision"] is True
    resp = await client.post(f"{base}/matters", json={"kind": "resolution", "title": "选聘物业", "category": 4},
                             headers=headers)
    assert resp.status == 201 and (await resp.json())["matter_id"] == "M3"
    assert (await client.delete(f"{base}/matters/M3", headers=headers)).status == 204
    resp = await client.post(f"{base}/matters/E1/candidates", json={"name": "周八", "unit_label": "8-801"},
                             headers=headers)
    assert resp.status == 201 and (await resp.json())["candidates"][-1]["candidate_id"] == "C8"
    assert (await client.delete(f"{base}/matters/E1/candidates/C8", headers=headers)).status == 204

    # committee candidates typed in directly stop the notice until a qualified nomination stands behind them
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert error["code"] == "candidates_not_qualified" and "王芳" in error["message"]
    await vet_inline_candidates_for_tests(db_pool, community_id, doc["meeting_id"])
    resp = await client.post(f"{base}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    noticed = await resp.json()
    assert noticed["state"] == "noticed" and noticed["register_version"] == 1
    async with db_pool.acquire() as conn:
        totals = await conn.fetchrow(
            "SELECT sum(area) AS area, count(*) AS persons FROM electorate WHERE community_id = $1 AND meeting_id = $2",
            community_id, doc["meeting_id"])
    register = await (await client.get(f"/api/admin/communities/{community_id}/register/totals",
                                       headers=headers)).json()
    assert noticed["totals"] == register["totals"]
    assert totals["persons"] == register["totals"]["persons"]

    # nothing may be added or changed after the notice: the API refuses ...
    for method, path, body in (("PATCH", base, {"title": "改名"}),
                               ("POST", f"{base}/matters", {"kind": "resolution", "title": "新议题", "category": 9}),
                               ("DELETE", f"{base}/matters/M1", None),
                               ("POST", f"{base}/matters/E1/candidates", {"name": "吴九"}),
                               ("DELETE", f"{base}/matters/E1/candidates/C1", None),
                               ("POST", f"{base}/notice", None)):
        resp = await client.request(method, path, json=body, headers=headers)
        assert (await _error(resp, 409))["code"] == "meeting_not_draft", (method, path)
    # ... and so does the database, whatever code path tries
    async with db_pool.acquire() as conn:
        for sql in ("UPDATE matter SET title = 'x' WHERE community_id = $1 AND meeting_id = $2",
                    "DELETE FROM candidate WHERE community_id = $1 AND meeting_id = $2",
                    "UPDATE meeting SET total_area = 1 WHERE community_id = $1 AND meeting_id = $2",
                    "UPDATE meeting SET rules = '{}' WHERE community_id = $1 AND meeting_id = $2",
                    "DELETE FROM electorate WHERE community_id = $1 AND meeting_id = $2",
                    "UPDATE meeting SET state = 'draft' WHERE community_id = $1 AND meeting_id = $2"):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(sql, community_id, doc["meeting_id"])


async def test_notice_requires_the_15_day_period_a_register_and_matters(client, staff_headers, make_community,
                                                                         imported_community):
    headers = await staff_headers("district_admin")
    community_id, _ = await imported_community(10)
    too_soon = await _draft(client, headers, community_id,
                            opens_at=datetime.now(UTC) + timedelta(days=14, hours=23))
    resp = await client.post(f"{_base(community_id)}/{too_soon['meeting_id']}/notice", headers=headers)
    error = await _error(resp, 409)
    assert error["code"] == "notice_period_not_met"
    assert "15 日前公告" in error["message"] and "指导规则" in error["message"]
    assert "（北京时间） 开始投票" in error["message"] and "+00:00" not in error["message"]

    empty = await _draft(client, headers, community_id, matters=[])
    resp = await client.post(f"{_base(community_id)}/{empty['meeting_id']}/notice", headers=headers)
    assert (await _error(resp, 409))["code"] == "no_matters"

    no_candidates = await _draft(client, headers, community_id, matters=[
        {"kind": "election", "title": "选举", "seats": 1, "candidates": []}])
    resp = await client.post(f"{_base(community_id)}/{no_candidates['meeting_id']}/notice", headers=headers)
    assert (await _error(resp, 409))["code"] == "election_without_candidates"

    bare = await make_community()
    doc = await _draft(client, headers, bare)
    resp = await client.post(f"{_base(bare)}/{doc['meeting_id']}/notice", headers=headers)
    assert (await _error(resp, 409))["code"] == "register_missing"


async def test_empty_electorate_is_refused(client, staff_headers, make_community):
    # The register counts parking (community setting) but this meeting's rules do not.
    community_id = await make_community(count_parking_area=True)
    headers = await staff_headers("district_admin")
    only_parking = ("unit_id,building,kind,area,area_source,holder,owner_id,representative\n"
                    "P-1,1,parking,12.5,registry,owner,O1,1\n")
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=only_parking.encode(),
                             headers=headers)
    assert resp.status == 201, await resp.text()
    doc = await _draft(client, headers, community_id, rules={"count_parking_area": False})
    resp = await client.post(f"{_base(community_id)}/{doc['meeting_id']}/notice", headers=headers)
    assert (await _error(resp, 409))["code"] == "electorate_empty"


async def test_opening_early_is_refused_citing_the_rule_then_allowed_after_15_days(client, db_pool, staff_headers,
                                                                                    imported_community):
    m = await noticed_meeting(db_pool, client, staff_headers, imported_community)
    resp = await client.post(f"{m.base}/open", headers=m.headers)
    error = await _error(resp, 409)
    assert error["code"] == "notice_period_not_met"
    assert "《业主大会和业主委员会指导规则》" in error["message"] and "15 日" in error["message"]
    assert "（北京时间） 开始" in error["message"]
    # closing a meeting that is not open is refused too
    assert (await _error(await client.post(f"{m.base}/close", headers=m.headers), 409))["code"] == "wrong_state"

    # Notice 16 days old; the announced opening time is still ahead, so the scheduler leaves it alone
    # and opening by hand moves opens_at to now (noted in the transition).
    async with db_pool.acquire() as conn:
        await conn.execute("UPDATE meeting SET noticed_at = noticed_at - interval '16 days' "
                           "WHERE community_id = $1 AND meeting_id = $2", m.community_id, m.meeting_id)
    resp = await client.post(f"{m.base}/open", headers=m.headers)
    assert resp.status == 200
    opened = await resp.json()
    assert opened["state"] == "open" and opened["opens_at"] == opened["opened_at"]
    assert (await _error(await client.post(f"{m.base}/open", headers=m.headers), 409))["code"] == "wrong_state"
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200 and (await resp.json())["state"] == "closed"

    transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
    assert [(t["from"], t["to"]) for t in transitions] == [
        (None, "draft"), ("draft", "noticed"), ("noticed", "open"), ("open", "closed")]
    assert all(t["actor"].startswith("staff:") and t["at"] for t in transitions)
    assert "before the announced time" in transitions[2]["note"]
    async with db_pool.acquire() as conn:
        actions = [r["action"] for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE community_id = $1 ORDER BY seq", m.community_id)]
    # (close hooks of other modules may append their own entries after these)
    mine = ("meeting.create", "meeting.notice", "meeting.open", "meeting.close")
    assert [a for a in actions if a in mine] == list(mine)


async def _settle_hooks(calls: list, key: tuple, timeout: float = 15.0) -> None:
    """Hooks run after the close commits (maybe in the app's own scheduler task): wait for the first
    call, then a few scheduler intervals more so that a wrongful second call would show."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while key not in calls and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)


async def _wait_for_state(client, m, state: str, timeout: float = 15.0) -> dict:
    """Poll the meeting until it reaches ``state`` (the scheduler runs every 0.2 s in tests)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        doc = await (await client.get(m.base, headers=m.headers)).json()
        if doc["state"] == state or loop.time() > deadline:
            return doc
        await asyncio.sleep(0.1)


async def test_the_scheduler_opens_and_closes_by_itself(client, db_pool, staff_headers, imported_community):
    closed_hooks: list[tuple[str, str]] = []

    async def hook(pool, app, community_id, meeting_id):
        closed_hooks.append((community_id, meeting_id))

    hooks = client.app[appkeys.EFFECTS].close_hooks
    hooks.append(hook)
    try:
        m = await noticed_meeting(db_pool, client, staff_headers, imported_community)
        await backdate_notice(db_pool, m.community_id, m.meeting_id, closes_in=timedelta(seconds=3))
        assert (await _wait_for_state(client, m, "open"))["state"] == "open"
        doc = await _wait_for_state(client, m, "closed")
        assert doc["state"] == "closed"
        transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
        assert [(t["to"], t["actor"]) for t in transitions[-2:]] == [("open", "system:scheduler"),
                                                                    ("closed", "system:scheduler")]
        await _settle_hooks(closed_hooks, (m.community_id, m.meeting_id))
        assert closed_hooks.count((m.community_id, m.meeting_id)) == 1
    finally:
        client.app[appkeys.EFFECTS].close_hooks.remove(hook)


async def test_the_scheduler_does_not_open_before_the_notice_period(client, db_pool, staff_headers,
                                                                     imported_community):
    m = await noticed_meeting(db_pool, client, staff_headers, imported_community)
    # opens_at has passed (forced by SQL) but the notice is only a day old: it must stay noticed
    async with db_pool.acquire() as conn:
        await conn.execute("""UPDATE meeting SET noticed_at = clock_timestamp() - interval '1 day',
                                                 opens_at = clock_timestamp() - interval '1 minute'
                               WHERE community_id = $1 AND meeting_id = $2""", m.community_id, m.meeting_id)
    done = await scheduler.run_once(db_pool, client.app[appkeys.EFFECTS])
    assert (m.community_id, m.meeting_id) not in done["opened"]
    assert (await (await client.get(m.base, headers=m.headers)).json())["state"] == "noticed"


async def test_two_schedulers_racing_close_exactly_once(client, db_pool, staff_headers, imported_community):
    calls: list[tuple[str, str]] = []

    async def hook(pool, app, community_id, meeting_id):
        calls.append((community_id, meeting_id))

    m = await open_meeting(db_pool, client, staff_headers, imported_community)
    effects = client.app[appkeys.EFFECTS]
    effects.close_hooks.append(hook)
    try:
        async with db_pool.acquire() as conn:
            await conn.execute("UPDATE meeting SET closes_at = clock_timestamp() WHERE community_id = $1 "
                               "AND meeting_id = $2", m.community_id, m.meeting_id)
        # two workers' passes at the same moment (the test app's own scheduler may join in too)
        results = await asyncio.gather(*(scheduler.run_once(db_pool, effects) for _ in range(4)))
        closers = sum(r["closed"].count((m.community_id, m.meeting_id)) for r in results)
        doc = await _wait_for_state(client, m, "closed")
        assert doc["state"] == "closed"
        assert closers <= 1
        transitions = (await (await client.get(f"{m.base}/transitions", headers=m.headers)).json())["transitions"]
        assert [t["to"] for t in transitions].count("closed") == 1
        await _settle_hooks(calls, (m.community_id, m.meeting_id))
        assert calls.count((m.community_id, m.meeting_id)) == 1
    finally:
        client.app[appkeys.EFFECTS].close_hooks.remove(hook)


async def test_unknown_meeting_is_404(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    resp = await client.get(f"{_base(community_id)}/nope", headers=headers)
    assert (await _error(resp, 404))["code"] == "meeting_not_found"
    resp = await client.post(f"{_base(community_id)}/nope/notice", headers=headers)
    assert (await _error(resp, 404))["code"] == "meeting_not_found"


async def test_demo_step_makes_an_open_meeting_once(db_pool, settings, imported_community):
    from server.devtools.demo_meeting import DEMO_MEETING, demo_meeting_step

    community_id, _ = await imported_community(20)
    info: dict = {"community_id": community_id}
    await demo_meeting_step(db_pool, settings, info)
    await demo_meeting_step(db_pool, settings, {"community_id": community_id})  # idempotent
    async with db_pool.acquire() as conn:
        doc = await meetings_service.load_document(conn, community_id, DEMO_MEETING)
    assert doc["state"] == "open" and "演示" in doc["title"]
    assert sorted(m["category"] for m in doc["matters"]) == [2, 3, 5, 6, 7, 9]
    election = next(m for m in doc["matters"] if m["kind"] == "election")
    assert (election["seats"], len(election["candidates"]), election["alternates"]) == (5, 7, 2)
    # the candidates went nominate -> qualify -> attach: ids N<nomination>, names from the register
    assert all(c["candidate_id"].startswith("N") for c in election["candidates"])
    async with db_pool.acquire() as conn:
        names = {r["owner_id"]: r["name"] for r in await conn.fetch(
            "SELECT owner_id, name FROM owner WHERE community_id = $1", community_id)}
        sources = await conn.fetch(
            """SELECT s.candidate_id, s.owner_id, n.status FROM candidate_source s
                 JOIN nomination n USING (community_id, nomination_id)
                WHERE s.community_id = $1 AND s.meeting_id = $2""", community_id, DEMO_MEETING)
    assert len(sources) == 7 and {r["status"] for r in sources} == {"qualified"}
    by_id = {c["candidate_id"]: c["name"] for c in election["candidates"]}
    assert all(by_id[r["candidate_id"]] == names[r["owner_id"]] for r in sources)
    assert info["meeting_id"] == DEMO_MEETING and info["links"][0][0] == "meeting:"


# ---------------------------------------------------------------- only qualified candidates

async def _nominate_and_qualify(client, headers, community_id: str, body: str, owner_id: str) -> int:
    resp = await client.post(f"/api/admin/communities/{community_id}/nominations", headers=headers,
                             json={"body": body, "owner_id": owner_id})
    assert resp.status == 201, await resp.text()
    nomination_id = (await resp.json())["nomination_id"]
    resp = await client.post(f"/api/admin/communities/{community_id}/nominations/{nomination_id}/qualify",
                             headers=headers)
    assert resp.status == 200 and (await resp.json())["status"] == "qualified"
    return nomination_id


async def test_only_qualified_candidates_reach_a_committee_or_supervisory_ballot(client, db_pool, staff_headers,
                                                                                 imported_community):
    community_id, rows = await imported_community(20)
    owners = sorted({r["owner_id"] for r in rows if r["holder"] == "owner" and r["representative"] == "1"})
    headers = await staff_headers("prep_group", communities=[community_id])
    doc = await _draft(client, headers, community_id, matters=[
        {"matter_id": "E1", "kind": "election", "title": "选举业主委员会", "body": "committee", "seats": 5,
         "candidates": [{"name": "甲一"}, {"name": "乙二"}]},
        {"matter_id": "S1", "kind": "election", "title": "选举监事会", "body": "supervisory", "seats": 3,
         "candidates": [{"name": "丙三"}]},
        {"matter_id": "X1", "kind": "election", "title": "推选业主代表", "body": "other", "seats": 1,
         "candidates": [{"name": "丁四"}]},
    ])
    base = f"{_base(community_id)}/{doc['meeting_id']}"
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert error["code"] == "candidates_not_qualified"
    assert [(c["matter_id"], c["candidate_id"], c["name"]) for c in error["fields"]["candidates"]] == [
        ("E1", "C1", "甲一"), ("E1", "C2", "乙二"), ("S1", "C1", "丙三")]
    assert "选举业主委员会：甲一、乙二" in error["message"] and "选举监事会：丙三" in error["message"]
    assert "丁四" not in error["message"]          # body 'other' stays free-form
    check = await (await client.get(f"{base}/candidate-check", headers=headers)).json()
    assert not check["all_vetted"] and [c["name"] for c in check["unvetted"]] == ["甲一", "乙二", "丙三"]
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT state FROM meeting WHERE community_id = $1 AND meeting_id = $2",
                                   community_id, doc["meeting_id"]) == "draft"

    # the real flow: nominate owners of the register, qualify, attach; typed-in candidates removed
    for matter_id, candidate_ids in (("E1", ("C1", "C2")), ("S1", ("C1",))):
        for candidate_id in candidate_ids:
            resp = await client.delete(f"{base}/matters/{matter_id}/candidates/{candidate_id}", headers=headers)
            assert resp.status == 204
    committee = [await _nominate_and_qualify(client, headers, community_id, "committee", o) for o in owners[:2]]
    board = await _nominate_and_qualify(client, headers, community_id, "supervisory", owners[2])
    resp = await client.post(f"{base}/matters/E1/nominees", headers=headers, json={"nomination_ids": committee})
    assert resp.status == 201, await resp.text()
    resp = await client.post(f"{base}/matters/S1/nominees", headers=headers, json={"nomination_ids": [board]})
    assert resp.status == 201, await resp.text()
    # a committee nominee on a matter whose body was changed to the supervisory board is not qualified for it
    resp = await client.patch(f"{base}/matters/E1", headers=headers, json={"body": "supervisory", "seats": 3})
    assert resp.status == 200, await resp.text()
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert error["code"] == "candidates_not_qualified"
    assert {c["candidate_id"] for c in error["fields"]["candidates"]} == {f"N{n}" for n in committee}
    resp = await client.patch(f"{base}/matters/E1", headers=headers, json={"body": "committee", "seats": 5})
    assert resp.status == 200, await resp.text()
    check = await (await client.get(f"{base}/candidate-check", headers=headers)).json()
    assert check == {"meeting_id": doc["meeting_id"], "all_vetted": True, "unvetted": []}
    resp = await client.post(f"{base}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    noticed = {m["matter_id"]: m for m in (await resp.json())["matters"]}
    assert [c["candidate_id"] for c in noticed["E1"]["candidates"]] == [f"N{n}" for n in committee]
    assert [c["name"] for c in noticed["X1"]["candidates"]] == ["丁四"]


async def test_a_runoff_of_vetted_candidates_needs_no_new_nomination(client, db_pool, staff_headers,
                                                                      imported_community):
    """The tied candidates carried into a runoff (另行选举) came from a counted election: they stay vetted,
    also when their source row has no nomination (which runoff rows may lack)."""
    community_id, _ = await imported_community(20)
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id, matters=[
        {"matter_id": "E1", "kind": "election", "title": "另行选举：业主委员会", "body": "committee", "seats": 5,
         "candidates": [{"candidate_id": "C5", "name": "候选人5"},
                                         {"candidate_id": "C6", "name": "候选人6"},
                                         {"candidate_id": "C9", "name": "新人"}]}])
    origin = await _draft(client, headers, community_id, matters=[
        {"matter_id": "E1", "kind": "election", "title": "选举业主委员会", "body": "committee", "seats": 5,
         "candidates": []}])
    base = f"{_base(community_id)}/{doc['meeting_id']}"
    async with db_pool.acquire() as conn:
        owner = await conn.fetchval("SELECT min(owner_id) FROM owner WHERE community_id = $1", community_id)
        # link it as a runoff of the origin election (as create_runoff does), C6 with a source row without nomination
        await conn.execute(
            """INSERT INTO election_runoff (community_id, meeting_id, matter_id, origin_meeting_id, origin_matter_id,
                                            plan, created_by)
               VALUES ($1, $2, 'E1', $3, 'E1', $4::jsonb, 'test')""", community_id, doc["meeting_id"],
            origin["meeting_id"], '{"kind": "tie", "candidates": ["C5"], "continuation": []}')
        await conn.execute(
            """INSERT INTO candidate_source (community_id, meeting_id, matter_id, candidate_id, nomination_id, owner_id)
               VALUES ($1, $2, 'E1', 'C6', NULL, $3)""", community_id, doc["meeting_id"], owner)
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert [c["candidate_id"] for c in error["fields"]["candidates"]] == ["C9"]   # added by hand: not vetted
    assert (await client.delete(f"{base}/matters/E1/candidates/C9", headers=headers)).status == 204
    # a runoff's places come from the plan: its text may be edited, its seats and body not
    resp = await client.patch(f"{base}/matters/E1", headers=headers, json={"seats": 7})
    assert (await _error(resp, 409))["code"] == "runoff_places_fixed"
    resp = await client.patch(f"{base}/matters/E1", headers=headers, json={"title": "另行选举：第 5 席"})
    assert resp.status == 200 and (await resp.json())["title"] == "另行选举：第 5 席"
    assert ((await resp.json())["seats"], (await resp.json())["alternates"]) == (5, 2)
    resp = await client.post(f"{base}/notice", headers=headers)
    assert resp.status == 200, await resp.text()


# ---------------------------------------------------------------- editing a draft matter

async def test_a_draft_matter_can_be_edited_and_is_checked_again(client, db_pool, staff_headers, imported_community):
    community_id, _ = await imported_community(20)
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id)
    base = f"{_base(community_id)}/{doc['meeting_id']}"
    e1 = next(m for m in doc["matters"] if m["matter_id"] == "E1")
    assert (e1["seats"], e1["alternates"]) == (5, 2)

    async def patch(matter_id: str, body: dict):
        return await client.patch(f"{base}/matters/{matter_id}", json=body, headers=headers)

    resp = await patch("E1", {"alternates": 1})
    assert resp.status == 200, await resp.text()
    assert ((await resp.json())["seats"], (await resp.json())["alternates"]) == (5, 1)
    resp = await patch("E1", {"seats": 7})                       # alternates back to the default 40 %: 2.8 -> 3
    assert resp.status == 200 and ((await resp.json())["seats"], (await resp.json())["alternates"]) == (7, 3)
    resp = await patch("E1", {"seats": 9, "alternates": 0, "title": "选举业主委员会（9 人）"})
    matter = await resp.json()
    assert (matter["seats"], matter["alternates"], matter["title"]) == (9, 0, "选举业主委员会（9 人）")
    assert [c["candidate_id"] for c in matter["candidates"]] == [c["candidate_id"] for c in CANDIDATES]
    resp = await patch("M1", {"category": 7, "description": "改建南门"})
    matter = await resp.json()
    assert (matter["category"], matter["threshold"], matter["description"]) == (7, "three_quarters", "改建南门")

    for matter_id, body, status, code in (
            ("E1", {"seats": 4}, 422, "bad_seats"),                         # committee: 5–11, odd
            ("E1", {"seats": 13}, 422, "bad_seats"),
            ("E1", {"body": "supervisory"}, 422, "bad_seats"),              # 9 seats: supervisory is 3–5
            ("E1", {"alternates": -1}, 422, "validation_failed"),
            ("E1", {"kind": "resolution"}, 422, "kind_unchangeable"),
            ("M1", {"seats": 3}, 422, "validation_failed"),                 # a resolution has no seats
            ("M1", {"category": 10}, 422, "bad_category"),
            ("M1", {"matter_id": "M9"}, 422, "validation_failed"),
            ("M1", {}, 422, "validation_failed"),
            ("NOPE", {"title": "x"}, 404, "matter_not_found")):
        assert (await _error(await patch(matter_id, body), status))["code"] == code, (matter_id, body)
    auditor = await staff_headers("auditor", communities=[community_id])
    resp = await client.patch(f"{base}/matters/E1", json={"alternates": 2}, headers=auditor)
    assert (await _error(resp, 403))["code"] == "role_forbidden"
    current = await (await client.get(base, headers=headers)).json()
    e1 = next(m for m in current["matters"] if m["matter_id"] == "E1")
    assert (e1["seats"], e1["alternates"]) == (9, 0)               # refused edits changed nothing

    async with db_pool.acquire() as conn:
        entries = await conn.fetch(
            """SELECT detail FROM audit_log WHERE community_id = $1 AND action = 'meeting.matter.update'
                ORDER BY seq""", community_id)
    first = json.loads(entries[0]["detail"]) if isinstance(entries[0]["detail"], str) else entries[0]["detail"]
    assert len(entries) == 4 and first["changes"] == {"alternates": [2, 1]} and first["matter_id"] == "E1"

    # after the notice: refused by the API, and by the database whatever path tries
    await vet_inline_candidates_for_tests(db_pool, community_id, doc["meeting_id"])
    assert (await client.post(f"{base}/notice", headers=headers)).status == 200
    assert (await _error(await patch("E1", {"alternates": 2}), 409))["code"] == "meeting_not_draft"
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE matter SET alternates = 2 WHERE community_id = $1 AND meeting_id = $2",
                               community_id, doc["meeting_id"])


# ---------------------------------------------------------------- the frozen electorate: owner-set subjects

async def test_notice_freezes_owner_set_subjects_with_representative_units_and_building_areas(
        client, db_pool, staff_headers, make_community):
    community = await import_lines(db_pool, make_community, THREE_DECIMAL_LINES)
    m = await noticed_meeting(db_pool, client, staff_headers, None, matters=ONE_RESOLUTION, community=community)
    assert m.voter_ids == ["A", "A+B", "C"]
    # the meeting's totals with the register's three decimals, frozen with the places
    assert m.document["totals"] == {"area": "381.376", "persons": 3} and m.document["area_places"] == 3
    async with db_pool.acquire() as conn:
        rows = {r["voter_id"]: dict(r) for r in await conn.fetch(
            """SELECT voter_id, representative, area, building, units, buildings, building_areas, building_units
                 FROM electorate WHERE community_id = $1 AND meeting_id = $2""", m.community_id, m.meeting_id)}
        inputs = await counting.load_counted_inputs(conn, m.community_id, m.meeting_id)
        version, from_register = await register_service.load_electorate(conn, m.community_id)
    assert rows["A+B"] == {"voter_id": "A+B", "representative": "A", "area": 171375, "building": "1",
                           "units": ["1-101", "2-201"], "buildings": ["1", "2"], "building_areas": [71125, 100250],
                           "building_units": [1, 1]}
    assert rows["A"]["representative"] == "A" and rows["A"]["units"] == ["1-102"]
    # the loaders rebuild exactly the subjects the register gives (areas per building, representatives, places)
    assert version == 1
    assert inputs.electorate.subjects == from_register.subjects
    assert inputs.electorate.by_building == from_register.by_building
    assert inputs.electorate.places == from_register.places == 3
    assert inputs.electorate.for_scope(("2",)).areas == {"A+B": 100250, "C": 120000}
    # ... and so does the live count: every area of the result with three decimals
    async with db_pool.acquire() as conn:
        result = await counting.compute_result(conn, m.community_id, m.meeting_id)
    assert result["totals"] == {"area": "381.376", "persons": 3}
    # the places are frozen like the totals
    async with db_pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE meeting SET area_places = 2 WHERE community_id = $1 AND meeting_id = $2",
                               m.community_id, m.meeting_id)


async def test_the_database_checks_each_frozen_subject(client, db_pool, staff_headers, make_community):
    community_id, _ = await import_lines(db_pool, make_community)
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id, matters=ONE_RESOLUTION)
    good = {"voter_id": "A+B", "representative": "A", "area": 180750, "building": "1", "units": ["1-101", "2-201"],
            "buildings": ["1", "2"], "building_areas": [80500, 100250], "building_units": [1, 1]}
    bad = {
        "electorate_subject_id": dict(good, voter_id="B+A"),                 # owners not sorted
        "electorate_representative": dict(good, representative="C"),         # not an owner of the set
        "electorate_building_areas": dict(good, building_areas=[80500, 100000]),   # do not add up to the area
        "electorate_units": dict(good, building_units=[1, 2]),               # three units counted, two listed
    }
    columns = list(good)
    sql = (f"INSERT INTO electorate (community_id, meeting_id, {', '.join(columns)}) "
           f"VALUES ($1, $2, {', '.join(f'${i}' for i in range(3, len(columns) + 3))})")
    async with db_pool.acquire() as conn:
        for constraint, row in bad.items():
            with pytest.raises(asyncpg.CheckViolationError) as caught:
                await conn.execute(sql, community_id, doc["meeting_id"], *row.values())
            assert caught.value.constraint_name == constraint
        # the consistent row is accepted (and removed again: the draft's electorate is made at notice)
        await conn.execute(sql, community_id, doc["meeting_id"], *good.values())
        await conn.execute("DELETE FROM electorate WHERE community_id = $1 AND meeting_id = $2",
                           community_id, doc["meeting_id"])
async def test_the_invalid_ballot_rule_is_taken_and_checked(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id, rules={"invalid_ballot": "not_counted"})
    assert doc["rules"]["invalid_ballot"] == "not_counted"
    base = f"{_base(community_id)}/{doc['meeting_id']}"
    resp = await client.patch(base, json={"rules": {"invalid_ballot": "abstain"}}, headers=headers)
    assert resp.status == 200 and (await resp.json())["rules"]["invalid_ballot"] == "abstain"
    for value in ("ignore", True, None):
        resp = await client.post(_base(community_id), json=meeting_body(rules={"invalid_ballot": value}),
                                 headers=headers)
        error = await _error(resp, 422)
        assert error["code"] == "validation_failed" and "invalid_ballot" in error["message"], value


async def test_a_scoped_matter_is_checked_against_the_frozen_register_at_the_notice(client, db_pool, staff_headers,
                                                                                     make_community):
    community_id, _ = await scope_community(client, staff_headers, make_community)
    headers = await staff_headers("district_admin")
    for scope in ({"buildings": []}, {"buildings": ["1", "1"]}, {"buildings": [""]}, {"buildings": [1]},
                  {"buildings": "1"}, ["1"], {"houses": ["1"]}, {"buildings": ["1"], "units": []}):
        body = meeting_body(matters=[{"kind": "resolution", "title": "维修资金", "category": 6, "scope": scope}])
        error = await _error(await client.post(_base(community_id), json=body, headers=headers), 422)
        assert error["code"] == "bad_scope" and "scope" in error["fields"], scope
    doc = await _draft(client, headers, community_id, matters=[
        {"kind": "resolution", "title": "表决通过《管理规约》", "category": 2},
        {"kind": "resolution", "title": "筹集 7 号楼电梯维修资金", "category": 6, "scope": {"buildings": ["7"]}}])
    assert [m["scope"] for m in doc["matters"]] == [None, {"buildings": ["7"]}]
    base = f"{_base(community_id)}/{doc['meeting_id']}"

    # building 7 is not in the register being frozen
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert error["code"] == "scope_not_in_register" and error["fields"] == {"matter_id": "M2", "buildings": ["7"]}
    assert "楼栋“7”不在本次冻结的业主登记册中" in error["message"]
    # building 9 is, but holds only a parking space that does not count: nobody could vote
    resp = await client.patch(f"{base}/matters/M2", json={"scope": {"buildings": ["9"]}}, headers=headers)
    assert resp.status == 200 and (await resp.json())["scope"] == {"buildings": ["9"]}
    error = await _error(await client.post(f"{base}/notice", headers=headers), 409)
    assert error["code"] == "scope_without_voters" and "没有有表决权的业主" in error["message"]
    # scoped to a building of the register that has voters: the notice goes through and freezes it
    resp = await client.patch(f"{base}/matters/M2", json={"scope": {"buildings": ["1", "9"]}}, headers=headers)
    assert resp.status == 200 and (await resp.json())["scope"] == {"buildings": ["1", "9"]}
    resp = await client.patch(f"{base}/matters/M1", json={"scope": None}, headers=headers)
    assert resp.status == 200 and (await resp.json())["scope"] is None
    resp = await client.post(f"{base}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    assert [m["scope"] for m in (await resp.json())["matters"]] == [None, {"buildings": ["1", "9"]}]
    async with db_pool.acquire() as conn:
        entries = await conn.fetch(
            """SELECT detail FROM audit_log WHERE community_id = $1 AND action = 'meeting.matter.update'
                ORDER BY seq""", community_id)
    changes = [json.loads(e["detail"])["changes"] if isinstance(e["detail"], str) else e["detail"]["changes"]
               for e in entries]
    assert changes == [{"scope": [["7"], ["9"]]}, {"scope": [["9"], ["1", "9"]]}]   # M1 was already unscoped

    # after the notice the scope is frozen: the API refuses, and so does the database
    resp = await client.patch(f"{base}/matters/M2", json={"scope": {"buildings": ["2"]}}, headers=headers)
    assert (await _error(resp, 409))["code"] == "meeting_not_draft"
    async with db_pool.acquire() as conn:
        for sql in ("UPDATE matter SET scope = '{2}' WHERE community_id = $1 AND meeting_id = $2 AND matter_id = 'M2'",
                    "UPDATE matter SET scope = '{}' WHERE community_id = $1 AND meeting_id = $2 AND matter_id = 'M2'",
                    "UPDATE matter SET scope = '{3}' WHERE community_id = $1 AND meeting_id = $2 AND matter_id = 'M1'"):
            with pytest.raises(asyncpg.CheckViolationError) as refused:
                await conn.execute(sql, community_id, doc["meeting_id"])
            assert refused.value.constraint_name == "meeting_frozen_after_notice"
            assert "scope" in str(refused.value)
        scopes = await conn.fetch("SELECT matter_id, scope FROM matter WHERE community_id = $1 AND meeting_id = $2 "
                                  "ORDER BY position", community_id, doc["meeting_id"])
    assert [(r["matter_id"], r["scope"]) for r in scopes] == [("M1", []), ("M2", ["1", "9"])]


async def test_the_database_refuses_a_malformed_scope(db_pool, client, staff_headers, make_community):
    community_id, _ = await scope_community(client, staff_headers, make_community)
    headers = await staff_headers("district_admin")
    doc = await _draft(client, headers, community_id, matters=[
        {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2}])
    async with db_pool.acquire() as conn:
        for scope in (["1", "1"], [""], ["x" * 65], [None]):
            with pytest.raises(asyncpg.CheckViolationError) as refused:
                await conn.execute("UPDATE matter SET scope = $3 WHERE community_id = $1 AND meeting_id = $2",
                                   community_id, doc["meeting_id"], scope)
            assert refused.value.constraint_name == "matter_scope_valid", scope
