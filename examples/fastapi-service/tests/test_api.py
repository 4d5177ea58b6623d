"""The API in process, each test on its own fresh database."""

from __future__ import annotations

from fastapi.testclient import TestClient


def make(client: TestClient, name: str = "kettle", price: int = 2599, quantity: int = 3) -> int:
    response = client.post(
        "/items", json={"name": name, "price_cents": price, "quantity": quantity}
    )
    assert response.status_code == 201, response.text
    item_id: int = response.json()["id"]
    return item_id


def test_health_reaches_the_database_and_the_cache(client: TestClient) -> None:
    assert client.get("/health").json() == {"database": "ok", "cache": "ok"}


def test_a_created_item_can_be_read_back(client: TestClient) -> None:
    item_id = make(client)
    response = client.get(f"/items/{item_id}")
    assert response.json() == {"id": item_id, "name": "kettle", "price_cents": 2599, "quantity": 3}


def test_the_second_read_comes_from_the_cache(client: TestClient) -> None:
    item_id = make(client)
    assert client.get(f"/items/{item_id}").headers["X-Cache"] == "miss"
    assert client.get(f"/items/{item_id}").headers["X-Cache"] == "hit"


def test_names_are_unique(client: TestClient) -> None:
    make(client, "kettle")
    response = client.post("/items", json={"name": "kettle", "price_cents": 1})
    assert response.status_code == 409
    assert response.json()["detail"] == "an item named 'kettle' exists"


def test_a_negative_price_is_refused(client: TestClient) -> None:
    response = client.post("/items", json={"name": "kettle", "price_cents": -1})
    assert response.status_code == 422


def test_items_are_listed_in_creation_order(client: TestClient) -> None:
    for name in ("kettle", "teapot", "mug"):
        make(client, name)
    names = [item["name"] for item in client.get("/items").json()]
    assert names == ["kettle", "teapot", "mug"]
    assert len(client.get("/items", params={"limit": 2}).json()) == 2


def test_an_unknown_item_is_404(client: TestClient) -> None:
    assert client.get("/items/999").status_code == 404


def test_restocking_updates_the_item_and_drops_the_cached_copy(client: TestClient) -> None:
    item_id = make(client, quantity=3)
    client.get(f"/items/{item_id}")  # now cached
    response = client.post(f"/items/{item_id}/stock", json={"delta": -2})
    assert response.json()["quantity"] == 1
    read = client.get(f"/items/{item_id}")
    assert (read.headers["X-Cache"], read.json()["quantity"]) == ("miss", 1)


def test_stock_never_goes_below_zero(client: TestClient) -> None:
    item_id = make(client, quantity=1)
    response = client.post(f"/items/{item_id}/stock", json={"delta": -2})
    assert response.status_code == 409
    assert client.get(f"/items/{item_id}").json()["quantity"] == 1


def test_a_deleted_item_is_gone_from_the_cache_too(client: TestClient) -> None:
    item_id = make(client)
    client.get(f"/items/{item_id}")  # now cached
    assert client.delete(f"/items/{item_id}").status_code == 204
    assert client.get(f"/items/{item_id}").status_code == 404
