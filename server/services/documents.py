"""The paper trail (docs/documents.md): what each printed document says, gathered from the database,
and the refusals when a document does not apply yet.  The layout is pure (server/printing/).

Kinds: ``notice`` (会议公告), ``extension`` (延期公告), ``sheets`` (签收表 of the live codes: the codes
themselves are printed only when issued, the database keeps their hashes), ``results`` (表决结果公告),
``committee`` (业委会成立公告), ``filing`` (备案材料, one PDF, plus :func:`filing_zip` of its sources).
"""
from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import io
import zipfile
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import asyncpg

from server.ballot import elections as election_rules
from server.ballot.masking import mask_name
from server.ballot.text_checks import has_forbidden_characters
from server.errors import Conflict, NotFound, ValidationFailed
from server.printing import committee as committee_layout
from server.printing import notice as notice_layout
from server.printing import result_notice
from server.printing.code_sheets import SheetContext, safe_filename
from server.printing.signoff import SignoffRow, signoff_pdf
from server.record.signed import PUBLIC_KEY_FILE, RESULT_FILE, SIGNATURE_FILE
from server.repositories import attachments as attachments_repo
from server.repositories import clock
from server.repositories import codes as codes_repo
from server.repositories import communities as community_repo
from server.repositories import elections as election_repo
from server.repositories import results as results_repo
from server.services import attachments as attachments_service
from server.services import audit
from server.services import codes as codes_service
from server.services import meetings as meetings_service
from server.services import results as results_service
from server.services.committees import committee_document
from server.services.rule_statements import rule_statements
from server.settings import Settings

KINDS = ("notice", "extension", "sheets", "results", "committee", "filing")
KIND_NAMES = {"notice": "会议公告", "extension": "延期公告", "sheets": "签收表", "results": "表决结果公告",
              "committee": "成立公告", "filing": "备案材料"}
RULE_CATEGORIES = (1, 2)          # 议事规则, 管理规约: the rules a filing carries
FILING_DAYS = 30                  # filed within 30 days of the election
CONTACT_MAX = 200


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise NotFound(f"没有这种文件（可选：{'、'.join(k + '.pdf' for k in KINDS)}、filing.zip）",
                       code="document_kind_unknown", fields={"kind": "|".join(KINDS)})
    return kind


# ---------------------------------------------------------------- shared facts

async def _base(conn: asyncpg.Connection, settings: Settings, community_id: str, meeting_id: str) -> dict:
    community = await community_repo.get_community(conn, community_id)
    if community is None:
        raise NotFound("小区不存在", code="community_not_found")
    meeting = await meetings_service.load_document(conn, community_id, meeting_id)
    committees = await election_repo.list_committees(conn, [community_id])
    # A meeting called after a committee was formed is convened by it; before, by the preparatory group.
    sitting = any(c["formed"] and c["body"] == "committee" and c["meeting_id"] != meeting_id for c in committees)
    attachments = [dict(a, url=f"{settings.public_url}/api/public/meetings/{community_id}/{meeting_id}/attachments/"
                                  f"{a['attachment_id']}")
                   for a in await attachments_service.notice_detail(conn, community_id, meeting_id)]
    return {"community_name": community["name"], "street_name": community["street_name"] or "",
            "attachments": attachments,
            "contact": community["contact"], "convener": "业主委员会" if sitting else "业主大会筹备组",
            "public_url": settings.public_url, "vote_url": f"{settings.public_url}/b/", "meeting": meeting, "meeting_title": meeting["title"],
            "results_url": f"{settings.public_url}/r/{community_id}/{meeting_id}", "committees": committees}


def _noticed(base: dict) -> None:
    state = base["meeting"]["state"]
    if state == "draft":
        raise Conflict("会议尚未发布公告，还没有可打印的会议公告", code="meeting_not_noticed", fields={"state": state})
    if state == "voided":
        raise Conflict("会议已宣布作废，不再打印其公告", code="meeting_voided", fields={"state": state})


def _notice_data(base: dict) -> dict:
    _noticed(base)
    return {**base, "rules": rule_statements(base["meeting"]["rules"])}


def _extension_data(base: dict) -> dict:
    _noticed(base)
    if not base["meeting"].get("extensions"):
        raise Conflict("本次会议没有延期，没有延期公告", code="no_extension")
    return base


