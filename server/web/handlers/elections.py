"""Elections API: nominations, candidates from nominations, outcomes, runoffs, committees, deadlines.

Owners (ballot token):   /api/ballot/nominations, /api/ballot/candidates
Staff (admin token):     /api/admin/communities/{cid}/nominations ..., /committees ..., /deadlines,
                         /api/admin/communities/{cid}/meetings/{mid}/elections, .../runoff, .../nominees
Street office:           /api/admin/streets/{street_id}/deadlines
Public:                  /api/public/communities/{cid}/committee
"""
from __future__ import annotations

from datetime import date

from aiohttp import web

from server.auth.ballot import read_ballot_token
from server.auth.staff import WRITER_ROLES, require_staff
from server.errors import Forbidden, ValidationFailed
from server.services import committees, deadlines, formation, nominations
from server.services.election_input import parse_date
from server.web.handlers.common import int_path, int_query, json_response, pool, read_json

ADMIN = "/api/admin/communities/{community_id}"
MEETING = ADMIN + "/meetings/{meeting_id}"
COMMITTEE = ADMIN + "/committees/{committee_id}"
DEFAULT_DUE_SOON_DAYS = 7


def _nomination_id(request: web.Request) -> int:
    return int_path(request, "nomination_id", "nomination_not_found", "找不到该提名")


def _committee_id(request: web.Request) -> int:
    return int_path(request, "committee_id", "committee_not_found", "找不到该委员会记录")


def _member_no(request: web.Request) -> int:
    return int_path(request, "member_no", "member_not_found", "找不到该现任委员或候补委员")


def _query_date(request: web.Request) -> date | None:
    value = request.query.get("on")
    return None if value is None else parse_date(value, "on", "查询日期")


def _query_window(request: web.Request) -> int:
    return int_query(request, "due_soon_days", default=DEFAULT_DUE_SOON_DAYS, min_value=0, max_value=365) or 0


# ---------------------------------------------------------------- owners

async def self_nominate(request: web.Request) -> web.Response:
    principal = read_ballot_token(request)
    data = await read_json(request)
    return json_response(await nominations.self_nominate(pool(request), principal, data), status=201)


async def my_nominations(request: web.Request) -> web.Response:
    principal = read_ballot_token(request)
    doc = await nominations.owner_candidates(pool(request), principal)
    return json_response({"nominations": doc["my_nominations"]})


async def owner_candidates(request: web.Request) -> web.Response:
    principal = read_ballot_token(request)
    return json_response(await nominations.owner_candidates(pool(request), principal))


# ---------------------------------------------------------------- nominations (staff)

