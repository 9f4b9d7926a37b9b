"""transforms/retention/due.py — golden due dates written from the policy text (§5, §3.2, §3.3), holds, safety.

Every expected date below is worked out by hand from the law, not read off the code:

* §5 ¶1-2: billing data are kept "do popolnega plačila storitve oziroma najdlje do poteka
  zastaralnih rokov" — until full payment, at most until the claim's limitation period (our
  catalog: consumer claims 1 year, business 3 years, from the end of the billing period);
* §5 ¶1: invoices "še 10 let po poteku leta, na katerega se račun nanaša" — 10 years after the end
  of the year the invoice is for;
* §3.2 ¶4: roaming aggregates six months; the catalog counts from the end of the aggregated month;
* §3.3 ¶6: fraud history five years after the customer relationship ends.

A period ends on the same day number so many months/years later, or on the last day of a shorter
month (Obligacijski zakonik, Art. 59); the data are kept through that day and are due the next.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from tests.transforms.retention.conftest import (BUSINESS, DISPUTED, KEYRING, LEAP, NO_INVOICE, PAID, UNPAID,
                                                 analytics_rows, numbers_left, run_sweep)
from transforms.policy import Period
from transforms.retention import holds


# --- the rules themselves (policy object, no lake) ---------------------------------------------------

@pytest.mark.parametrize("category, anchor, claim, due", [
    # unpaid consumer call of 14 Mar 2026: period ends 31 Mar 2026, +1 year = 31 Mar 2027, due 1 Apr 2027
    ("billing_cdr", date(2026, 3, 31), "consumer_services", date(2027, 4, 1)),
    ("billing_cdr", date(2026, 3, 31), "business_services", date(2029, 4, 1)),   # 3 years
    ("billing_cdr", date(2026, 3, 31), None, date(2027, 4, 1)),                 # default claim: 1 year
    # leap day: February 2024 ends on the 29th; 29 Feb 2025 does not exist, so 28 Feb 2025; due 1 Mar
    ("billing_cdr", date(2024, 2, 29), "consumer_services", date(2025, 3, 1)),
    # an invoice dated 31 December 2025 is for 2025: kept through 31 Dec 2035, due 1 Jan 2036
    ("invoice", date(2025, 12, 31), None, date(2036, 1, 1)),
    # roaming aggregate of August 2026: 31 Aug + 6 months = 28 Feb 2027 (shorter month), due 1 Mar 2027
    ("roaming_aggregate", date(2026, 8, 31), None, date(2027, 3, 1)),
    ("roaming_aggregate", date(2024, 2, 29), None, date(2024, 8, 30)),         # 29 Feb + 6 months = 29 Aug
    # fraud history, relationship ended 30 June 2026: five years, due 1 July 2031
    ("fraud_history", date(2026, 6, 30), None, date(2031, 7, 1)),
    ("fraud_history", date(2024, 2, 29), None, date(2029, 3, 1)),
    ("authority_request_log", date(2026, 1, 15), None, date(2029, 1, 16)),     # three years from the request
    ("lawful_interception", date(2026, 1, 15), None, date(2056, 1, 16)),       # thirty years from the measure
])
def test_due_dates_from_the_law(policy, category, anchor, claim, due):
    assert policy.retention_for(category).due_on(anchor, claim) == due


def test_period_sql_twin_agrees_with_python():
    con = duckdb.connect()
    days = [date(2023, 1, 31), date(2024, 2, 29), date(2024, 12, 31), date(2025, 8, 31), date(2026, 3, 30)]
    for period in (Period(0, 6), Period(1), Period(3), Period(10), Period(0, 1), Period(0, 0, 30)):
        for d in days:
            got = con.execute(f"SELECT {period.after_sql('$d')}", {"d": d}).fetchone()[0]
            assert got == period.after(d), (period, d)


def test_golden_billing_days(golden_lake, policy):
    lake = golden_lake
    hold = holds.place(lake, policy, KEYRING, reason="dispute INV-4", placed_by="billing-ops", subscriber=DISPUTED)
    everyone = {PAID, UNPAID, BUSINESS, DISPUTED, NO_INVOICE, LEAP}
    # 28 Feb 2025: the leap-day call is kept through 28 Feb 2025 (1 year after 29 Feb 2024) ...
    run_sweep(lake, policy, "2025-02-28")
    assert numbers_left(lake) == everyone
    # ... and goes on 1 March 2025.
    run_sweep(lake, policy, "2025-03-01")
    assert numbers_left(lake) == everyone - {LEAP}
    # The paid March invoice: kept through the payment day (20 April), gone on 21 April 2026.
    run_sweep(lake, policy, "2026-04-20")
    assert PAID in numbers_left(lake)
    result = run_sweep(lake, policy, "2026-04-21")
    assert numbers_left(lake) == {UNPAID, BUSINESS, DISPUTED, NO_INVOICE}
    # The incoming call PAID received went too (PAID is its served subscriber), and its analytics row.
    assert [(a.action, a.rows, a.due_on) for a in result.actions if a.dataset == "billing"] == [
        ("anonymized", 2, "2026-04-21"), ("kept", 4, "2027-04-01")]
    assert [(a.action, a.rows) for a in result.actions if a.dataset == "analytics"] == [("deleted", 2), ("kept", 4)]
    # Unpaid consumer claims, and no invoice at all: one year after the end of March 2026.
    run_sweep(lake, policy, "2027-03-31")
    assert numbers_left(lake) == {UNPAID, BUSINESS, DISPUTED, NO_INVOICE}
    result = run_sweep(lake, policy, "2027-04-01")
    assert numbers_left(lake) == {BUSINESS, DISPUTED}
    held = [a for a in result.actions if a.action == "held"]
    assert {(a.dataset, a.rows, a.hold_ids) for a in held} == {("billing", 1, hold.hold_id),
                                                                 ("analytics", 1, hold.hold_id)}
    # Releasing the hold: the disputed call is due at the next sweep.
    holds.release(lake, policy, hold.hold_id, released_by="billing-ops", reason="dispute settled")
    run_sweep(lake, policy, "2027-04-02")
    assert numbers_left(lake) == {BUSINESS}
    # The business claim runs three years.
    run_sweep(lake, policy, "2029-03-31")
    assert numbers_left(lake) == {BUSINESS}
    run_sweep(lake, policy, "2029-04-01")
    assert numbers_left(lake) == set() and analytics_rows(lake) == 0
    assert not list(lake.zone("billing").iterdir())          # emptied partitions are removed


def test_golden_invoices_and_roaming(golden_lake, policy):
    lake = golden_lake
    run_sweep(lake, policy, "2027-02-28")
    assert (lake.zone("roaming") / "month=2026-08").exists() and not (lake.zone("roaming") / "month=2024-02").exists()
    assert (lake.zone("roaming") / "status" / "as_of=2026-08").exists()
    run_sweep(lake, policy, "2027-03-01")
    assert not (lake.zone("roaming") / "month=2026-08").exists()
    assert not (lake.zone("roaming") / "status").exists()          # emptied folders go too
    # The 2025 invoice (paid in January 2026) is kept ten years after the end of 2025.
    run_sweep(lake, policy, "2035-12-31")
    assert (lake.zone("invoices") / "invoice_year=2025").exists()
    result = run_sweep(lake, policy, "2036-01-01")
    assert not (lake.zone("invoices") / "invoice_year=2025").exists()
    assert (lake.zone("invoices") / "invoice_year=2026").exists()
    assert [(a.partition, a.action, a.rows, a.due_on) for a in result.actions if a.dataset == "invoices"] == [
        ("invoice_year=2025", "deleted", 1, "2036-01-01"), ("invoice_year=2026", "kept", 5, "2037-01-01")]
