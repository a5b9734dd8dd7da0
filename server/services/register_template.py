"""The register template (.xlsx) staff download: Chinese headers, an example row, and a notes sheet
explaining each column and the values it accepts (the same names the import reads)."""
from __future__ import annotations

import io

from server.ballot.register_columns import (
    ALL_COLUMNS,
    COLUMN_NAMES,
    COLUMN_NOTES,
    EXAMPLE_ROW,
    OPTIONAL_COLUMNS,
    VALUE_NAMES,
)

GENERAL_NOTES = (
    "每行是一个（单元，业主）组合：独有的单元一行；共有的单元每位共有人各一行，单元号、楼栋、类型、面积、"
    "面积来源、持有人须一致，且恰好一人为代表投票人。",
    "同一批共有人共同持有的所有单元是同一表决主体，须由同一人代表投票。",
    "表头可用本表的中文列名，也可用英文列名（unit_id、building、kind …）；值可填中文或英文代码。",
    "第一行示例（业主编号 示例Y0001）导入前必须删除，否则导入会被拒绝。",
    "也可另存为 CSV（UTF-8 或 GB18030/GBK 编码均可）后导入。",
    "最多 200,000 行（不含表头），文件最大 64 MB。导入前可先“预览”：列出每处问题（行号、列名）和风险提示，不写入任何数据。",
)


def template_xlsx() -> bytes:
    import openpyxl  # only when needed
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "业主登记册"
    sheet.append([COLUMN_NAMES[code][0] for code in ALL_COLUMNS])
    example: list[str | float] = [EXAMPLE_ROW[code] for code in ALL_COLUMNS]
    example[ALL_COLUMNS.index("area")] = float(EXAMPLE_ROW["area"])
    sheet.append(example)
    for index, code in enumerate(ALL_COLUMNS, start=1):
        letter = get_column_letter(index)
        sheet[f"{letter}1"].font = Font(bold=True)
        sheet.column_dimensions[letter].width = 16 if code != "possession_evidence" else 24
        if code != "area":
            # Text, so Excel keeps 18-digit ID numbers, leading zeros and 1-101 as typed.
            sheet.column_dimensions[letter].number_format = "@"
            sheet[f"{letter}2"].number_format = "@"
        if code in VALUE_NAMES:
            choices = ",".join(names[0] for names in VALUE_NAMES[code].values())
            validation = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=False,
                                        showErrorMessage=True, errorTitle="无效的值",
                                        error=f"请从下拉列表中选择：{choices}")
            validation.add(f"{letter}2:{letter}200001")
            sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"

    notes = book.create_sheet("填写说明")
    notes.append(["列名", "英文列名", "必填", "说明", "可填的值", "也接受的列名"])
    for code in ALL_COLUMNS:
        names = COLUMN_NAMES[code]
        values = ""
        if code in VALUE_NAMES:
            values = "、".join(f"{chinese[0]}（或 {value}）" for value, chinese in VALUE_NAMES[code].items())
            also = [name for chinese in VALUE_NAMES[code].values() for name in chinese[1:]]
            if also:
                values += "；也接受 " + "、".join(also)
        notes.append([names[0], code, "否" if code in OPTIONAL_COLUMNS else "是", COLUMN_NOTES[code], values,
                      "、".join(names[1:])])
    notes.append([])
    for text in GENERAL_NOTES:
        notes.append([text])
    for cell in notes[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDEF", (14, 20, 6, 70, 40, 24)):
        notes.column_dimensions[letter].width = width
    for row in notes.iter_rows(min_row=2, max_col=6):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
