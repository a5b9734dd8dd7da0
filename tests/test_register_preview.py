"""Previewing a register (?preview=1, `evote register import --preview`): every problem by line and
column, warnings for risky rows, totals, nothing written; a real import returns the warnings too."""
from __future__ import annotations

import asyncio

from tests.test_register_import import cli_env, count_rows, run_cli

__all__ = ["cli_env"]   # the fixture, shared with the import tests

HEADER = "单元号,楼栋,类型,专有面积,面积来源,持有人,业主编号,代表投票人,业主姓名,手机号,证件号码\n"

GOOD = (
    "1-101,1号楼,住宅,80,不动产登记,业主,X,是,张三,13800001234,",
    "1-102,1号楼,住宅,120,不动产登记,业主,Y,是,李四,13900005678,",
)
RISKY = (
    "1-101,1号楼,住宅,80,不动产登记,业主,X,是,张三,13800001234,",            # 2
    "1-102,1号楼,住宅,120,不动产登记,业主,Y,是,李四,,",                       # 3 cannot sign in
    "1-103,1号楼,住宅,8800,不动产登记,业主,Z,是,王五,13700001111,",           # 4 large area
    "1-104,1号楼,住宅,90,不动产登记,业主,W,是,赵六,138-0000-1234,",          # 5 X's phone
    "1-105,1号楼,住宅,90,不动产登记,业主,V,是,陈七,,350502199001011234",      # 6
    "1-106,1号楼,住宅,90,不动产登记,业主,U,是,陈七,,350502199001011234",      # 7 V's ID number
    "P-1,车库,车位,12,不动产登记,业主,T,是,孙八,13600002222,",                # 8 parking only: not counted
    "1-107,1号楼,住宅,90,不动产登记,业主,S,否,周九,,",                         # 9 not a representative:
    "1-107,1号楼,住宅,90,不动产登记,业主,R,是,吴十,13500003333,",             #   no warning for S
    "P-2,车库,车位,0.5,不动产登记,业主,X,是,张三,13800001234,",               # 11 small area
)


def register(lines) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


async def post(client, headers, community_id, data, query=""):
    resp = await client.post(f"/api/admin/communities/{community_id}/register{query}", data=data, headers=headers)
    return resp.status, await resp.json()


