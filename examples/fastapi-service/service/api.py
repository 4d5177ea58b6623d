"""The HTTP API: create, read (through the cache), list, restock and delete items."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Response, status
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.cache import ItemCache, get_cache
from service.db import get_session
from service.models import Item
from service.schemas import ItemIn, ItemOut, StockChange

app = FastAPI(title="items")

SessionDep = Annotated[Session, Depends(get_session)]
CacheDep = Annotated[ItemCache, Depends(get_cache)]


def _item_or_404(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id}")
    return item


@app.get("/health")
def health(session: SessionDep, cache: CacheDep) -> dict[str, str]:
    session.execute(text("SELECT 1"))
    return {"database": "ok", "cache": "ok" if cache.ping() else "down"}


@app.post("/items", status_code=status.HTTP_201_CREATED)
def create_item(payload: ItemIn, session: SessionDep) -> ItemOut:
    item = Item(**payload.model_dump())
    session.add(item)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"an item named {payload.name!r} exists"
        ) from None
    return ItemOut.model_validate(item)


@app.get("/items")
def list_items(session: SessionDep, limit: int = 100) -> list[ItemOut]:
    items = session.scalars(select(Item).order_by(Item.id).limit(limit))
    return [ItemOut.model_validate(item) for item in items]


@app.get("/items/{item_id}")
def get_item(item_id: int, session: SessionDep, cache: CacheDep, response: Response) -> ItemOut:
    cached = cache.get(item_id)
    if cached is not None:
        response.headers["X-Cache"] = "hit"
        return cached
    found = ItemOut.model_validate(_item_or_404(session, item_id))
    cache.put(found)
    response.headers["X-Cache"] = "miss"
    return found


@app.post("/items/{item_id}/stock")
def change_stock(
    item_id: int, change: StockChange, session: SessionDep, cache: CacheDep
) -> ItemOut:
    item = _item_or_404(session, item_id)
    if item.quantity + change.delta < 0:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"only {item.quantity} of item {item_id} in stock"
        )
    item.quantity += change.delta
    session.commit()
    cache.forget(item_id)
    return ItemOut.model_validate(item)


@app.delete("/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_item(item_id: int, session: SessionDep, cache: CacheDep) -> None:
    session.delete(_item_or_404(session, item_id))
    session.commit()
    cache.forget(item_id)
