"""Printable A4 sheets of ballot codes (fpdf2): one PDF per building, eight voting subjects a page.

Each block, cut out along the dashed line and handed to the owner (for joint owners, to
the representative they chose, who holds the one code of their units), holds the unit(s),
the masked name, the QR code, the code in text (for typing) and short Chinese
instructions.  Chinese needs a CJK font: Noto Sans SC (SIL OFL 1.1) from the PyPI
package ``pylopdf-fonts-zh-cn``, a dependency of this project, embedded as a subset.
"""
from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

from fpdf import FPDF

from server.printing.qr import qr_image

INSTRUCTIONS = "用微信扫一扫或手机相机扫描二维码，核对手机号或身份证号后四位即可投票。"
KEEP_SAFE = "此码只供本户使用，请妥善保管，不要转给他人；遗失请联系业委会/筹备组补发。"

_FONT = "NotoSansSC"
_COLS, _ROWS = 2, 4
_MARGIN_X, _MARGIN_TOP = 10.0, 16.0
_BLOCK_W, _BLOCK_H = 95.0, 68.0
_QR_MM = 40.0
_CN_TZ = timezone(timedelta(hours=8))


def font_path() -> str:
    import pylopdf_fonts_zh_cn

    return str(pylopdf_fonts_zh_cn.sans_path())


def _group(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, len(code), 4))


def _units_text(units: tuple[str, ...] | list[str]) -> str:
    units = list(units)
    if len(units) <= 4:
        return "、".join(units)
    return "、".join(units[:3]) + f" 等 {len(units)} 套"


class _Sheet(FPDF):
    def __init__(self, heading: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.heading = heading
        self.set_auto_page_break(False)
        self.add_font(_FONT, "", font_path())
        self.set_title(heading)
        self.set_creator("evote")

    def header(self):
        self.set_font(_FONT, size=10)
        self.set_xy(_MARGIN_X, 7)
        self.cell(190, 6, f"{self.heading}    第 {self.page_no()} 页", align="C")


def _block(pdf: _Sheet, x: float, y: float, code, meeting_title: str) -> None:
    pdf.set_dash_pattern(dash=1.5, gap=1.5)
    pdf.set_draw_color(150)
    pdf.rect(x, y, _BLOCK_W, _BLOCK_H)
    pdf.set_dash_pattern()
    pdf.set_draw_color(0)
    pad = 3.0
    pdf.set_font(_FONT, size=11)
    pdf.set_xy(x + pad, y + pad)
    pdf.cell(_BLOCK_W - 2 * pad, 6, "业主大会电子表决 · 选票二维码", align="L")
    pdf.set_font(_FONT, size=8)
    pdf.set_xy(x + pad, y + pad + 6)
    title = meeting_title if len(meeting_title) <= 32 else meeting_title[:31] + "…"
    pdf.cell(_BLOCK_W - 2 * pad, 4, title, align="L")
    qr_y = y + pad + 11
    # the mini-program code WeChat drew for it, when the sheets print those (docs/notifications.md)
    picture = getattr(code, "qr_png", None)
    image = io.BytesIO(picture) if picture else qr_image(code.url, box_size=6, border=1)
    pdf.image(image, x=x + pad, y=qr_y, w=_QR_MM, h=_QR_MM)
    tx, tw = x + pad + _QR_MM + 3, _BLOCK_W - 3 * pad - _QR_MM
    pdf.set_xy(tx, qr_y)
    pdf.set_font(_FONT, size=12)
    pdf.multi_cell(tw, 6, f"房号：{_units_text(code.units)}", align="L")
    pdf.set_x(tx)
    # A subject of joint owners has one code, held by the representative they chose; a subject that
    # changed hands during the meeting, by its new owner.
    label = "新业主" if getattr(code, "new_owner", False) else "共有人代表" if getattr(code, "joint", False) else "业主"
    pdf.multi_cell(tw, 6, f"{label}：{code.masked_name or '—'}", align="L")
    pdf.set_x(tx)
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(tw, 5, f"楼栋：{code.building}", align="L")
    pdf.set_x(tx)
    pdf.multi_cell(tw, 5, f"选票码：\n{_group(code.code)}", align="L")
    if code.serial > 1:
        pdf.set_x(tx)
        pdf.multi_cell(tw, 5, f"第 {code.serial} 次发放（旧码已作废）", align="L")
    pdf.set_xy(x + pad, qr_y + _QR_MM + 1)
    pdf.set_font(_FONT, size=9)
    pdf.multi_cell(_BLOCK_W - 2 * pad, 4.5, INSTRUCTIONS + KEEP_SAFE, align="L")


def building_pdf(meeting_title: str, building: str, codes: Iterable, *, issued_at: datetime | None = None) -> bytes:
    """One building's sheets as PDF bytes (codes in the order given)."""
    when = (issued_at or datetime.now(UTC)).astimezone(_CN_TZ).strftime("%Y-%m-%d")
    pdf = _Sheet(f"{meeting_title} · {building} · 选票二维码（{when} 发放）")
    per_page = _COLS * _ROWS
    for i, code in enumerate(codes):
        if i % per_page == 0:
            pdf.add_page()
        slot = i % per_page
        col, row = slot % _COLS, slot // _COLS
        _block(pdf, _MARGIN_X + col * _BLOCK_W, _MARGIN_TOP + row * (_BLOCK_H + 2), code, meeting_title)
    if pdf.page_no() == 0:
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
