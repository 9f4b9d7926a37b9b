"""The payments / invoice-status extract: one row per (postpaid subscriber, billing period)
invoice, its status as of the night, and one row of each payments defect."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .formats import PAYMENTS_COLUMNS, PAYMENTS_PROFILE
from .generator import Generator
from .manifest import PAYMENT_DEFECTS
from .reference import (
    BUSINESS,
    BUSINESS_ACCOUNT_BLOCK,
    DISPUTED,
    DUE_DAYS,
    FATE_SHARES,
    INVOICE_DAY,
    INVOICE_MONTHS,
    MONTHLY_FEE_CENTS,
    PAID,
    PARTIAL,
    UNPAID,
    VAT_PERCENT,
)
from .vectorized import _affine, _amount, _blank_unless, _cat, _choice_hash, _dec, _hash, _lines, _pick, _unit, _where
from .writing import _row_bytes


def write_payments(gen: Generator) -> None:
    """One row per (postpaid subscriber, billing period) invoice, status as of the night."""
    name = f"payments_{gen.tag}.csv"
    pop, seed = gen.pop, gen.seed
    subs = np.flatnonzero(~pop.prepaid)
    night_month = np.datetime64(gen.night_date, "M")
    periods = night_month - np.arange(INVOICE_MONTHS, 0, -1)            # oldest first
    per = np.repeat(periods, len(subs))
    sub = np.tile(subs, INVOICE_MONTHS)
    n = len(sub)
    key = per.astype(np.int64).astype(np.uint64) * np.uint64(1 << 32) + sub.astype(np.uint64)
    issued = (per + 1).astype("datetime64[D]") + (INVOICE_DAY - 1)
    due = issued + DUE_DAYS
    today = np.datetime64(gen.night_date, "D")

    fate = _choice_hash(_hash(seed, 40, key), FATE_SHARES)
    settle = issued + (1 + (_hash(seed, 41, key) % np.uint64(45)).astype(np.int64))   # payment or dispute day
    # However small the night, its oldest period (all fates reached) shows each kind at least once.
    oldest = np.flatnonzero(per == periods[0])
    spare = oldest[np.argsort(_hash(seed, 42, key[oldest]), kind="stable")]
    for j, kind in enumerate((PARTIAL, DISPUTED, UNPAID)):
        if not (fate[oldest] == kind).any() and j < len(spare):
            fate[spare[j]] = kind
    reached = settle <= today
    status = np.select([(fate == PAID) & reached, (fate == PARTIAL) & reached, (fate == DISPUTED) & reached],
                       [0, 2, 3], 1)                                      # index into the names below
    fee = MONTHLY_FEE_CENTS[pop.tariff[sub]]
    extra = (_hash(seed, 43, key) % np.uint64(1500)).astype(np.int64) * (_unit(_hash(seed, 44, key)) < 0.4)
    due_cents = (fee + extra) * (100 + VAT_PERCENT) // 100
    part = due_cents * (20 + (_hash(seed, 45, key) % np.uint64(60)).astype(np.int64)) // 100
    paid_cents = np.select([status == 0, status == 2], [due_cents, part], 0)
    has_paid_date = (status == 0) | (status == 2)

    business = BUSINESS[pop.tariff[sub]]
    a, b = _affine(seed, 46, 10**7)
    consumer_no = (np.uint64(a) * sub.astype(np.uint64) + np.uint64(b)) % np.uint64(10**7)
    a, b = _affine(seed, 47, 10**7)
    company_no = (np.uint64(a) * (sub // BUSINESS_ACCOUNT_BLOCK).astype(np.uint64) + np.uint64(b)) % np.uint64(10**7)
    account = _where(business, _cat("ACC-9", _dec(company_no, 7)), _cat("ACC-1", _dec(consumer_no, 7)))
    a, b = _affine(seed, 48, 10**8)
    serial = (np.uint64(a) * sub.astype(np.uint64) + np.uint64(b)) % np.uint64(10**8)
    period = pa.array(np.datetime_as_string(per, unit="M"))
    invoice_date = pa.array(np.datetime_as_string(issued, unit="D"))
    cols = {
        "invoice_id": _cat("INV-", pc.replace_substring(period, "-", ""), "-", _dec(serial, 8)),
        "account_id": account,
        "subscriber_number": _pick(pop.msisdn, sub),
        "billing_period": period,
        "invoice_date": invoice_date,
        "due_date": pa.array(np.datetime_as_string(due, unit="D")),
        "amount_due": _amount(due_cents, 2),
        "amount_paid": _amount(paid_cents, 2),
        "paid_date": _blank_unless(has_paid_date, pa.array(np.datetime_as_string(settle, unit="D"))),
        "status": _pick(pa.array(["paid", "open", "partially_paid", "disputed"]), status),
        "claim_type": _where(business, "business_services", "consumer_services"),
    }
    gen.collect.payments(cols["subscriber_number"], cols["account_id"])
    # Defects, one each, on rows spread over the file; the duplicate follows its original.
    at = {kind: (j + 1) * n // 5 for j, kind in enumerate(PAYMENT_DEFECTS)}

    def only(kind: str) -> np.ndarray:
        mask = np.zeros(n, dtype=bool)
        mask[at[kind]] = True
        return mask

    cols["invoice_date"] = _where(only("bad_payment_date"), _cat(pc.utf8_slice_codeunits(invoice_date, 0, 4),
                                                                   "-02-30"), cols["invoice_date"])
    cols["status"] = _where(only("bad_payment_status"), "settled", cols["status"])
    cols["invoice_id"] = _where(only("missing_invoice_id"), "", cols["invoice_id"])
    order = np.insert(np.arange(n), at["duplicate_invoice"] + 1, at["duplicate_invoice"])
    lines = _lines([_pick(cols[c], order) for c in PAYMENTS_COLUMNS])
    gen.write_bytes(name, _row_bytes(PAYMENTS_COLUMNS, "minimal") + bytes(lines.data))
    gen.record(name, PAYMENTS_PROFILE, len(order), {k: 1 for k in PAYMENT_DEFECTS})
