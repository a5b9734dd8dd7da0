"""The owner register: all-or-nothing import of CSV and xlsx, every bad row named, legal weights."""
from __future__ import annotations

import asyncio
import io
import subprocess
import sys

import asyncpg
import openpyxl
import pytest

from server.devtools.demo_data import HEADER, generate_register_rows, register_csv
from tests.helpers_register import THREE_DECIMAL_LINES, register_bytes

CSV_HEADER = "unit_id,building,kind,area,area_source,holder,owner_id,representative,owner_name,phone,id_number\n"


def csv_bytes(*lines: str) -> bytes:
    return (CSV_HEADER + "".join(line + "\n" for line in lines)).encode()


async def count_rows(db_pool, community_id: str) -> int:
    async with db_pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT (SELECT count(*) FROM unit WHERE community_id = $1)"
            " + (SELECT count(*) FROM owner WHERE community_id = $1)"
            " + (SELECT count(*) FROM register_version WHERE community_id = $1)", community_id)


async def test_csv_import_makes_a_version_with_legal_weights(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    data = csv_bytes(
        "1-101,1,dwelling,80,registry,owner,X,1,张三,13800001234,",
        "1-102,1,dwelling,120,registry,owner,X,1,张三,13800001234,",  # X: one person, 200 m²
        "2-101,2,dwelling,100,survey,owner,Y,1,李四,13900005678,",
        "2-102,2,dwelling,100,contract,owner,Z,1,王五,,350502199001011234",
        "2-102,2,dwelling,100,contract,owner,Z2,0,王六,,",             # co-owner: unit counts once
        "P-1,2,parking,12.5,registry,owner,Y,1,李四,13900005678,",      # parking: not counted by default
    )
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=data, headers=headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["version"] == 1
    # the worked example of voting-rules.md: X 80+120, Y 100, Z 100 -> 400 m², 3 persons
    assert (body["total_area"], body["total_persons"]) == ("400.00", 3)
    totals = await (await client.get(f"/api/admin/communities/{community_id}/register/totals",
                                     headers=headers)).json()
    assert totals["totals"] == {"area": "400.00", "persons": 3}
    assert totals["buildings"] == [
        {"building": "1", "area": "200.00", "persons": 1, "units": 2},
        {"building": "2", "area": "200.00", "persons": 2, "units": 2},
    ]
    # a second import is a new version; the first stays as it was
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=data, headers=headers)
    assert (await resp.json())["version"] == 2
    subjects = await (await client.get(f"/api/admin/communities/{community_id}/register/subjects?version=1",
                                       headers=headers)).json()
    x = next(s for s in subjects["subjects"] if s["owner_id"] == "X")
    assert x["name"] == "张*" and x["phone"] == "138********" and x["area"] == "200.00"


async def test_parking_counts_when_the_community_says_so(client, staff_headers, make_community):
    community_id = await make_community(count_parking_area=True)
    headers = await staff_headers("prep_group", communities=[community_id])
    data = csv_bytes("1-101,1,dwelling,80,registry,owner,X,1,,,", "P-1,1,parking,12.5,registry,owner,Q,1,,,")
    body = await (await client.post(f"/api/admin/communities/{community_id}/register", data=data,
                                    headers=headers)).json()
    assert (body["total_area"], body["total_persons"]) == ("92.50", 2)


async def test_developer_units_are_one_person(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    data = csv_bytes("1-101,1,dwelling,80,registry,developer,DEV,1,,,", "1-102,1,dwelling,90,registry,developer,DEV,1,,,",
                     "1-103,1,commercial,100.01,registry,owner,A,1,,,")
    body = await (await client.post(f"/api/admin/communities/{community_id}/register", data=data,
                                    headers=headers)).json()
    assert (body["total_area"], body["total_persons"]) == ("270.01", 2)


async def test_every_bad_row_is_listed_and_nothing_is_written(client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    data = csv_bytes(
        "1-101,1,dwelling,80,registry,owner,X,1,,,",        # line 2: fine
        "1-102,1,house,80,registry,owner,Y,1,,,",           # line 3: bad kind
        "1-103,1,dwelling,-3,registry,owner,Z,1,,,",        # line 4: bad area
        "1-104,1,dwelling,80.1234,registry,owner,W,1,,,",   # line 5: four decimals
        "1-105,1,dwelling,80,registry,owner,V,1,,,",        # line 6 and 7: two representatives
        "1-105,1,dwelling,80,registry,owner,U,1,,,",
        "1-106,1,dwelling,80,registry,owner,T,0,,,",        # line 8: no representative
        "1-107,1,dwelling,80,guess,owner,S,yes,,abc,",      # line 9: source, representative, phone
    )
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=data, headers=headers)
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == "register_invalid"
    found = {(p["line"], p["column"], p["code"]) for p in body["error"]["fields"]["rows"]}
    assert {(3, "kind", "bad_kind"), (4, "area", "bad_area"), (5, "area", "bad_area"),
            (7, "representative", "duplicate_representative"),
            (8, "representative", "missing_representative"),
            (9, "area_source", "bad_area_source"), (9, "representative", "bad_representative"),
            (9, "phone", "bad_phone")} <= found
    assert all(p["message"] for p in body["error"]["fields"]["rows"])
    assert not any(line == 2 for line, _, _ in found)
    assert await count_rows(db_pool, community_id) == 0


async def test_missing_columns_and_empty_files_are_refused(client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/register",
                             data=b"unit_id,building\n1,1\n", headers=headers)
    assert resp.status == 422
    codes = {p["code"] for p in (await resp.json())["error"]["fields"]["rows"]}
    assert codes == {"missing_column"}
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=b"", headers=headers)
    assert resp.status == 400
    # only parking units, parking not counted: nobody may vote
    resp = await client.post(f"/api/admin/communities/{community_id}/register",
                             data=csv_bytes("P-1,1,parking,12,registry,owner,Q,1,,,"), headers=headers)
    assert {p["code"] for p in (await resp.json())["error"]["fields"]["rows"]} == {"empty_electorate"}
    assert await count_rows(db_pool, community_id) == 0


