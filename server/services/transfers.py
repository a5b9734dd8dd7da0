"""A voting subject changing hands while its meeting is noticed or open (docs/meetings.md
"Transfers during voting").

voting-rules.md: "An owner whose unit changes hands during voting: if the old owner already voted,
that vote stands; otherwise the new owner may vote."  The electorate, its weights and subject ids
stay frozen from the notice; a transfer changes only who holds the subject's ballot code for this
meeting.  The rule is applied per matter:

- a matter the subject has a submission for (any channel, by a proxy too) keeps that vote, and the
  subject can vote on it no more (the database refuses it: trigger
  ``submission_voted_before_transfer``), whatever the revision rule;
- the other matters are left to the new owner, who gets a new code for the same subject (none
  when no matter is left); sign-in then checks the new owner's last four digits.

The old code is revoked with every ballot session of the subject, and the written authorizations
the subject gave or holds, in one transaction with the transfer, its evidence, the new owner's
identity, the new code and the audit entry.  The new owner's numbers are kept as the register
keeps an owner's (docs/privacy.md): keyed hashes of the last four bound to the owner id
``transfer:<transfer_id>``, masked forms, and the full phone only encrypted under a master key.  Only a whole subject changes hands during voting: a
transfer naming part of its units is refused (the register is updated after the meeting).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta, timezone
from typing import Any

import asyncpg

from server.ballot.masking import mask_name, masked_for_role
from server.ballot.register_table import valid_id_number, valid_phone
from server.errors import ApiError, Conflict, NotFound, ValidationFailed, missing_field
from server.repositories import codes as codes_repo
from server.repositories import paper as paper_repo
from server.repositories import transfers as repo
from server.services import audit, personal_data
from server.services import codes as codes_service
from server.services.codes import IssuedCode
from server.services.input_dates import iso_date
from server.settings import Settings, load_settings

# Codes are in use from the notice (the electorate is frozen) until voting ends.
TRANSFER_STATES = ("noticed", "open")
EVIDENCE_KINDS = {"property_certificate": "不动产权证书", "sale_contract": "房屋买卖合同",
                  "court_document": "法院文书", "other": "其他证明材料"}
MAX_UNITS = 200
VOTED_BEFORE_TRANSFER = "submission_voted_before_transfer"
_CN_TZ = timezone(timedelta(hours=8))


class PartialTransferRefused(Conflict):
    code = "partial_transfer_refused"


# ---------------------------------------------------------------- the request (no I/O)

@dataclass(frozen=True)
class NewOwner:
    """The new owner's identity as given (server.ballot.register_table's forms: the phone as given,
    the ID number upper-cased).  Its numbers are never stored or answered as they are: see
    :func:`record_transfer`."""

    name: str
    phone: str
    id_number: str


@dataclass(frozen=True)
class Evidence:
    kind: str
    reference: str
    on: date


@dataclass(frozen=True)
class TransferRequest:
    voter_id: str | None
    units: tuple[str, ...] | None
    new_owner: NewOwner
    evidence: Evidence
    note: str = ""


def _text(data: dict, name: str, label: str, *, max_length: int, required: bool = True, where: str = "") -> str:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise missing_field(name, label=label, where=where)
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{where}{label}应为文字", fields={name: "类型不正确"})
    value = value.strip()
    if len(value) > max_length or "\x00" in value:
        raise ValidationFailed(f"{where}{label}过长或含有不允许的字符（最多 {max_length} 字）",
                               fields={name: f"最多 {max_length}"})
    return value


def parse_new_owner(raw: Any) -> NewOwner:
    if not isinstance(raw, dict):
        raise ValidationFailed("请填写新业主的姓名和手机号或身份证号（new_owner）", code="new_owner_required",
                               fields={"new_owner": "对象：name、phone、id_number"})
    name = _text(raw, "name", "姓名", max_length=100, where="新业主的")
    phone = _text(raw, "phone", "手机号", max_length=24, required=False, where="新业主的")
    id_number = _text(raw, "id_number", "身份证号", max_length=20, required=False, where="新业主的").upper()
    if phone and not valid_phone(phone):
        raise ValidationFailed("新业主的电话号码格式不正确", code="bad_phone", fields={"phone": "格式不正确"})
    if id_number and not valid_id_number(id_number):
        raise ValidationFailed("新业主的证件号码格式不正确", code="bad_id_number", fields={"id_number": "格式不正确"})
    if not phone and not id_number:
        raise ValidationFailed("请填写新业主的手机号或身份证号：新业主登录投票时核对其后四位",
                               code="new_owner_identity_missing", fields={"phone": "二选一", "id_number": "二选一"})
    return NewOwner(name, phone, id_number)


def parse_evidence(raw: Any) -> Evidence:
    if not isinstance(raw, dict):
        raise ValidationFailed("请填写过户证明材料（evidence：kind、reference、date）", code="evidence_required",
                               fields={"evidence": "对象：kind、reference、date"})
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in EVIDENCE_KINDS:
        names = "、".join(f"{k}（{v}）" for k, v in EVIDENCE_KINDS.items())
        raise ValidationFailed(f"证明材料种类 kind 应为 {names} 之一", code="bad_evidence_kind",
                               fields={"kind": " / ".join(EVIDENCE_KINDS)})
    reference = _text(raw, "reference", "证明材料的编号或说明", max_length=300)
    when = raw.get("date")
    try:
        on = iso_date(when, "date") if isinstance(when, str) and len(when) == 10 else None
    except ValueError:
        on = None
    if on is None:
        raise ValidationFailed("请填写证明材料的日期（如 2026-03-01）", code="bad_evidence_date",
                               fields={"date": "YYYY-MM-DD"})
    return Evidence(kind, reference, on)


def parse_units(raw: Any) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if (not isinstance(raw, list) or not raw or len(raw) > MAX_UNITS
            or not all(isinstance(u, str) and 1 <= len(u) <= 64 for u in raw)):
        raise ValidationFailed(f"units 应为 1–{MAX_UNITS} 个房号", code="bad_units", fields={"units": "房号列表"})
    return tuple(dict.fromkeys(raw))


def parse_request(data: dict) -> TransferRequest:
    """A transfer request body (checked without I/O); raises ValidationFailed (422)."""
    voter_id = data.get("voter_id")
    if voter_id is not None and (not isinstance(voter_id, str) or not 1 <= len(voter_id) <= 1000):
        raise ValidationFailed("voter_id 应为表决主体编号", fields={"voter_id": "表决主体编号"})
    units = parse_units(data.get("units"))
    if voter_id is None and units is None:
        raise ValidationFailed("请写明转让的表决主体（voter_id）或其全部房号（units）", code="subject_required",
                               fields={"voter_id": "二选一", "units": "二选一"})
    note = _text(data, "note", "备注", max_length=500, required=False)
    return TransferRequest(voter_id, units, parse_new_owner(data.get("new_owner")),
                           parse_evidence(data.get("evidence")), note)


def whole_subject(subject_id: str, subject_units: list[str], named: tuple[str, ...]) -> None:
    """Refuse a transfer that names only part of a voting subject's units (409 partial_transfer_refused)."""
    missing = [u for u in subject_units if u not in named]
    if not missing:
        return
    raise PartialTransferRefused(
        f"投票期间只能整体转让一个表决主体的全部房屋。表决主体 {subject_id} 共有 {len(subject_units)} 套房屋"
        f"（{'、'.join(subject_units)}），本次只登记了其中的 {'、'.join(u for u in subject_units if u in named)}。"
        "部分房屋的过户请在本次会议结束后更新业主登记册时办理；本次会议中该表决主体仍由原业主按冻结的面积和人数投票。",
        fields={"voter_id": subject_id, "units": list(subject_units), "units_named": list(named),
                "units_missing": missing})


