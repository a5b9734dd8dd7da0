"""The preparatory group's list for the bulletin board (筹备组成员名单公示), A4 PDF (fpdf2, bundled font)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fpdf import FPDF

from server.printing.code_sheets import font_path

_FONT = "NotoSansSC"
BEIJING = ZoneInfo("Asia/Shanghai")


def _day(iso: str | None) -> str:
    if not iso:
        return "—"
    return datetime.fromisoformat(iso).astimezone(BEIJING).strftime("%Y年%m月%d日")


def prep_group_pdf(community_name: str, group: dict) -> bytes:
    """``group``: the staff view of server.services.prep_groups.get_group."""
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.add_font(_FONT, "", font_path())
    pdf.set_title(f"{community_name}业主大会筹备组成员名单公示")
    pdf.set_creator("evote")
    pdf.add_page()
    pdf.set_font(_FONT, size=18)
    pdf.cell(0, 12, f"{community_name}业主大会筹备组成员名单公示", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(_FONT, size=11)
    pdf.multi_cell(0, 7, (
        "根据《民法典》《物业管理条例》《福建省物业管理条例》及鲤城区住宅小区长效管理工作方案，本小区业主大会筹备组由"
        "业主代表、建设单位、街道办事处和居民委员会代表组成，组长由街道挂钩社区的党政领导担任。现将成员名单公示如下："),
        new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = (12, 38, 42, 40, 22, 26)
    header = ("序号", "姓名", "身份", "房号", "中共党员", "职务")
    pdf.set_font(_FONT, size=11)
    for w, h in zip(widths, header):
        pdf.cell(w, 9, h, border=1, align="C")
    pdf.ln()
    for m in group["members"]:
        row = (str(m["member_no"]), m["name"], m["side_name"], m["unit_label"] or "—", "是" if m["party_member"] else "",
               "组长" if m["leader"] else "成员")
        for w, text in zip(widths, row):
            pdf.cell(w, 9, text, border=1, align="C")
        pdf.ln()
    pdf.ln(4)
    pdf.multi_cell(0, 7, (
        f"公示期：{_day(group.get('posted_from'))} 至 {_day(group.get('posted_until'))}（不少于 7 日）。"
        "业主对筹备组成员有异议的，可在公示期内向街道办事处或通过本小区电子公示页面提出，由街道办事处协调解决。"
        "公示期满无异议（或异议已处理）的，筹备组正式成立，并应在成立之日起 60 日内组织召开首次业主大会会议。"),
        new_x="LMARGIN", new_y="NEXT")
    pdf.ln(16)
    pdf.cell(0, 8, "街道办事处（盖章）：", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, f"日期：{_day(group.get('posted_from'))}", align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
