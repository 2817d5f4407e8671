"""A real store (SQLite file and a fresh PostgreSQL database), the in-process bus, and an app."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from aetherius.bus import MemoryBus
from aetherius.compose.app import create_app
from aetherius.config import Settings, load_settings
from aetherius.store import Store
from tests.services import POSTGRES_DSN, require_service

WEBHOOK_TOKEN = "am-" + "x" * 24
GENERIC_TOKEN = "gen-" + "y" * 24


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped afterwards."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"aeth_api_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{POSTGRES_DSN}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("store") / "aetherius.db"
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest) -> str:
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(store_url, migrate_schema=True)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    memory = MemoryBus()
    try:
        yield memory
    finally:
        await memory.close()


def make_settings(**api: object) -> Settings:
    values: dict[str, object] = {
        "webhook_tokens": {"alertmanager": WEBHOOK_TOKEN, "generic": GENERIC_TOKEN},
        "rate_limit_per_second": 1000,
        "rate_limit_burst": 1000,
        **api,
    }
    return load_settings(
        env={}, overrides={("api", k): v for k, v in values.items()} | {("cluster_id",): "test"}
    )


@dataclass
class Tokens:
    viewer: str
    operator: str
    admin: str
    ids: dict[str, int] = field(default_factory=dict)  # role -> token id (the store is shared)

    def header(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, role)}"}


@pytest.fixture
async def tokens(store: Store) -> Tokens:
    suffix = secrets.token_hex(3)
    made, ids = {}, {}
    for role in ("viewer", "operator", "admin"):
        created = await store.create_token(name=f"{role}-{suffix}", role=role)  # type: ignore[arg-type]
        made[role], ids[role] = created.secret, created.token.id
    return Tokens(**made, ids=ids)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings, store: Store, bus: MemoryBus) -> FastAPI:
    return create_app(settings=settings, store=store, bus=bus)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
