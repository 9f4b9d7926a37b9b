"""Which consent stands (policy §3.4 ¶3: "the latest consent received counts"), from the law's cases."""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from tests.transforms.marketing.conftest import land_consents
from transforms.consents.register import define_standing
from transforms.lake import Lake

A, B = "+38640111222", "+38641333444"


def _land(lake: Lake, name: str, rows: list[tuple]) -> None:
    """One extract's rows in the register's layout: (subscriber, purpose, status, recorded_at)."""
    land_consents(lake, name, [(s, status, at, purpose) for s, purpose, status, at in rows])


def _standing(lake: Lake, day: date) -> dict[tuple[str, str], bool]:
    con = duckdb.connect()
    define_standing(con, lake, day)
    return {(s, p): g for s, p, g in con.execute("SELECT subscriber_number, purpose, granted FROM consent_standing")
            .fetchall()}


def test_empty_register_has_no_consent(tmp_path):
    assert _standing(Lake(tmp_path), date(2026, 11, 20)) == {}


def test_latest_recorded_wins_whatever_order_the_extracts_landed_in(tmp_path):
    lake = Lake(tmp_path)
    # The newer extract (withdrawal on 10 Nov) landed first; the older one (grant on 1 Nov) arrived later.
    _land(lake, "b", [(A, "marketing_profiling", "withdrawn", datetime(2026, 11, 10, 9))])
    _land(lake, "a", [(A, "marketing_profiling", "granted", datetime(2026, 11, 1, 9))])
    assert _standing(lake, date(2026, 11, 5)) == {(A, "marketing_profiling"): True}
    assert _standing(lake, date(2026, 11, 10)) == {(A, "marketing_profiling"): False}   # the day of withdrawal
    assert _standing(lake, date(2026, 12, 1)) == {(A, "marketing_profiling"): False}


def test_regrant_after_withdrawal_stands_again_and_purposes_are_separate(tmp_path):
    lake = Lake(tmp_path)
    _land(lake, "a", [(A, "marketing_profiling", "granted", datetime(2026, 10, 1)),
                      (A, "marketing_profiling", "withdrawn", datetime(2026, 10, 15)),
                      (A, "marketing_profiling", "granted", datetime(2026, 11, 2, 23, 59)),
                      (A, "partner_offers", "granted", datetime(2026, 10, 1)),
                      (B, "marketing_profiling", "withdrawn", datetime(2026, 10, 1))])
    assert _standing(lake, date(2026, 10, 20)) == {
        (A, "marketing_profiling"): False, (A, "partner_offers"): True, (B, "marketing_profiling"): False}
    # Recorded at 23:59 on 2 Nov: it stands at the end of 2 Nov, not at the end of 1 Nov.
    assert _standing(lake, date(2026, 11, 1))[(A, "marketing_profiling")] is False
    assert _standing(lake, date(2026, 11, 2))[(A, "marketing_profiling")] is True
    # Before any event of a subscriber and purpose there is no consent at all.
    assert (B, "partner_offers") not in _standing(lake, date(2026, 12, 1))


def test_a_grant_and_a_withdrawal_at_the_same_instant_withdraw(tmp_path):
    lake = Lake(tmp_path)
    at = datetime(2026, 11, 3, 12)
    _land(lake, "a", [(A, "marketing_profiling", "granted", at)])
    _land(lake, "b", [(A, "marketing_profiling", "withdrawn", at)])
    assert _standing(lake, date(2026, 11, 3)) == {(A, "marketing_profiling"): False}
