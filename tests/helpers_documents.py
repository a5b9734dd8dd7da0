"""Test set-up for printed documents: a meeting on the scoped register of tests/helpers_scope.py with a
matter for building 1 only, a committee election with an alternate place, a matter that misses
quorum and two attached drafts; and reading a PDF back (text and QR codes) with pypdfium2 and zxing-cpp.

Voters (areas in m²): A1 150 (1-0101 and 2-0103), A2 90, A3 80, B1 100, B2 110, C1 70 — 600 m², 6 persons.

- M1 表决通过《管理规约》 (category 2, whole community): everyone votes yes → passed.
- M2 筹集 1 号楼电梯维修资金 (category 6, building 1 only: A1 100, A2, A3): all three yes → passed.
- M3 续聘物业服务企业 (category 4): only A1 and C1 vote → 220 m² of 600, 2 of 6: no_quorum.
- E1 committee, 5 seats, 1 alternate place, candidates K1–K6 (marks in ``E1_MARKS``): K1 6 persons, then
  K4 520 m², K5 510, K3 500, K2 490 (5 persons each) are elected, K6 (4 persons, 380 m²) the alternate.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from aiohttp import FormData

from tests.helpers_meetings import (
    MeetingFixture,
    backdate_notice,
    ballot_token,
    cast,
    close_now,
    meeting_body,
    vet_inline_candidates_for_tests,
)
from tests.helpers_scope import scope_community

CANDIDATE_NAMES = {"K1": "周建国", "K2": "吴秀英", "K3": "郑志强", "K4": "冯丽华", "K5": "蒋文斌", "K6": "韩雪梅"}
RULES_TEXT = "第一条 本规约对全体业主具有约束力。第二条 业主应当爱护共有部分。"
ATTACHED_TEXT = "业主大会议事规则（草案）\n第一条 业主大会会议分为定期会议和临时会议。\n"
ATTACHED_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
MATTERS = [
    {"matter_id": "M1", "kind": "resolution", "title": "表决通过《管理规约》", "category": 2,
     "description": RULES_TEXT},
    {"matter_id": "M2", "kind": "resolution", "title": "筹集 1 号楼电梯维修资金", "category": 6,
     "scope": {"buildings": ["1"]}},
    {"matter_id": "M3", "kind": "resolution", "title": "续聘物业服务企业", "category": 4},
    {"matter_id": "E1", "kind": "election", "title": "选举第一届业主委员会委员", "category": 3, "body": "committee",
     "seats": 5, "alternates": 1,
     "candidates": [{"candidate_id": cid, "name": name, "unit_label": f"1-01{n:02d}", "party_member": n <= 3,
                     "statement": "愿为业主服务"} for n, (cid, name) in enumerate(CANDIDATE_NAMES.items(), start=1)]},
]
E1_MARKS = {"A1": ["K1", "K2", "K3", "K4", "K5"], "A2": ["K1", "K2", "K3", "K4", "K6"],
            "A3": ["K1", "K2", "K3", "K5", "K6"], "B1": ["K1", "K2", "K4", "K5", "K6"],
            "B2": ["K1", "K3", "K4", "K5", "K6"], "C1": ["K1", "K2", "K3", "K4", "K5"]}
ELECTED = ["K1", "K4", "K5", "K3", "K2"]
ALTERNATES = ["K6"]


@dataclass
class PaperTrail:
    m: MeetingFixture

    @property
    def print_base(self) -> str:
        return f"{self.m.base}/print"


async def paper_trail_meeting(db_pool, client, staff_headers, make_community, *, max_extensions: int = 0,
                              max_extension_days: int = 0) -> PaperTrail:
    """The meeting above, with two attached drafts (a text and a PDF), noticed and open."""
    community_id, _ = await scope_community(client, staff_headers, make_community)
    headers = await staff_headers("district_admin")
    body = meeting_body(matters=MATTERS, max_extensions=max_extensions, max_extension_days=max_extension_days)
    base = f"/api/admin/communities/{community_id}/meetings"
    resp = await client.post(base, json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    meeting_id = body["meeting_id"]
    await vet_inline_candidates_for_tests(db_pool, community_id, meeting_id)
    for data, filename, title in ((ATTACHED_TEXT.encode(), "议事规则.txt", "业主大会议事规则（草案）"),
                                  (ATTACHED_PDF, "管理规约.pdf", "管理规约（草案）")):
        form = FormData()
        form.add_field("file", data, filename=filename, content_type="application/octet-stream")
        form.add_field("title", title)
        resp = await client.post(f"{base}/{meeting_id}/attachments", data=form, headers=headers)
        assert resp.status == 201, await resp.text()
    resp = await client.post(f"{base}/{meeting_id}/notice", headers=headers)
    assert resp.status == 200, await resp.text()
    await backdate_notice(db_pool, community_id, meeting_id)
    resp = await client.post(f"{base}/{meeting_id}/open", headers=headers)
    if resp.status != 200:      # the app's own scheduler may have opened it first
        resp = await client.get(f"{base}/{meeting_id}", headers=headers)
    document = await resp.json()
    assert document["state"] == "open", document
    async with db_pool.acquire() as conn:
        voters = [r["voter_id"] for r in await conn.fetch(
            "SELECT voter_id FROM electorate WHERE community_id = $1 AND meeting_id = $2 ORDER BY voter_id",
            community_id, meeting_id)]
    return PaperTrail(MeetingFixture(community_id, meeting_id, voters, headers, document))


async def vote_and_close(db_pool, client, trail: PaperTrail) -> None:
    m = trail.m
    for voter in m.voter_ids:
        votes = [{"matter_id": "M1", "choice": "yes"},
                 {"matter_id": "E1", "marks": {c: "yes" for c in E1_MARKS[voter]}}]
        if voter in ("A1", "A2", "A3"):
            votes.append({"matter_id": "M2", "choice": "yes"})
        if voter in ("A1", "C1"):
            votes.append({"matter_id": "M3", "choice": "yes"})
        token = await ballot_token(db_pool, client, m.community_id, m.meeting_id, voter)
        resp = await cast(client, token, votes)
        assert resp.status == 201, await resp.text()
    resp = await close_now(client, m.community_id, m.meeting_id, m.headers)
    assert resp.status == 200, await resp.text()


def pdf_text(data: bytes) -> list[str]:
    """Each page's text."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def pdf_qr_codes(data: bytes, pages: list[int] | None = None, scale: float = 3) -> list[str]:
    """The texts of the QR codes found on the given pages (all when None), page by page."""
    import pypdfium2 as pdfium
    import zxingcpp

    pdf = pdfium.PdfDocument(data)
    found: list[str] = []
    for i in pages if pages is not None else range(len(pdf)):
        image = pdf[i].render(scale=scale).to_pil()
        found += [barcode.text for barcode in zxingcpp.read_barcodes(image)]
    return found


def render_png(data: bytes, page: int, path) -> None:
    """One page as PNG (for looking at it: test-artifacts/)."""
    import pypdfium2 as pdfium

    image = pdfium.PdfDocument(data)[page].render(scale=1.5).to_pil()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
