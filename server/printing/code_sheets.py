"""Printable A4 sheets of ballot codes (fpdf2): one PDF per building, eight voting subjects a page.

Each block, cut out along the dashed line and handed to the owner (for joint owners, to
the representative they chose, who holds the one code of their units), holds the unit(s),
the masked name, the QR code with the web address and the voting period beside it, the code in
text (in groups of four that never break across lines), the sheet's serial (编号, what the
sign-off list records: server.printing.signoff), short Chinese instructions and a contact line.
Every page says "N 栋 · 第 x / y 页".  Chinese needs a CJK font: Noto Sans SC (SIL OFL 1.1)
from the PyPI package ``pylopdf-fonts-zh-cn``, a dependency of this project, embedded as a subset.
"""
from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from fpdf import FPDF

from server.printing.qr import qr_image
from server.printing.text import BEIJING, building_label, when

INSTRUCTIONS = "用微信扫一扫或手机相机扫描二维码，或打开上面的网址输入选票码，核对手机号或身份证号后四位即可投票。"
KEEP_SAFE = "此码只供本户使用，请妥善保管，不要转给他人；遗失请联系业委会/筹备组补发。"

_FONT = "NotoSansSC"
_COLS, _ROWS = 2, 4
_PER_PAGE = _COLS * _ROWS
_MARGIN_X, _MARGIN_TOP = 10.0, 15.0
_BLOCK_W, _BLOCK_H = 95.0, 68.0
_QR_MM = 36.0


@dataclass(frozen=True)
class SheetContext:
    """What every block of a meeting's sheets repeats besides the code."""

    meeting_title: str
    public_url: str = ""                 # the web address owners type (the QR holds {public_url}/b/{code})
    opens_at: datetime | str | None = None
    closes_at: datetime | str | None = None
    contact: str = ""                    # the community's contact line; the convener when empty
    issued_at: datetime | None = None

    def period(self) -> str:
        if self.opens_at is None and self.closes_at is None:
            return ""
        return f"{when(self.opens_at).removesuffix('（北京时间）')} 至 {when(self.closes_at)}"

    def address(self) -> str:
        """The page where an owner types the code (``{public_url}/b/``)."""
        return f"{self.public_url.rstrip('/')}/b/" if self.public_url else ""

    def contact_line(self) -> str:
        return "联系：" + (self.contact or "业主委员会/筹备组（见小区公告栏）")


def font_path() -> str:
    import pylopdf_fonts_zh_cn

    return str(pylopdf_fonts_zh_cn.sans_path())


def code_groups(code: str) -> list[str]:
    return [code[i:i + 4] for i in range(0, len(code), 4)]


def _group(code: str) -> str:
    return "-".join(code_groups(code))


def _units_text(units: tuple[str, ...] | list[str]) -> str:
    units = list(units)
    if len(units) <= 4:
        return "、".join(units)
    return "、".join(units[:3]) + f" 等 {len(units)} 套"


