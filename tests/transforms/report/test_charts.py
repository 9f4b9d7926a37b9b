"""transforms/report/charts.py: bar geometry in proportion to the values, stacked or side by side."""

from __future__ import annotations

from transforms.report.charts import HEIGHT, BOTTOM, TOP, bar_chart

PLOT_H = HEIGHT - BOTTOM - TOP


def test_stacked_bars_sum_to_the_peak_and_sit_on_each_other():
    chart = bar_chart(["a", "b"], [("x", "#000", [30, 10]), ("y", "#111", [10, None])], stacked=True, title="t")
    a, b = chart["groups"]
    heights = [float(bar["height"]) for bar in a["bars"]]
    assert heights == [PLOT_H * 30 / 40, PLOT_H * 10 / 40]              # the peak is the tallest stack, 40
    assert float(a["bars"][1]["y"]) + heights[1] == float(a["bars"][0]["y"])   # the second on top of the first
    assert [bar["value"] for bar in b["bars"]] == ["10", "0"]               # a missing value draws nothing
    assert [g["value"] for g in chart["grid"]] == ["0", "10", "20", "30", "40"]


def test_side_by_side_bars_share_the_group_and_scale_to_the_largest_value():
    chart = bar_chart(["d"], [("x", "#000", [2_000]), ("y", "#111", [1_000])], stacked=False, title="t")
    first, second = chart["groups"][0]["bars"]
    assert float(first["height"]) == PLOT_H and float(second["height"]) == PLOT_H / 2
    assert float(second["x"]) > float(first["x"]) and first["value"] == "2,000"
    assert [entry["name"] for entry in chart["legend"]] == ["x", "y"]


def test_no_data_draws_an_empty_chart():
    chart = bar_chart([], [("x", "#000", [])], stacked=True, title="t")
    assert chart["groups"] == [] and chart["grid"][-1]["value"] == "1"
