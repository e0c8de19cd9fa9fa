"""What each fill realizes: the per-trade column of a statement's trade list. Pure.

oms.lots.build_positions gives totals per account/symbol; a statement also shows, per trade,
the basis of the lots it closed and the P&L it realized. Both come from the one lot relief in
oms.lots (relief_trace runs it step by step), so the per-fill figures add up exactly to
build_positions' realized P&L and cost basis for every cost method. The statement's totals
always come from build_positions itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from oms.lots import ExecRecord, FillEffect, LotRelief, relief_trace
from oms.values import CostMethod

__all__ = ["FillEffect", "LotRelief", "trace"]


def trace(
    fills: Iterable[ExecRecord], method: CostMethod = CostMethod.FIFO
) -> dict[int, FillEffect]:
    """The effect of each of the effective fills (as build_positions takes them), by seq:
    what it closed, the basis relieved, the P&L realized, the basis opened, and which lots
    (opening fill, quantity, basis) it relieved."""
    return relief_trace(fills, method)
