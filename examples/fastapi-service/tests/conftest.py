"""Fixtures shared by the unit and integration tests.

DATABASE_URL and REDIS_URL are the worktree's own databases: pytest-worktree-gates exports
them before this file is imported, so importing the app here reads the right settings. The
integration tests talk to the app that the gate serves (`worktree_app`), see test_http.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from service.api import app
from service.cache import ItemCache, get_cache
from service.db import get_session
from service.settings import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[1]


class Database(Protocol):
    """What the tests use of the database fixtures' objects."""

    @property
    def url(self) -> str: ...


class ServedApp(Protocol):
    """What the tests use of `worktree_app`: the app the gate serves."""

    @property
    def url(self) -> str: ...

    @property
    def logs(self) -> str: ...


@pytest.fixture
def client(isolated_postgres: Database, worktree_redis: Database) -> Iterator[TestClient]:
    """The app in process, on a fresh migrated database (a clone of the template that
    `alembic upgrade head` built) and an empty cache."""
    engine = create_engine(sqlalchemy_url(isolated_postgres.url))
    sessions = sessionmaker(engine, expire_on_commit=False)
    redis = Redis.from_url(worktree_redis.url)
    redis.flushdb()
    cache = ItemCache(redis, ttl_seconds=60)

    def session() -> Iterator[Session]:
        with sessions() as opened:
            yield opened

    app.dependency_overrides[get_session] = session
    app.dependency_overrides[get_cache] = lambda: cache
    try:
        with TestClient(app) as test_client:
            yield test_client
    finally:
        app.dependency_overrides.clear()
        redis.flushdb()  # ids restart in every clone: leave no entry another test could hit
        redis.close()
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_database() -> None:
    """The worktree's own database (DATABASE_URL), migrated to the latest revision: the
    database the served app uses (a worktree made by `new` is migrated already; CI's is not)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