async def staff_nominate(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    return json_response(await nominations.staff_nominate(pool(request), community_id, data, principal.actor),
                         status=201)


async def list_nominations(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    rows = await nominations.list_nominations(pool(request), community_id, status=request.query.get("status"),
                                              body=request.query.get("body"))
    return json_response({"nominations": rows})


async def qualify(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    doc = await nominations.decide_nomination(pool(request), community_id, _nomination_id(request),
                                              qualified=True, reason="", actor=principal.actor)
    return json_response(doc)


async def refuse(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    nomination_id = _nomination_id(request)
    data = await read_json(request)
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise ValidationFailed("资格审查不通过时须写明理由（500 字以内）", code="reason_required", fields={"reason": "必填"})
    doc = await nominations.decide_nomination(pool(request), community_id, nomination_id,
                                              qualified=False, reason=reason, actor=principal.actor)
    return json_response(doc)


async def attach_nominees(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    doc = await nominations.attach_nominees(pool(request), community_id, request.match_info["meeting_id"],
                                            request.match_info["matter_id"], data.get("nomination_ids"),
                                            principal.actor)
    return json_response(doc, status=201)


async def candidate_check(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response(await nominations.candidate_check(pool(request), community_id,
                                                           request.match_info["meeting_id"]))


# ---------------------------------------------------------------- outcomes, runoffs, committees

async def outcomes(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response(await formation.election_outcomes(pool(request), community_id,
                                                           request.match_info["meeting_id"]))


async def runoff(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if await request.read() else {}
    doc = await formation.create_runoff(pool(request), community_id, request.match_info["meeting_id"],
                                        request.match_info["matter_id"], data, principal.actor)
    return json_response(doc, status=201)


async def form(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request)
    meeting_id, matter_id = data.get("meeting_id"), data.get("matter_id")
    if not isinstance(meeting_id, str) or not isinstance(matter_id, str):
        raise ValidationFailed("请写明选举所在的会议 meeting_id 和事项 matter_id", fields={"meeting_id": "必填"})
    doc = await formation.form_committee(pool(request), community_id, meeting_id, matter_id, actor=principal.actor)
    return json_response(doc, status=201)


async def list_committees(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response({"committees": await committees.list_committees(pool(request), community_id)})


async def get_committee(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response(await committees.get_committee(pool(request), community_id, _committee_id(request)))


def _committee_step(step):
    async def handler(request: web.Request) -> web.Response:
        community_id = request.match_info["community_id"]
        principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
        committee_id = _committee_id(request)
        data = await read_json(request)
        return json_response(await step(pool(request), community_id, committee_id, data, principal.actor))
    return handler


async def member_leaves(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    committee_id, member_no = _committee_id(request), _member_no(request)
    data = await read_json(request)
    return json_response(await committees.member_leaves(pool(request), community_id, committee_id, member_no, data,
                                                        principal.actor))


# ---------------------------------------------------------------- deadlines and the public page

async def community_deadlines(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    await require_staff(request, community_id=community_id)
    return json_response(await deadlines.deadlines(pool(request), [community_id], today=_query_date(request),
                                                   window=_query_window(request)))


async def street_deadlines(request: web.Request) -> web.Response:
    street_id = request.match_info["street_id"]
    principal = await require_staff(request, roles=frozenset({"district_admin", "street_admin"}))
    if principal.role == "street_admin" and principal.street_id != street_id:
        raise Forbidden("您无权查看该街道", code="street_forbidden")
    ids = await deadlines.street_community_ids(pool(request), street_id)
    doc = await deadlines.deadlines(pool(request), ids, today=_query_date(request), window=_query_window(request))
    return json_response({"street_id": street_id} | doc)


async def public_committee(request: web.Request) -> web.Response:
    return json_response(await committees.public_committee(pool(request), request.match_info["community_id"]))


def setup(app: web.Application) -> None:
    app.router.add_post("/api/ballot/nominations", self_nominate)
    app.router.add_get("/api/ballot/nominations", my_nominations)
    app.router.add_get("/api/ballot/candidates", owner_candidates)
    app.router.add_post(ADMIN + "/nominations", staff_nominate)
    app.router.add_get(ADMIN + "/nominations", list_nominations)
    app.router.add_post(ADMIN + "/nominations/{nomination_id}/qualify", qualify)
    app.router.add_post(ADMIN + "/nominations/{nomination_id}/refuse", refuse)
    app.router.add_post(MEETING + "/matters/{matter_id}/nominees", attach_nominees)
    app.router.add_get(MEETING + "/candidate-check", candidate_check)
    app.router.add_get(MEETING + "/elections", outcomes)
    app.router.add_post(MEETING + "/matters/{matter_id}/runoff", runoff)
    app.router.add_post(ADMIN + "/committees", form)
    app.router.add_get(ADMIN + "/committees", list_committees)
    app.router.add_get(COMMITTEE, get_committee)
    app.router.add_post(COMMITTEE + "/first-meeting", _committee_step(committees.record_first_meeting))
    app.router.add_post(COMMITTEE + "/filing", _committee_step(committees.record_filing))
    app.router.add_post(COMMITTEE + "/seal", _committee_step(committees.record_seal))
    app.router.add_post(COMMITTEE + "/term", _committee_step(committees.record_term))
    app.router.add_post(COMMITTEE + "/members/{member_no}/leave", member_leaves)
    app.router.add_get(ADMIN + "/deadlines", community_deadlines)
    app.router.add_get("/api/admin/streets/{street_id}/deadlines", street_deadlines)
    app.router.add_get("/api/public/communities/{community_id}/committee", public_committee)