def xlsx_bytes(rows: list[dict]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        values = [row[h] for h in HEADER]
        values[3] = float(values[3]) if "." in values[3] else int(values[3])  # areas as numbers, as Excel has them
        sheet.append(values)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_xlsx_with_the_same_columns_imports_the_same_register(client, staff_headers, make_community):
    rows = generate_register_rows(200, seed=3)
    results = []
    for data in (register_csv(rows), xlsx_bytes(rows)):
        community_id = await make_community()
        headers = await staff_headers("prep_group", communities=[community_id])
        resp = await client.post(f"/api/admin/communities/{community_id}/register", data=data,
                                 headers=headers)
        assert resp.status == 201, await resp.text()
        body = await resp.json()
        results.append((body["total_area"], body["total_persons"], body["units"]))
    assert results[0] == results[1]


async def test_xlsx_bad_rows_name_the_sheet_row(client, staff_headers, make_community):
    rows = generate_register_rows(5, seed=4)
    rows[2]["kind"] = "villa"
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=xlsx_bytes(rows),
                             headers=headers)
    assert resp.status == 422
    problems = (await resp.json())["error"]["fields"]["rows"]
    assert [(p["line"], p["code"]) for p in problems] == [(4, "bad_kind")]


async def test_the_database_refuses_two_representatives_even_when_racing(db_pool, imported_community):
    community_id, rows = await imported_community(5)
    unit = rows[0]["unit_id"]

    async def add_representative(owner_id: str):
        async with db_pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO owner (community_id, version, owner_id) VALUES ($1, 1, $2)", community_id, owner_id)
            await conn.execute(
                "INSERT INTO ownership (community_id, version, unit_id, owner_id, representative)"
                " VALUES ($1, 1, $2, $3, true)", community_id, unit, owner_id)

    results = await asyncio.gather(add_representative("R1"), add_representative("R2"), return_exceptions=True)
    assert all(isinstance(r, asyncpg.UniqueViolationError) for r in results)


async def test_the_database_refuses_a_unit_without_representative(db_pool, imported_community):
    community_id, _ = await imported_community(5)
    with pytest.raises(asyncpg.CheckViolationError):
        async with db_pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO register_version (community_id, version) VALUES ($1, 2)", community_id)
            await conn.execute(
                "INSERT INTO unit (community_id, version, unit_id, building, kind, area, area_source, holder)"
                " VALUES ($1, 2, 'u', 'b', 'dwelling', 100, 'registry', 'owner')", community_id)


def run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def cli_env(database_url, tmp_path):
    import os

    env = dict(os.environ)
    env.update(EVOTE_DATABASE_URL=database_url, EVOTE_DATA_DIR=str(tmp_path))
    return env


async def test_cli_import_and_totals(cli_env, make_community, tmp_path):
    community_id = await make_community()
    path = tmp_path / "register.csv"
    path.write_bytes(csv_bytes("1-101,1,dwelling,80,registry,owner,X,1,,,", "1-102,1,dwelling,120,registry,owner,X,1,,,",
                               "2-101,2,dwelling,100,registry,owner,Y,1,,,", "2-102,2,dwelling,100,registry,owner,Z,1,,,"))
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert '"version": 1' in done.stdout
    done = await asyncio.to_thread(run_cli, "register", "totals", "--community", community_id, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert '"area": "400.00"' in done.stdout and '"persons": 3' in done.stdout


async def test_cli_bad_register_exits_2_naming_file_and_line(cli_env, db_pool, make_community, tmp_path):
    community_id = await make_community()
    path = tmp_path / "bad.csv"
    path.write_bytes(csv_bytes("1-101,1,dwelling,80,registry,owner,X,1,,,", "1-102,1,dwelling,abc,registry,owner,Y,1,,,"))
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id, env=cli_env)
    assert done.returncode == 2
    assert f"{path}:3: area:" in done.stderr
    assert done.stdout == ""
    assert await count_rows(db_pool, community_id) == 0


