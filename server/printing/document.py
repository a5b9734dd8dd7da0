"""What every printed A4 document shares (fpdf2, Noto Sans SC): the page frame with "第 x / y 页",
headings, paragraphs, simple tables, the signature and seal block, and Beijing time.

Layout only: the modules that use it (notice, code sheets, sign-off lists, result announcement,
committee and filing documents) take plain data gathered by ``server.services.documents`` and
never read a database.  Times are printed in Beijing time (UTC+8 all year since 1991, so a fixed
offset), never "UTC".
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from fpdf import FPDF

from server.printing.code_sheets import _FONT, font_path
from server.printing.qr import qr_image
from server.printing.text import BEIJING, building_label, day, when  # noqa: F401  (re-exported)

LEFT, WIDTH = 18.0, 174.0
NBSP_CHAR = "\u00a0"
NB = "{nb}"   # fpdf2's alias for the total page count, replaced when the file is written


class Document(FPDF):
    """An A4 portrait document with a running title and "第 x / y 页" in the footer."""

    def __init__(self, title: str, *, running: str = ""):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.add_font(_FONT, "", font_path())
        self.set_title(title)
        self.set_creator("evote")
        self.set_margins(LEFT, 16, 210 - LEFT - WIDTH)
        self.set_auto_page_break(True, margin=18)
        self.alias_nb_pages(NB)
        self.running = running or title

    def header(self) -> None:
        self.set_font(_FONT, size=8)
        self.set_text_color(90)
        self.set_xy(LEFT, 7)
        self.cell(WIDTH, 5, self.running, align="R")
        self.set_text_color(0)
        self.set_xy(LEFT, 16)

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(_FONT, size=9)
        self.cell(0, 5, f"第 {self.page_no()} / {NB} 页", align="C")

    # ------------------------------------------------------------ text

    def title_block(self, title: str, subtitle: str = "") -> None:
        self.set_font(_FONT, size=18)
        self.multi_cell(WIDTH, 10, title, align="C", new_x="LMARGIN", new_y="NEXT")
        if subtitle:
            self.set_font(_FONT, size=11)
            self.multi_cell(WIDTH, 6, subtitle, align="C", new_x="LMARGIN", new_y="NEXT")
        self.ln(3)

    def heading(self, text: str, size: float = 13) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(1.5)
        self.set_font(_FONT, size=size)
        self.multi_cell(WIDTH, size * 0.55, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(0.5)

    def para(self, text: str, size: float = 10.5, indent: float = 0.0) -> None:
        """A paragraph of Chinese text.  Its spaces are no-break spaces (printed as spaces): fpdf2 would
        otherwise break a line at the last space it meets ("第 2" / "类"), where Chinese breaks anywhere."""
        text = text.replace(" ", NBSP_CHAR)
        self.set_font(_FONT, size=size)
        self.set_x(LEFT + indent)
        self.multi_cell(WIDTH - indent, size * 0.52, text, align="L", new_x="LMARGIN", new_y="NEXT")
        self.ln(0.8)

    def grid(self, headings: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[float], *,
              size: float = 9.5, row_height: float = 6.5) -> None:
        """A ruled table; the heading row repeats on every page it spans; cells wrap inside their column."""
        def head() -> None:
            self.set_font(_FONT, size=size)
            self.set_fill_color(235)
            for text, w in zip(headings, widths):
                self.cell(w, row_height, text, border=1, align="C", fill=True)
            self.ln(row_height)

        head()
        line = size * 0.5
        for row in rows:
            lines = max(len(cast(list, self.multi_cell(w - 1.6, line, str(text), dry_run=True, output="LINES")) or [""])
                        for text, w in zip(row, widths))
            height = max(row_height, lines * line + 2)
            if self.get_y() + height > self.h - 20:
                self.add_page()
                head()
            y = self.get_y()
            x = LEFT
            self.set_font(_FONT, size=size)
            for text, w in zip(row, widths):
                self.rect(x, y, w, height)
                self.set_xy(x + 0.8, y + 1)
                self.multi_cell(w - 1.6, line, str(text), align="L")
                x += w
            self.set_xy(LEFT, y + height)

    def qr(self, text: str, x: float, y: float, size: float) -> None:
        self.image(qr_image(text, box_size=6, border=1), x=x, y=y, w=size, h=size)

    def keep_space(self, height: float) -> None:
        """A new page unless ``height`` mm still fit: what follows (the closing sections and the signature
        block) stays on one page, so a signature never stands on a page of its own."""
        if self.get_y() + height > self.h - 18:
            self.add_page()

    def signature_block(self, signer: str, dated: str, *, seal: bool = True) -> None:
        """Right-aligned: who issues it, a line to sign and the date, the seal's place over them (as a
        stamp is pressed over the issuer's name); about 34 mm high, kept on one page."""
        height = 34.0
        if self.get_y() + height + 4 > self.h - 18:
            self.add_page()
        self.ln(4)
        x, y = LEFT + WIDTH - 96, self.get_y()
        self.set_font(_FONT, size=11)
        for text in (signer + ("（盖章）" if seal else ""), "负责人签名：________________", f"日期：{dated}"):
            self.set_x(x)
            self.cell(62, 8, text, new_x="LMARGIN", new_y="NEXT")
        if seal:
            sx, sy = x + 62, y
            self.set_draw_color(170)
            self.set_dash_pattern(dash=1, gap=1)
            self.ellipse(sx, sy, 32, 32)
            self.set_dash_pattern()
            self.set_draw_color(0)
            self.set_font(_FONT, size=8)
            self.set_text_color(150)
            self.set_xy(sx, sy + 13.5)
            self.cell(32, 5, "盖章处", align="C")
            self.set_text_color(0)
        self.set_y(y + height)


def output(pdf: FPDF) -> bytes:
    if pdf.page_no() == 0:
        pdf.add_page()
    return bytes(pdf.output())
