"""Paper ballots (书面征求意见): printing them, double entry by two staff members, review of mismatches.

A returned sheet is keyed twice, by two different staff members (the database refuses the same
staff member twice for one sheet).  Staff find the owner by scanning the sheet's QR code (the
owner's ballot code, or the URL it carries) or, when it is unreadable, by typing the voter id.

- entry 1 → the sheet is ``pending``;
- entry 2 equal to entry 1 (choices and the date written on the sheet) → ``matched``: one paper
  submission per marked matter is created through the casting checks (same matters, candidates
  and choices as electronic ballots), with ``received_at`` = the server's time of entry 2 (the
  legal receipt time) and the sheet's date in ``paper_date``;
- entry 2 different → ``mismatch``, held and listed for review; a third entry by a third person
  that equals entry 1 or entry 2 settles it (``resolved``), or a supervisor decides (``entry1`` /
  ``entry2`` / ``entry3`` / ``void``, with a note).  Every step is audited.

Paper and electronic submissions of one owner can both exist: the meeting's duplicate policy
decides which counts, in the pure engine, exactly as ``evote tally`` does on the record.

Unlike the electronic path, a returned sheet can be invalid for a matter, and is kept and counted
under the meeting's ``invalid_ballot`` rule (took part and supports nothing, or did not take part):
- a matter left blank or ticked unclearly is keyed ``{"matter_id", "choice": "invalid"}``, or for an
  election also ``"marks": {}``; it becomes a submission with the single choice ("", "invalid");
- an election with more "yes" ticks than seats is keyed as ticked and stored so; the count treats it
  as invalid (over-marked).
A sheet is entered only for the matters its owner votes on: a matter scoped to buildings where the
owner has no counted unit is refused (422 ``matter_out_of_scope``).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from server.auth.staff import StaffPrincipal
from server.ballot import codes as codes_core
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.repositories import codes as codes_repo
from server.repositories import meetings as meetings_repo
from server.repositories import paper as repo
from server.services import audit, casting, transfers
from server.services import codes as codes_service
from server.services.effects import Effects
from server.services.input_dates import iso_date
from server.services.rule_statements import rule_statements

STATUS_NAMES = {"pending": "待第二人录入", "matched": "两次录入一致，已计入", "mismatch": "两次录入不一致，待复核",
                "resolved": "已复核"}
DECISIONS = ("entry1", "entry2", "entry3", "void")
INVALID = "invalid"
MAX_SCAN_REF = 300


# ---------------------------------------------------------------- parsing what was keyed (no I/O)

def _keyed_invalid(definition: casting.MeetingDefinition, item: Any) -> bool:
    """A matter keyed as blank or unclear: ``"choice": "invalid"``, or an election with no tick (``"marks": {}``)."""
    if not isinstance(item, dict):
        return False
    if item.get("choice") == INVALID:
        return "marks" not in item
    matter_id = item.get("matter_id")
    matter = definition.matters.get(matter_id) if isinstance(matter_id, str) else None
    return matter is not None and matter.kind == "election" and item.get("marks") == {} and "choice" not in item


def parse_paper_votes(definition: casting.MeetingDefinition, raw: Any) -> tuple[list[casting.Vote], dict]:
    """(votes to count, the normalised entry) — the casting checks, with paper's two differences:
    a matter may be invalid (blank or unclear), and an election may carry more ticks than seats."""
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("请录入选票上的选择", code="empty_votes", fields={"votes": "不能为空"})
    countable, invalid = [], []
    for item in raw:
        if _keyed_invalid(definition, item):
            if not isinstance(item.get("matter_id"), str) or item["matter_id"] not in definition.matters:
                raise ValidationFailed(f"本次会议没有议题 {str(item.get('matter_id'))[:40]}", code="unknown_matter")
            invalid.append(item["matter_id"])
        else:
            countable.append(item)
    if len(set(invalid)) != len(invalid):
        raise ValidationFailed("同一议题录入了两次", code="duplicate_matter")
    votes = casting.parse_votes(definition, countable, allow_overvote=True) if countable else []
    if set(invalid) & {v.matter_id for v in votes}:
        raise ValidationFailed("同一议题录入了两次", code="duplicate_matter")
    normalised: dict[str, Any] = {m: INVALID for m in invalid}
    for vote in votes:
        normalised[vote.matter_id] = [list(c) for c in vote.choices]
    return votes_from_entry(definition, normalised), normalised


def votes_from_entry(definition: casting.MeetingDefinition, normalised: dict) -> list[casting.Vote]:
    """The submissions an entry makes, in meeting order: an invalid matter is the single choice ("", "invalid")."""
    return [casting.Vote(m, ((("", INVALID),) if normalised[m] == INVALID
                             else tuple((c, v) for c, v in normalised[m])))
            for m in definition.matters if m in normalised]


def parse_paper_date(raw: Any) -> date | None:
    """The date written on the sheet (optional)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            return iso_date(raw, "paper_date")
        except ValueError:
            pass
    raise ValidationFailed("选票上的日期格式应为 2026-03-01", code="bad_paper_date", fields={"paper_date": "YYYY-MM-DD"})


