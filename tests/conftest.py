"""Test fixtures: a real PostgreSQL (embedded by default), the real app, real Redis when named.

- ``EVOTE_TEST_DATABASE_URL`` (or ``EVOTE_DATABASE_URL``): a PostgreSQL server to use;
  otherwise an embedded one is started under ``.evote-test/pg``.
  Either way each test session creates its own fresh database and drops it at the end,
  so sessions running at the same time never see each other's rows.
- ``EVOTE_TEST_REDIS_URL`` (or ``EVOTE_REDIS_URL``): Redis for the multi-worker tests;
  tests that need it are skipped without it, and .ci/run always provides it on its
  second pass.
"""
from __future__ import annotations

import os
import secrets
import uuid
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from server.app import create_app
from server.db.pool import create_pool, migrate
from server.devtools.bench_database import with_database
from server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _server_url() -> tuple[str, object | None]:
    url = os.environ.get("EVOTE_TEST_DATABASE_URL") or os.environ.get("EVOTE_DATABASE_URL")
    if url:
        return url, None
    from server.db.pool import embedded_server

    server = embedded_server((ROOT / ".evote-test" / "pg").resolve())
    return server.get_uri(), server


@pytest.fixture(scope="session")
def redis_url() -> str | None:
    return os.environ.get("EVOTE_TEST_REDIS_URL") or os.environ.get("EVOTE_REDIS_URL") or None


@pytest_asyncio.fixture(scope="session")
async def database_url():
    """A fresh, migrated database for this test session."""
    server_url, embedded = _server_url()
    name = f"evote_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield url
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    del embedded


@pytest_asyncio.fixture(scope="session")
async def db_pool(database_url):
    pool = await create_pool(database_url, min_size=1, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("evote-data")


@pytest.fixture(scope="session", autouse=True)
def _settings_environment(data_dir):
    """Code that reads its settings from the environment (a register import given no settings) uses the
    app's data directory, hence its identity key (data_dir/keys/identity_hmac.key, no master key)."""
    saved = {name: os.environ.get(name) for name in ("EVOTE_DATA_DIR", "EVOTE_MASTER_KEY")}
    os.environ["EVOTE_DATA_DIR"] = str(data_dir)
    os.environ.pop("EVOTE_MASTER_KEY", None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def settings(database_url, redis_url, data_dir):
    return load_settings(
        {},
        database_url=database_url,
        redis_url=redis_url,
        data_dir=data_dir,
        log_json=False,
        scheduler_interval_s=0.2,
    )


@pytest_asyncio.fixture
async def client(aiohttp_client, settings):
    """The real app (real database) behind a test client."""
    return await aiohttp_client(create_app(settings))


def unique_id(prefix: str = "c") -> str:
    """A community (or other) id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture
async def make_staff(db_pool):
    """Create a staff account directly; returns (username, password)."""
    from server.services import staff as staff_service

    async def make(role: str = "district_admin", *, communities=(), street_id=None):
        username = unique_id(role.split("_")[0])
        password = secrets.token_urlsafe(12)
        await staff_service.create_staff(db_pool, actor="test", username=username, password=password,
                                         role=role, street_id=street_id, communities=list(communities))
        return username, password

    return make


@pytest_asyncio.fixture
async def staff_headers(client, make_staff):
    """Log in as a new staff account; returns the Authorization headers."""
    async def login(role: str = "district_admin", *, communities=(), street_id=None) -> dict:
        username, password = await make_staff(role, communities=communities, street_id=street_id)
        resp = await client.post("/api/staff/login", json={"username": username, "password": password})
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["token"]
        return {"Authorization": f"Bearer {token}"}

    return login


@pytest_asyncio.fixture
async def make_community(db_pool):
    """Create a community (and its street); returns its id."""
    from server.repositories import communities as community_repo

    async def make(*, street_id: str = "test-street", count_parking_area: bool = False,
                   prep_group_formed_on=None) -> str:
        community_id = unique_id("c")
        async with db_pool.acquire() as conn:
            await community_repo.upsert_district(conn, "test-district", "测试区")
            await community_repo.upsert_street(conn, street_id, "test-district", "测试街道")
            await community_repo.insert_community(conn, community_id=community_id, name="测试小区",
                                                  street_id=street_id, count_parking_area=count_parking_area,
                                                  prep_group_formed_on=prep_group_formed_on)
        return community_id

    return make


@pytest_asyncio.fixture
async def imported_community(db_pool, make_community, settings):
    """A community with a generated register imported; returns (community_id, register rows)."""
    from server.devtools.demo_data import generate_register_rows, register_csv
    from server.services import register as register_service
    from tests.helpers_register import remember_register

    async def make(units: int = 60, *, seed: int = 7, count_parking_area: bool = False):
        community_id = await make_community(count_parking_area=count_parking_area)
        rows = generate_register_rows(units, seed=seed)
        await register_service.import_register(db_pool, community_id=community_id, data=register_csv(rows),
                                               filename="test.csv", actor="test", settings=settings)
        remember_register(community_id, register_csv(rows))
        return community_id, rows

    return make
