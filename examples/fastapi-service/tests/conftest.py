"""Fixtures shared by the unit and integration tests.

DATABASE_URL and REDIS_URL are the worktree's own databases: pytest-worktree-gates exports
them before this file is imported, so importing the app here reads the right settings.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest
import uvicorn
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
    """The worktree's own database (DATABASE_URL), migrated to the latest revision."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def service_url(migrated_database: None) -> Iterator[str]:
    """The base URL of the service, served by uvicorn on a free loopback port.

    The one place that knows how the service is started: integration tests only use the URL.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start; see its log above", pytrace=False)
        time.sleep(0.01)
    host, port = listener.getsockname()
    yield f"http://{host}:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()
