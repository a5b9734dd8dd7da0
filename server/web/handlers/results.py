"""Results: publication and objections (staff); the public result, keys, proofs and results page; and
the unit-level record, for the community's staff and owners only (server.auth.record_access)."""
from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path

from aiohttp import web

from server.auth.ballot import ensure_session_live, has_ballot_bearer, read_ballot_token
from server.auth.record_access import require_record_reader
from server.auth.staff import WRITER_ROLES, require_staff
from server.ballot.rules import THRESHOLD_DESCRIPTIONS
from server.errors import Forbidden, NotFound, missing_field
from server.record.signed import zip_bytes
from server.services import result_keys, voting_window
from server.services import results as results_service
from server.services.meeting_input import beijing_time
from server.web.handlers.common import field, int_path, json_response, pool, read_json, settings

RESULTS_STATIC = Path(__file__).resolve().parent.parent / "static" / "results"
_BASE = "/api/admin/communities/{community_id}/meetings/{meeting_id}"
_PUBLIC = "/api/public/meetings/{community_id}/{meeting_id}"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["community_id"], request.match_info["meeting_id"]


# ---------------------------------------------------------------- staff

async def get_result(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await require_staff(request, community_id=community_id)
    return json_response(await results_service.admin_result(pool(request), community_id, meeting_id))


async def sign(request: web.Request) -> web.Response:
    """Sign now (normally the close hook does it); idempotent."""
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    return json_response(await results_service.sign_result(pool(request), settings(request), community_id,
                                                           meeting_id, actor=principal.actor))


async def publish(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    data = await read_json(request) if request.can_read_body else {}
    days = field(data, "objection_days", int, required=False)
    doc = await results_service.publish(pool(request), settings(request), community_id, meeting_id,
                                        actor=principal.actor, objection_days=days)
    return json_response(doc)


async def add_objection(request: web.Request) -> web.Response:
    """Staff record an objection for an owner; or an owner objects with their ballot token."""
    community_id, meeting_id = _ids(request)
    data = await read_json(request)
    text = field(data, "text", str, max_length=2000).strip()
    if not text:
        raise missing_field("text", label="异议内容")
    if has_ballot_bearer(request):
        principal = read_ballot_token(request)
        if (principal.community_id, principal.meeting_id) != (community_id, meeting_id):
            raise Forbidden("该选票凭证不属于这次会议", code="ballot_wrong_meeting")
        async with pool(request).acquire() as conn:
            await ensure_session_live(conn, principal)
        submitted_by, on_behalf_of = principal.actor, ""
    else:
        staff = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
        on_behalf_of = field(data, "on_behalf_of", str, max_length=200)
        submitted_by = staff.actor
    doc = await results_service.add_objection(pool(request), community_id, meeting_id, submitted_by=submitted_by,
                                              on_behalf_of=on_behalf_of, text=text)
    return json_response(doc, status=201)


async def respond_objection(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    objection_id = int_path(request, "objection_id", "objection_not_found", "找不到该异议")
    data = await read_json(request)
    response = field(data, "response", str, max_length=2000).strip()
    if not response:
        raise missing_field("response", label="答复内容")
    doc = await results_service.respond_objection(pool(request), community_id, meeting_id, objection_id,
                                                  actor=principal.actor, response=response)
    return json_response(doc)


async def finalize(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    principal = await require_staff(request, community_id=community_id, roles=WRITER_ROLES)
    return json_response(await results_service.finalize(pool(request), community_id, meeting_id,
                                                        actor=principal.actor))


async def rotate_key(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    principal = await require_staff(request, community_id=community_id, roles=frozenset({"district_admin",
                                                                                         "street_admin"}))
    doc = await result_keys.rotate_community_key(pool(request), settings(request), community_id,
                                                 actor=principal.actor)
    return json_response(doc, status=201)


# ---------------------------------------------------------------- public (no login): never how a unit voted

async def _refuse_if_voided(request: web.Request, community_id: str, meeting_id: str) -> None:
    """A voided meeting has no result: 404 ``meeting_voided`` with when and why (published as such)."""
    notice = await voting_window.void_notice(pool(request), community_id, meeting_id)
    if notice is not None:
        raise NotFound(notice["message"], code="meeting_voided",
                       fields={"voided_at": notice["voided_at"], "reason": notice["reason"]})


async def public_result(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    await _refuse_if_voided(request, community_id, meeting_id)
    return json_response(await results_service.public_result(pool(request), community_id, meeting_id))


# ---------------------------------------------------------------- the unit-level record: staff and owners

async def record_archive(request: web.Request) -> web.Response:
    """record.zip: who is asking is checked first (401/403), then whether it is published (404)."""
    community_id, meeting_id = _ids(request)
    reader = await require_record_reader(request, community_id)
    files = await results_service.record_files_for_reader(pool(request), community_id, meeting_id,
                                                          actor=reader.actor)
    folder = f"{community_id}-{meeting_id}"
    return web.Response(body=zip_bytes(folder, files), content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{folder}.zip"',
                                 "Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})


async def receipt_proof(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    return json_response(await results_service.receipt_proof(pool(request), community_id, meeting_id,
                                                             request.match_info["receipt"]))


async def public_keys(request: web.Request) -> web.Response:
    community_id = request.match_info["community_id"]
    async with pool(request).acquire() as conn:
        keys = await result_keys.public_keys(conn, community_id)
    if not keys:
        raise NotFound("该小区还没有结果签名密钥", code="no_keys")
    return json_response({"community_id": community_id, "keys": keys})


# ---------------------------------------------------------------- the public results page

OUTCOME_NAMES = {"passed": "通过", "failed": "未通过", "no_quorum": "未达参与表决法定比例（不构成决定）",
                 "elected": "已选出", "runoff": "需另行选举"}


def _bj(moment: str | None) -> str:
    """An ISO time of the record as people read it (Beijing time)."""
    return beijing_time(datetime.fromisoformat(moment)) if moment else ""


def _fig(figure: dict) -> str:
    return f"{html.escape(figure['area'])} m²，{figure['persons']} 人"


def render_page(doc: dict, base_url: str) -> str:
    """The public results page (server-rendered; JS only for checking a receipt)."""
    e = html.escape
    meeting = doc["meeting"]
    signed = doc["signed"]
    result = signed["payload"]["result"]
    titles = {m["id"]: m for m in meeting["matters"]}
    cid, mid = doc["community_id"], doc["meeting_id"]
    sections = []
    for matter in result["matters"]:
        info = titles.get(matter["id"], {})
        outcome = OUTCOME_NAMES.get(matter["outcome"], matter["outcome"])
        part = matter["participating"]
        rows = [f"<tr><th>参与表决</th><td>{_fig(part)}</td></tr>"]
        if matter["kind"] == "resolution":
            for key, label in (("yes", "同意"), ("no", "反对"), ("abstain", "弃权")):
                rows.append(f"<tr><th>{label}</th><td>{_fig(matter[key])}</td></tr>")
            detail = "<table>" + "".join(rows) + "</table>"
        else:
            names = {c["id"]: c["name"] for c in info.get("candidates", [])}
            cand_rows = "".join(
                f"<tr><td>{e(names.get(c['id'], c['id']))}</td><td>{_fig(c['yes'])}</td>"
                f"<td>{'达到' if c['passed'] else '未达到'}</td></tr>" for c in matter["candidates"])
            elected = "、".join(e(names.get(c, c)) for c in matter["elected"]) or "无"
            alternates = "、".join(e(names.get(c, c)) for c in matter["alternates"]) or "无"
            runoff = "、".join(e(names.get(c, c)) for c in matter["runoff_needed"])
            detail = ("<table>" + "".join(rows) + "</table>"
                      f"<p class=elected>当选委员：<b>{elected}</b></p><p>候补委员：{alternates}</p>"
                      + (f"<p class=warn>票数相同需另行选举：{runoff}</p>" if runoff else "")
                      + "<table class=cand><tr><th>候选人</th><th>同意</th><th>过半数</th></tr>"
                      + cand_rows + "</table>")
        sections.append(
            f"<section class=matter><h3>{e(info.get('title', matter['id']))}</h3>"
            f"<p class='outcome {e(matter['outcome'])}'>{e(outcome)}</p>"
            f"<p class=rule>表决规则：{e(THRESHOLD_DESCRIPTIONS.get(matter['threshold'], matter['threshold']))}"
            f"{'' if matter['quorum_met'] else '；参与表决的面积或人数未达到三分之二'}</p>{detail}</section>")
    objections = "".join(
        f"<li><p>异议 {o['objection_id']}：{e(o['text'])}</p>"
        f"<p class=resp>答复：{e(o['response']) if o['response'] else '（待答复）'}</p></li>"
        for o in doc["objections"]) or "<li>暂无异议</li>"
    status_line = {
        "preliminary": f"初步结果，异议期至 <span id=objection-ends>{e(_bj(doc['objection_ends_at']))}</span>。"
                       "如有异议，请在异议期内向业主委员会或筹备组提出。",
        "final": f"最终结果（{e(_bj(doc['finalized_at'])[:10])} 确定）。",
    }.get(doc["status"], "")
    record_url = f"/api/public/meetings/{e(cid)}/{e(mid)}/record.zip"
    # The signed hashes of every file: anyone given the record by an owner can check it.
    file_hashes = "".join(f"<li>{e(name)}：<code>{e(digest)}</code></li>"
                          for name, digest in sorted(signed["payload"].get("files", {}).items()))
    template = (RESULTS_STATIC / "page.html").read_text(encoding="utf-8")
    values = {
        "title": e(meeting["meeting"]["title"]), "community": e(meeting["community"]["name"]),
        "status": e(doc["status_name"]), "status_line": status_line,
        "totals": _fig(result["totals"]), "matters": "".join(sections), "objections": objections,
        "record_url": record_url, "file_hashes": file_hashes, "key_id": e(doc["key_id"]),
        "public_key": e(signed["public_key"]), "root": e(doc["receipts_root"]),
        "count": str(doc["receipt_count"]), "cid": e(cid), "mid": e(mid),
        # Script content is raw text (no entity decoding): JSON with "<" escaped cannot close the tag.
        "config": json.dumps({"cid": cid, "mid": mid, "root": doc["receipts_root"]}).replace("<", "\\u003c"),
        "keys_url": f"/api/public/communities/{e(cid)}/keys",
        "base_url": e(base_url),
        "page_url": e(f"{base_url}/r/{cid}/{mid}"),
        "published_day": e(_bj(doc["published_at"])[:10]),
    }
    # One pass, so text from the record (a title with "{{...}}") is never read as a placeholder.
    return re.sub(r"\{\{(\w+)\}\}", lambda match: values[match.group(1)], template)


def render_voided_page(notice: dict) -> str:
    """The public page of a voided meeting: no result, the time it was voided and why."""
    e = html.escape
    return ("<!doctype html><html lang=zh-CN><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width, initial-scale=1'>"
            f"<title>{e(notice['title'])} · 会议已作废</title>"
            "<link rel=stylesheet href=/static/results/results.css></head><body>"
            f"<header><h1>{e(notice['title'])}</h1><p class=status>会议已宣布作废 · 不产生表决结果</p></header>"
            "<main><section class=voided><p class=warn id=voided>本次会议已宣布作废。</p>"
            f"<p>作废时间：{e(beijing_time(datetime.fromisoformat(notice['voided_at'])))}</p>"
            f"<p>作废理由：<span id=void-reason>{e(notice['reason'])}</span></p>"
            "<p>本次会议的投票不计票、不公布结果。如有疑问，请向业主委员会、筹备组或街道办事处咨询。</p>"
            "</section></main></body></html>")


async def results_page(request: web.Request) -> web.Response:
    community_id, meeting_id = _ids(request)
    notice = await voting_window.void_notice(pool(request), community_id, meeting_id)
    if notice is not None:
        return web.Response(text=render_voided_page(notice), content_type="text/html", charset="utf-8")
    doc = await results_service.public_result(pool(request), community_id, meeting_id)
    return web.Response(text=render_page(doc, settings(request).public_url), content_type="text/html",
                        charset="utf-8")


def setup(app: web.Application) -> None:
    app.router.add_get(_BASE + "/result", get_result)
    app.router.add_post(_BASE + "/result/sign", sign)
    app.router.add_post(_BASE + "/publish", publish)
    app.router.add_post(_BASE + "/objections", add_objection)
    app.router.add_post(_BASE + "/objections/{objection_id}/response", respond_objection)
    app.router.add_post(_BASE + "/finalize", finalize)
    app.router.add_post("/api/admin/communities/{community_id}/keys/rotate", rotate_key)
    app.router.add_get(_PUBLIC + "/result", public_result)
    app.router.add_get(_PUBLIC + "/record.zip", record_archive)
    app.router.add_get(_PUBLIC + "/receipts/{receipt}/proof", receipt_proof)
    app.router.add_get("/api/public/communities/{community_id}/keys", public_keys)
    app.router.add_get("/r/{community_id}/{meeting_id}", results_page)
    app.router.add_static("/static/results/", RESULTS_STATIC, append_version=False)
