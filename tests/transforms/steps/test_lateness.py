"""transforms/steps/lateness.py: a file's valid rows dated more than the policy's lateness window before the
night, or after the night (docs/design.md §9), counted from validate's per-day layout."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import duckdb
import pytest

from tests.transforms.policy.conftest import load_edited
from transforms.steps.lateness import LatenessResult, count_lateness

NIGHT = "2026-11-22"


def valid_by_day(folder: Path, rows_per_day: dict[str, int]) -> Path:
    """Valid rows as validate leaves them: `event_date=YYYY-MM-DD/part.parquet`, the date only in the path."""
    for day, n in rows_per_day.items():
        out = folder / f"event_date={day}" / "part.parquet"
        out.parent.mkdir(parents=True)
        duckdb.execute(f"COPY (SELECT range AS source_row, '+38640111111' AS origin_number FROM range({n}))"
                       f" TO '{out}' (FORMAT parquet)")
    return folder


def test_rows_more_than_the_window_before_the_night_and_after_it(work_dir, policy):
    # The policy ships a window of 7 days (policy/a1_slovenia.yaml lateness.window_days): 15 Nov is exactly
    # 7 days before the night of 22 Nov, so not late; 14 Nov is 8 days before, late. 23 Nov is after the night.
    assert policy.lateness.window_days == 7
    valid = valid_by_day(work_dir / "valid", {"2026-10-31": 2, "2026-11-14": 3, "2026-11-15": 5, "2026-11-21": 7,
                                              "2026-11-22": 11, "2026-11-23": 13, "2026-12-01": 1})
    r = count_lateness(valid, NIGHT, policy)
    assert (r.rows_counted, r.rows_before_window, r.rows_after_night) == (42, 2 + 3, 13 + 1)
    assert r.days_before_window == (date(2026, 10, 31), date(2026, 11, 14))
    assert r.days_after_night == (date(2026, 11, 23), date(2026, 12, 1))
    assert (r.night, r.window_days, r.clause) == (date(2026, 11, 22), 7, policy.lateness.clause)


def test_a_night_with_only_its_own_days_has_nothing_late(work_dir, policy):
    # A local night in Ljubljana starts on the UTC day before it: that day is within any window.
    r = count_lateness(valid_by_day(work_dir / "valid", {"2026-11-21": 4, "2026-11-22": 6}), date(2026, 11, 22), policy)
    assert r == LatenessResult(night=date(2026, 11, 22), window_days=7, clause=policy.lateness.clause,
                               rows_counted=10, rows_before_window=0, rows_after_night=0)


@pytest.mark.parametrize("window, late", [(0, 2 + 3), (1, 2), (2, 0)])
def test_the_window_is_the_policys(work_dir, tmp_path, window, late):
    policy = load_edited(tmp_path, lambda d: d["lateness"].update(window_days=window))
    # 20 Nov is 2 days before the night, 21 Nov 1 day: late only when the window is shorter than that.
    r = count_lateness(valid_by_day(work_dir / "valid", {"2026-11-20": 2, "2026-11-21": 3, "2026-11-22": 4}), NIGHT,
                       policy)
    assert (r.window_days, r.rows_before_window, r.rows_after_night) == (window, late, 0)


def test_no_valid_rows_counts_nothing(work_dir, policy):
    empty = work_dir / "valid"
    empty.mkdir()
    r = count_lateness(empty, NIGHT, policy)
    assert (r.rows_counted, r.rows_before_window, r.rows_after_night, r.days_before_window) == (0, 0, 0, ())


def test_the_result_holds_counts_and_dates_only(work_dir, policy):
    r = count_lateness(valid_by_day(work_dir / "valid", {"2026-11-01": 1}), NIGHT, policy)
    values = dataclasses.astuple(r)
    assert "+38640111111" not in repr(values)
    assert {type(v) for v in values} <= {date, int, str, tuple}
