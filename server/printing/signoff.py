"""签收表: the sign-off list of a building's code sheets, one table per building (fpdf2).

Columns: 序号, 房号, 业主 (masked), 选票单编号 (the serial printed on the sheet — never the code),
签收人签名, 签收日期.  Whoever hands the sheets out has each recipient sign; a sheet fetched for
someone else is signed with the relation noted.  Pages are numbered "N 栋 第 x / y 页" within
each building.  Layout only: the rows come from ``server.services.documents`` or from a code issue.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fpdf import FPDF

from server.printing.code_sheets import SheetContext, _units_text
from server.printing.document import LEFT, WIDTH, Document, output
from server.printing.text import building_label

_FONT = "NotoSansSC"
ROWS_PER_PAGE = 22
_ROW_H = 9.6
_COLUMNS = (("序号", 12.0), ("房号", 40.0), ("业主", 22.0), ("选票单编号", 30.0), ("签收人签名", 42.0),
            ("签收日期", 28.0))
NOTE = ("领取人在“签收人签名”栏签名并写明日期；代领的，请注明与业主的关系。"
        "选票单编号印在每张选票二维码单的右上角，本表不载选票码。")


@dataclass(frozen=True)
class SignoffRow:
    building: str
    units: tuple[str, ...]
    masked_name: str
    sheet_no: str


def rows_from_codes(codes: Sequence) -> list[SignoffRow]:
    """Sign-off rows of issued codes (server.services.codes.IssuedCode): their serials, not their codes."""
    return [SignoffRow(c.building, tuple(c.units), c.masked_name, c.sheet_no) for c in codes]


def _page(pdf: FPDF, ctx: SheetContext, building: str, page: int, pages: int) -> None:
    # the running head of a Document, or of a code sheets file the list follows
    pdf.running = f"{ctx.meeting_title} · 选票二维码签收表"   # type: ignore[attr-defined]
    pdf.page_label = f"{building_label(building)} 签收表 · 第 {page} / {pages} 页"   # type: ignore[attr-defined]
    pdf.add_page()
    pdf.set_xy(LEFT, 16)
    pdf.set_font(_FONT, size=15)
    pdf.set_x(LEFT)
    pdf.cell(WIDTH, 8, f"选票二维码签收表 · {building_label(building)}", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=9.5)
    pdf.set_x(LEFT)
    pdf.cell(WIDTH, 5.5, f"{ctx.meeting_title}    {building_label(building)} 第 {page} / {pages} 页", align="C",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=8.5)
    pdf.set_x(LEFT)
    pdf.multi_cell(WIDTH, 4.3, NOTE, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_fill_color(235)
    pdf.set_font(_FONT, size=10)
    pdf.set_x(LEFT)
    for text, w in _COLUMNS:
        pdf.cell(w, 7, text, border=1, align="C", fill=True)
    pdf.ln(7)


def add_building(pdf: FPDF, ctx: SheetContext, building: str, rows: Sequence[SignoffRow]) -> None:
    pages = max(1, -(-len(rows) // ROWS_PER_PAGE))
    if not rows:
        _page(pdf, ctx, building, 1, 1)
    for i, row in enumerate(rows):
        if i % ROWS_PER_PAGE == 0:
            _page(pdf, ctx, building, i // ROWS_PER_PAGE + 1, pages)
        values = (str(i + 1), _units_text(row.units), row.masked_name or "—", row.sheet_no, "", "")
        pdf.set_font(_FONT, size=9.5)
        pdf.set_x(LEFT)
        for (_, w), text in zip(_COLUMNS, values):
            pdf.cell(w, _ROW_H, text, border=1, align="C" if w < 35 else "L")
        pdf.ln(_ROW_H)
    pdf.ln(3)
    pdf.set_font(_FONT, size=10)
    pdf.set_x(LEFT)
    pdf.cell(WIDTH, 6, "发放人签名：______________    核对人签名：______________    日期：______年____月____日")


def signoff_pdf(ctx: SheetContext, groups: Mapping[str, Sequence[SignoffRow]]) -> bytes:
    """The sign-off lists of the given buildings (in the order given), each starting on a new page."""
    pdf = Document(f"{ctx.meeting_title} · 选票二维码签收表")
    for building, rows in groups.items():
        add_building(pdf, ctx, building, rows)
    return output(pdf)
