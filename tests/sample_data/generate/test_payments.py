"""The payments extract: one invoice per postpaid subscriber and period, statuses, accounts, defects."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from sample_data.generate import PAYMENT_DEFECTS, Population, population_size
from transforms.steps.payments import PAYMENTS_COLUMNS

from .common import NIGHT, PAYMENTS_FILE, ROWS, SEED, T, _records


def _payments(out: Path, day: str = T) -> list[dict[str, str]]:
    records = _records(out / f"payments_{day}.csv")
    assert tuple(records[0]) == PAYMENTS_COLUMNS
    return [dict(zip(records[0], r)) for r in records[1:]]


def _iso(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def test_payments_one_invoice_per_postpaid_subscriber_and_period(night):
    out, manifest = night
    rows = _payments(out)
    assert len(rows) == manifest.files[PAYMENTS_FILE].rows
    pop = Population.build(SEED, population_size(ROWS))
    postpaid = set(pc_take(pop.msisdn, ~pop.prepaid))
    assert {r["subscriber_number"] for r in rows} == postpaid          # E.164, as the CDRs spell it
    pairs = {(r["subscriber_number"], r["billing_period"]) for r in rows}
    assert len(pairs) == 3 * len(postpaid) == len(rows) - 1            # plus the row delivered twice
    assert {r["billing_period"] for r in rows} == {"2026-08", "2026-09", "2026-10"}   # 3 months before November


def pc_take(arr, mask) -> list[str]:
    return [v for v, keep in zip(arr.to_pylist(), mask) if keep]


def test_payments_rows_follow_the_invoice_rules_except_the_injected_ones(night):
    out, manifest = night
    rows = _payments(out)
    failing = 0
    for r in rows:
        year, month = map(int, r["billing_period"].split("-"))
        issued = date(year + month // 12, month % 12 + 1, 3)
        invoice_date, due, paid = _iso(r["invoice_date"]), _iso(r["due_date"]), _iso(r["paid_date"])
        ok = (bool(r["invoice_id"]) and invoice_date == issued and due is not None and (due - issued).days == 15
              and r["status"] in ("paid", "open", "partially_paid", "disputed")
              and r["claim_type"] in ("consumer_services", "business_services"))
        if ok and r["status"] == "paid":
            ok = paid is not None and issued < paid <= NIGHT and r["amount_paid"] == r["amount_due"]
        if ok and r["status"] == "partially_paid":
            ok = paid is not None and 0 < float(r["amount_paid"]) < float(r["amount_due"])
        if ok and r["status"] in ("open", "disputed"):
            ok = r["paid_date"] == "" and float(r["amount_paid"]) == 0
        failing += not ok
    defects = manifest.files[PAYMENTS_FILE].defects
    assert defects == {k: 1 for k in PAYMENT_DEFECTS}
    assert failing == defects["bad_payment_date"] + defects["bad_payment_status"] + defects["missing_invoice_id"]
    as_tuples = [tuple(r.values()) for r in rows]
    assert len(as_tuples) - len(set(as_tuples)) == defects["duplicate_invoice"]
    ids = [r["invoice_id"] for r in rows if r["invoice_id"]]
    assert len(ids) - len(set(ids)) == defects["duplicate_invoice"]
    assert sum(r["status"] == "settled" for r in rows) == 1 and sum(r["invoice_id"] == "" for r in rows) == 1


def test_payments_statuses_claim_types_and_accounts(night, other_night):
    (out_a, _), (out_b, _) = night, other_night
    rows = _payments(out_a)
    statuses = [r["status"] for r in rows]
    assert {"paid", "open", "partially_paid", "disputed"} <= set(statuses)
    assert statuses.count("paid") > len(rows) / 2 > statuses.count("open")
    assert statuses.count("partially_paid") < len(rows) / 10 and statuses.count("disputed") < len(rows) / 10
    claims = [r["claim_type"] for r in rows]
    assert set(claims) == {"consumer_services", "business_services"}
    assert claims.count("consumer_services") > claims.count("business_services")
    account_of: dict[str, set[str]] = {}
    for day, out in ((T, out_a), ("2026-11-23", out_b)):
        for r in _payments(out, day):
            assert re.fullmatch(r"ACC-\d{8}", r["account_id"])
            account_of.setdefault(r["subscriber_number"], set()).add(r["account_id"])
    assert all(len(a) == 1 for a in account_of.values()), "an account per subscriber, the same every night"
    holders: dict[str, set[str]] = {}
    for r in rows:
        holders.setdefault(r["account_id"], set()).add(r["subscriber_number"])
    shared = [a for a, subs in holders.items() if len(subs) > 1]
    assert shared and all(r["claim_type"] == "business_services" for r in rows if r["account_id"] in shared)