def vote_refusal(exc: asyncpg.CheckViolationError,
                 matter_name: Callable[[str], str] | None = None) -> ApiError | None:
    """The refusal for a vote on a matter whose vote stands from before the subject changed hands
    (the database's ``submission_voted_before_transfer``); None for any other check.
    ``matter_name``: how the message names the matter (owners read its title); default "议题 <id>"."""
    if exc.constraint_name != VOTED_BEFORE_TRANSFER:
        return None
    matter_id = exc.detail or ""
    name = matter_name(matter_id) if matter_name else f"议题 {matter_id} "
    return Conflict(f"该房屋在投票期间已转让，原业主已对{name}投票，该票有效，不能再对该事项投票",
                    code="voted_before_transfer", fields={"matter_id": matter_id})


# ---------------------------------------------------------------- documents (no I/O)

def new_owner_doc(name: str, phone_masked: str, id_masked: str) -> dict:
    """The new owner for staff: the name masked, the numbers' stored masked forms ('' when none)."""
    return {"name": mask_name(name), "phone": phone_masked, "id_number": id_masked}


def transfer_doc(row: asyncpg.Record | dict, new_owner: dict | None = None) -> dict:
    """A transfer for staff: the new owner's identity masked (:func:`new_owner_doc`), as everywhere
    outside the register; ``new_owner`` defaults to the one listed with ``row``."""
    owner = new_owner or new_owner_doc(row["new_owner_name"], row["new_owner_phone_masked"],
                                       row["new_owner_id_masked"])
    return {
        "transfer_id": row["transfer_id"], "voter_id": row["voter_id"], "units": list(row["units"]),
        "new_owner": owner,
        "evidence": {"kind": row["evidence_kind"], "kind_name": EVIDENCE_KINDS[row["evidence_kind"]],
                     "reference": row["evidence_reference"], "date": row["evidence_date"].isoformat()},
        "note": row["note"],
        "votes_stand": bool(row["voted_matters"]),
        "voted_matters": list(row["voted_matters"]), "open_matters": list(row["open_matters"]),
        "revoked_serials": list(row["revoked_serials"]), "sessions_revoked": row["sessions_revoked"],
        "proxies_revoked": list(row["proxies_revoked"]), "code_serial": row["code_serial"],
        "recorded_by": row["recorded_by"], "recorded_at": row["recorded_at"].astimezone(UTC).isoformat(),
    }


