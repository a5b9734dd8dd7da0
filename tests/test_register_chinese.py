"""Register files written in Chinese: Chinese headers and values beside the codes, in UTF-8 (with or
without BOM), GB18030 and xlsx; problems name the line and the column in Chinese."""
from __future__ import annotations

import io

import openpyxl

from server.ballot.register_columns import COLUMN_NAMES, column_code, value_code
from server.ballot.weights import REGISTER_COLUMNS

CHINESE_HEADER = "单元号,楼栋,类型,专有面积,面积来源,持有人,业主编号,代表投票人,业主姓名,手机号,证件号码"
CHINESE_LINES = (
    "1-101,1号楼,住宅,80,不动产登记,业主,X,是,张三,13800001234,",
    "1-102,1号楼,住宅,120,实测,业主,X,是,张三,13800001234,",
    "2-101,2号楼,商业,100,合同,业主,Y,1,李四,13900005678,",
    "2-102,2号楼,住宅,100,不动产登记,建设单位,DEV,是,,,91350200MA2XXXXX1Q",
    "P-1,车库,车位,12.5,不动产登记,业主,Y,是,李四,13900005678,",
)
# The same register with the codes.
CODE_HEADER = "unit_id,building,kind,area,area_source,holder,owner_id,representative,owner_name,phone,id_number"
CODE_LINES = (
    "1-101,1号楼,dwelling,80,registry,owner,X,1,张三,13800001234,",
    "1-102,1号楼,dwelling,120,survey,owner,X,1,张三,13800001234,",
    "2-101,2号楼,commercial,100,contract,owner,Y,1,李四,13900005678,",
    "2-102,2号楼,dwelling,100,registry,developer,DEV,1,,,91350200MA2XXXXX1Q",
    "P-1,车库,parking,12.5,registry,owner,Y,1,李四,13900005678,",
)


def text(header: str, lines) -> str:
    return header + "\n" + "".join(line + "\n" for line in lines)


async def post(client, headers, community_id, data, query=""):
    resp = await client.post(f"/api/admin/communities/{community_id}/register{query}", data=data, headers=headers)
    return resp.status, await resp.json()


def test_every_column_has_a_chinese_header_and_the_codes_still_read():
    for code, names in COLUMN_NAMES.items():
        assert column_code(code) == code
        for name in names:
            assert column_code(name) == code
    assert column_code(" \ufeff单元号 ") == "unit_id" and column_code("UNIT_ID") == "unit_id"
    assert column_code("房间") is None
    assert (value_code("kind", "住宅"), value_code("kind", "车位"), value_code("kind", "商业")) == \
        ("dwelling", "parking", "commercial")
    assert (value_code("area_source", "不动产登记"), value_code("area_source", "实测"),
            value_code("area_source", "合同")) == ("registry", "survey", "contract")
    assert (value_code("holder", "业主"), value_code("holder", "建设单位")) == ("owner", "developer")
    assert (value_code("representative", "是"), value_code("representative", "否")) == ("1", "0")
    assert value_code("kind", "别墅") is None and value_code("kind", "Dwelling") is None
    assert set(REGISTER_COLUMNS) <= set(COLUMN_NAMES)


async def test_chinese_headers_and_values_import_as_the_codes_do(client, db_pool, staff_headers, make_community):
    results = []
    for data in (text(CODE_HEADER, CODE_LINES).encode(),
                 text(CHINESE_HEADER, CHINESE_LINES).encode("utf-8"),
                 text(CHINESE_HEADER, CHINESE_LINES).encode("utf-8-sig"),
                 text(CHINESE_HEADER, CHINESE_LINES).encode("gb18030")):
        community_id = await make_community()
        headers = await staff_headers("prep_group", communities=[community_id])
        status, body = await post(client, headers, community_id, data)
        assert status == 201, body
        # X 80+120, Y 100 (parking not counted), DEV 100: 400 m², 3 persons
        assert (body["total_area"], body["total_persons"], body["units"]) == ("400.00", 3, 5)
        async with db_pool.acquire() as conn:
            stored = await conn.fetch("SELECT unit_id, kind, area_source, holder FROM unit WHERE community_id = $1"
                                      " ORDER BY unit_id", community_id)
        results.append([tuple(r) for r in stored])
    assert all(r == results[0] for r in results)
    assert ("2-102", "dwelling", "registry", "developer") in results[0]
    assert ("P-1", "parking", "registry", "owner") in results[0]


