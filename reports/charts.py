"""Chart geometry for inline SVG, computed from exact values. Pure.

Coordinates are computed in Decimal and formatted with one decimal place: they only place
marks on a drawing. The figures a chart's labels show are the report's own exact values,
rounded for display like every other amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from oms.values import decimal_context
from reports import fmt

_CONTEXT = decimal_context(40)
_TENTH = Decimal("0.1")


def _coord(value: Decimal) -> str:
    with localcontext(_CONTEXT):
        return str(value.quantize(_TENTH, ROUND_HALF_EVEN))


@dataclass(frozen=True, slots=True)
class Label:
    x: str
    y: str
    text: str
    anchor: str = "middle"  # SVG text-anchor


@dataclass(frozen=True, slots=True)
class LineChart:
    width: int
    height: int
    left: int
    right: int  # x of the plot's right edge
    top: int
    bottom: int  # y of the plot's bottom edge
    points: str  # "x,y x,y ..." for a polyline
    grid: tuple[Label, ...]  # horizontal grid lines, labelled with their value
    x_labels: tuple[Label, ...]
    empty: bool


def line_chart(
    series: Sequence[tuple[date, Decimal]],
    currency: str,
    *,
    width: int = 720,
    height: int = 200,
) -> LineChart:
    """A daily line: x by position, y scaled between the series' low and high."""
    left, right, top, bottom = 78, width - 12, 12, height - 24
    if not series:
        return LineChart(width, height, left, right, top, bottom, "", (), (), True)
    values = [v for _, v in series]
    low, high = min(values), max(values)
    with localcontext(_CONTEXT):
        if low == high:  # a flat line sits in the middle, with room above and below
            pad = abs(low) / 10 if low else Decimal(1)
            low, high = low - pad, high + pad
        span_y = Decimal(bottom - top)
        span_x = Decimal(right - left)
        n = len(series)

        def x_at(i: int) -> Decimal:
            return left + (span_x * i / (n - 1) if n > 1 else span_x / 2)

        def y_at(v: Decimal) -> Decimal:
            return top + (high - v) * span_y / (high - low)

        points = " ".join(f"{_coord(x_at(i))},{_coord(y_at(v))}" for i, v in enumerate(values))
        grid = tuple(
            Label(str(left - 6), _coord(y_at(v)), fmt.money(v, currency), "end")
            for v in (high, (high + low) / 2, low)
        )
        picks = sorted({0, (n - 1) // 2, n - 1})
        x_labels = tuple(
            Label(
                _coord(x_at(i)),
                str(height - 6),
                series[i][0].isoformat(),
                "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle",
            )
            for i in picks
        )
    return LineChart(width, height, left, right, top, bottom, points, grid, x_labels, False)


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    x: str
    y: str
    width: str
    height: str
    label_x: str
    value_y: str


@dataclass(frozen=True, slots=True)
class BarChart:
    width: int
    height: int
    baseline: int
    bars: tuple[Bar, ...]


def bar_chart(items: Sequence[tuple[str, int]], *, width: int = 360, height: int = 150) -> BarChart:
    """Vertical bars of counts (break ages), labelled below, values above."""
    top, baseline = 18, height - 22
    n = max(len(items), 1)
    peak = max((v for _, v in items), default=0) or 1
    with localcontext(_CONTEXT):
        slot = Decimal(width) / n
        bar_w = slot * Decimal("0.6")
        bars = []
        for i, (label, value) in enumerate(items):
            h = Decimal(baseline - top) * value / peak
            x = slot * i + (slot - bar_w) / 2
            bars.append(
                Bar(
                    label,
                    value,
                    _coord(x),
                    _coord(baseline - h),
                    _coord(bar_w),
                    _coord(h),
                    _coord(slot * i + slot / 2),
                    _coord(baseline - h - 4),
                )
            )
    return BarChart(width, height, baseline, tuple(bars))
