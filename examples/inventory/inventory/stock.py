"""Stock levels per SKU, with reservations that can be released."""

from __future__ import annotations


class OutOfStock(Exception):
    pass


class Stock:
    def __init__(self) -> None:
        self._levels: dict[str, int] = {}
        self._reserved: dict[str, int] = {}

    def receive(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("received quantity must be positive")
        self._levels[sku] = self._levels.get(sku, 0) + quantity

    def available(self, sku: str) -> int:
        return self._levels.get(sku, 0) - self._reserved.get(sku, 0)

    def reserve(self, sku: str, quantity: int) -> None:
        if quantity > self.available(sku):
            raise OutOfStock(sku)
        self._reserved[sku] = self._reserved.get(sku, 0) + quantity

    def release(self, sku: str, quantity: int) -> None:
        held = self._reserved.get(sku, 0)
        self._reserved[sku] = max(0, held - quantity)

    def report(self) -> dict[str, int]:
        return {sku: self.available(sku) for sku in sorted(self._levels)}
