"""oms.ranked.RankedSums: the sum of the values below a key, as values change, is the plain sum
of those values (in the book's decimal context: exact, whatever the places of the values)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms import lots
from oms.ranked import RankedSums

keys = st.text(alphabet="O0123456789", min_size=1, max_size=4)
amounts = st.one_of(
    *(
        st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=p)
        for p in (0, 2, 4, 9)
    )
)


def plain_before(values: dict[str, Decimal], key: str) -> Decimal:
    return sum((v for k, v in values.items() if k < key), Decimal(0))


@given(
    start=st.dictionaries(keys, amounts, max_size=40),
    steps=st.lists(st.tuples(st.booleans(), keys, amounts), max_size=60),
)
def test_the_sum_below_a_key_is_the_plain_sum_as_values_change(
    start: dict[str, Decimal], steps: list[tuple[bool, str, Decimal]]
) -> None:
    with localcontext(lots.CONTEXT):
        sums = RankedSums(start)
        values = dict(start)
        assert len(sums) == len(values)
        for change, key, amount in steps:
            if change and key in values:
                sums.set(key, amount)
                values[key] = amount
                assert sums.value(key) == amount
            got = sums.before(key)  # a key given or not
            assert got == plain_before(values, key)  # the value (trailing zeros may differ)
        for key in values:
            assert sums.before(key) == plain_before(values, key)


def test_keys_rank_as_strings_and_only_given_keys_take_values() -> None:
    sums = RankedSums(
        {"O00000002": Decimal("2.5"), "O00000010": Decimal(7), "O00000001": Decimal(1)}
    )
    assert sums.before("O00000001") == 0
    assert sums.before("O00000002") == 1
    assert sums.before("O00000003") == Decimal("3.5")  # not a key: those below it
    assert sums.before("O99999999") == Decimal("10.5")
    sums.set("O00000002", Decimal(0))  # a filled order holds nothing more
    assert sums.before("O00000010") == 1
    with pytest.raises(KeyError):
        sums.set("O00000003", Decimal(1))
    assert RankedSums({}).before("O00000001") == 0
