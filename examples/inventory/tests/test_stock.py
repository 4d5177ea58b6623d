import pytest

from inventory.stock import OutOfStock, Stock


def test_receive_and_reserve() -> None:
    stock = Stock()
    stock.receive("apple", 5)
    stock.reserve("apple", 3)
    assert stock.available("apple") == 2
    with pytest.raises(OutOfStock):
        stock.reserve("apple", 3)


def test_release() -> None:
    stock = Stock()
    stock.receive("pear", 2)
    stock.reserve("pear", 2)
    stock.release("pear", 5)
    assert stock.report() == {"pear": 2}


@pytest.mark.integration
def test_full_cycle_is_only_for_the_integration_gate() -> None:
    stock = Stock()
    stock.receive("plum", 1)
    assert stock.report() == {"plum": 1}