async def _signoff_rows(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> dict[str, list[SignoffRow]]:
    voters = await codes_repo.voters_for_sheets(conn, community_id, meeting_id)
    live = await codes_repo.live_serials(conn, community_id, meeting_id)
    if not live:
        raise Conflict("本次会议还没有发放选票二维码，没有签收表", code="codes_not_issued")
    positions = codes_service.sheet_positions(voters)
    groups: dict[str, list[SignoffRow]] = {}
    for v in voters:
        if v["voter_id"] in live:
            groups.setdefault(v["building"], []).append(SignoffRow(
                v["building"], tuple(v["units"]), mask_name(v["name"]),
                codes_service.sheet_number(v["building"], positions[v["voter_id"]], live[v["voter_id"]])))
    return groups


def _formations(meeting: dict, result: dict) -> dict[str, dict]:
    out = {}
    matters = {m["matter_id"]: m for m in meeting["matters"]}
    for matter_result in result["matters"]:
        matter = matters.get(matter_result["id"])
        if matter is None or matter["kind"] != "election":
            continue
        formation = election_rules.decide_formation(
            matter_result, seats=matter["seats"], alternates=matter["alternates"],
            rank_by=meeting["rules"].get("rank_by", "persons_then_area"), body=matter.get("body") or "other")
        out[matter_result["id"]] = formation.as_json()
    return out


async def _results_data(pool: asyncpg.Pool, conn: asyncpg.Connection, base: dict, community_id: str,
                        meeting_id: str) -> dict:
    state = base["meeting"]["state"]
    row = await results_repo.get_result(conn, community_id, meeting_id)
    if state not in ("closed", "published") or row is None:
        raise Conflict("投票结束并生成签名结果后，才能打印表决结果公告", code="result_not_ready",
                       fields={"state": state})
    if row["status"] == "unpublished":
        raise Conflict("结果尚未公布：请先公布结果（设定异议期），再打印表决结果公告", code="result_not_published")
    doc = await results_service.public_result(pool, community_id, meeting_id)
    signed = doc["signed"]
    payload = signed["payload"]
    result = payload["result"]
    return {
        "community_name": base["community_name"], "meeting_title": base["meeting_title"],
        "convener": base["convener"], "status_name": doc["status_name"],
        "opened_at": payload["meeting"].get("opened_at"), "closed_at": payload["meeting"].get("closed_at"),
        "published_at": doc["published_at"], "objection_ends_at": doc["objection_ends_at"],
        "finalized_at": doc["finalized_at"], "signed_at": payload.get("signed_at"),
        "result": result, "matters": doc["meeting"]["matters"],
        "formations": _formations(base["meeting"], result),
        "results_url": base["results_url"], "key_id": doc["key_id"],
        "key_fingerprint": hashlib.sha256(base64.b64decode(signed["public_key"])).hexdigest(),
        "receipts_root": doc["receipts_root"], "receipt_count": doc["receipt_count"],
    }


async def _committee_data(conn: asyncpg.Connection, base: dict, community_id: str, meeting_id: str) -> dict:
    of_meeting = [c for c in base["committees"] if c["meeting_id"] == meeting_id and c["body"] in
                  ("committee", "supervisory")]
    formed = [c for c in of_meeting if c["formed"]]
    if not formed:
        if of_meeting:
            raise Conflict(f"{election_rules.BODY_NAMES[of_meeting[0]['body']]}尚未组成：{of_meeting[0]['reason']}",
                           code="committee_not_formed")
        raise Conflict("本次会议没有选举业主委员会或监事会，或投票尚未结束", code="committee_not_formed")
    bodies = [await committee_document(conn, community_id, c["committee_id"]) for c in formed]
    meeting = base["meeting"]
    return {**base, "bodies": bodies, "closed_at": meeting.get("closed_at"), "noticed_at": meeting.get("noticed_at"),
            "dated": (await clock.now(conn)).isoformat()}


async def _rule_texts(conn: asyncpg.Connection, community_id: str, meeting_id: str, data: dict) -> list[dict]:
    """The adopted rules: the meeting's attached drafts (the texts owners voted on; a PDF is named with its
    hash and travels in the zip), then the passed 议事规则 / 管理规约 matters' own words."""
    outcomes = {m["id"]: m["outcome"] for m in data["result"]["result"]["matters"]}
    texts = []
    for row in await attachments_repo.list_with_content(conn, community_id, meeting_id):
        content = bytes(row["content"])
        plain = row["media_type"].startswith("text/")
        texts.append({"matter_id": f"A{row['attachment_id']}", "title": row["title"], "passed": True,
                      "outcome": "会议附件", "filename": row["filename"], "sha256": row["sha256"],
                      "text": content.decode("utf-8", "replace") if plain else
                      f"PDF 文件 {row['filename']}，见备案材料 zip 中的 03-规约和规则/ 目录。", "content": content})
    for m in data["meeting"]["matters"]:
        if m["kind"] == "resolution" and m["category"] in RULE_CATEGORIES:
            outcome = outcomes.get(m["matter_id"], "")
            texts.append({"matter_id": m["matter_id"], "title": m["title"], "passed": outcome == "passed",
                          "outcome": result_notice.OUTCOMES.get(outcome, outcome), "text": m.get("description") or ""})
    return texts


# ---------------------------------------------------------------- documents

async def _gather(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str,
                  kind: str) -> tuple[Callable[[Any], bytes], Any]:
    async with pool.acquire() as conn:
        base = await _base(conn, settings, community_id, meeting_id)
        if kind == "notice":
            return notice_layout.notice_pdf, _notice_data(base)
        if kind == "extension":
            return notice_layout.extension_pdf, _extension_data(base)
        if kind == "sheets":
            _noticed(base)
            groups = await _signoff_rows(conn, community_id, meeting_id)
            meeting = base["meeting"]
            ctx = SheetContext(meeting["title"], public_url=settings.public_url, opens_at=meeting["opens_at"],
                               closes_at=meeting["closes_at"], contact=base["contact"])
            return (lambda g: signoff_pdf(ctx, g)), groups
        if kind == "results":
            return result_notice.result_announcement_pdf, await _results_data(pool, conn, base, community_id,
                                                                                meeting_id)
        data = await _committee_data(conn, base, community_id, meeting_id)
        if kind == "committee":
            return committee_layout.committee_pdf, data
        data["result"] = await _results_data(pool, conn, base, community_id, meeting_id)
        elected_on = min(b["elected_on"] for b in data["bodies"] if b.get("elected_on"))
        data["filing_due"] = (_date(elected_on) + timedelta(days=FILING_DAYS)).isoformat()
        data["rule_texts"] = [t for t in await _rule_texts(conn, community_id, meeting_id, data) if t["passed"]]
        return committee_layout.filing_pdf, data


def _date(text: str) -> date:
    return date.fromisoformat(text[:10])


async def render(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str, kind: str) -> bytes:
    """The PDF of ``kind`` for a meeting; 404 for an unknown meeting or kind, 409 when it does not apply yet."""
    layout, data = await _gather(pool, settings, community_id, meeting_id, check_kind(kind))
    return await asyncio.to_thread(layout, data)


def filename(meeting_id: str, kind: str, ext: str = "pdf") -> str:
    return f"{meeting_id}-{KIND_NAMES.get(kind, kind)}.{ext}"


async def filing_zip(pool: asyncpg.Pool, settings: Settings, community_id: str, meeting_id: str) -> bytes:
    """The filing package's sources: the one PDF, the formation notice, the result announcement, the member
    list (CSV), the adopted rules' texts and the signed result files (to check the announcement)."""
    layout, data = await _gather(pool, settings, community_id, meeting_id, "filing")
    async with pool.acquire() as conn:
        signed = {name: await results_repo.record_file(conn, community_id, meeting_id, name)
                  for name in (RESULT_FILE, SIGNATURE_FILE, PUBLIC_KEY_FILE)}

    def build() -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("备案材料.pdf", layout(data))
            zf.writestr("01-成立公告.pdf", committee_layout.committee_pdf(data))
            zf.writestr("02-委员名单.csv", _members_csv(data["bodies"]))
            for text in data["rule_texts"]:
                if "content" in text:       # an attached file, as it was voted on
                    zf.writestr(f"03-规约和规则/{text['matter_id']}-{safe_filename(text['filename'])}", text["content"])
                else:
                    name = safe_filename(f"{text['matter_id']}-{text['title']}")
                    zf.writestr(f"03-规约和规则/{name}.txt", (text["title"] + "\n\n" + text["text"] + "\n").encode())
            zf.writestr("04-表决结果公告.pdf", result_notice.result_announcement_pdf(data["result"]))
            for name, content in signed.items():
                if content is not None:
                    zf.writestr(f"05-签名结果/{name}", content)
            zf.writestr("README.txt", FILING_README.encode())
        return out.getvalue()

    return await asyncio.to_thread(build)


FILING_README = """备案材料（evote 生成）
备案材料.pdf      一份完整的备案材料：目录、成立情况报告、委员名单、管理规约和议事规则、表决结果公告
01-成立公告.pdf   业主委员会（监事会）成立公告
02-委员名单.csv   委员和候补委员名单（UTF-8）
03-规约和规则/    业主大会通过的管理规约、议事规则文本
04-表决结果公告.pdf
05-签名结果/      result.json、result.sig.json、公钥：可用 evote verify 核验表决结果公告所载结果
"""


def _members_csv(bodies: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["机构", "序号", "姓名", "房号", "职务", "中共党员"])
    for body in bodies:
        for row in committee_layout.member_rows(body):
            writer.writerow([body["body_name"], *row])
    return out.getvalue().encode("utf-8-sig")


# ---------------------------------------------------------------- the contact line

async def set_contact(pool: asyncpg.Pool, community_id: str, contact: Any, *, actor: str) -> dict:
    """The contact line printed on code sheets and notices (audited)."""
    if not isinstance(contact, str) or len(contact.strip()) > CONTACT_MAX or has_forbidden_characters(contact):
        raise ValidationFailed(f"联系方式应为不超过 {CONTACT_MAX} 个字的文字", code="bad_contact",
                               fields={"contact": f"≤ {CONTACT_MAX} 字"})
    contact = " ".join(contact.split())
    async with pool.acquire() as conn, conn.transaction():
        if not await community_repo.set_contact(conn, community_id, contact):
            raise NotFound("小区不存在", code="community_not_found")
        await audit.append(conn, community_id=community_id, actor=actor, action="community.contact",
                           detail={"contact": contact})
    return {"community_id": community_id, "contact": contact}

