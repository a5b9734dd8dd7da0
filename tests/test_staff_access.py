"""Staff accounts: argon2 login, EdDSA session tokens, roles scoped to communities."""
from __future__ import annotations

import jwt

from server.devtools.demo_data import generate_register_rows, register_csv


async def test_login_returns_an_eddsa_token_and_bad_passwords_are_refused(client, make_staff):
    username, password = await make_staff("district_admin")
    bad = await client.post("/api/staff/login", json={"username": username, "password": "wrong-password"})
    assert bad.status == 401
    assert (await bad.json())["error"]["code"] == "bad_credentials"
    nobody = await client.post("/api/staff/login", json={"username": "nobody-here", "password": "x" * 10})
    assert nobody.status == 401
    ok = await client.post("/api/staff/login", json={"username": username, "password": password})
    assert ok.status == 200
    token = (await ok.json())["token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA" and header["typ"] == "evote-staff+jwt"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"aud", "iss", "exp", "jti", "sub"} <= claims.keys()


async def test_admin_endpoints_need_a_valid_token(client):
    resp = await client.get("/api/admin/communities")
    assert resp.status == 401
    resp = await client.get("/api/admin/communities", headers={"Authorization": "Bearer not.a.token"})
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "invalid_token"


async def test_a_forged_token_with_another_algorithm_is_refused(client, make_staff):
    forged = jwt.encode({"sub": "1", "aud": "evote-staff", "iss": "evote", "exp": 9999999999,
                         "iat": 1, "jti": "x"}, "secret", algorithm="HS256", headers={"typ": "evote-staff+jwt"})
    resp = await client.get("/api/staff/me", headers={"Authorization": f"Bearer {forged}"})
    assert resp.status == 401


async def test_prep_group_of_a_cannot_read_or_change_b(client, staff_headers, make_community):
    a = await make_community()
    b = await make_community()
    headers = await staff_headers("prep_group", communities=[a])
    csv = register_csv(generate_register_rows(5, seed=1))
    # may import into A ...
    resp = await client.post(f"/api/admin/communities/{a}/register", data=csv, headers=headers)
    assert resp.status == 201, await resp.text()
    # ... and read A
    assert (await client.get(f"/api/admin/communities/{a}/register/totals", headers=headers)).status == 200
    # but neither read nor change B
    for method, path in (("GET", f"/api/admin/communities/{b}"),
                         ("GET", f"/api/admin/communities/{b}/register/totals"),
                         ("GET", f"/api/admin/communities/{b}/register/subjects"),
                         ("POST", f"/api/admin/communities/{b}/register")):
        resp = await client.request(method, path, data=csv if method == "POST" else None, headers=headers)
        assert resp.status == 403, (method, path)
        assert (await resp.json())["error"]["code"] == "community_forbidden"
    listed = await (await client.get("/api/admin/communities", headers=headers)).json()
    assert [c["community_id"] for c in listed["communities"]] == [a]


async def test_auditor_reads_but_cannot_import(client, staff_headers, make_community):
    a = await make_community()
    headers = await staff_headers("auditor", communities=[a])
    csv = register_csv(generate_register_rows(5, seed=1))
    resp = await client.post(f"/api/admin/communities/{a}/register", data=csv, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "role_forbidden"


async def test_street_admin_sees_only_its_street(client, staff_headers, make_community):
    mine = await make_community(street_id="street-a")
    other = await make_community(street_id="street-b")
    headers = await staff_headers("street_admin", street_id="street-a")
    assert (await client.get(f"/api/admin/communities/{mine}", headers=headers)).status == 200
    assert (await client.get(f"/api/admin/communities/{other}", headers=headers)).status == 403
    # it may not make a district admin
    resp = await client.post("/api/admin/staff", headers=headers, json={
        "username": "sneaky", "password": "long-enough-pw", "role": "district_admin"})
    assert resp.status == 403


async def test_paper_proxy_and_objection_ids_that_are_not_numbers_are_not_found(client, staff_headers,
                                                                                  make_community):
    """The same rule as for nominations and committees: an id in the URL that cannot be one is that
    resource's 404, not a validation error."""
    cid = await make_community()
    headers = await staff_headers("prep_group", communities=[cid])
    base = f"/api/admin/communities/{cid}/meetings/m1"
    cases = [("paper/{}/resolve", "paper_not_found"), ("proxies/{}/revoke", "authorization_not_found"),
             ("objections/{}/response", "objection_not_found")]
    for path, code in cases:
        for bad in ("abc", "0", "-1", "1.0", "99999999999"):
            resp = await client.post(f"{base}/{path.format(bad)}", headers=headers, json={})
            assert resp.status == 404, (path, bad, await resp.text())
            assert (await resp.json())["error"]["code"] == code, (path, bad)