def summary(doc: dict) -> str:
    """What the transfer did, in one sentence for the staff member who recorded it."""
    voted, left = doc["voted_matters"], doc["open_matters"]
    old_code = "原选票码已作废，" if doc["revoked_serials"] else ""
    if not voted:
        return f"已登记过户：{old_code}新业主凭新码投票，仍按该表决主体冻结的面积和人数计票。"
    if not left:
        return f"已登记过户：{old_code}原业主已对全部议题投票，原投票有效；没有可再投的议题，不发放新码。"
    return (f"已登记过户：{old_code}原业主已对议题 {'、'.join(voted)} 投票，原投票有效；"
            f"新业主凭新码可对议题 {'、'.join(left)} 投票。")


# ---------------------------------------------------------------- recording a transfer

@dataclass(frozen=True)
class TransferResult:
    meeting_title: str
    transfer: dict
    code: IssuedCode | None     # the new owner's code (plaintext: shown once), None when nothing is left


def _refuse_state(meeting: asyncpg.Record) -> None:
    if meeting["state"] == "draft":
        raise Conflict("会议尚未发布公告，业主名单未冻结：请更新业主登记册，发布公告时按新登记册冻结",
                       code="meeting_not_noticed")
    if meeting["state"] not in TRANSFER_STATES or (
            meeting["closes_at"] is not None and meeting["now"] >= meeting["closes_at"]):
        raise Conflict("会议投票已结束，不能再登记投票期间的过户；请在更新业主登记册时办理", code="meeting_closed")


async def _subject(conn: asyncpg.Connection, community_id: str, meeting_id: str,
                   request: TransferRequest) -> asyncpg.Record:
    """The one frozen voting subject the request names, all of it (or the refusal)."""
    if request.units is None:
        assert request.voter_id is not None
        found = await repo.subject(conn, community_id, meeting_id, request.voter_id)
        if found is None:
            raise NotFound("该表决主体不在本次会议的表决名单中", code="voter_not_found")
        return found
    holders = await repo.subjects_holding(conn, community_id, meeting_id, list(request.units))
    held = {u for h in holders for u in h["units"]}
    unknown = [u for u in request.units if u not in held]
    if unknown:
        raise ValidationFailed(f"房号 {'、'.join(unknown)} 不在本次会议冻结的表决名单中（或不计入表决）",
                               code="units_not_in_electorate", fields={"units": unknown})
    if len(holders) > 1:
        raise ValidationFailed(
            f"这些房号属于 {len(holders)} 个表决主体（{'、'.join(h['voter_id'] for h in holders)}），"
            "请每个表决主体分别登记过户", code="units_of_several_subjects",
            fields={"voter_ids": [h["voter_id"] for h in holders]})
    found = holders[0]
    if request.voter_id is not None and request.voter_id != found["voter_id"]:
        raise ValidationFailed(f"房号 {'、'.join(request.units)} 属于表决主体 {found['voter_id']}，"
                               f"不属于 {request.voter_id}", code="units_not_of_subject",
                               fields={"voter_id": found["voter_id"]})
    whole_subject(found["voter_id"], list(found["units"]), request.units)
    return found


def audit_detail(meeting_id: str, doc: dict, owner: NewOwner) -> dict:
    """The ``subject.transfer`` audit entry: the transfer's facts and the new owner's masked name and which
    numbers are on record.  No number, not even masked: the audit trail outlives ``evote purge``, and a
    masked form shows the last four that sign-in asks for."""
    return {"meeting_id": meeting_id, **{k: doc[k] for k in (
        "transfer_id", "voter_id", "units", "evidence", "voted_matters", "open_matters", "revoked_serials",
        "sessions_revoked", "proxies_revoked", "code_serial")},
        "new_owner": {"name": doc["new_owner"]["name"], "phone": bool(owner.phone),
                      "id_number": bool(owner.id_number)}}