# ---------------------------------------------------------------- owner-set voting subjects

SPLIT_LINES = (
    "1-101,1,dwelling,80.5,registry,owner,A,1,张三,13800001111,",   # line 2: A represents 1-101 ...
    "1-101,1,dwelling,80.5,registry,owner,B,0,李四,13900002222,",
    "2-201,2,dwelling,100.25,registry,owner,A,0,张三,13800001111,",
    "2-201,2,dwelling,100.25,registry,owner,B,1,李四,13900002222,",  # line 5: ... B represents 2-201
    "2-202,2,dwelling,120,registry,owner,C,1,王五,13700003333,",
)


async def test_joint_owners_naming_different_representatives_are_refused_listing_them(
        client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=register_bytes(SPLIT_LINES),
                             headers=headers)
    assert resp.status == 422
    body = await resp.json()
    assert body["error"]["code"] == "register_invalid"
    [problem] = body["error"]["fields"]["rows"]
    assert (problem["line"], problem["column"], problem["code"]) == (5, "representative", "split_representatives")
    # the message lists every unit of the owner set with the representative it names
    for text in ("A、B", "单元 1-101 为 A", "单元 2-201 为 B"):
        assert text in problem["message"], problem["message"]
    assert await count_rows(db_pool, community_id) == 0


async def test_cli_refuses_split_representatives_with_file_and_line(cli_env, db_pool, make_community, tmp_path):
    community_id = await make_community()
    path = tmp_path / "split.csv"
    path.write_bytes(register_bytes(SPLIT_LINES))
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id, env=cli_env)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[0].startswith(f"{path}:5: representative: ") and "[split_representatives]" in lines[0]
    assert "单元 1-101 为 A" in lines[0] and "单元 2-201 为 B" in lines[0]
    assert "nothing was imported" in lines[-1]
    assert done.stdout == ""
    assert await count_rows(db_pool, community_id) == 0


async def test_joint_owners_of_two_units_are_one_subject(client, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/register", data=register_bytes(),
                             headers=headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    # A+B (80.50 + 100.25), A alone (90) and C (120): three persons
    assert (body["total_area"], body["total_persons"], body["joint_subjects"]) == ("390.75", 3, 1)
    assert (body["units"], body["owners"], body["rows"], body["area_places"]) == (4, 3, 6, 2)
    base = f"/api/admin/communities/{community_id}/register"
    totals = await (await client.get(f"{base}/totals", headers=headers)).json()
    assert totals["totals"] == {"area": "390.75", "persons": 3}
    # per building, a subject with units in two buildings is a person in each
    assert totals["buildings"] == [
        {"building": "1", "area": "170.50", "persons": 2, "units": 2},
        {"building": "2", "area": "220.25", "persons": 2, "units": 2},
    ]
    subjects = {s["subject_id"]: s for s in (await (await client.get(f"{base}/subjects", headers=headers)).json())
                ["subjects"]}
    assert set(subjects) == {"A+B", "A", "C"}
    joint = subjects["A+B"]
    assert joint["owner_id"] == "A+B" and joint["representative"] == "A"
    assert (joint["area"], joint["persons"], joint["units"]) == ("180.75", 1, ["1-101", "2-201"])
    assert joint["buildings"] == ["1", "2"] and joint["building_areas"] == {"1": "80.50", "2": "100.25"}
    # the representative's details, masked, and every owner of the set
    assert (joint["name"], joint["phone"]) == ("张*", "138********")
    assert [(o["owner_id"], o["name"], o["phone"]) for o in joint["owners"]] == [
        ("A", "张*", "138********"), ("B", "李*", "139********")]
    assert subjects["A"]["units"] == ["1-102"] and subjects["A"]["name"] == "张*"


async def test_three_decimal_areas_are_imported_exactly(client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    resp = await client.post(f"/api/admin/communities/{community_id}/register",
                             data=register_bytes(THREE_DECIMAL_LINES), headers=headers)
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    # 71.125 + 100.25 + 90.001 + 120, to the thousandth of a m²: printed with three decimals throughout
    assert (body["total_area"], body["total_persons"], body["area_places"]) == ("381.376", 3, 3)
    base = f"/api/admin/communities/{community_id}/register"
    totals = await (await client.get(f"{base}/totals", headers=headers)).json()
    assert totals["area_places"] == 3 and totals["totals"] == {"area": "381.376", "persons": 3}
    assert [b["area"] for b in totals["buildings"]] == ["161.126", "220.250"]
    subjects = {s["subject_id"]: s for s in (await (await client.get(f"{base}/subjects", headers=headers)).json())
                ["subjects"]}
    assert subjects["A+B"]["area"] == "171.375" and subjects["A"]["area"] == "90.001"
    async with db_pool.acquire() as conn:
        stored = dict(await conn.fetch("SELECT unit_id, area FROM unit WHERE community_id = $1", community_id))
    assert stored == {"1-101": 71125, "2-201": 100250, "1-102": 90001, "2-202": 120000}   # 0.001 m²