def pages_for(count: int) -> int:
    """How many pages the sheets of ``count`` subjects take (at least one)."""
    return max(1, -(-count // _PER_PAGE))


class _Sheet(FPDF):
    def __init__(self, heading: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.heading = heading
        self.page_label = ""
        self.running = heading
        self.wrapped: dict[tuple[str, float, float], list[str]] = {}
        self.set_auto_page_break(False)
        self.add_font(_FONT, "", font_path())
        self.set_title(heading)
        self.set_creator("evote")

    def header(self):
        self.set_font(_FONT, size=10)
        self.set_xy(_MARGIN_X, 6)
        self.cell(190, 6, f"{self.heading}    {self.page_label}", align="C")


def _groups_line(pdf: FPDF, x: float, width: float, code: str, size: float) -> None:
    """The code's groups of four, three to a line (a new line only between two groups, never inside one;
    fewer to a line when three do not fit)."""
    pdf.set_font(_FONT, size=size)
    gap = pdf.get_string_width("  ")
    groups = code_groups(code)
    per_line = 3
    while per_line > 1 and sum(pdf.get_string_width(g) for g in groups[:per_line]) + gap * (per_line - 1) > width:
        per_line -= 1
    line_h = size * 0.5
    for start in range(0, len(groups), per_line):
        pdf.set_x(x)
        pdf.cell(width, line_h, (" " * 2).join(groups[start:start + per_line]), new_x="LMARGIN", new_y="NEXT")


def _lines(pdf: _Sheet, text: str, width: float, size: float) -> list[str]:
    """``text`` broken into lines of ``width`` at ``size`` (cached per document: the same few texts are on
    every block, and breaking lines is the slow part of laying out a block)."""
    key = (text, width, size)
    if key not in pdf.wrapped:
        pdf.set_font(_FONT, size=size)
        lines = cast(list, pdf.multi_cell(width, 1, text, dry_run=True, output="LINES"))
        pdf.wrapped[key] = [str(line) for line in lines]
    return pdf.wrapped[key]


def _text(pdf: _Sheet, x: float, text: str, width: float, size: float, line_h: float) -> None:
    pdf.set_font(_FONT, size=size)
    for line in _lines(pdf, text, width, size):
        pdf.set_x(x)
        pdf.cell(width, line_h, line, new_x="LMARGIN", new_y="NEXT")


def _block(pdf: _Sheet, x: float, y: float, code, ctx: SheetContext) -> None:
    pdf.set_dash_pattern(dash=1.5, gap=1.5)
    pdf.set_draw_color(150)
    pdf.rect(x, y, _BLOCK_W, _BLOCK_H)
    pdf.set_dash_pattern()
    pdf.set_draw_color(0)
    pad = 3.0
    inner = _BLOCK_W - 2 * pad
    pdf.set_font(_FONT, size=10.5)
    pdf.set_xy(x + pad, y + pad - 0.5)
    pdf.cell(inner - 28, 5.5, "业主大会表决 · 选票二维码", align="L")
    pdf.set_font(_FONT, size=7.5)
    pdf.cell(28, 5.5, f"编号 {getattr(code, 'sheet_no', '') or '—'}", align="R")
    pdf.set_xy(x + pad, y + pad + 4.8)
    title = ctx.meeting_title if len(ctx.meeting_title) <= 34 else ctx.meeting_title[:33] + "…"
    pdf.cell(inner, 4, title, align="L")
    qr_y = y + pad + 9.5
    # the mini-program code WeChat drew for it, when the sheets print those (docs/notifications.md)
    picture = getattr(code, "qr_png", None)
    image = io.BytesIO(picture) if picture else qr_image(code.url, box_size=4, border=1)
    pdf.image(image, x=x + pad, y=qr_y, w=_QR_MM, h=_QR_MM)
    tx, tw = x + pad + _QR_MM + 2.5, _BLOCK_W - 2 * pad - _QR_MM - 2.5
    pdf.set_xy(tx, qr_y)
    units = _units_text(code.units)
    if len(units) <= 14:
        pdf.set_font(_FONT, size=11)
        pdf.cell(tw, 5.2, f"房号：{units}", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font(_FONT, size=9.5)
        pdf.multi_cell(tw, 4.6, f"房号：{units}", align="L", new_x="LMARGIN", new_y="NEXT")
    # A subject of joint owners has one code, held by the representative they chose; a subject that
    # changed hands during the meeting, by its new owner.
    label = "新业主" if getattr(code, "new_owner", False) else "共有人代表" if getattr(code, "joint", False) else "业主"
    pdf.set_x(tx)
    pdf.set_font(_FONT, size=9.5)
    pdf.cell(tw, 4.8, f"{label}：{code.masked_name or '—'}    {building_label(code.building)}",
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(tx)
    pdf.set_font(_FONT, size=8)
    pdf.cell(tw, 4, "选票码：", new_x="LMARGIN", new_y="NEXT")
    _groups_line(pdf, tx, tw, code.code, 11.5)
    if code.serial > 1:
        _text(pdf, tx, f"第 {code.serial} 次发放（旧码已作废）", tw, 7.5, 3.6)
    if ctx.public_url:
        _text(pdf, tx, f"网址：{ctx.address()}", tw, 7.5, 3.6)
    if ctx.period():
        _text(pdf, tx, f"投票时间：{ctx.period()}", tw, 7.5, 3.6)
    pdf.set_xy(x + pad, max(qr_y + _QR_MM + 0.8, pdf.get_y() + 0.5))
    _text(pdf, x + pad, INSTRUCTIONS + KEEP_SAFE, inner, 7.5, 3.5)
    _text(pdf, x + pad, ctx.contact_line(), inner, 7.5, 3.5)


def _context(meeting: str | SheetContext) -> SheetContext:
    return meeting if isinstance(meeting, SheetContext) else SheetContext(meeting)


def add_building(pdf: _Sheet, ctx: SheetContext, building: str, codes: Sequence) -> None:
    """One building's blocks on new pages, numbered "第 x / y 页" within the building."""
    total = pages_for(len(codes))
    for i, code in enumerate(codes):
        if i % _PER_PAGE == 0:
            pdf.page_label = f"{building_label(building)} · 第 {i // _PER_PAGE + 1} / {total} 页"
            pdf.add_page()
        slot = i % _PER_PAGE
        col, row = slot % _COLS, slot // _COLS
        _block(pdf, _MARGIN_X + col * _BLOCK_W, _MARGIN_TOP + row * (_BLOCK_H + 2), code, ctx)


def building_pdf(meeting: str | SheetContext, building: str, codes: Iterable, *,
                 issued_at: datetime | None = None, signoff: bool = False) -> bytes:
    """One building's sheets as PDF bytes (codes in the order given).

    ``meeting``: a :class:`SheetContext` (web address, voting period, contact), or only the title.
    A ``building`` of several buildings (``全部楼栋``) numbers its pages per building of the codes.
    ``signoff``: each building's sign-off list (签收表, server.printing.signoff) follows its sheets.
    """
    from server.printing.signoff import add_building as add_signoff
    from server.printing.signoff import rows_from_codes

    ctx = _context(meeting)
    moment = issued_at or ctx.issued_at or datetime.now(BEIJING)
    issued = moment.astimezone(BEIJING).strftime("%Y-%m-%d")
    codes = list(codes)
    pdf = _Sheet(f"{ctx.meeting_title} · 选票二维码（{issued} 发放）")
    groups = by_building(codes)
    for name, group in (groups.items() if len(groups) > 1 else [(next(iter(groups), building), codes)]):
        add_building(pdf, ctx, name, group)
        if signoff:
            add_signoff(pdf, ctx, name, rows_from_codes(group))
    if pdf.page_no() == 0:
        pdf.page_label = building_label(building)
        pdf.add_page()
    return bytes(pdf.output())


def by_building(codes: Iterable) -> dict[str, list]:
    groups: dict[str, list] = {}
    for code in codes:
        groups.setdefault(code.building, []).append(code)
    return groups


def safe_filename(text: str) -> str:
    """A building name or subject id as a file name (keeps Chinese and the "+" of joint owners; drops path
    separators and control chars)."""
    cleaned = "".join(ch if (ch.isalnum() or ch in "-_.#+") else "_" for ch in text).strip("._")
    return cleaned[:60] or "building"
