"""Issuing, revoking and reissuing ballot codes (staff actions, audited).

The plaintext codes exist only in what these functions return (for the sheets,
CSV and QR images made from it, once); the database keeps ``sha256(code)``.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import asyncpg

from server.ballot.codes import code_hash, code_url, generate_code, public_url_problem
from server.ballot.masking import mask_name
from server.ballot.text_checks import spreadsheet_safe
from server.ballot.weights import SUBJECT_SEPARATOR
from server.errors import Conflict, NotFound, ValidationFailed
from server.printing.code_sheets import SheetContext
from server.repositories import codes as codes_repo
from server.repositories import communities as community_repo
from server.services import audit

# Codes are issued once the electorate is frozen (at notice) and until voting closes.
ISSUABLE_STATES = ("noticed", "open")


@dataclass(frozen=True)
class IssuedCode:
    """The code of one voting subject (an owner set), held by its representative."""

    voter_id: str                 # the subject id (owners' ids joined with "+")
    building: str                 # the building of its first counted unit
    units: tuple[str, ...]        # its counted units
    masked_name: str              # the representative's name, masked
    serial: int
    code: str      # plaintext: shown once, never stored
    url: str
    representative: str = ""      # owner id of the representative
    new_owner: bool = False       # held by the new owner of a subject that changed hands during the meeting
    sheet_no: str = ""            # the serial printed on its sheet and in the sign-off list (never the code)
    # the mini-program code (小程序码) WeChat drew for this code, printed instead of the web address QR
    # when EVOTE_SHEET_QR=miniprogram (docs/notifications.md)
    qr_png: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def joint(self) -> bool:
        """Whether the subject has several owners (the sheet then names their representative)."""
        return SUBJECT_SEPARATOR in self.voter_id

    def csv_row(self) -> list[str]:
        return [self.voter_id, self.building, " ".join(self.units), self.masked_name, self.code, self.url]


CSV_HEADER = ["voter_id", "building", "units", "masked_name", "code", "url"]


@dataclass(frozen=True)
class IssueResult:
    community_id: str
    meeting_id: str
    meeting_title: str
    codes: list[IssuedCode]
    skipped: int        # voters who already had a live code (not replaced)
    revoked: int        # live codes revoked because they were replaced
    context: SheetContext | None = None   # web address, voting period and contact printed on the sheets

    def summary(self) -> dict:
        return {"community_id": self.community_id, "meeting_id": self.meeting_id,
                "issued": len(self.codes), "skipped": self.skipped, "revoked": self.revoked,
                "buildings": sorted({c.building for c in self.codes})}


async def _meeting_for_codes(conn: asyncpg.Connection, community_id: str, meeting_id: str) -> asyncpg.Record:
    meeting = await codes_repo.get_meeting(conn, community_id, meeting_id)
    if meeting is None:
        raise NotFound("会议不存在", code="meeting_not_found")
    if meeting["state"] not in ISSUABLE_STATES:
        if meeting["state"] == "draft":
            raise Conflict("会议尚未发布公告，业主名单未冻结，暂不能发放选票二维码", code="meeting_not_noticed")
        raise Conflict("会议投票已结束，不能再发放选票二维码", code="meeting_closed")
    return meeting


def sheet_positions(voters) -> dict[str, int]:
    """Each subject's place in its building (1, 2, …) in the order of ``voters_for_sheets`` over the whole
    frozen electorate: the same number whenever its sheet or sign-off list is printed."""
    positions: dict[str, int] = {}
    counts: dict[str, int] = {}
    for v in voters:
        counts[v["building"]] = counts.get(v["building"], 0) + 1
        positions[v["voter_id"]] = counts[v["building"]]
    return positions


def sheet_number(building: str, position: int, serial: int) -> str:
    """``1-003-1``: building, place in it, and which issue of the code (the sheet's serial, not the code)."""
    return f"{building}-{position:03d}-{serial}"


async def sheet_context(conn: asyncpg.Connection, community_id: str, meeting: asyncpg.Record | dict,
                        public_url: str) -> SheetContext:
    community = await community_repo.get_community(conn, community_id)
    return SheetContext(meeting["title"], public_url=public_url, opens_at=meeting["opens_at"],
                        closes_at=meeting["closes_at"], contact=community["contact"] if community else "")


def _new_codes(voters, community_id: str, meeting_id: str, serials: dict[str, int], public_url: str,
               actor: str, positions: dict[str, int] | None = None) -> tuple[list[IssuedCode], list[tuple]]:
    issued, records = [], []
    for v in voters:
        code = generate_code()
        serial = serials.get(v["voter_id"], 0) + 1
        position = (positions or {}).get(v["voter_id"], 0)
        issued.append(IssuedCode(v["voter_id"], v["building"], tuple(v["units"]), mask_name(v["name"]),
                                 serial, code, code_url(public_url, code), v["representative"],
                                 bool(v["new_owner"]),
                                 sheet_no=sheet_number(v["building"], position, serial) if position else ""))
        records.append((community_id, meeting_id, v["voter_id"], serial, code_hash(code), actor))
    return issued, records


def refuse_unusable_public_url(public_url: str, *, test: bool) -> None:
    """Issuing for real needs a QR address owners' phones reach; a test says so (``test``)."""
    problem = public_url_problem(public_url)
    if problem and not test:
        raise ValidationFailed(problem, code="public_url_not_usable",
                               fields={"public_url": public_url, "test": "仅测试时可设为 true"})


async def issue_codes(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, actor: str,
                      public_url: str, replace_existing: bool = False, test: bool = False) -> IssueResult:
    """A code for every voting subject without a live one (or for all, revoking the old, when replacing).

    One code per voting subject: joint owners (one subject) share one code, held by their representative.
    Refused (422 ``public_url_not_usable``) when the QR address is unset or loopback, unless ``test``.
    """
    refuse_unusable_public_url(public_url, test=test)
    async with pool.acquire() as conn, conn.transaction():
        await codes_repo.lock_meeting_codes(conn, community_id, meeting_id)
        meeting = await _meeting_for_codes(conn, community_id, meeting_id)
        voters = await codes_repo.voters_for_sheets(conn, community_id, meeting_id)
        revoked: list = []
        if replace_existing:
            revoked = await codes_repo.revoke_live_codes(conn, community_id, meeting_id, None)
            await codes_repo.revoke_sessions_of_codes(conn, community_id, meeting_id,
                                                      [(r["voter_id"], r["serial"]) for r in revoked])
            live = {}
        else:
            live = await codes_repo.live_serials(conn, community_id, meeting_id)
        todo = [v for v in voters if v["voter_id"] not in live]
        serials = await codes_repo.max_serials(conn, community_id, meeting_id)
        issued, records = _new_codes(todo, community_id, meeting_id, serials, public_url, actor,
                                     sheet_positions(voters))
        context = await sheet_context(conn, community_id, meeting, public_url)
        if records:
            await codes_repo.insert_codes(conn, records)
        await audit.append(conn, community_id=community_id, actor=actor, action="codes.issue",
                           detail={"meeting_id": meeting_id, "issued": len(issued), "skipped": len(live),
                                   "revoked": len(revoked), "replace_existing": replace_existing,
                                   "test": test, "public_url": public_url})
    return IssueResult(community_id, meeting_id, meeting["title"], issued, len(live), len(revoked), context)


async def reissue_code(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, voter_id: str, actor: str,
                       public_url: str, reason: str = "") -> tuple[str, IssuedCode]:
    """Revoke a voter's code (lost, stolen) and issue a new one; the old one stops working at once.

    Sessions signed in with the old code are revoked in the same transaction.
    Returns (meeting title, the new code).
    """
    async with pool.acquire() as conn, conn.transaction():
        await codes_repo.lock_meeting_codes(conn, community_id, meeting_id)
        meeting = await _meeting_for_codes(conn, community_id, meeting_id)
        if not await codes_repo.voters_for_sheets(conn, community_id, meeting_id, [voter_id]):
            raise NotFound("该业主不在本次会议的表决名单中", code="voter_not_found")
        revoked = await codes_repo.revoke_live_codes(conn, community_id, meeting_id, [voter_id])
        sessions = await codes_repo.revoke_sessions_of_codes(
            conn, community_id, meeting_id, [(r["voter_id"], r["serial"]) for r in revoked])
        issued = await new_subject_code(conn, community_id=community_id, meeting_id=meeting_id, voter_id=voter_id,
                                        actor=actor, public_url=public_url)
        await audit.append(conn, community_id=community_id, actor=actor, action="codes.reissue",
                           detail={"meeting_id": meeting_id, "voter_id": voter_id,
                                   "revoked_serials": [r["serial"] for r in revoked],
                                   "serial": issued.serial, "sessions_revoked": sessions,
                                   "reason": reason[:200]})
    return meeting["title"], issued


async def unlock_code(pool: asyncpg.Pool, *, community_id: str, meeting_id: str, voter_id: str, actor: str,
                      reason: str) -> dict:
    """Clear the failed sign-in attempts and any lockout of a voter's live code (audited ``codes.unlock``).

    For staff who checked the holder's identity in person: after the last timed lockout a code
    stays locked until this.  Any meeting state; the code itself stays the same.
    """
    from server.services.signin import until_unlock

    async with pool.acquire() as conn, conn.transaction():
        if await codes_repo.get_meeting(conn, community_id, meeting_id) is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        old = await codes_repo.unlock_live_code(conn, community_id, meeting_id, voter_id)
        if old is None:
            raise NotFound("该业主在本次会议没有有效的选票二维码", code="code_not_found")
        locked_until = old["locked_until"]
        was_locked = locked_until is not None and (until_unlock(locked_until) or locked_until > old["now"])
        doc = {"voter_id": voter_id, "serial": old["serial"], "was_locked": was_locked,
               "failed_attempts": old["failed_attempts"], "lock_level": old["lock_level"],
               "until_unlock": bool(locked_until is not None and until_unlock(locked_until))}
        await audit.append(conn, community_id=community_id, actor=actor, action="codes.unlock",
                           detail={"meeting_id": meeting_id, **doc, "reason": reason[:200]})
    return {"community_id": community_id, "meeting_id": meeting_id, **doc}


async def new_subject_code(conn: asyncpg.Connection, *, community_id: str, meeting_id: str, voter_id: str,
                           actor: str, public_url: str) -> IssuedCode:
    """A new code for one voting subject with no live code left (the caller revoked it, under
    :func:`codes_repo.lock_meeting_codes`), held by whoever holds the subject's code now."""
    everyone = await codes_repo.voters_for_sheets(conn, community_id, meeting_id)
    voters = [v for v in everyone if v["voter_id"] == voter_id]
    serials = await codes_repo.max_serials(conn, community_id, meeting_id)
    issued, records = _new_codes(voters, community_id, meeting_id, serials, public_url, actor,
                                 sheet_positions(everyone))
    await codes_repo.insert_codes(conn, records)
    return issued[0]


async def code_status(pool: asyncpg.Pool, *, community_id: str, meeting_id: str) -> dict:
    async with pool.acquire() as conn:
        meeting = await codes_repo.get_meeting(conn, community_id, meeting_id)
        if meeting is None:
            raise NotFound("会议不存在", code="meeting_not_found")
        rows = await codes_repo.code_status(conn, community_id, meeting_id)
    voters = [{"voter_id": r["voter_id"], "building": r["building"], "serial": r["serial"],
               "issued_at": r["issued_at"], "redeemed_at": r["redeemed_at"], "locked": bool(r["locked"]),
               "wechat_bound": bool(r["wechat_bound"])} for r in rows]
    return {"community_id": community_id, "meeting_id": meeting_id,
            "voters": len(voters), "issued": sum(1 for v in voters if v["serial"] is not None),
            "redeemed": sum(1 for v in voters if v["redeemed_at"] is not None),
            "locked": sum(1 for v in voters if v["locked"]), "codes": voters}


def output_files_csv(result: IssueResult) -> list[tuple[str, bytes]]:
    """codes.csv: every plaintext code. It is secret: whoever has it can vote for those owners.
    Cells that a spreadsheet would run as a formula are neutralised (``spreadsheet_safe``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for code in result.codes:
        writer.writerow([spreadsheet_safe(cell) for cell in code.csv_row()])
    # utf-8-sig so spreadsheet programs on Windows read the Chinese correctly.
    return [("codes.csv", out.getvalue().encode("utf-8-sig"))]


def output_files(result: IssueResult) -> list[tuple[str, bytes]]:
    """What a code issue produces, as (relative path, bytes): per-building PDFs of the sheets followed by
    their sign-off list (签收表), codes.csv, QR PNGs.

    CPU-bound (QR and PDF rendering): call it in a thread from the event loop.
    """
    from server.printing.code_sheets import building_pdf, by_building, safe_filename
    from server.printing.qr import qr_png

    files: list[tuple[str, bytes]] = []
    used: set[str] = set()
    ctx = result.context or SheetContext(result.meeting_title)
    for building, codes in by_building(result.codes).items():
        name = safe_filename(building)
        while name in used:
            name += "_"
        used.add(name)
        # the building's sheets, then its sign-off list (签收表): one file, one font to embed
        files.append((f"sheets/{name}.pdf", building_pdf(ctx, building, codes, signoff=True)))
        # right after the sheet, while the QR matrices are still cached
        for code in codes:
            files.append((f"qr/{safe_filename(code.voter_id)}-{code.serial}.png", code.qr_png or qr_png(code.url)))
    files.extend(output_files_csv(result))
    return files


def zip_files(files: list[tuple[str, bytes]]) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            zf.writestr(name, data)
    return out.getvalue()
