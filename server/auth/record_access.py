"""Who may read a community's unit-level record (how each unit voted): the guard for record.zip.

The record (register.csv, ballots.csv, receipts.csv and the archive holding them) belongs to the
community (SPC art. 13: the owners' right to inspect), not to the internet.  It is served to:

- the community's staff: any role that may touch the community (``require_staff`` with a
  ``community_id``), auditors included;
- the community's owners, by
  - their ballot token (``Authorization: Bearer``, ``typ`` evote-ballot+jwt, session not revoked), or
  - their ballot code (``X-Ballot-Code`` header or ``?code=``): a live code of any meeting of the
    community.  The code keeps working after the meeting closes (sign-in does not; the token
    expires soon after the close); a revoked code (reissued) does not.

Anyone else: 401 ``record_login_required`` (no credentials) or ``record_code_invalid`` (an unknown
or revoked code); 403 when the credentials are for another community (``record_forbidden`` for an
owner, ``community_forbidden`` for staff).
"""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from server import appkeys
from server.auth.ballot import ensure_session_live, has_ballot_bearer, read_ballot_token
from server.auth.staff import require_staff
from server.ballot import codes as codes_core
from server.errors import Forbidden, Unauthorized
from server.repositories import codes as codes_repo

CODE_HEADER = "X-Ballot-Code"
CODE_QUERY = "code"


class RecordLoginRequired(Unauthorized):
    code = "record_login_required"
    message = ("完整表决记录（每户的表决情况）只供本小区业主、业主大会筹备组/业委会工作人员和审计人员查阅。"
               "业主请输入选票上的选票码，工作人员请先登录管理账号")


class RecordCodeInvalid(Unauthorized):
    code = "record_code_invalid"
    message = "选票码无效或已作废（已补发新码），请使用最新的选票码"


class RecordForbidden(Forbidden):
    code = "record_forbidden"
    message = "您的选票码不属于该小区，不能查阅该小区每户的表决情况"


@dataclass(frozen=True)
class RecordReader:
    kind: str      # "staff" or "owner"
    actor: str     # staff:<username> or voter:<voter_id>


def _code_text(request: web.Request) -> str | None:
    text = request.headers.get(CODE_HEADER) or request.query.get(CODE_QUERY)
    return text if text and text.strip() else None


async def require_record_reader(request: web.Request, community_id: str) -> RecordReader:
    """The staff member or owner asking for the record of ``community_id``; raises 401/403 otherwise."""
    if request.headers.get("Authorization", "").startswith("Bearer "):
        if has_ballot_bearer(request):
            principal = read_ballot_token(request)
            if principal.community_id != community_id:
                raise RecordForbidden("您的选票凭证不属于该小区，不能查阅该小区每户的表决情况")
            async with request.app[appkeys.DB_POOL].acquire() as conn:
                await ensure_session_live(conn, principal)
            return RecordReader("owner", principal.actor)
        staff = await require_staff(request, community_id=community_id)
        return RecordReader("staff", staff.actor)
    text = _code_text(request)
    if text is None:
        raise RecordLoginRequired()
    code = codes_core.normalize_code(text)
    if code is None:
        raise RecordCodeInvalid()
    async with request.app[appkeys.DB_POOL].acquire() as conn:
        holder = await codes_repo.live_code_holder(conn, codes_core.code_hash(code))
    if holder is None:
        raise RecordCodeInvalid()
    if holder["community_id"] != community_id:
        raise RecordForbidden()
    return RecordReader("owner", f"voter:{holder['voter_id']}")