async def test_preview_of_a_good_register_gives_totals_and_writes_nothing(client, db_pool, staff_headers,
                                                                          make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    status, body = await post(client, headers, community_id, register(GOOD), "?preview=1")
    assert status == 200, body
    assert body["ok"] is True and body["rows"] == 2
    assert body["problems"] == [] and body["problem_count"] == 0
    assert body["warnings"] == [] and body["warning_count"] == 0
    assert body["totals"] == {"rows": 2, "units": 2, "owners": 2, "total_area": "200.00", "total_persons": 2,
                              "joint_subjects": 0, "area_places": 2}
    assert await count_rows(db_pool, community_id) == 0


async def test_preview_lists_every_problem_by_line_and_column_and_writes_nothing(client, db_pool, staff_headers,
                                                                                 make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    lines = [
        *GOOD,
        "1-103,1号楼,住宅,-3,不动产登记,业主,Z,是,,,",          # line 4: area
        "1-104,1号楼,洋房,90,不动产登记,业主,W,否,,abc,",        # line 5: kind, phone; no representative
        "1-101,1号楼,住宅,81,不动产登记,业主,Q,否,,,",           # line 6: 1-101 had area 80
    ]
    status, body = await post(client, headers, community_id, register(lines), "?preview=1")
    assert status == 200, body
    assert body["ok"] is False and body["rows"] == 5
    found = [(p["line"], p["column"], p["code"]) for p in body["problems"]]
    assert found == [(4, "area", "bad_area"), (5, "kind", "bad_kind"), (5, "phone", "bad_phone"),
                     (6, "area", "inconsistent_unit")]
    assert body["problem_count"] == 4
    assert all(p["message"] and p["column_label"] for p in body["problems"])
    assert "的“专有面积”为" in body["problems"][3]["message"], body["problems"][3]["message"]
    assert body["totals"]["total_area"] is None and body["totals"]["units"] == 2
    assert await count_rows(db_pool, community_id) == 0
    # a file that cannot be read at all is one problem of the whole file, still a 200 preview
    status, body = await post(client, headers, community_id, b"\xff\xfe\x00\x81\x30\xff", "?preview=1")
    assert status == 200 and body["ok"] is False
    assert [(p["line"], p["code"]) for p in body["problems"]] == [(None, "bad_encoding")]


async def test_preview_and_import_warn_about_risky_rows(client, db_pool, staff_headers, make_community):
    community_id = await make_community()
    headers = await staff_headers("prep_group", communities=[community_id])
    status, body = await post(client, headers, community_id, register(RISKY), "?preview=1")
    assert status == 200 and body["ok"] is True, body
    expected = [(3, "phone", "cannot_sign_in"), (4, "area", "large_area"), (5, "phone", "shared_phone"),
                (7, "id_number", "shared_id_number"), (8, "kind", "not_counted"), (11, "area", "small_area")]
    assert [(w["line"], w["column"], w["code"]) for w in body["warnings"]] == expected
    assert body["warning_count"] == len(expected)
    messages = {w["code"]: w["message"] for w in body["warnings"]}
    assert "Y" in messages["cannot_sign_in"] and "无法在网上登录投票" in messages["cannot_sign_in"]
    assert "第 2 行的业主 X" in messages["shared_phone"]
    assert "会被计为两人" in messages["shared_id_number"]
    assert await count_rows(db_pool, community_id) == 0
    # warnings never refuse: the import goes through and answers with the same warnings
    status, imported = await post(client, headers, community_id, register(RISKY))
    assert status == 201, imported
    assert [(w["line"], w["code"]) for w in imported["warnings"]] == [(line, code) for line, _, code in expected]
    assert imported["warning_count"] == len(expected)
    # X, Y, Z, W, V, U and S+R; T holds only a parking space, which this community does not count
    assert imported["total_persons"] == 7
    # a refused import lists the warnings beside the problems
    status, refused = await post(client, headers, community_id, register([*RISKY, "1-108,1号楼,住宅,x,实测,业主,P,是,,,"]))
    assert status == 422
    fields = refused["error"]["fields"]
    assert fields["problem_count"] == 1 and fields["warning_count"] == len(expected)


async def test_a_parking_owner_counts_where_parking_counts(client, staff_headers, make_community):
    community_id = await make_community(count_parking_area=True)
    headers = await staff_headers("prep_group", communities=[community_id])
    status, body = await post(client, headers, community_id, register(RISKY), "?preview=1")
    assert status == 200
    assert "not_counted" not in {w["code"] for w in body["warnings"]}


async def test_cli_preview_and_import_print_the_warnings(cli_env, db_pool, make_community, tmp_path):
    community_id = await make_community()
    path = tmp_path / "登记册.csv"
    path.write_bytes(register(RISKY))
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id,
                                   "--preview", env=cli_env)
    assert done.returncode == 0, done.stderr
    assert '"ok": true' in done.stdout and '"warning_count": 6' in done.stdout
    assert f"{path}:3: warning: phone: " in done.stderr and "[cannot_sign_in]" in done.stderr
    assert await count_rows(db_pool, community_id) == 0
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id, env=cli_env)
    assert done.returncode == 0, done.stderr
    assert '"version": 1' in done.stdout
    assert f"{path}:4: warning: area: " in done.stderr and "[large_area]" in done.stderr
    # a bad file: the preview exits 2 and lists the problems, still writing nothing
    path.write_bytes(register([*GOOD, "1-103,1号楼,住宅,abc,不动产登记,业主,Z,是,,,"]))
    done = await asyncio.to_thread(run_cli, "register", "import", str(path), "--community", community_id,
                                   "--preview", env=cli_env)
    assert done.returncode == 2
    assert f"{path}:4: area: “专有面积”的值" in done.stderr and '"ok": false' in done.stdout
    async with db_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM register_version WHERE community_id = $1", community_id) == 1