async def test_chinese_xlsx_imports(client, staff_headers, make_community):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(CHINESE_HEADER.split(","))
    for line in CHINESE_LINES:
        cells: list = line.split(",")
        cells[3] = float(cells[3])
        cells[-1] = cells[-1] or None
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    status, body = await post(client, headers, community_id, out.getvalue())
    assert status == 201, body
    assert (body["total_area"], body["total_persons"]) == ("400.00", 3)


async def test_problems_name_the_column_in_chinese_and_list_the_allowed_values(client, staff_headers,
                                                                                 make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    lines = list(CHINESE_LINES)
    lines[1] = "1-102,1号楼,别墅,120,实测,业主,X,是,张三,13800001234,"      # line 3: unknown kind
    lines[2] = "2-101,2号楼,商业,一百,估算,业主,Y,也许,李四,13900005678,"   # line 4: area, source, representative
    status, body = await post(client, headers, community_id, text(CHINESE_HEADER, lines).encode("gb18030"))
    assert status == 422 and body["error"]["code"] == "register_invalid"
    problems = body["error"]["fields"]["rows"]
    found = {(p["line"], p["column"], p["column_label"], p["code"]) for p in problems}
    assert found == {(3, "kind", "类型", "bad_kind"), (4, "area", "专有面积", "bad_area"),
                     (4, "area_source", "面积来源", "bad_area_source"),
                     (4, "representative", "代表投票人", "bad_representative")}
    by_code = {p["code"]: p["message"] for p in problems}
    assert "“类型”的值“别墅”无效" in by_code["bad_kind"] and "住宅（dwelling）" in by_code["bad_kind"]
    assert "车位（parking）" in by_code["bad_kind"]
    assert by_code["bad_area"].startswith("“专有面积”的值")
    assert "不动产登记（registry）、实测（survey）、合同（contract）" in by_code["bad_area_source"]
    assert body["error"]["fields"]["problem_count"] == 4


async def test_unknown_and_repeated_chinese_headers_are_refused(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    header = CHINESE_HEADER.replace("业主姓名", "房间") + ",unit_id"
    status, body = await post(client, headers, community_id, text(header, [CHINESE_LINES[0] + ",1-101"]).encode())
    assert status == 422
    found = {(p["line"], p["code"]) for p in body["error"]["fields"]["rows"]}
    assert found == {(1, "unknown_column"), (1, "duplicate_column")}
    assert any("房间" in p["message"] for p in body["error"]["fields"]["rows"])


def test_line_endings_and_byte_order_marks():
    from server.services.register_files import read_table

    body = CHINESE_HEADER + "\n" + "\n".join(CHINESE_LINES[:2]) + "\n"
    for data in (body.encode(), body.replace("\n", "\r\n").encode("utf-8-sig"),
                 body.replace("\n", "\r").encode("gb18030"), body.rstrip("\n").encode()):
        table = read_table(data, "r.csv", max_rows=10)
        header, records = table.header, table.records
        assert header[0] == "单元号"
        assert [(line, values["单元号"], values["类型"]) for line, values in records] == \
            [(2, "1-101", "住宅"), (3, "1-102", "住宅")]
    # a line break inside a quoted cell stays in the cell, and the line numbers count it
    table = read_table((CHINESE_HEADER + '\n1-101,1号楼,住宅,80,实测,业主,X,是,"张\n三",,\n'
                        + CHINESE_LINES[1] + "\n").encode(), "r.csv", max_rows=10)
    assert [(line, values["业主姓名"]) for line, values in table.records] == [(3, "张\n三"), (4, "张三")]
