"""The register template: GET /api/admin/register-template.xlsx and `evote register template --out FILE`."""
from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import openpyxl

from server.ballot.register_columns import ALL_COLUMNS, COLUMN_NAMES


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


async def test_template_has_chinese_headers_an_example_row_and_notes(client, staff_headers, make_community):
    resp = await client.get("/api/admin/register-template.xlsx")
    assert resp.status == 401
    headers = await staff_headers("auditor", communities=[await make_community()])
    resp = await client.get("/api/admin/register-template.xlsx", headers=headers)
    assert resp.status == 200
    assert resp.content_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "attachment" in resp.headers["Content-Disposition"]
    book = load(await resp.read())
    assert book.sheetnames == ["业主登记册", "填写说明"]
    sheet = book["业主登记册"]
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == [COLUMN_NAMES[code][0] for code in ALL_COLUMNS]
    assert rows[0][:4] == ("单元号", "楼栋", "类型", "专有面积")
    example = dict(zip(rows[0], rows[1]))
    assert (example["类型"], example["面积来源"], example["持有人"], example["代表投票人"]) == \
        ("住宅", "不动产登记", "业主", "是")
    assert len(rows) == 2
    # ID numbers are text, so a spreadsheet keeps all 18 digits
    assert sheet["K2"].number_format == "@"
    notes = list(book["填写说明"].iter_rows(values_only=True))
    assert notes[0][:3] == ("列名", "英文列名", "必填")
    by_code = {row[1]: row for row in notes[1:] if row[1]}
    assert set(by_code) == set(ALL_COLUMNS)
    assert by_code["kind"][2] == "是" and by_code["phone"][2] == "否"
    assert "住宅（或 dwelling）" in by_code["kind"][4] and "车位（或 parking）" in by_code["kind"][4]
    assert "建设单位（或 developer）" in by_code["holder"][4]
    assert "实测（或 survey）" in by_code["area_source"][4]
    assert any(row[0] and "200,000" in row[0] for row in notes)


async def test_the_template_imports_once_its_example_row_is_replaced(client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    data = await (await client.get("/api/admin/register-template.xlsx", headers=headers)).read()
    url = f"/api/admin/communities/{community_id}/register"
    # left as it is, the example row is refused
    resp = await client.post(url + "?preview=1", data=data, headers=headers)
    body = await resp.json()
    assert body["ok"] is False
    assert [(p["line"], p["code"]) for p in body["problems"]] == [(2, "template_example_row")]
    # filled in (over the example row), it imports
    book = load(data)
    sheet = book["业主登记册"]
    sheet.delete_rows(2)
    sheet.append(["1-101", "1号楼", "住宅", 88.5, "不动产登记", "业主", "Y0001", "是", "张三", "13800001111",
                  "350502199001011234", None])
    sheet.append(["1-102", "1号楼", "商业", 50, "实测", "建设单位", "DEV", "是", None, None, None, None])
    out = io.BytesIO()
    book.save(out)
    resp = await client.post(url, data=out.getvalue(), headers=headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert (body["total_area"], body["total_persons"]) == ("138.50", 2)
    # the developer has neither phone nor ID number: warned, not refused
    assert [(w["line"], w["code"]) for w in body["warnings"]] == [(3, "cannot_sign_in")]


async def test_cli_writes_the_template(tmp_path):
    path = tmp_path / "模板.xlsx"
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "server.cli", "register", "template",
                                                    "--out", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    book = load(path.read_bytes())
    assert next(book["业主登记册"].iter_rows(max_row=1, values_only=True))[0] == "单元号"
