"""The audit trail: hash chains verify; an edited row, a removed middle row and a removed signed head are caught.

The table refuses UPDATE and DELETE (trigger); a tampering DBA would bypass it, so the
tests do too, with ``SET session_replication_role = replica`` in their own transaction.
"""
from __future__ import annotations

import asyncio
import os
import sys

from server.services.audit import verify_audit
from tests.helpers_results import voted_meeting


async def _tamper(db_pool, sql: str, *args) -> None:
    async with db_pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute(sql, *args)


async def _last_seq(db_pool, community_id: str) -> int:
    async with db_pool.acquire() as conn:
        return await conn.fetchval("SELECT max(seq) FROM audit_log WHERE community_id = $1", community_id)


async def test_the_audit_log_refuses_updates_without_tampering(db_pool, imported_community):
    community_id, _ = await imported_community(5)
    async with db_pool.acquire() as conn:
        try:
            await conn.execute("UPDATE audit_log SET actor = 'x' WHERE community_id = $1", community_id)
        except Exception as exc:  # asyncpg raises the trigger's error
            assert "append-only" in str(exc)
        else:
            raise AssertionError("update was not refused")


async def test_chain_of_a_whole_meeting_verifies_and_records_every_step(client, db_pool, staff_headers,
                                                                        imported_community):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    assert (await client.post(f"{v.m.base}/publish", headers=v.m.headers, json={})).status == 200
    count, problems = await verify_audit(db_pool, v.m.community_id)
    assert problems == [] and count >= 5
    async with db_pool.acquire() as conn:
        actions = {r["action"] for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE community_id = $1", v.m.community_id)}
    for action in ("register.import", "meeting.create", "meeting.notice", "meeting.open", "meeting.close",
                   "result_key.create", "meeting.result_signed", "meeting.publish"):
        assert any(a.startswith(action) for a in actions), (action, actions)


async def run_cli(database_url: str, data_dir, *args) -> tuple[int, str, str]:
    env = {**os.environ, "EVOTE_DATABASE_URL": database_url, "EVOTE_DATA_DIR": str(data_dir)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "server.cli", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode, out.decode(), err.decode()


async def test_an_edited_row_is_caught(client, db_pool, staff_headers, imported_community, database_url, tmp_path):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    cid = v.m.community_id
    await _tamper(db_pool, """UPDATE audit_log SET detail = jsonb_set(detail, '{meeting_id}', '"other"')
                               WHERE community_id = $1 AND action = 'meeting.close'""", cid)
    _, problems = await verify_audit(db_pool, cid)
    assert problems and "hash does not match the row's content" in str(problems[0])
    status, out, err = await run_cli(database_url, tmp_path, "audit", "verify", "--community", cid)
    assert status == 1 and "hash does not match" in err, (out, err)


async def test_a_removed_middle_row_is_caught(db_pool, imported_community, client, staff_headers):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    cid = v.m.community_id
    await _tamper(db_pool, "DELETE FROM audit_log WHERE community_id = $1 AND seq = 2", cid)
    _, problems = await verify_audit(db_pool, cid)
    assert any("a row is missing" in str(p) for p in problems)


async def test_the_cli_passes_an_intact_chain(client, db_pool, staff_headers, imported_community, database_url,
                                              tmp_path):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    status, out, err = await run_cli(database_url, tmp_path, "audit", "verify", "--community", v.m.community_id)
    assert status == 0 and out.startswith("OK"), err


async def test_removing_the_last_rows_is_caught_by_the_signed_audit_head(db_pool, imported_community, client,
                                                                         staff_headers):
    v = await voted_meeting(db_pool, client, staff_headers, imported_community, units=12)
    cid = v.m.community_id
    async with db_pool.acquire() as conn:
        head = await conn.fetchval(
            """SELECT (signed_json::jsonb -> 'payload' -> 'audit_head' ->> 'seq')::int FROM meeting_result
                WHERE community_id = $1""", cid)
    # Cut the chain back to before the signed head: the chain alone still looks whole ...
    await _tamper(db_pool, "DELETE FROM audit_log WHERE community_id = $1 AND seq >= $2", cid, head)
    assert await _last_seq(db_pool, cid) == head - 1
    _, problems = await verify_audit(db_pool, cid)
    # ... but the head signed into the meeting's result is missing
    assert any("signed into the result" in str(p) for p in problems)
