"""Staff accounts that can be locked and revoked: login lockouts, logout, password changes and
the administrator's actions (and `evote staff`)."""
from __future__ import annotations

import asyncio
import random

from server.services import staff_accounts


def _address() -> dict:
    """A client address of its own behind the (loopback) proxy, so tests do not share lockouts."""
    return {"X-Forwarded-For": f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"}


async def _login(client, username, password, headers=None):
    return await client.post("/api/staff/login", json={"username": username, "password": password},
                             headers=headers or {})


async def _token(client, username, password) -> dict:
    resp = await _login(client, username, password)
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def _audit_actions(db_pool, action: str, username: str) -> int:
    return await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = $1 AND detail->>'username' = $2", action, username)


async def test_200_wrong_passwords_then_the_right_one_is_refused_while_locked(client, make_staff):
    username, password = await make_staff("district_admin")
    statuses = []
    for _ in range(200):
        resp = await _login(client, username, "wrong-password")
        statuses.append(resp.status)
    assert statuses[:4] == [401] * 4
    assert set(statuses[4:]) == {429}
    resp = await _login(client, username, password)
    assert resp.status == 429
    body = await resp.json()
    assert body["error"]["code"] == "login_locked"
    assert "分钟后再试" in body["error"]["message"]
    retry_after = int(resp.headers["Retry-After"])
    assert 14 * 60 < retry_after <= 15 * 60
    assert resp.headers["Cache-Control"] == "no-store"


async def test_an_unknown_user_gets_the_same_answers(client, make_staff):
    username, _ = await make_staff("district_admin")
    known = [await _login(client, username, "wrong-password") for _ in range(6)]
    unknown = [await _login(client, "nobody-" + username, "wrong-password") for _ in range(6)]
    for a, b in zip(known, unknown, strict=True):
        assert a.status == b.status
        body_a, body_b = await a.json(), await b.json()
        assert body_a["error"]["code"] == body_b["error"]["code"]
        assert body_a["error"].keys() == body_b["error"].keys()
    assert [r.status for r in known] == [401, 401, 401, 401, 429, 429]


async def test_a_successful_login_resets_the_account_failures(client, make_staff):
    username, password = await make_staff("district_admin")
    for _ in range(4):
        assert (await _login(client, username, "wrong-password")).status == 401
    assert (await _login(client, username, password)).status == 200
    for _ in range(4):
        assert (await _login(client, username, "wrong-password")).status == 401
    assert (await _login(client, username, password)).status == 200


async def test_lockouts_escalate(client, make_staff, db_pool):
    username, password = await make_staff("district_admin")
    key = staff_accounts.account_key(username)
    expected = [15 * 60, 3600, 24 * 3600, 24 * 3600]
    for lock_s in expected:
        for _ in range(4):
            assert (await _login(client, username, "wrong-password")).status == 401
        resp = await _login(client, username, "wrong-password")
        assert resp.status == 429
        assert lock_s - 5 < int(resp.headers["Retry-After"]) <= lock_s
        # the lockout runs out
        await db_pool.execute(
            "UPDATE staff_login_throttle SET locked_until = now() - interval '1 second' WHERE key = $1", key)
    assert (await _login(client, username, password)).status == 200
    assert await db_pool.fetchval("SELECT count(*) FROM staff_login_throttle WHERE key = $1", key) == 0


async def test_counts_nobody_remembers_are_deleted(db_pool):
    async with db_pool.acquire() as conn:
        await conn.execute(
            """INSERT INTO staff_login_throttle (key, failures, level, last_failure_at)
               VALUES ('user:stale-guess', 3, 1, now() - interval '8 days'),
                      ('user:recent-guess', 3, 1, now() - interval '1 day')""")
        await staff_accounts.delete_stale_counts(conn)
        left = {r["key"] for r in await conn.fetch(
            "SELECT key FROM staff_login_throttle WHERE key IN ('user:stale-guess', 'user:recent-guess')")}
    assert left == {"user:recent-guess"}


async def test_parallel_wrong_guesses_are_counted_atomically(client, make_staff, db_pool):
    username, password = await make_staff("district_admin")
    address = "10.200.0.1"
    await asyncio.gather(*(staff_accounts.begin_attempt(db_pool, username, address) for _ in range(4)))
    row = await db_pool.fetchrow("SELECT failures, level FROM staff_login_throttle WHERE key = $1",
                                 staff_accounts.account_key(username))
    assert (row["failures"], row["level"]) == (4, 0)
    assert await db_pool.fetchval("SELECT failures FROM staff_login_throttle WHERE key = $1",
                                  "addr:" + address) == 4
    # many at once over HTTP: exactly one lockout, and the right password is refused after it
    other, other_password = await make_staff("district_admin")
    responses = await asyncio.gather(*(_login(client, other, "wrong-password") for _ in range(30)))
    assert sorted({r.status for r in responses}) == [401, 429]
    # at most the threshold's worth of passwords were checked; the rest were refused unchecked
    assert sum(r.status == 401 for r in responses) < staff_accounts.ACCOUNT_POLICY.threshold
    row = await db_pool.fetchrow("SELECT level, locked_until > now() AS locked FROM staff_login_throttle "
                                 "WHERE key = $1", staff_accounts.account_key(other))
    assert row["level"] == 1 and row["locked"]
    assert (await _login(client, other, other_password)).status == 429


async def test_an_address_is_locked_after_many_failures_on_any_accounts(client, make_staff):
    headers = _address()
    for i in range(staff_accounts.ADDRESS_POLICY.threshold - 1):
        resp = await _login(client, f"guess-{i}-{random.randrange(10**9)}", "wrong-password", headers)
        assert resp.status == 401
    resp = await _login(client, f"guess-last-{random.randrange(10**9)}", "wrong-password", headers)
    assert resp.status == 429
    username, password = await make_staff("district_admin")
    resp = await _login(client, username, password, headers)
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "login_locked"
    # the account itself is not locked: from another address it signs in
    assert (await _login(client, username, password, _address())).status == 200


async def test_logout_revokes_only_that_token(client, make_staff, db_pool):
    username, password = await make_staff("district_admin")
    first, second = await _token(client, username, password), await _token(client, username, password)
    resp = await client.post("/api/staff/logout", headers=first)
    assert resp.status == 200
    resp = await client.get("/api/staff/me", headers=first)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    assert (await client.get("/api/staff/me", headers=second)).status == 200
    assert await db_pool.fetchval("SELECT count(*) FROM audit_log WHERE action = 'staff.logout' "
                                  "AND actor = $1", f"staff:{username}") == 1


async def test_password_change_needs_the_old_one_and_ends_every_session(client, make_staff):
    username, password = await make_staff()
    headers = await _token(client, username, password)
    resp = await client.post("/api/staff/password", headers=headers,
                             json={"old_password": "not-the-password", "new_password": "a-new-password-1"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "bad_old_password"
    resp = await client.post("/api/staff/password", headers=headers,
                             json={"old_password": password, "new_password": "short"})
    assert resp.status == 422 and (await resp.json())["error"]["code"] == "weak_password"
    resp = await client.post("/api/staff/password", headers=headers,
                             json={"old_password": password, "new_password": "a-new-password-1"})
    assert resp.status == 200
    resp = await client.get("/api/staff/me", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    assert (await _login(client, username, password)).status == 401
    assert (await _login(client, username, "a-new-password-1")).status == 200


async def test_an_admin_disables_and_enables_an_account(client, make_staff, make_community, db_pool):
    community = await make_community()
    admin = await _token(client, *(await make_staff("district_admin")))
    username, password = await make_staff("prep_group", communities=[community])
    user = await _token(client, username, password)
    resp = await client.post(f"/api/admin/staff/{username}/disable", headers=admin)
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/staff/me", headers=user)).status == 401
    resp = await _login(client, username, password)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "bad_credentials"
    assert (await client.post(f"/api/admin/staff/{username}/enable", headers=admin)).status == 200
    assert (await client.get("/api/staff/me", headers=user)).status == 401   # old sessions stay ended
    assert (await _login(client, username, password)).status == 200
    assert await _audit_actions(db_pool, "staff.disable", username) == 1
    assert await _audit_actions(db_pool, "staff.enable", username) == 1
    listed = await (await client.get("/api/admin/staff", headers=admin)).json()
    assert any(s["username"] == username and s["communities"] == [community] for s in listed["staff"])


async def test_role_change_reset_and_revoke_end_the_sessions(client, make_staff, make_community, db_pool):
    community = await make_community()
    admin = await _token(client, *(await make_staff("district_admin")))
    username, password = await make_staff("prep_group", communities=[community])
    user = await _token(client, username, password)
    resp = await client.post(f"/api/admin/staff/{username}/roles", headers=admin,
                             json={"role": "auditor", "communities": [community]})
    assert resp.status == 200, await resp.text()
    assert (await client.get("/api/staff/me", headers=user)).status == 401
    user = await _token(client, username, password)
    assert (await (await client.get("/api/staff/me", headers=user)).json())["role"] == "auditor"
    assert (await client.post(f"/api/admin/staff/{username}/revoke", headers=admin)).status == 200
    assert (await client.get("/api/staff/me", headers=user)).status == 401
    # locked out, then reset by the admin: the lockout is lifted and the new password works
    for _ in range(5):
        await _login(client, username, "wrong-password")
    assert (await _login(client, username, password)).status == 429
    resp = await client.post(f"/api/admin/staff/{username}/password", headers=admin,
                             json={"new_password": "short"})
    assert resp.status == 422
    resp = await client.post(f"/api/admin/staff/{username}/password", headers=admin,
                             json={"new_password": "reset-password-42"})
    assert resp.status == 200
    assert (await _login(client, username, "reset-password-42")).status == 200
    for action in ("staff.set_roles", "staff.revoke", "staff.password_reset"):
        assert await _audit_actions(db_pool, action, username) == 1
    # nobody may disable or demote itself
    resp = await client.post(f"/api/admin/staff/{username}/disable", headers=admin)
    assert resp.status == 200
    me = (await (await client.get("/api/staff/me", headers=admin)).json())["username"]
    resp = await client.post(f"/api/admin/staff/{me}/disable", headers=admin)
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "self_change_forbidden"
    resp = await client.post("/api/admin/staff/no-such-user/disable", headers=admin)
    assert resp.status == 404


async def test_a_street_admin_manages_only_its_street(client, make_staff, make_community):
    mine = await make_community(street_id="street-a")
    other = await make_community(street_id="street-b")
    street_admin = await _token(client, *(await make_staff("street_admin", street_id="street-a")))
    inside, _ = await make_staff("committee", communities=[mine])
    outside, _ = await make_staff("committee", communities=[other])
    district, _ = await make_staff("district_admin")
    assert (await client.post(f"/api/admin/staff/{inside}/disable", headers=street_admin)).status == 200
    for target in (outside, district):
        resp = await client.post(f"/api/admin/staff/{target}/disable", headers=street_admin)
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "staff_forbidden"
    resp = await client.post(f"/api/admin/staff/{inside}/roles", headers=street_admin,
                             json={"role": "committee", "communities": [other]})
    assert resp.status == 403
    resp = await client.post(f"/api/admin/staff/{inside}/roles", headers=street_admin,
                             json={"role": "street_admin", "street_id": "street-a"})
    assert resp.status == 403
    listed = await (await client.get("/api/admin/staff", headers=street_admin)).json()
    names = {s["username"] for s in listed["staff"]}
    assert inside in names and outside not in names and district not in names
    # other roles may not manage accounts at all
    committee = await _token(client, *(await make_staff("committee", communities=[mine])))
    assert (await client.get("/api/admin/staff", headers=committee)).status == 403


def test_the_client_address_is_the_peer_or_what_a_local_proxy_forwarded():
    from unittest import mock

    from aiohttp.test_utils import make_mocked_request

    from server.auth.client_address import client_address

    def request(peer: str, forwarded: str | None = None):
        headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
        transport = mock.Mock()
        transport.get_extra_info.return_value = (peer, 5000)
        return make_mocked_request("POST", "/api/staff/login", headers=headers, transport=transport)

    assert client_address(request("198.51.100.7")) == "198.51.100.7"
    # a remote peer cannot choose its address with the header
    assert client_address(request("198.51.100.7", "10.0.0.1")) == "198.51.100.7"
    # behind a local proxy: the right-most forwarded address that is not a proxy
    assert client_address(request("127.0.0.1", "1.2.3.4, 203.0.113.9")) == "203.0.113.9"
    assert client_address(request("::1", "203.0.113.9, 127.0.0.1")) == "203.0.113.9"
    # a local client without the header (or with garbage) is counted per account only
    assert client_address(request("127.0.0.1")) is None
    assert client_address(request("127.0.0.1", "not-an-address\x00")) is None


async def test_the_staff_command_has_the_same_actions(client, make_staff, make_community, database_url,
                                                      monkeypatch, capsys, db_pool):
    from server.cli import main

    monkeypatch.setenv("EVOTE_DATABASE_URL", database_url)
    monkeypatch.setenv("NEW_STAFF_PASSWORD", "cli-password-123")
    community = await make_community()
    username, password = await make_staff("prep_group", communities=[community])
    headers = await _token(client, username, password)

    async def cli(*argv: str) -> str:
        status = await asyncio.to_thread(main, ["staff", *argv])
        out = capsys.readouterr()
        assert status == 0, out.err
        return out.out

    assert username in await cli("list")
    await cli("revoke", username)
    assert (await client.get("/api/staff/me", headers=headers)).status == 401
    await cli("disable", username)
    assert (await _login(client, username, password)).status == 401
    await cli("enable", username)
    headers = await _token(client, username, password)
    await cli("set-roles", username, "--role", "auditor", "--community", community)
    assert (await client.get("/api/staff/me", headers=headers)).status == 401
    await cli("reset-password", username, "--password-env", "NEW_STAFF_PASSWORD")
    headers = await _token(client, username, "cli-password-123")
    assert (await (await client.get("/api/staff/me", headers=headers)).json())["role"] == "auditor"
    assert await db_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = 'cli' AND detail->>'username' = $1", username) == 5
    status = await asyncio.to_thread(main, ["staff", "disable", "no-such-user"])
    assert status == 2 and "staff_not_found" in capsys.readouterr().err
