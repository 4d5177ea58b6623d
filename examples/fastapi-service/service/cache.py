"""A read-through cache of items in Redis, as JSON with a time to live."""

from __future__ import annotations

from redis import Redis

from service.schemas import ItemOut
from service.settings import settings


class ItemCache:
    def __init__(self, client: Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def key(item_id: int) -> str:
        return f"item:{item_id}"

    def get(self, item_id: int) -> ItemOut | None:
        raw = self.client.get(self.key(item_id))
        if raw is None:
            return None
        return ItemOut.model_validate_json(raw)

    def put(self, item: ItemOut) -> None:
        self.client.set(self.key(item.id), item.model_dump_json(), ex=self.ttl_seconds)

    def forget(self, item_id: int) -> None:
        self.client.delete(self.key(item_id))

    def ping(self) -> bool:
        return bool(self.client.ping())


_cache = ItemCache(Redis.from_url(settings.redis_url), settings.cache_ttl_seconds)


def get_cache() -> ItemCache:
    return _cache
