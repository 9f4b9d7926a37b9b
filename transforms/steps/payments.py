"""Payments step — the billing system's payments / invoice-status extract → `invoices/invoice_year=…/`.

The retention sweep keeps billing CDRs until full payment, at most until the
claim's limitation period, and invoices for the period of the policy's `invoice`
retention category (policy §5; docs/design.md §3); this step lands the facts it reads: one row per invoice with its status as of
the night the extract was taken. A payments extract is not a CDR file: it does
not go through the billing-data field check, the CDR suite or analytics.

The file is read strictly, every field as text (the CDR reader of ingest, so a
line that does not parse is quarantined by line with a reason, never with its
content). Each row is checked with set-based SQL; valid rows are typed, the
subscriber number is normalized to E.164 (as billing numbers are, so they
join) and committed per invoice year, failing rows go to `quarantine/night=…/`
with their reasons and the failing values blanked. Every row read ends in
exactly one of the two. Parts are named by the file's sha256, so the same file
loaded again replaces its rows instead of adding them twice. An invoice appears
once per extract that lists it; `as_of` says which night's status a row holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from transforms.formats.recognize import head_text, looks_like_header, records
from transforms.lake import Lake
from transforms.lake.connection import connect, execute
from transforms.lake.partitions import ZoneWrite, write_partitioned
from transforms.lake.permissions import make_dirs
from transforms.policy import Policy
from transforms.privacy.numbers import e164_sql, numbering_params
from transforms.privacy.redact import safe_error, safe_name
from transforms.steps.lines import FileShape, Layout, fingerprint
from transforms.steps.reading import HEAD_BYTES, INGEST_FLAG, LineNumbering, stage_delimited

ZONE = "invoices"
# Not a CDR format: the billing system's payments / invoice-status extract, one row per invoice. It goes
# through this step (invoices zone), never the CDR steps, so it has no source format.
PAYMENTS_PROFILE = "payments"
PAYMENTS_COLUMNS = (
    "invoice_id", "account_id", "subscriber_number", "billing_period", "invoice_date", "due_date",
    "amount_due", "amount_paid", "paid_date", "status", "claim_type",
)
_PAYMENTS_NAME = re.compile(r"^payments_.*\.csv$", re.IGNORECASE)
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
    ("subscriber_number_invalid", "subscriber_e164 IS NULL"
     " OR NOT regexp_full_match(subscriber_e164, '[+][1-9][0-9]{6,14}')", "subscriber_number"),
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


@dataclass(frozen=True)
class PaymentsResult:
    """What the payments step did with one extract."""

    file_name: str                  # sanitized display name
    sha256: str
    status: str                     # loaded | empty | rejected_file
    reason: str = ""
    rows_read: int = 0              # = rows_loaded + rows_quarantined
    rows_loaded: int = 0            # invoices committed to the invoices zone
    rows_quarantined: int = 0
    # rows_quarantined by why, each row once: a line the reader could not parse, an invoice id listed before
    # (whatever else is wrong with it), or else a failed check (docs/design.md §9)
    rows_unparseable: int = 0
    rows_duplicate: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)  # a row with two faults counts twice
    rows_by_invoice_year: dict[str, int] = field(default_factory=dict)
    invoice_files: tuple[str, ...] = ()      # relative to the lake root
    quarantine_files: tuple[str, ...] = ()


def is_payments_header(head: bytes) -> bool:
    """True when the first record of `head` is exactly the payments header."""
    first = next(iter(records(head_text(head), ",", limit=1)), None)
    return first is not None and tuple(n.strip() for n in first) == PAYMENTS_COLUMNS


def is_payments_extract(head: bytes, file_name: str) -> bool:
    """A file for the payments step: its header says so (renamed files still work), or its name does.

    A payments-named file without the payments header goes there too, and that step refuses it:
    an extract that says it is payments but is not must not be read as CDRs.
    """
    return is_payments_header(head) or bool(_PAYMENTS_NAME.match(file_name))


def load_payments(path: Path, policy: Policy, lake: Lake, work_dir: Path, *, night: str, run_id: str,
                  shape: FileShape | None = None) -> PaymentsResult:
    """Validate one payments extract; commit its invoices to `invoices/` and its failing rows to `quarantine/`.

    `shape` (sha256, physical lines, line endings) comes from the night's plan; it is taken when not given.
    """
    path = Path(path)
    shape = shape or fingerprint(path)
    lines = shape.lines
    base = dict(file_name=safe_name(path.name, 120), sha256=shape.sha256)
    if path.stat().st_size == 0:
        return PaymentsResult(**base, status="empty", reason="file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    if path.stat().st_size <= len(head) and not head.strip():
        # Blank lines are not records (README "How a file is read"): empty, as steps/ingest.py says of CDR files.
        return PaymentsResult(**base, status="empty", reason="no data rows (blank lines only)")
    if not is_payments_header(head):
        first = next(iter(records(head_text(head), ",", limit=1)), [])
        return _refused(base, NOT_PAYMENTS, lines, header_lines=int(looks_like_header(first)))
    make_dirs(work_dir)
    staged = work_dir / "payments_staged.parquet"
    con = connect(work_dir / "tmp")
    con.execute("SET disabled_optimizers = 'in_clause'")   # row position is identity (see ingest)
    try:
        names = ", ".join(f"c{i} AS {c}" for i, c in enumerate(PAYMENTS_COLUMNS))
        layout = Layout(len(PAYMENTS_COLUMNS), header=True)
        try:
            read = stage_delimited(con, path, shape, work_dir, layout, names, range(len(PAYMENTS_COLUMNS)), {},
                                   staged, head)
        except duckdb.Error as exc:
            return _refused(base, f"unreadable ({safe_error(exc)})", lines, header_lines=1)
    finally:
        con.close()
    if read.rows_staged + read.rows_unparseable == 0:
        return PaymentsResult(**base, status="empty", reason="no data rows")
    return _route(staged, read.unparseable_path, policy, lake, work_dir, base, night=night, run_id=run_id,
                  rows_read=read.rows_staged + read.rows_unparseable, rows_unparseable=read.rows_unparseable,
                  by_reason=dict(read.unparseable_by_reason), numbering=read.numbering)


def _refused(base: dict, reason: str, lines: int | None, header_lines: int = 0) -> PaymentsResult:
    """A whole file refused: its records (lines less the header) count as read and refused; no zone
    holds any of it."""
    n = max((lines or 0) - header_lines, 0)
    return PaymentsResult(**base, status="rejected_file", reason=reason, rows_read=n, rows_quarantined=n,
                          quarantined_by_reason={reason: n} if n else {})


def _route(staged: Path, unparseable_path: str | None, policy: Policy, lake: Lake, work_dir: Path, base: dict, *,
           night: str, run_id: str, rows_read: int, rows_unparseable: int, by_reason: dict[str, int],
           numbering: LineNumbering) -> PaymentsResult:
    sha = base["sha256"]
    params = {"staged": str(staged), "sha": sha, "night": night, "run_id": run_id,
              **numbering_params(policy.operator), "statuses": list(INVOICE_STATUSES),
              "claim_types": list(policy.claim_types), "unparseable": unparseable_path}
    valid_path, rejected_path = work_dir / "invoices_valid.parquet", work_dir / "payments_quarantine.parquet"
    text = ", ".join(f"NULLIF(trim({c}), '') AS {c}" for c in PAYMENTS_COLUMNS)
    typed = ", ".join(f"{expr} AS {name}" for name, expr in TYPED.items())
    reasons = ", ".join(f"CASE WHEN {pred} THEN '{reason}' END" for reason, pred, _ in RULES)
    con = connect(work_dir / "tmp")
    try:
        execute(con, f"""
            CREATE TEMP TABLE candidate AS
            SELECT {numbering.source_row()} AS source_row, {text}, {INGEST_FLAG}
            FROM read_parquet($staged, file_row_number = true)""", params)
        execute(con, f"CREATE TEMP TABLE typed AS SELECT *, {typed} FROM candidate", params)
        # The first row of an invoice id stays; later rows with the same id are duplicates.
        execute(con, f"""
            CREATE TEMP TABLE verdict AS
            SELECT source_row, reasons FROM (
                SELECT source_row, list_filter([{INGEST_FLAG}, {reasons},
                    CASE WHEN invoice_id IS NOT NULL AND row_number() OVER (
                        PARTITION BY invoice_id ORDER BY source_row) > 1 THEN '{DUPLICATE}' END],
                    lambda x: x IS NOT NULL) AS reasons
                FROM typed)
            WHERE len(reasons) > 0""", params)
        by_rule = dict(con.execute("SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM verdict)"
                                   " GROUP BY reason").fetchall())
        for reason, n in by_rule.items():
            by_reason[reason] = by_reason.get(reason, 0) + n
        execute(con, """
            COPY (
                SELECT md5($sha || ':' || source_row) AS record_id, invoice_id, account_id,
                       subscriber_e164 AS subscriber_number, billing_period, invoice_d AS invoice_date,
                       due_d AS due_date, amount_due_n AS amount_due, amount_paid_n AS amount_paid,
                       paid_d AS paid_date, status, claim_type,
                       $sha AS source_file_sha256, source_row, CAST($night AS DATE) AS as_of, $run_id AS run_id,
                       year(period_start) AS invoice_year
                FROM typed ANTI JOIN verdict USING (source_row)
                ORDER BY source_row
            ) TO $dst (FORMAT parquet, COMPRESSION zstd)""", {**params, "dst": str(valid_path)})
        blank_params = {f"b{i}": [r for r, _, col in RULES if col == c] for i, c in enumerate(PAYMENTS_COLUMNS)}
        # Values that failed their rule, or hold a line break (a record that swallowed the next line), go blank.
        blanked = ", ".join(
            f"CASE WHEN list_has_any(v.reasons, $b{i}) OR contains(c.{c}, chr(10)) OR contains(c.{c}, chr(13))"
            f" THEN NULL ELSE c.{c} END AS {c}" for i, c in enumerate(PAYMENTS_COLUMNS))
        parts = [f"""
            SELECT c.source_row, array_to_string(v.reasons, '; ') AS reason,
                   md5($sha || ':' || c.source_row) AS record_id, {blanked}
            FROM candidate c JOIN verdict v USING (source_row)"""]
        if unparseable_path:
            nulls = ", ".join(f"CAST(NULL AS VARCHAR) AS {c}" for c in PAYMENTS_COLUMNS)
            parts.append(f"""
                SELECT source_row, reason, md5($sha || ':' || source_row), {nulls}
                FROM read_parquet($unparseable)""")
        columns = ", ".join(PAYMENTS_COLUMNS)
        quarantined = execute(con, f"""
            COPY (
                SELECT CAST($night AS DATE) AS night, record_id, $sha AS source_file_sha256, source_row,
                       $run_id AS run_id, reason, '{ZONE}' AS dataset, {columns}
                FROM ({' UNION ALL '.join(parts)})
                ORDER BY source_row
            ) TO $dst (FORMAT parquet, COMPRESSION zstd)""",
                                       {**params, **blank_params, "dst": str(rejected_path)}).fetchone()[0]
    finally:
        con.close()
    invoices = write_partitioned(str(valid_path), lake, ZONE, "invoice_year", work_dir, sha)
    quarantine = (write_partitioned(str(rejected_path), lake, "quarantine", "night", work_dir, sha)
                  if quarantined else ZoneWrite("quarantine", 0))
    if rows_read != invoices.rows_written + quarantined:
        raise AssertionError("payments row conservation broken")   # never expected; the file is recorded failed
    return PaymentsResult(**base, status="loaded", rows_read=rows_read, rows_loaded=invoices.rows_written,
                          rows_quarantined=quarantined, rows_unparseable=rows_unparseable,
                          rows_duplicate=by_rule.get(DUPLICATE, 0), quarantined_by_reason=by_reason,
                          rows_by_invoice_year=invoices.rows_by_partition, invoice_files=invoices.files,
                          quarantine_files=quarantine.files)
