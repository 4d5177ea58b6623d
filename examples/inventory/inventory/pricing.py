"""Prices with quantity discounts, in integer cents to stay exact."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    min_quantity: int
    percent_off: int


TIERS = (Tier(100, 15), Tier(10, 5))


def unit_price(base_cents: int, quantity: int) -> int:
    """The price of one item when buying ``quantity`` of them."""
    if base_cents < 0:
        raise ValueError("a price cannot be negative")
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    for tier in TIERS:
        if quantity >= tier.min_quantity:
            return base_cents * (100 - tier.percent_off) // 100
    return base_cents


def total(base_cents: int, quantity: int) -> int:
    return unit_price(base_cents, quantity) * quantity
