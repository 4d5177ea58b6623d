"""The running service over real HTTP, against the worktree's own PostgreSQL and Redis.

The gate serves the app (the `serve` table in pyproject.toml) with uvicorn on the worktree's
own port before these tests run, and stops it after them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServedApp

pytestmark = pytest.mark.integration


@pytest.fixture
def http(worktree_app: ServedApp, migrated_database: None) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=worktree_app.url, timeout=10) as client:
        yield client


def test_the_served_app_is_healthy(worktree_app: ServedApp, http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.json() == {"database": "ok", "cache": "ok"}, worktree_app.logs


def unique(name: str) -> str:
    """The worktree's database keeps its rows between runs: names must not collide."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_create_read_restock_delete(http: httpx.Client) -> None:
    name = unique("kettle")
    created = http.post("/items", json={"name": name, "price_cents": 2599, "quantity": 2})
    assert created.status_code == 201, created.text
    item_id = created.json()["id"]

    first, second = http.get(f"/items/{item_id}"), http.get(f"/items/{item_id}")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert second.json()["name"] == name

    restocked = http.post(f"/items/{item_id}/stock", json={"delta": 5})
    assert restocked.json()["quantity"] == 7
    assert http.get(f"/items/{item_id}").json()["quantity"] == 7

    assert http.delete(f"/items/{item_id}").status_code == 204
    assert http.get(f"/items/{item_id}").status_code == 404


def test_items_stay_in_the_database(http: httpx.Client) -> None:
    name = unique("teapot")
    http.post("/items", json={"name": name, "price_cents": 1800})
    assert name in [item["name"] for item in http.get("/items", params={"limit": 1000}).json()]
