"""Bounded register imports: a row limit (EVOTE_REGISTER_MAX_ROWS, 413 register_too_many_rows) checked
while reading, the first 200 problems listed with problem_count, limits on xlsx parts and uploads.
The limits are set small here (settings) so the tests stay fast."""
from __future__ import annotations

import dataclasses
import io

import openpyxl
import pytest

from server.app import create_app
from server.ballot.register_table import Capped, RowProblem
from server.services import register_files
from server.services.register import check_register_file
from tests.test_register_import import count_rows

HEADER = "unit_id,building,kind,area,area_source,holder,owner_id,representative\n"


def rows(n: int, *, kind: str = "dwelling", start: int = 0) -> str:
    return "".join(f"u{i},1,{kind},80,registry,owner,o{i},1\n" for i in range(start, start + n))


@pytest.fixture
async def small_client(aiohttp_client, settings):
    """The app with a register limit of 5 rows and an upload limit of 1 MiB."""
    return await aiohttp_client(create_app(dataclasses.replace(settings, register_max_rows=5,
                                                               max_upload_bytes=1024 * 1024)))


@pytest.fixture
async def small_headers(small_client, make_staff, make_community):
    community_id = await make_community()
    username, password = await make_staff("prep_group", communities=[community_id])
    resp = await small_client.post("/api/staff/login", json={"username": username, "password": password})
    token = (await resp.json())["token"]
    return community_id, {"Authorization": f"Bearer {token}"}


