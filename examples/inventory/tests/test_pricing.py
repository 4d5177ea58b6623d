import pytest

from inventory.pricing import total, unit_price


def test_no_discount_below_ten() -> None:
    assert unit_price(1000, 9) == 1000


@pytest.mark.parametrize(("quantity", "price"), [(10, 950), (99, 950), (100, 850)])
def test_tiers(quantity: int, price: int) -> None:
    assert unit_price(1000, quantity) == price


def test_total() -> None:
    assert total(200, 10) == 1900


@pytest.mark.parametrize(("base", "quantity"), [(-1, 1), (100, 0)])
def test_rejects_bad_input(base: int, quantity: int) -> None:
    with pytest.raises(ValueError):
        unit_price(base, quantity)
