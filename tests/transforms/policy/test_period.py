"""transforms/policy/period.py: ISO-8601 periods, counted in civil calendar terms (OZ Art. 59)."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from transforms.policy import Period, PolicyError


@pytest.mark.parametrize("text, expected", [
    ("P6M", Period(months=6)), ("P10Y", Period(years=10)), ("P1Y6M15D", Period(1, 6, 15)), ("P0D", Period()),
])
def test_period_parse(text, expected):
    assert Period.parse(text, "k") == expected


@pytest.mark.parametrize("text", ["6 months", "P", "", "P1W", "p6m", "P6M ", "PT6H", "P-1Y", "1Y", "P1.5Y"])
def test_not_a_period_names_the_key_and_the_text(text):
    with pytest.raises(PolicyError) as err:
        Period.parse(text, "retention[2].keep")
    assert str(err.value).startswith("retention[2].keep: ")
    assert repr(text) in str(err.value)


def test_a_policy_error_is_a_value_error():
    assert issubclass(PolicyError, ValueError)


@pytest.mark.parametrize("period, text", [
    (Period(months=6), "P6M"), (Period(1, 6, 15), "P1Y6M15D"), (Period(days=30), "P30D"), (Period(), "P0D"),
])
def test_str_is_the_iso_text(period, text):
    assert str(period) == text
    assert Period.parse(text, "k") == period


@pytest.mark.parametrize("start, period, end", [
    (date(2026, 1, 15), Period(months=6), date(2026, 7, 15)),      # same day number
    (date(2026, 8, 31), Period(months=6), date(2027, 2, 28)),      # February is shorter: its last day
    (date(2028, 8, 31), Period(months=6), date(2029, 2, 28)),
    (date(2027, 8, 31), Period(months=6), date(2028, 2, 29)),      # leap year
    (date(2028, 2, 29), Period(years=1), date(2029, 2, 28)),
    (date(2028, 2, 29), Period(years=4), date(2032, 2, 29)),
    (date(2026, 1, 31), Period(months=1), date(2026, 2, 28)),
    (date(2026, 3, 31), Period(months=1), date(2026, 4, 30)),
    (date(2026, 12, 31), Period(years=10), date(2036, 12, 31)),
    (date(2026, 11, 30), Period(months=2), date(2027, 1, 30)),     # across the year
    (date(2026, 1, 31), Period(months=1, days=1), date(2026, 3, 1)),   # months first, then days
    (date(2026, 12, 31), Period(days=1), date(2027, 1, 1)),
    (date(2026, 5, 5), Period(), date(2026, 5, 5)),
])
def test_after_is_civil_reckoning(start, period, end):
    assert period.after(start) == end


PERIODS = [Period(months=6), Period(years=1), Period(years=3), Period(years=10), Period(months=1, days=1),
           Period(1, 6, 15), Period(days=45), Period()]


@pytest.mark.parametrize("period", PERIODS, ids=str)
def test_after_sql_agrees_with_after_on_every_day_of_a_leap_cycle(period):
    starts = [date(2027, 1, 1) + timedelta(days=i) for i in range(366 + 365)]   # 2027 and leap 2028
    con = duckdb.connect()
    try:
        con.execute("CREATE TABLE s AS SELECT unnest($d) AS start", {"d": starts})
        got = con.execute(f"SELECT start, {period.after_sql('start')} FROM s ORDER BY start").fetchall()
    finally:
        con.close()
    assert got == [(s, period.after(s)) for s in starts]


def test_after_sql_takes_a_timestamp_start():
    con = duckdb.connect()
    try:
        end = Period(months=6).after_sql("TIMESTAMP '2026-08-31 23:59:00'")
        assert con.execute(f"SELECT {end}").fetchone()[0] == date(2027, 2, 28)
    finally:
        con.close()


@pytest.mark.parametrize("first, then, start, end", [
    # One month and two further, counted together from the start: 31 Jan + 3 months = 30 Apr (a month, then two
    # more from the clamped 28 Feb, would end on 28 Apr).
    (Period(months=1), Period(months=2), date(2026, 1, 31), date(2026, 4, 30)),
    (Period(months=1), Period(), date(2026, 1, 31), date(2026, 2, 28)),
    (Period(1, 1, 1), Period(0, 2, 3), date(2026, 1, 31), date(2027, 5, 4)),      # 30 Apr 2027 + 4 days
])
def test_periods_added_count_from_the_same_start(first, then, start, end):
    assert first + then == Period(first.years + then.years, first.months + then.months, first.days + then.days)
    assert (first + then).after(start) == end
