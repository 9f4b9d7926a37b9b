"""Payments step — the billing system's payments / invoice-status extract → `invoices/invoice_year=…/`.

The retention sweep keeps billing CDRs until full payment, at most until the
claim's limitation period, and invoices for the period of the policy's `invoice`
retention category (policy §5; docs/design.md §3); this step lands the facts it reads: one row per invoice with its status as of
the night the extract was taken. A payments extract is not a CDR file: it does
not go through the billing-data field check, the CDR suite or analytics.

It is a fixed-header extract (`steps/extract.py` reads, checks, quarantines and commits it); this module
declares what is its own: the columns, their types, the rules and the invoice row. The subscriber number
is normalized to E.164 (as billing numbers are, so they join); rows are committed per invoice year. An
invoice appears once per extract that lists it; `as_of` says which night's status a row holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from transforms.lake import Lake
from transforms.policy import Policy
from transforms.privacy.numbers import e164_sql
from transforms.steps.extract import Extract, ExtractResult, load_extract, not_e164
from transforms.steps.lines import FileShape

ZONE = "invoices"
# Not a CDR format: the billing system's payments / invoice-status extract, one row per invoice. It goes
# through this step (invoices zone), never the CDR steps, so it has no source format.
PAYMENTS_PROFILE = "payments"
PAYMENTS_COLUMNS = (
    "invoice_id", "account_id", "subscriber_number", "billing_period", "invoice_date", "due_date",
    "amount_due", "amount_paid", "paid_date", "status", "claim_type",
)
# Identifying columns of an invoice row (the retention proof looks for their values after a deletion).
IDENTIFYING_COLUMNS = ("invoice_id", "subscriber_number", "account_id")
INVOICE_STATUSES = ("paid", "open", "partially_paid", "disputed", "written_off")
DUPLICATE = "duplicate_invoice"
NOT_PAYMENTS = "named as a payments extract, but its header is not the payments header"

# Typed values of a row: NULL when the text is missing or does not have the shape (no silent rounding).
_DATE = "CASE WHEN regexp_full_match({v}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') THEN TRY_CAST({v} AS DATE) END"
_AMOUNT = ("CASE WHEN regexp_full_match({v}, '[0-9]{{1,14}}([.][0-9]{{1,4}})?')"
           " THEN CAST({v} AS DECIMAL(18,4)) END")
TYPED = {
    "subscriber_e164": e164_sql("subscriber_number"),
    "period_start": "CASE WHEN regexp_full_match(billing_period, '[0-9]{4}-[0-9]{2}')"
                    " THEN TRY_CAST(billing_period || '-01' AS DATE) END",
    "invoice_d": _DATE.format(v="invoice_date"),
    "due_d": _DATE.format(v="due_date"),
    "paid_d": _DATE.format(v="paid_date"),
    "amount_due_n": _AMOUNT.format(v="amount_due"),
    "amount_paid_n": _AMOUNT.format(v="amount_paid"),
}

# reason, predicate over a typed row (true when the row FAILS), the source column whose value is blanked
# in quarantine. Constants only: values reach the SQL as parameters ($statuses, $claim_types, $cc, $nsn).
RULES = (
    ("invoice_id_missing", "invoice_id IS NULL", None),
    ("subscriber_number_invalid", not_e164("subscriber_e164"), "subscriber_number"),
    ("billing_period_invalid", "period_start IS NULL", "billing_period"),
    ("invoice_date_invalid", "invoice_d IS NULL", "invoice_date"),
    ("due_date_invalid", "due_d IS NULL", "due_date"),
    ("paid_date_invalid", "paid_date IS NOT NULL AND paid_d IS NULL", "paid_date"),
    ("amount_due_invalid", "amount_due_n IS NULL", "amount_due"),
    ("amount_paid_invalid", "amount_paid IS NOT NULL AND amount_paid_n IS NULL", "amount_paid"),
    ("status_invalid", "status IS NULL OR NOT list_contains($statuses, status)", "status"),
    ("paid_without_paid_date", "status = 'paid' AND paid_date IS NULL", None),
    ("claim_type_invalid", "claim_type IS NULL OR NOT list_contains($claim_types, claim_type)", "claim_type"),
)

PAYMENTS = Extract(
    profile=PAYMENTS_PROFILE, columns=PAYMENTS_COLUMNS, file_name=re.compile(r"^payments_.*\.csv$", re.IGNORECASE),
    not_this=NOT_PAYMENTS, zone=ZONE, partition="invoice_year", typed=TYPED, rules=RULES,
    # The first row of an invoice id stays; later rows with the same id are duplicates.
    duplicate=DUPLICATE, duplicate_key=("invoice_id",),
    output="""invoice_id, account_id, subscriber_e164 AS subscriber_number, billing_period,
              invoice_d AS invoice_date, due_d AS due_date, amount_due_n AS amount_due,
              amount_paid_n AS amount_paid, paid_d AS paid_date, status, claim_type,
              $sha AS source_file_sha256, source_row, CAST($night AS DATE) AS as_of, $run_id AS run_id,
              year(period_start) AS invoice_year""",
    parameters=lambda policy: {"statuses": list(INVOICE_STATUSES), "claim_types": list(policy.claim_types)},
)


@dataclass(frozen=True)
class PaymentsResult(ExtractResult):
    """What the payments step did with one extract; its partitions are invoice years."""

    @property
    def rows_by_invoice_year(self) -> dict[str, int]:
        return self.rows_by_partition

    @property
    def invoice_files(self) -> tuple[str, ...]:
        """Relative to the lake root."""
        return self.zone_files


def is_payments_header(head: bytes) -> bool:
    """True when the first record of `head` is exactly the payments header."""
    return PAYMENTS.is_header(head)


def is_payments_extract(head: bytes, file_name: str) -> bool:
    """A file for the payments step: its header says so (renamed files still work), or its name does
    (`payments_*.csv`; without the header the step refuses it)."""
    return PAYMENTS.claims(head, file_name)


def load_payments(path: Path, policy: Policy, lake: Lake, work_dir: Path, *, night: str, run_id: str,
                  shape: FileShape | None = None) -> PaymentsResult:
    """Validate one payments extract; commit its invoices to `invoices/` and its failing rows to `quarantine/`.

    `shape` (sha256, physical lines, line endings) comes from the night's plan; it is taken when not given.
    """
    return load_extract(PAYMENTS, path, policy, lake, work_dir, night=night, run_id=run_id, shape=shape,
                        result=PaymentsResult)
