"""transforms/roaming/periods.py: calendar months 'YYYY-MM', their arithmetic, and the window of months."""

from __future__ import annotations

from datetime import date

import pytest

from transforms.roaming.periods import affected_months, check_month, is_month, last_day, shift_month, window_months


def test_window_helpers():
    assert window_months("2026-02", 4) == ("2025-11", "2025-12", "2026-01", "2026-02")
    assert shift_month("2026-01", -1) == "2025-12" and shift_month("2025-12", 1) == "2026-01"
    assert affected_months(["2026-04-30", "2026-05-01", "2026-05-02"]) == ["2026-04", "2026-05"]
    with pytest.raises(ValueError):
        shift_month("2026-13", 1)


@pytest.mark.parametrize("text, ok", [
    ("2026-01", True), ("2026-12", True), ("0001-01", True),
    ("2026-00", False), ("2026-13", False), ("2026-1", False), ("26-01", False), ("2026-01-01", False),
    ("2026/01", False), (" 2026-01", False), ("2026-01\n", False), ("", False),
])
def test_month_shape(text, ok):
    assert is_month(text) is ok
    if ok:
        assert check_month(text) == text
    else:
        with pytest.raises(ValueError, match="YYYY-MM"):
            check_month(text)


def test_check_month_refuses_what_is_not_text():
    with pytest.raises(ValueError):
        check_month(202601)


def test_shift_month_over_years():
    assert shift_month("2026-06", 0) == "2026-06"
    assert shift_month("2026-06", 18) == "2027-12" and shift_month("2026-06", 19) == "2028-01"
    assert shift_month("2026-01", -13) == "2024-12"


@pytest.mark.parametrize("month, day", [
    ("2026-01", date(2026, 1, 31)), ("2026-02", date(2026, 2, 28)), ("2028-02", date(2028, 2, 29)),
    ("2100-02", date(2100, 2, 28)), ("2000-02", date(2000, 2, 29)), ("2026-04", date(2026, 4, 30)),
    ("2026-12", date(2026, 12, 31)),
])
def test_last_day(month, day):
    assert last_day(month) == day


def test_window_of_one_and_across_a_year():
    assert window_months("2026-06", 1) == ("2026-06",)
    assert window_months("2026-06", 4) == ("2026-03", "2026-04", "2026-05", "2026-06")
    assert window_months("2027-01", 13) == tuple(f"2026-{m:02d}" for m in range(1, 13)) + ("2027-01",)


def test_affected_months_of_dates_and_text():
    assert affected_months([date(2026, 5, 1), "2026-04-30", date(2026, 5, 31), "2025-12-31"]) == \
        ["2025-12", "2026-04", "2026-05"]
    assert affected_months([]) == []