def code_from_scan(text: Any) -> str | None:
    """The ballot code in what the scanner read: the code itself or the URL ``…/b/{code}``."""
    if not isinstance(text, str) or len(text) > 500:
        return None
    text = text.strip()
    if "/" in text:
        text = urlsplit(text).path.rstrip("/").rsplit("/", 1)[-1]
    return codes_core.normalize_code(text)


def differences(first: asyncpg.Record, second: asyncpg.Record) -> list[str]:
    """Matter ids (and ``paper_date``) on which two entries differ."""
    a, b = _votes_of(first), _votes_of(second)
    out = sorted(m for m in set(a) | set(b) if a.get(m) != b.get(m))
    if first["paper_date"] != second["paper_date"]:
        out.append("paper_date")
    return out


def _votes_of(entry: asyncpg.Record) -> dict:
    value = entry["votes"]
    return json.loads(value) if isinstance(value, str) else value


# ---------------------------------------------------------------- entering

async def _identify(conn: asyncpg.Connection, community_id: str, meeting_id: str, code: Any,
                    voter_id: Any) -> tuple[str, str]:
    if code is not None:
        normalised = code_from_scan(code)
        row = await repo.code_owner(conn, codes_core.code_hash(normalised)) if normalised else None
        if row is None or (row["community_id"], row["meeting_id"]) != (community_id, meeting_id):
            raise NotFound("选票码无效或不属于本次会议，请核对；也可按业主编号录入", code="code_invalid")
        if row["revoked_at"] is not None:
            raise Conflict("该选票码已作废（已补发新码），请核对选票；确认是本人选票的，可按业主编号录入",
                           code="code_revoked")
        return row["voter_id"], "code"
    if not isinstance(voter_id, str) or not voter_id:
        raise ValidationFailed("请扫描选票上的二维码（code），或填写业主编号（voter_id）", code="voter_required",
                               fields={"code": "二选一", "voter_id": "二选一"})
    if not await repo.in_electorate(conn, community_id, meeting_id, voter_id):
        raise NotFound("该业主不在本次会议的表决名单中", code="voter_not_found")
    return voter_id, "voter_id"


async def _count_sheet(conn: asyncpg.Connection, definition: casting.MeetingDefinition, community_id: str,
                       meeting_id: str, paper_id: int, voter_id: str, normalised: dict, paper_date: date | None,
                       now: datetime) -> list[dict]:
    """Create the sheet's paper submissions (received now); returns their receipts."""
    votes = votes_from_entry(definition, normalised)
    if not votes:
        return []
    rows, choices, receipts = casting.build_rows(community_id, meeting_id, voter_id, "paper", now, votes)
    try:
        async with conn.transaction():
            await repo.insert_submissions(conn, community_id=community_id, meeting_id=meeting_id, voter_id=voter_id,
                                          channel="paper", received_at=now, allow_revision=definition.allow_revision,
                                          paper_date=paper_date, proxy_voter_id=None, idempotency_key=None,
                                          rows=rows, choices=choices)
    except asyncpg.UniqueViolationError:
        raise Conflict("该业主已有计入的纸质选票，本次会议不允许改票", code="paper_already_counted") from None
    except asyncpg.CheckViolationError as exc:
        # a vote that stands from before the subject changed hands (server/services/transfers.py)
        if (refusal := transfers.vote_refusal(exc)) is None:
            raise
        raise refusal from None
    await repo.link_paper_submissions(conn, community_id, meeting_id, paper_id, [r[0] for r in rows])
    return receipts


async def enter(pool: asyncpg.Pool, effects: Effects, principal: StaffPrincipal, *, community_id: str,
                meeting_id: str, code: Any = None, voter_id: Any = None, votes_raw: Any, paper_date: date | None,
                scan_ref: str) -> dict:
    """Record one keying of a returned sheet; the second (or third) may make it count.

    When it counts, live views are told which ballots were added once the transaction has committed."""
    definition = await casting.meeting_definition(pool, community_id, meeting_id)
    _, normalised = parse_paper_votes(definition, votes_raw)
    result = await _enter(pool, principal, definition, community_id, meeting_id, code, voter_id, normalised,
                          paper_date, scan_ref)
    await casting.announce_submissions(effects, community_id, meeting_id, result["receipts"])
    return result


