"""The district's spreadsheets (openpyxl): the campaign progress report (通报) and the subsidy report.

Text cells are written as strings; cells that begin like a formula get a leading quote
(``spreadsheet_safe``) so a name such as "=SUM(...)" is never run.
"""
from __future__ import annotations

import io
from collections.abc import Iterable

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from server.ballot.text_checks import spreadsheet_safe

BATCH_STATES = {"met": "已完成", "missed": "未完成", "on_track": "进度达标", "behind": "进度落后"}


def _cell(value: object) -> object:
    return value if isinstance(value, int | float) or value is None else spreadsheet_safe(value)


def _sheet(wb: Workbook, title: str, header: list[str], rows: Iterable[list], *, first: bool = False):
    ws = wb.active if first else wb.create_sheet()
    ws.title = title
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
        c.alignment = Alignment(horizontal="center")
    for row in rows:
        ws.append([_cell(v) for v in row])
    for i, _ in enumerate(header, start=1):
        ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = 16
    ws.freeze_panes = "A2"
    return ws


def _bytes(wb: Workbook) -> bytes:
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def board_xlsx(board: dict) -> bytes:
    """The progress report: batches against their targets, overdue communities, streets, every community."""
    wb = Workbook()
    _sheet(wb, "批次进度", ["批次", "完成期限", "累计目标比例", "目标数", "期限内完成", "目前完成", "状态",
                            "尚无完成小区的社区"],
           ([b["name"], b["due_on"], f"{b['cumulative_percent']}%", b["target"], b["done_by_due"], b["done_now"],
             BATCH_STATES[b["state"]], "、".join(s["name"] for s in b["shequ_without"])]
            for b in board["batches"]), first=True)
    _sheet(wb, "逾期小区", ["小区编号", "小区名称", "街道", "社区", "当前阶段", "尚缺", "完成期限", "逾期天数"],
           ([o["community_id"], o["name"], o["street_id"], o["shequ_id"], o["stage_name"], o["missing"],
             o["due_on"], o["days_late"]] for o in board["overdue"]))
    stage_names = [s["name"] for s in board["stages"]]
    _sheet(wb, "街道汇总", ["街道", "小区数", "已完成组建", *stage_names],
           ([s["street_name"], s["communities"], s["done"], *s["stages"].values()] for s in board["streets"]))
    _sheet(wb, "全部小区", ["小区编号", "小区名称", "街道", "社区", "批次", "片区", "当前阶段", "尚缺",
                            "业委会选举日期", "完成期限"],
           ([r["community_id"], r["name"], r["street_name"], r["shequ_name"], r["batch_no"], r["area_id"],
             r["stage_name"], r["missing"], r["done_on"], r["due_on"]] for r in board["rows"]))
    return _bytes(wb)


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def subsidy_xlsx(report: dict) -> bytes:
    wb = Workbook()
    _sheet(wb, "小区补助", ["小区编号", "小区名称", "街道", "户数", "物业管理方式", "物业服务企业", "合同类型",
                            "每户补助（元）", "补助金额（元）", "可领取人数", "不得领取"],
           ([c["community_id"], c["name"], c["street_name"], c["households"],
             {"property_company": "选聘物业", "self_managed": "自主管理"}.get(c["management_mode"] or "", "未确定"),
             c["company"] or "", c["contract_name"], c["yuan_per_household"], _yuan(c["amount_fen"]),
             c["payable_recipients"],
             "、".join(f"{p['name']}（{p['reason']}）" for p in c["recipients"] if not p["payable"])]
            for c in report["communities"]), first=True)
    _sheet(wb, "街道汇总", ["街道", "小区数", "符合条件小区", "补助户数", "补助金额（元）"],
           [*([s["street_name"], s["communities"], s["eligible"], s["households"], _yuan(s["amount_fen"])]
              for s in report["streets"]),
            ["合计", len(report["communities"]), report["eligible"],
             sum(s["households"] for s in report["streets"]), _yuan(report["total_fen"])]])
    return _bytes(wb)
