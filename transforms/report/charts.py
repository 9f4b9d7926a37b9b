"""Geometry of the report's bar charts; templates/macros.html.j2 `bar_chart` draws it as inline SVG.

Coordinates come out as the strings the SVG carries (one decimal), counts as shown (thousands separated).
"""

from __future__ import annotations

WIDTH, HEIGHT, LEFT, BOTTOM, TOP, RIGHT = 760, 280, 70, 40, 36, 16


def bar_chart(labels: list[str], series: list[tuple[str, str, list]], *, stacked: bool, title: str) -> dict:
    """A vertical bar chart: one group per label, its series' bars stacked or side by side."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - BOTTOM - TOP
    if stacked:
        peak = max([sum(s[2][i] or 0 for s in series) for i in range(len(labels))] or [0])
    else:
        peak = max([v or 0 for s in series for v in s[2]] or [0])
    peak = peak or 1
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.6 / (1 if stacked else max(len(series), 1))
    grid = []
    for i in range(5):   # grid lines with their values
        y = TOP + plot_h - plot_h * i / 4
        grid.append({"y": f"{y:.1f}", "text_y": f"{y + 4:.1f}", "value": f"{peak * i / 4:,.0f}"})
    groups = []
    for i, label in enumerate(labels):
        x0 = LEFT + group_w * i + group_w * 0.2
        base = TOP + plot_h
        bars = []
        for j, (name, color, values) in enumerate(series):
            v = values[i] or 0
            h = plot_h * v / peak
            y = base - h
            bars.append({"x": f"{x0 if stacked else x0 + bar_w * j:.1f}", "y": f"{y:.1f}", "width": f"{bar_w:.1f}",
                         "height": f"{h:.1f}", "color": color, "name": name, "value": f"{v:,}"})
            if stacked:
                base = y
        groups.append({"label": label, "x": f"{LEFT + group_w * i + group_w / 2:.1f}", "bars": bars})
    legend, x = [], LEFT
    for name, color, _ in series:
        legend.append({"x": x, "text_x": x + 16, "name": name, "color": color})
        x += 24 + 7 * len(name)
    return {"title": title, "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT, "axis_x": LEFT - 6,
            "label_y": HEIGHT - BOTTOM + 16, "grid": grid, "groups": groups, "legend": legend}