async def _enter(pool, principal, definition, community_id, meeting_id, code, voter_id, normalised, paper_date,
                 scan_ref) -> dict:
    for attempt in range(2):
        try:
            return await _enter_once(pool, principal, definition, community_id, meeting_id, code, voter_id,
                                     normalised, paper_date, scan_ref)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "paper_entry_community_id_meeting_id_paper_id_staff_id_key":
                raise Conflict("同一张选票的两次录入须由两位不同的工作人员完成，请换人录入",
                               code="same_staff_twice") from None
            if attempt:
                raise Conflict("该选票正在被另一位工作人员录入，请稍后重试", code="concurrent_entry") from None
            await asyncio.sleep(0)   # another first entry of this owner won: run again as entry 2
    raise AssertionError("unreachable")


async def _enter_once(pool, principal, definition, community_id, meeting_id, code, voter_id, normalised,
                      paper_date, scan_ref) -> dict:
    async with pool.acquire() as conn, conn.transaction():
        clock = await repo.meeting_clock(conn, community_id, meeting_id)
        if clock is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        casting.refuse_outside_window(clock)
        now = clock["now"]
        voter, identified_by = await _identify(conn, community_id, meeting_id, code, voter_id)
        casting.refuse_out_of_scope(definition, voter, normalised)
        await repo.lock_voter(conn, community_id, meeting_id, voter)
        sheet = await repo.open_paper_ballot(conn, community_id, meeting_id, voter)
        receipts: list[dict] = []
        diff: list[str] = []
        if sheet is None:
            if not definition.allow_revision and await repo.counted_paper_ballots(conn, community_id, meeting_id,
                                                                                   voter):
                raise Conflict("该业主的纸质选票已录入并计入，本次会议不允许改票", code="paper_already_counted")
            sheet = await repo.insert_paper_ballot(conn, community_id, meeting_id, voter, identified_by)
            entry_no, status = 1, "pending"
        else:
            existing = await repo.entries(conn, community_id, meeting_id, [sheet["paper_id"]])
            if any(e["staff_id"] == principal.staff_id for e in existing):
                raise Conflict("同一张选票的两次录入须由两位不同的工作人员完成，请换人录入", code="same_staff_twice")
            if len(existing) >= 3:
                raise Conflict("该选票已录入三次仍不一致，请由主管裁定", code="needs_supervisor",
                               fields={"paper_id": sheet["paper_id"]})
            entry_no = len(existing) + 1
        entry = await repo.insert_entry(conn, community_id, meeting_id, sheet["paper_id"], entry_no=entry_no,
                                        staff_id=principal.staff_id, entered_by=principal.actor, votes=normalised,
                                        paper_date=paper_date, scan_ref=scan_ref, entered_at=now)
        if entry_no == 1:
            status = "pending"
        else:
            earlier = {e["entry_no"]: e for e in existing}
            agrees = [n for n, e in sorted(earlier.items()) if not differences(e, entry)]
            if agrees:
                resolution = "entry1" if entry_no == 2 else "entry3"
                status = "matched" if entry_no == 2 else "resolved"
                receipts = await _count_sheet(conn, definition, community_id, meeting_id, sheet["paper_id"], voter,
                                              normalised, paper_date, now)
                await repo.set_paper_status(conn, community_id, meeting_id, sheet["paper_id"], status=status,
                                            resolution=resolution, resolved_by=principal.actor,
                                            note="" if entry_no == 2 else f"第三次录入与第 {agrees[0]} 次一致",
                                            received_at=now)
            else:
                status = "mismatch"
                diff = sorted(set().union(*(differences(e, entry) for e in earlier.values())))
                await repo.set_paper_status(conn, community_id, meeting_id, sheet["paper_id"], status=status)
        await audit.append(conn, community_id=community_id, actor=principal.actor, action="paper.entry",
                           detail={"meeting_id": meeting_id, "paper_id": sheet["paper_id"], "voter_id": voter,
                                   "entry_no": entry_no, "status": status, "identified_by": identified_by,
                                   "paper_date": paper_date.isoformat() if paper_date else None,
                                   "scan_ref": scan_ref, "differences": diff,
                                   "ballot_ids": [r["ballot_id"] for r in receipts]})
    return {"paper_id": sheet["paper_id"], "voter_id": voter, "entry_no": entry_no, "status": status,
            "status_name": STATUS_NAMES[status], "entered_at": entry["entered_at"].isoformat(),
            "differences": diff, "receipts": receipts,
            "paper_date": paper_date.isoformat() if paper_date else None}


