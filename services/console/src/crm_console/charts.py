"""Charts the console draws itself: SVG with presentation attributes only (the page's CSP allows no
inline style), right to left mirrored so bars grow from the inline-start side."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    text: str  # the value as the locale writes it
    bar_x: float
    bar_width: float
    y: float
    label_x: float
    value_x: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    row_height: int
    bar_height: int
    bars: tuple[Bar, ...]


def bar_chart(items: list[tuple[str, float, str]], *, rtl: bool, width: int = 640) -> BarChart:
    """Horizontal bars (label, value, value as text), longest = the plot's width. Every x is given
    for left to right and mirrored (width - x) in right to left, so bars grow from the inline-start
    side; the template anchors every text at its "start" with the page's direction."""
    label_width, value_room, row_height, bar_height = 180, 110, 32, 20
    plot = width - label_width - value_room
    top = max((value for _, value, _ in items), default=0) or 1
    bars = []
    for index, (label, value, text) in enumerate(items):
        length = plot * max(value, 0) / top
        label_x, bar_start, value_x = 6.0, float(label_width), label_width + length + 6
        if rtl:
            label_x, bar_start, value_x = width - label_x, width - bar_start - length, width - value_x
        bars.append(Bar(label, text, bar_start, length, index * row_height + 6, label_x, value_x))
    return BarChart(width, max(len(items), 1) * row_height + 6, row_height, bar_height, tuple(bars))