async def record_transfer(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str,
                          public_url: str, request: TransferRequest, settings: Settings | None = None
                          ) -> TransferResult:
    """Record a whole voting subject changing hands; everything in one transaction (see the module).

    ``settings`` names the identity keys the new owner's numbers are hashed (and their phone sealed)
    with; None reads them from the environment, as the server does.
    """
    keys = await personal_data.load_identity_keys(settings or load_settings())
    async with pool.acquire() as conn, conn.transaction():
        meeting = await repo.meeting_clock(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        _refuse_state(meeting)
        await codes_repo.lock_meeting_codes(conn, community_id, meeting_id)
        subject = await _subject(conn, community_id, meeting_id, request)
        voter_id = subject["voter_id"]
        # Wait for the subject's paper and proxy votes in flight and keep new ones out until the
        # commit; electronic ones are waited for by revoking the sessions, before the votes are read.
        await paper_repo.lock_voter(conn, community_id, meeting_id, voter_id)
        if request.evidence.on > meeting["now"].astimezone(_CN_TZ).date():
            raise ValidationFailed("证明材料的日期不能晚于今天", code="bad_evidence_date",
                                   fields={"date": "不能晚于今天"})
        paper_id = await repo.paper_being_entered(conn, community_id, meeting_id, voter_id)
        if paper_id is not None:
            raise Conflict(f"该表决主体的纸质选票（编号 {paper_id}）正在录入，请先完成录入或裁定，再登记过户",
                           code="paper_ballot_pending", fields={"paper_id": paper_id})
        revoked = await codes_repo.revoke_live_codes(conn, community_id, meeting_id, [voter_id])
        sessions = await repo.end_sessions(conn, community_id, meeting_id, voter_id)
        proxies = await repo.revoke_proxies(conn, community_id, meeting_id, voter_id, actor=actor,
                                            reason="表决主体在投票期间转让，原委托失效")
        voted = await repo.voted_matters(conn, community_id, meeting_id, voter_id)
        left = [m for m in await repo.matter_ids(conn, community_id, meeting_id) if m not in voted]
        serial = None
        if left:
            serial = (await codes_repo.max_serials(conn, community_id, meeting_id)).get(voter_id, 0) + 1
        row = await repo.insert_transfer(
            conn, community_id, meeting_id, voter_id=voter_id, units=list(subject["units"]),
            evidence_kind=request.evidence.kind, evidence_reference=request.evidence.reference,
            evidence_date=request.evidence.on, note=request.note, voted_matters=voted, open_matters=left,
            revoked_serials=[r["serial"] for r in revoked], sessions_revoked=sessions, proxies_revoked=proxies,
            code_serial=serial, recorded_by=actor)
        owner = request.new_owner
        protected = keys.protect_new_owner(community_id=community_id, transfer_id=row["transfer_id"],
                                           phone=owner.phone, id_number=owner.id_number)
        await repo.store_new_owner(conn, community_id, meeting_id, row["transfer_id"], name=owner.name,
                                   protected=protected, identity_key_id=keys.key_id_for(protected))
        code = None
        if left:
            # after the new owner is stored: the code is issued in their name
            code = await codes_service.new_subject_code(conn, community_id=community_id, meeting_id=meeting_id,
                                                        voter_id=voter_id, actor=actor, public_url=public_url)
            if code.serial != serial:   # cannot happen under the codes lock; never record a wrong serial
                raise RuntimeError(f"transfer of {voter_id}: code serial {code.serial}, expected {serial}")
        doc = transfer_doc(row, new_owner_doc(owner.name, protected.phone_masked, protected.id_masked))
        await audit.append(conn, community_id=community_id, actor=actor, action="subject.transfer",
                           detail=audit_detail(meeting_id, doc, owner))
    return TransferResult(meeting["title"], doc, code)


async def list_transfers(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, role: str = "") -> dict:
    """The meeting's transfers for a staff member of ``role`` (an auditor sees no masked phone or ID number)."""
    async with pool.acquire() as conn:
        if await codes_repo.get_meeting(conn, community_id, meeting_id) is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        rows = await repo.list_transfers(conn, community_id, meeting_id)
    return {"community_id": community_id, "meeting_id": meeting_id,
            "transfers": [transfer_doc(r, new_owner_doc(r["new_owner_name"],
                                                        masked_for_role(r["new_owner_phone_masked"], role),
                                                        masked_for_role(r["new_owner_id_masked"], role)))
                          for r in rows]}