# ---------------------------------------------------------------- review

SUPERVISOR_ROLES = frozenset({"district_admin", "street_admin", "prep_group"})


async def resolve(pool: asyncpg.Pool, effects: Effects, principal: StaffPrincipal, *, community_id: str,
                  meeting_id: str, paper_id: int, decision: str, note: str) -> dict:
    """A supervisor's decision on a mismatched sheet (recorded, audited; announced to live views when it
    makes the sheet count)."""
    result = await _resolve(pool, principal, community_id=community_id, meeting_id=meeting_id, paper_id=paper_id,
                            decision=decision, note=note)
    await casting.announce_submissions(effects, community_id, meeting_id, result["receipts"])
    return result


async def _resolve(pool: asyncpg.Pool, principal: StaffPrincipal, *, community_id: str, meeting_id: str,
                   paper_id: int, decision: str, note: str) -> dict:
    if principal.role not in SUPERVISOR_ROLES:
        raise Forbidden("只有主管（区、街道管理员或筹备组）可以裁定不一致的选票", code="role_forbidden")
    if decision not in DECISIONS:
        raise ValidationFailed("decision 应为 entry1、entry2、entry3 或 void", code="bad_decision",
                               fields={"decision": "entry1 / entry2 / entry3 / void"})
    if not note.strip():
        raise ValidationFailed("请写明裁定理由", code="note_required", fields={"note": "必填"})
    definition = await casting.meeting_definition(pool, community_id, meeting_id)
    async with pool.acquire() as conn, conn.transaction():
        clock = await repo.meeting_clock(conn, community_id, meeting_id)
        if clock is None:
            raise NotFound("找不到该会议", code="meeting_not_found")
        sheet = await repo.get_paper_ballot(conn, community_id, meeting_id, paper_id, for_update=True)
        if sheet is None:
            raise NotFound("找不到该纸质选票", code="paper_not_found")
        if sheet["status"] != "mismatch":
            raise Conflict(f"该选票状态为“{STATUS_NAMES[sheet['status']]}”，无需裁定", code="not_mismatch")
        existing = {e["entry_no"]: e for e in await repo.entries(conn, community_id, meeting_id, [paper_id])}
        if any(e["staff_id"] == principal.staff_id for e in existing.values()):
            raise Forbidden("录入过该选票的人不能裁定它，请由另一位主管裁定", code="entered_this_sheet")
        receipts: list[dict] = []
        now = clock["now"]
        if decision == "void":
            await repo.set_paper_status(conn, community_id, meeting_id, paper_id, status="resolved", resolution="void",
                                        resolved_by=principal.actor, note=note.strip())
        else:
            chosen = existing.get(int(decision[-1]))
            if chosen is None:
                raise ValidationFailed(f"该选票没有第 {decision[-1]} 次录入", code="no_such_entry")
            casting.refuse_outside_window(clock)
            receipts = await _count_sheet(conn, definition, community_id, meeting_id, paper_id, sheet["voter_id"],
                                          _votes_of(chosen), chosen["paper_date"], now)
            await repo.set_paper_status(conn, community_id, meeting_id, paper_id, status="resolved",
                                        resolution=decision, resolved_by=principal.actor, note=note.strip(),
                                        received_at=now)
        await audit.append(conn, community_id=community_id, actor=principal.actor, action="paper.resolve",
                           detail={"meeting_id": meeting_id, "paper_id": paper_id, "voter_id": sheet["voter_id"],
                                   "decision": decision, "note": note.strip(),
                                   "ballot_ids": [r["ballot_id"] for r in receipts]})
    return {"paper_id": paper_id, "status": "resolved", "status_name": STATUS_NAMES["resolved"],
            "resolution": decision, "receipts": receipts}


def _entry_doc(e: asyncpg.Record) -> dict:
    return {"entry_no": e["entry_no"], "entered_by": e["entered_by"], "votes": _votes_of(e),
            "paper_date": e["paper_date"].isoformat() if e["paper_date"] else None, "scan_ref": e["scan_ref"],
            "entered_at": e["entered_at"].isoformat()}


