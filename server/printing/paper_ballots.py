"""Printable paper ballots (书面表决票), A4, one owner per sheet (fpdf2, Noto Sans SC).

Each sheet: the meeting, the owner's units and masked name, the owner's ballot code as a QR
code (the same code as for voting on a phone; staff scan it to enter the returned sheet), plain
instructions, the meeting's rules that decide which ballot counts and what a blank one means
(the duplicate policy, changing a vote, invalid ballots: server.services.rule_statements), every
matter the owner votes on (a matter scoped to some buildings only on their owners' sheets) with
its category and the rule it needs, tick boxes (同意 / 反对 / 弃权; per candidate for an election,
with the number of seats), and a signature and date line.
A long meeting flows onto further pages; every page repeats the owner and code in its header.
The font and QR functions are the code sheets' (server.printing.code_sheets, server.printing.qr).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone

from fpdf import FPDF

from server.printing.code_sheets import _FONT, _group, _units_text, font_path
from server.printing.qr import qr_image

_CN_TZ = timezone(timedelta(hours=8))
_LEFT, _WIDTH = 15.0, 180.0
_QR_MM = 34.0
_BOX = 4.2

INSTRUCTIONS = (
    "填写说明：请在您选择的方框内打“√”。每个议题只选一项；选举事项对每位候选人选“同意”、“反对”或“弃权”，"
    "选“同意”的人数不能超过应选人数。填好后请签名、写上日期，在投票截止前交回业委会/筹备组。"
    "也可以用手机扫描右上角二维码投票。"
)
RULES_HEADING = "本次表决的规则（请在填写前阅读）"
SIGNATURE = "业主签名（代理人、监护人请注明并附书面委托）：____________________    日期：______年____月____日"


def _deadline_text(closes_at: datetime | None) -> str:
    if closes_at is None:
        return ""
    return "投票截止：" + closes_at.astimezone(_CN_TZ).strftime("%Y年%m月%d日 %H:%M")


class _BallotPdf(FPDF):
    def __init__(self, title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.add_font(_FONT, "", font_path())
        self.set_title(title)
        self.set_creator("evote")
        self.set_auto_page_break(True, margin=18)
        self.page_label = ""

    def header(self):
        self.set_font(_FONT, size=8)
        self.set_xy(_LEFT, 6)
        self.cell(_WIDTH, 5, self.page_label, align="R")

    def footer(self):
        self.set_y(-12)
        self.set_font(_FONT, size=8)
        self.cell(0, 5, f"第 {self.page_no()} 页", align="C")


def _box(pdf: FPDF, label: str) -> None:
    x, y = pdf.get_x(), pdf.get_y()
    pdf.rect(x, y + 0.9, _BOX, _BOX)
    pdf.set_x(x + _BOX + 1.5)
    pdf.cell(pdf.get_string_width(label) + 8, 6, label)


def _scope_text(doc: dict) -> str:
    scope = doc.get("scope")
    return f"本议题仅由 {'、'.join(scope['buildings'])} 楼栋的业主表决；" if scope else ""


def _rules(pdf: FPDF, rules: Sequence[dict]) -> None:
    """The meeting's rules on which ballot counts and what a blank one means (rule_statements)."""
    if not rules:
        return
    pdf.set_font(_FONT, size=10)
    pdf.multi_cell(_WIDTH, 5.5, RULES_HEADING, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    for mark, rule in zip("①②③④⑤⑥⑦⑧⑨", rules):
        pdf.multi_cell(_WIDTH, 4.8, f"{mark}{rule['title']}：{rule['text']}", align="L", new_x="LMARGIN",
                       new_y="NEXT")


def _resolution(pdf: FPDF, number: int, doc: dict) -> None:
    pdf.set_font(_FONT, size=12)
    pdf.multi_cell(_WIDTH, 6.5, f"{number}. {doc['title']}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(_WIDTH, 5, f"（第 {doc['category']} 类：{doc['category_name']}；{_scope_text(doc)}"
                   f"须参与表决者中{doc['threshold_name']}的专有部分面积和人数同意）", align="L", new_x="LMARGIN",
                   new_y="NEXT")
    if doc.get("description"):
        pdf.multi_cell(_WIDTH, 5, doc["description"][:400], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=12)
    pdf.set_x(_LEFT + 6)
    for label in ("同意", "反对", "弃权"):
        _box(pdf, label)
    pdf.ln(9)


def _election(pdf: FPDF, number: int, doc: dict) -> None:
    pdf.set_font(_FONT, size=12)
    pdf.multi_cell(_WIDTH, 6.5, f"{number}. {doc['title']}（应选 {doc['seats']} 人，"
                   f"“同意”最多选 {doc['seats']} 人）", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(_WIDTH, 5, f"（{_scope_text(doc)}每位候选人须获参与表决者中{doc['threshold_name']}"
                   "的面积和人数同意方可当选）", align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=11)
    for candidate in doc.get("candidates", []):
        if pdf.get_y() > pdf.h - 30:
            pdf.add_page()
        pdf.set_x(_LEFT + 6)
        name = candidate["name"] + (f"（{candidate['unit_label']}）" if candidate.get("unit_label") else "")
        pdf.cell(70, 7, name[:30])
        for label in ("同意", "反对", "弃权"):
            _box(pdf, label)
        pdf.ln(7.5)
    pdf.ln(2)


def _sheet(pdf: _BallotPdf, code, meeting_title: str, matters: Sequence[dict], deadline: str,
           rules: Sequence[dict]) -> None:
    pdf.page_label = f"{meeting_title} · {_units_text(code.units)} · 选票码 {_group(code.code)}"
    pdf.add_page()
    top = 14.0
    pdf.image(qr_image(code.url, box_size=6, border=1), x=_LEFT + _WIDTH - _QR_MM, y=top, w=_QR_MM, h=_QR_MM)
    text_w = _WIDTH - _QR_MM - 4
    pdf.set_xy(_LEFT, top)
    pdf.set_font(_FONT, size=16)
    pdf.multi_cell(text_w, 8, "业主大会书面表决票", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=11)
    pdf.multi_cell(text_w, 6, meeting_title, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(text_w, 6, f"房号：{_units_text(code.units)}    业主：{code.masked_name or '—'}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(text_w, 5, f"楼栋：{code.building}    业主编号：{code.voter_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(text_w, 5, f"选票码：{_group(code.code)}" + (f"    {deadline}" if deadline else ""),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + _QR_MM) + 3)
    pdf.set_font(_FONT, size=9.5)
    pdf.multi_cell(_WIDTH, 5, INSTRUCTIONS, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1.5)
    _rules(pdf, rules)
    pdf.ln(3)
    for number, doc in enumerate(matters, start=1):
        if pdf.get_y() > pdf.h - 45:
            pdf.add_page()
        (_election if doc["kind"] == "election" else _resolution)(pdf, number, doc)
    if pdf.get_y() > pdf.h - 30:
        pdf.add_page()
    pdf.ln(4)
    pdf.set_font(_FONT, size=11)
    pdf.multi_cell(_WIDTH, 7, SIGNATURE, new_x="LMARGIN", new_y="NEXT")


def ballots_pdf(meeting_title: str, matters: Sequence[dict], codes: Iterable, *,
                closes_at: datetime | None = None, rules: Sequence[dict] = (),
                matters_for: Callable[[str], Sequence[dict]] | None = None) -> bytes:
    """Paper ballots for the given issued codes (server.services.codes.IssuedCode), in order.

    ``matters``: the meeting's matter documents (server.services.meetings.matter_document);
    ``matters_for(voter_id)``, when given, the ones a given owner votes on (scoped matters).
    ``rules``: the statements printed on every sheet (server.services.rule_statements).
    Pass the codes sorted by building to get one file per building in building order.
    CPU-bound: call it in a thread from the event loop.
    """
    pdf = _BallotPdf(f"{meeting_title} · 书面表决票")
    deadline = _deadline_text(closes_at)
    for code in codes:
        mine = matters if matters_for is None else matters_for(code.voter_id)
        _sheet(pdf, code, meeting_title, mine, deadline, rules)
    if pdf.page_no() == 0:
        pdf.add_page()
    return bytes(pdf.output())
