"""transforms/consents/spells.py: spells of consent agree with `define_standing` on every day (§3.4 ¶3)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb

from tests.transforms.marketing.conftest import land_consents
from transforms.consents.register import define_standing
from transforms.consents.spells import define_spells

A, B, C = "+38640111001", "+38640111002", "+38640111003"
PROFILING = "marketing_profiling"


def test_spells_say_what_stands_on_each_day(lake):
    land_consents(lake, "b", [(A, "withdrawn", datetime(2026, 11, 10, 9)), (B, "granted", datetime(2026, 11, 4, 12)),
                              (B, "withdrawn", datetime(2026, 11, 4, 12)),      # same instant: withdrawn
                              (C, "granted", datetime(2026, 11, 6, 23, 59)), (C, "granted", datetime(2026, 11, 8)),
                              (A, "granted", datetime(2026, 11, 1), "partner_offers")])
    land_consents(lake, "a", [(A, "granted", datetime(2026, 11, 1, 9)), (A, "granted", datetime(2026, 11, 12)),
                              (C, "withdrawn", datetime(2026, 11, 9)), (B, "granted", datetime(2026, 11, 7))])
    con = duckdb.connect()
    define_spells(con, lake, PROFILING, date(2026, 11, 30))
    assert sorted(con.execute("SELECT * FROM consent_spells").fetchall()) == [
        (A, datetime(2026, 11, 1, 9), datetime(2026, 11, 10, 9)), (A, datetime(2026, 11, 12), None),
        (B, datetime(2026, 11, 4, 12), datetime(2026, 11, 4, 12)), (B, datetime(2026, 11, 7), None),
        (C, datetime(2026, 11, 6, 23, 59), datetime(2026, 11, 9))]          # a second grant extends, not starts
    for offset in range(-2, 16):
        day = date(2026, 11, 1) + timedelta(days=offset)
        define_standing(con, lake, day)
        standing = {s for s, p, g in con.execute("SELECT subscriber_number, purpose, granted FROM consent_standing")
                    .fetchall() if g and p == PROFILING}
        spells = {s for (s,) in con.execute(
            "SELECT subscriber_number FROM consent_spells WHERE granted_at < CAST(? AS DATE) + INTERVAL 1 DAY"
            " AND coalesce(withdrawn_at >= CAST(? AS DATE) + INTERVAL 1 DAY, true)", [day, day]).fetchall()}
        assert spells == standing, day


def test_a_spell_knows_only_what_was_recorded_by_its_day(lake):
    land_consents(lake, "a", [(A, "granted", datetime(2026, 11, 1)), (A, "withdrawn", datetime(2026, 11, 10))])
    con = duckdb.connect()
    define_spells(con, lake, PROFILING, date(2026, 11, 9))
    assert con.execute("SELECT withdrawn_at FROM consent_spells").fetchall() == [(None,)]
    assert define_spells(duckdb.connect(), lake, "partner_offers", date(2026, 11, 9)) == 0