async def list_sheets(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, status: str | None) -> dict:
    if status is not None and status not in STATUS_NAMES:
        raise ValidationFailed("status 应为 pending、matched、mismatch 或 resolved", code="bad_status")
    async with pool.acquire() as conn:
        sheets = await repo.list_paper_ballots(conn, community_id, meeting_id, status)
        ids = [s["paper_id"] for s in sheets]
        entries = await repo.entries(conn, community_id, meeting_id, ids)
        subs = await repo.paper_ballot_submissions(conn, community_id, meeting_id, ids)
        counts = {name: 0 for name in STATUS_NAMES}
        counts.update(await repo.status_counts(conn, community_id, meeting_id))
    by_sheet: dict[int, list] = {}
    for e in entries:
        by_sheet.setdefault(e["paper_id"], []).append(e)
    subs_by: dict[int, list] = {}
    for s in subs:
        subs_by.setdefault(s["paper_id"], []).append(s)
    out = []
    for s in sheets:
        es = by_sheet.get(s["paper_id"], [])
        diff = sorted(set().union(*(differences(es[0], e) for e in es[1:]))) if len(es) > 1 else []
        out.append({
            "paper_id": s["paper_id"], "voter_id": s["voter_id"], "identified_by": s["identified_by"],
            "status": s["status"], "status_name": STATUS_NAMES[s["status"]], "resolution": s["resolution"],
            "resolved_by": s["resolved_by"], "resolution_note": s["resolution_note"],
            "received_at": s["received_at"].isoformat() if s["received_at"] else None,
            "differences": diff, "entries": [_entry_doc(e) for e in es],
            "submissions": [{"matter_id": x["matter_id"], "ballot_id": str(x["ballot_id"]),
                             "paper_date": x["paper_date"].isoformat() if x["paper_date"] else None,
                             "received_at": x["received_at"].isoformat()} for x in subs_by.get(s["paper_id"], [])]})
    return {"community_id": community_id, "meeting_id": meeting_id, "counts": counts, "sheets": out}


# ---------------------------------------------------------------- printing

async def issue_paper_ballots(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str,
                              public_url: str, voter_ids: list[str] | None) -> tuple[str, list]:
    """Codes for paper ballots: (meeting title, IssuedCode list).

    Without ``voter_ids``: a code for every owner who has none yet (the codes service's issue).
    With ``voter_ids``: each one's code is reissued (the old one stops working), so the paper
    ballot carries the owner's one live code.  Codes exist in plaintext only now: print them.
    """
    if voter_ids is None:
        result = await codes_service.issue_codes(pool, community_id=community_id, meeting_id=meeting_id, actor=actor,
                                                 public_url=public_url)
        return result.meeting_title, result.codes
    issued, title = [], ""
    for voter in voter_ids:
        title, code = await codes_service.reissue_code(pool, community_id=community_id, meeting_id=meeting_id,
                                                       voter_id=voter, actor=actor, public_url=public_url,
                                                       reason="纸质选票")
        issued.append(code)
    return title, issued


@dataclass(frozen=True)
class PaperBallots:
    """What a print of paper ballots needs: the meeting, its matter documents and the codes, in print order.

    ``documents_for(voter_id)`` gives the matters one owner votes on (a scoped matter only on the
    ballots of owners in its scope); ``rules`` the statements of the rules printed on every ballot.
    """

    title: str
    documents: Sequence[dict]
    codes: list                     # server.services.codes.IssuedCode, by building, units, voter
    closes_at: datetime | None
    documents_for: Callable[[str], Sequence[dict]] | None = None
    rules: Sequence[dict] = ()


async def paper_ballots(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str, public_url: str,
                        voter_ids: list[str] | None, building: str | None) -> PaperBallots:
    """Issue codes (or reissue them for the listed owners and the building's) for printing paper ballots."""
    if building is not None:
        async with pool.acquire() as conn:
            rows = await codes_repo.voters_for_sheets(conn, community_id, meeting_id)
        voter_ids = sorted({*(voter_ids or []), *(r["voter_id"] for r in rows if r["building"] == building)})
        if not voter_ids:
            raise ValidationFailed("该楼栋没有业主", code="empty_building", fields={"building": building})
    title, codes = await issue_paper_ballots(pool, community_id=community_id, meeting_id=meeting_id, actor=actor,
                                             public_url=public_url, voter_ids=voter_ids)
    if not codes:
        raise Conflict("所有业主都已发放选票码。要为某些业主打印纸质选票，请指定 voter_ids 或 building（将补发新码）",
                       code="codes_already_issued")
    definition = await casting.meeting_definition(pool, community_id, meeting_id)
    async with pool.acquire() as conn:
        meeting = await meetings_repo.get_meeting(conn, community_id, meeting_id)
    return PaperBallots(title=title, documents=list(definition.documents),
                        codes=sorted(codes, key=lambda c: (c.building, c.units, c.voter_id)),
                        closes_at=meeting["closes_at"] if meeting else None,
                        documents_for=definition.documents_for,
                        rules=rule_statements(meeting["rules"] if meeting else definition.rules))
