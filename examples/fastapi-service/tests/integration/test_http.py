"""The running service over real HTTP, against the worktree's own PostgreSQL and Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def http(service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url, timeout=10) as client:
        yield client


def unique(name: str) -> str:
    """The worktree's database keeps its rows between runs: names must not collide."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def test_health(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"database": "ok", "cache": "ok"}


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
