"""The engine's exact integer arithmetic on Decimal(38,12) columns (recon.engine_core)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.canonical import MONEY
from recon.engine_core import LIMB, carry, limbs, product_limbs, raw_int

# canonical decimals: up to 18 integer digits and 12 fractional digits, either sign
raws = st.integers(-(10**30) + 1, 10**30 - 1)


def _dec(raw: int) -> Decimal:
    whole, frac = divmod(abs(raw), 10**12)  # text: Decimal arithmetic would round at 28 digits
    return Decimal(f"{'-' if raw < 0 else ''}{whole}.{frac:012d}")


def _value(row: tuple[int, ...]) -> int:
    return sum(limb * LIMB**k for k, limb in enumerate(row))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(raws, raws), min_size=1, max_size=6))
def test_limb_products_and_sums_are_exact(pairs: list[tuple[int, int]]) -> None:
    frame = pl.DataFrame(
        {"q": [_dec(q) for q, _ in pairs], "p": [_dec(p) for _, p in pairs]},
        schema={"q": MONEY, "p": MONEY},
    )
    assert frame.select(raw_int(pl.col("q")))["q"].to_list() == [q for q, _ in pairs]
    product = product_limbs(limbs(pl.col("q")), limbs(pl.col("p")))
    sums = frame.select(*(e.sum().alias(f"s{k}") for k, e in enumerate(product)))
    carried = carry(sums, [f"s{k}" for k in range(5)])
    row = carried.row(0)
    assert all(0 <= limb < LIMB for limb in row[:-1])
    assert _value(row) == sum(q * p for q, p in pairs)  # exactly sum(q*p) * 1E24


@settings(max_examples=60, deadline=None)
@given(raws, st.integers(0, 10**24))
def test_tolerance_products_are_exact(q: int, t: int) -> None:
    frame = pl.DataFrame({"q": [_dec(q)]}, schema={"q": MONEY})
    t_limbs = [t % LIMB, (t // LIMB) % LIMB, t // LIMB**2]
    out = frame.select(
        *(e.alias(f"x{k}") for k, e in enumerate(product_limbs(limbs(pl.col("q")), t_limbs)))
    )
    assert _value(carry(out, [f"x{k}" for k in range(5)]).row(0)) == q * t