def xlsx(lines: list[list], *, gap_to: int | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for line in lines:
        sheet.append(line)
    if gap_to:
        sheet.cell(row=gap_to, column=1, value="far-away")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_more_rows_than_the_limit_are_refused_with_413(small_client, small_headers, db_pool):
    community_id, headers = small_headers
    url = f"/api/admin/communities/{community_id}/register"
    # five rows (blank lines do not count) import
    resp = await small_client.post(url, data=(HEADER + rows(3) + "\n,,,\n" + rows(2, start=3)).encode(),
                                   headers=headers)
    assert resp.status == 201, await resp.text()
    for query in ("", "?preview=1"):
        resp = await small_client.post(url + query, data=(HEADER + rows(6)).encode(), headers=headers)
        assert resp.status == 413
        error = (await resp.json())["error"]
        assert error["code"] == "register_too_many_rows"
        assert "超过 5 行" in error["message"] and error["fields"] == {"max_rows": 5}
    header = HEADER.strip().split(",")
    sheet = [header] + [line.split(",") for line in rows(6).splitlines()]
    resp = await small_client.post(url, data=xlsx(sheet), headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (413, "register_too_many_rows")
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM register_version WHERE community_id = $1", community_id) == 1


async def test_reading_stops_at_the_limit(small_client, small_headers):
    community_id, headers = small_headers
    url = f"/api/admin/communities/{community_id}/register?preview=1"
    # what follows the sixth row is never read: a malformed line there would otherwise be bad_csv
    data = (HEADER + rows(6) + '"' + "x" * 200_000 + "\n").encode()
    resp = await small_client.post(url, data=data, headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (413, "register_too_many_rows")
    # the same line within the limit is read, and refused as a malformed file
    resp = await small_client.post(url, data=(HEADER + rows(2) + '"' + "x" * 200_000 + "\n").encode(),
                                   headers=headers)
    body = await resp.json()
    assert resp.status == 200 and [p["code"] for p in body["problems"]] == ["bad_csv"]
    # a CSV of more than twice the limit in lines is refused before any row is parsed
    resp = await small_client.post(url, data=(HEADER + '"' + "x" * 200_000 + "\n" + "\n" * 12).encode(),
                                   headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (413, "register_too_many_rows")
    # a sheet whose only far row lies beyond twice the limit is refused without reading empty rows
    resp = await small_client.post(url, data=xlsx([HEADER.strip().split(",")], gap_to=100_000), headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (413, "register_too_many_rows")


async def test_uploads_over_the_size_limit_are_refused(small_client, small_headers):
    community_id, headers = small_headers
    resp = await small_client.post(f"/api/admin/communities/{community_id}/register",
                                   data=(HEADER + "#" * 1_100_000).encode(), headers=headers)
    assert (resp.status, (await resp.json())["error"]["code"]) == (413, "file_too_large")


def test_xlsx_parts_read_whole_are_limited(monkeypatch):
    data = xlsx([HEADER.strip().split(","), ["u1", "1", "dwelling", 80, "registry", "owner", "o1", "1"]])
    monkeypatch.setattr(register_files, "MAX_XLSX_PART", 100)
    with pytest.raises(Exception) as refused:
        check_register_file(data, "r.xlsx", count_parking_area=False)
    assert getattr(refused.value, "code", "") == "xlsx_too_large" and refused.value.status == 413


async def test_only_the_first_200_problems_are_listed_and_all_are_counted(client, staff_headers, make_community,
                                                                        db_pool):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    url = f"/api/admin/communities/{community_id}/register"
    # 150 bad kinds (lines 2-151), 100 units without a representative (lines 152-251), 1 bad area (line 252)
    data = (HEADER + rows(150, kind="villa") + rows(100, start=150).replace(",1\n", ",0\n")
            + "z,1,dwelling,abc,registry,owner,z,1\n").encode()
    resp = await client.post(url + "?preview=1", data=data, headers=headers)
    body = await resp.json()
    assert body["problem_count"] == 251 and len(body["problems"]) == 200
    assert [p["line"] for p in body["problems"]] == list(range(2, 202))
    assert {p["code"] for p in body["problems"]} == {"bad_kind", "missing_representative"}
    resp = await client.post(url, data=data, headers=headers)
    assert resp.status == 422
    error = (await resp.json())["error"]
    assert error["fields"]["problem_count"] == 251 and len(error["fields"]["rows"]) == 200
    assert "251 处问题" in error["message"]
    assert await count_rows(db_pool, community_id) == 0


def test_capped_keeps_the_first_by_line_whatever_the_order_added():
    capped = Capped(3)
    for line in (9, None, 4, 7, 2, None, 5):
        capped.add(RowProblem(line, "", "x", str(line)))
    assert [p.line for p in capped.listed()] == [2, 4, 5]
    assert capped.count == 7 and bool(capped)
    whole = Capped(3)
    for line in (None, 3):
        whole.add(RowProblem(line, "", "x", ""))
    assert [p.line for p in whole.listed()] == [3, None]
    assert not Capped(3)


def test_an_xlsx_sheets_rows_are_counted_before_any_is_parsed():
    import zipfile

    # 40,000 row elements (namespaced, some self-closing) over several 1 MiB chunks of unpacked XML
    rows = "".join(f'<x:row r="{i}" spans="1:2"><x:c r="A{i}"><x:v>{"9" * 20}</x:v></x:c></x:row>'
                   if i % 7 else f'<x:row r="{i}"/>' for i in range(1, 40_001))
    xml = f'<x:worksheet xmlns:x="urn:x"><x:sheetData>{rows}</x:sheetData><x:rowBreaks/></x:worksheet>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", xml)
    assert len(xml) > 3 * 1024 * 1024
    valued = sum(1 for i in range(1, 40_001) if i % 7)  # 34,286 rows with a value, the header's included
    register_files._count_sheet_rows(out, "xl/worksheets/sheet1.xml", valued - 1)
    with pytest.raises(register_files.RegisterFileError):
        register_files._count_sheet_rows(out, "xl/worksheets/sheet1.xml", valued - 2)
    # blank rows count only towards twice the limit
    with pytest.raises(register_files.RegisterFileError):
        register_files._count_sheet_rows(out, "xl/worksheets/sheet1.xml", 19_999)
    register_files._count_sheet_rows(out, "xl/worksheets/sheet1.xml", 40_000)


async def test_register_work_never_thaws_what_others_froze(client, staff_headers, make_community):
    """The live tallies and the start-up heap stay frozen (gc.freeze) through a preview and an import."""
    import gc

    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    kept = [[i] for i in range(10)]   # lists: objects the collector tracks
    gc.freeze()
    try:
        for query in ("?preview=1", ""):
            resp = await client.post(f"/api/admin/communities/{community_id}/register{query}",
                                     data=(HEADER + rows(12_000)).encode(), headers=headers)
            assert resp.status in (200, 201), await resp.text()
            ids = {id(k) for k in kept}
            assert not any(id(o) in ids for o in gc.get_objects())   # still frozen: not in any generation
    finally:
        gc.unfreeze()
    assert any(o is kept[0] for o in gc.get_objects())
