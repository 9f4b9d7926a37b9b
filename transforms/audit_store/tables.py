"""The audit store's tables, one row dataclass each: the only definition of their columns.

The DDL is generated from these classes (`ddl`), the nightly run's fragments hold these rows
(`transforms.nightly.facts`), and `store.insert` writes them by column name. Values of personal data
never go in: names (sanitized by the steps), counts, hashes, clauses and key ids only (docs/design.md §6).

A field's Python type gives its DuckDB type (`Integer` for a 32-bit column); `X | None` is nullable,
anything else NOT NULL. docs/audit_schema.md describes every column; a test keeps it in step.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from transforms.policy.model import SUBJECT_RIGHTS

Integer = Annotated[int, "INTEGER"]

_SQL_TYPES = {str: "VARCHAR", int: "BIGINT", bool: "BOOLEAN", float: "DOUBLE", date: "DATE",
              datetime: "TIMESTAMPTZ"}


@dataclass(frozen=True)
class Table:
    """One audit table: its name and the constraints its rows' types do not say."""

    name: str
    row: type
    primary_key: str | None = None
    unique: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    per_run: bool = False          # rows belong to one run and are replaced whole when it is merged again


TABLES: dict[str, Table] = {}


def table(name: str, **constraints: Any):
    """Register a row dataclass as the definition of audit table `name`."""
    def register(cls: type) -> type:
        TABLES[name] = Table(name, cls, **constraints)
        cls.__table__ = name
        return cls
    return register


def table_of(row_type: type) -> Table:
    return TABLES[row_type.__table__]


def column_names(row_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(row_type))


def _column_type(hint: Any) -> tuple[str, bool]:
    """(DuckDB type, nullable) of a field's annotation."""
    nullable = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = True
    if typing.get_origin(hint) is Annotated:
        return typing.get_args(hint)[1], nullable
    return _SQL_TYPES[hint], nullable


def column_type(row_type: type, name: str) -> tuple[str, bool]:
    """(DuckDB type, nullable) of one column of a table's row dataclass."""
    return _column_type(typing.get_type_hints(row_type, include_extras=True)[name])


def ddl(t: Table) -> str:
    """CREATE TABLE IF NOT EXISTS for one table, from its row dataclass."""
    hints = typing.get_type_hints(t.row, include_extras=True)
    lines = []
    for name in column_names(t.row):
        sql_type, nullable = _column_type(hints[name])
        if name == t.primary_key:
            lines.append(f"{name} {sql_type} PRIMARY KEY")
        else:
            lines.append(f"{name} {sql_type}{'' if nullable else ' NOT NULL'}{' UNIQUE' if name in t.unique else ''}")
    lines += [f"CHECK ({c})" for c in t.checks]
    return f"CREATE TABLE IF NOT EXISTS {t.name} (\n    " + ",\n    ".join(lines) + "\n);"


# ------------------------------------------------------------------------------------------ the nightly run

@table("runs", primary_key="run_id")
@dataclass(frozen=True, kw_only=True)
class Run:
    """One run of the nightly audit."""

    run_id: str
    night: date
    trigger: str                            # cli | airflow
    started_at: datetime
    finished_at: datetime | None = None
    status: str                             # running | completed | completed_with_errors | abandoned
    policy_id: str
    policy_version: str
    policy_sha256: str
    code_version: str
    files_seen: Integer | None = None
    files_processed: Integer | None = None
    files_skipped_known: Integer | None = None
    files_rejected: Integer | None = None
    files_failed: Integer | None = None
    rows_read: int | None = None
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    status_reason: str | None = None        # why a run was abandoned (docs/design.md §10)


@table("source_files", checks=("rows_read = rows_loaded + rows_rejected",), per_run=True)
@dataclass(frozen=True, kw_only=True)
class SourceFile:
    """One landing file in one run: its outcome and row accounting."""

    run_id: str
    night: date
    file_name: str                          # sanitized
    sha256: str
    bytes: int
    lines: int | None                       # physical lines incl. header and blank lines (None: Parquet)
    profile: str | None
    status: str                             # loaded | quarantined (read, no row loaded) | empty | rejected_file |
                                            # duplicate_file | known | ignored | failed
    reason: str | None
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    duplicate_of: str | None = None         # sha256 of the file first seen with the same bytes
    billing_partitions: Integer
    processed_at: datetime
    # A file read row by row (None otherwise): its rows not loaded by why, each row once, so that
    # rows_rejected = rows_failing + rows_duplicate + rows_unparseable (docs/design.md §9).
    rows_failing: int | None = None         # failing a rule (or a type) and not a repeat
    rows_duplicate: int | None = None       # repeating an earlier row (CDRs) / invoice id (payments) of the file
    rows_unparseable: int | None = None     # records the reader could not parse, by line
    # The file's loaded CDRs against the night (policy lateness.window_days; None: not counted).
    lateness_window_days: Integer | None = None
    rows_before_lateness_window: int | None = None   # dated more than the window before the night
    rows_after_night: int | None = None              # dated after the night
    # The delivery's content, decompressed and its line endings made LF (None: its bytes are its content): the plan
    # knows a delivery by it, so a gzipped copy or a CRLF re-export of a file audited before is `known`
    # (docs/design.md §1).
    content_sha256: str | None = None


@table("field_findings", per_run=True)
@dataclass(frozen=True, kw_only=True)
class FieldFinding:
    """One source column of one file, classified against the allowed billing-data list."""

    run_id: str
    sha256: str
    file_name: str
    column_index: Integer
    source_column: str                      # sanitized name, never a value
    classification: str                     # allowed | not_allowed | unknown
    action: str                             # kept | derived | dropped
    canonical_columns: str
    clause: str


@table("validation_results", per_run=True)
@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    """One expectation of the suite on one file: counts only, never the failing values."""

    run_id: str
    sha256: str
    file_name: str
    rule: str
    expectation: str
    column_name: str | None
    clause: str
    success: bool
    element_count: int | None
    unexpected_count: int | None            # as GX counted it
    rows_quarantined: int                   # rows routed to quarantine by this rule


@table("rejection_reasons", per_run=True)
@dataclass(frozen=True, kw_only=True)
class RejectionReason:
    """Rows of one file quarantined for one reason (a row with two faults counts under both); for a file refused
    whole, its reason with all its rows, none of them kept (docs/design.md §9)."""

    run_id: str
    sha256: str
    file_name: str
    reason: str
    rows: int


@table("pseudonymization_log", per_run=True)
@dataclass(frozen=True, kw_only=True)
class Pseudonymization:
    """One column of one file tokenized for a data set, with the key id (never the key)."""

    run_id: str
    sha256: str
    file_name: str
    dataset: str                            # analytics
    column_name: str
    method: str                             # hmac-sha256 over the E.164 / normalized value
    key_id: str
    rows: int
    distinct_values: int


@table("analytics_findings", per_run=True)
@dataclass(frozen=True, kw_only=True)
class AnalyticsFinding:
    """What one billing column of one file became in analytics, and by which clause."""

    run_id: str
    sha256: str
    file_name: str
    dataset: str
    column_name: str                        # the billing column
    output_column: str | None               # what analytics holds instead (None: dropped)
    treatment: str                          # the policy's analytics treatment
    action: str                             # kept | pseudonymized | generalized | dropped
    clause: str


@table("aggregate_releases", per_run=True)
@dataclass(frozen=True, kw_only=True)
class AggregateRelease:
    """One release table of one release of an event date's k-anonymous aggregates, as the run that made the
    release recorded it: counts only (a row written before the release tables, `release_table` NULL, covers the
    date's single grain; one written before releases were made once has `release_number` NULL)."""

    run_id: str
    event_date: date
    dataset: str                            # aggregates
    k: Integer
    groups_total: int                       # the table's cells
    groups_released: int
    groups_suppressed_primary: int          # fewer than k subscribers
    groups_suppressed_secondary: int        # suppressed so no released cell minus finer released cells reveals one
    rows_suppressed: int                    # events in suppressed cells
    release_table: str | None = None        # the policy's analytics.release_tables name
    clause: str | None = None
    other_cells_released: int | None = None  # `other` rows: a released parent's suppressed cells together
    events: int | None = None
    events_released: int | None = None      # events in released cells (`other` rows not counted)
    share_events_released: float | None = None
    # Released once (policy aggregate_release, docs/design.md §4); NULL in rows of older versions.
    release_kind: str | None = None         # day | late
    release_number: Integer | None = None   # 1: the day release; 2, 3, …: late releases of the day
    parts: int | None = None                # analytics parts (landing files) the release was made from
    rows_aggregated: int | None = None      # analytics rows the release was made from
    late_rows_pending: int | None = None    # rows of the day still waiting for a late release after this one
    window_closes_on: date | None = None    # the night whose run released, or would release, the day


@table("aggregate_waiting", per_run=True)
@dataclass(frozen=True, kw_only=True)
class AggregateWaiting:
    """A day's analytics rows a run did not release: its window is open, or they do not pass k yet."""

    run_id: str
    event_date: date
    reason: str                             # window_open | below_k
    parts: int
    rows_waiting: int
    window_closes_on: date


@table("roaming_runs", per_run=True)
@dataclass(frozen=True, kw_only=True)
class RoamingRun:
    """A roaming month rebuilt, or the fair-use window assessed, in a run: counts only."""

    run_id: str
    month: str                              # YYYY-MM: the month rebuilt, or the last month of the window
    kind: str                               # month | window
    rows_read: int | None = None
    rows_counted: int | None = None
    rows_without_imsi: int | None = None
    rows_unclassified: int | None = None
    subscribers: int | None = None
    flagged: int | None = None
    not_flagged: int | None = None
    insufficient_history: int | None = None
    long_inactivity: int | None = None
    key_ids: str | None = None
    path: str | None = None                 # the roaming zone file written (relative to the lake; None: none)


@table("marketing_profiles", per_run=True)
@dataclass(frozen=True, kw_only=True)
class MarketingProfile:
    """An event date's marketing profiles rebuilt in a run (policy §3.4 ¶5): counts only."""

    run_id: str
    event_date: date
    purpose: str                            # the consent purpose the profiles need (consent.profiling_purpose)
    billing_rows: int
    rows_profiled: int
    subscribers: int
    called_named: int
    called_counted: int
    rows_removed: int
    consents_standing: int
    key_id: str
    path: str | None = None                 # the marketing zone file written (relative to the lake; None: none)


@table("zone_permissions")
@dataclass(frozen=True, kw_only=True)
class ZonePermission:
    """The permissions check of one zone (or the lake root, or the run's work folders) at a run's start:
    entries looser than the policy's `access` declares, and whether the run was told to go on regardless
    (docs/design.md §2). Counts, modes and group names only; never a path or a file's content."""

    run_id: str
    zone: str                               # a zone name, lake_root or work
    access: str                             # owner | group | traverse (the lake root)
    group_role: str | None                  # group zone: the policy's role (analysts, compliance)
    unix_group: str | None                  # group zone: the host's Unix group for it
    group_on_host: bool | None              # group zone: that group exists here (else: the pipeline's group)
    dir_mode: str                           # declared, octal: 0700 | 2750 | 0711
    file_mode: str | None                   # declared, octal: 0600 | 0640 (None: the lake root)
    entries_checked: int                    # folders and files
    entries_open: int                       # looser than declared (owner: any group/other bit; group: any other bit)
    entries_other_group: int | None         # group zone, group on host: entries in another group
    allowed_open: bool                      # open entries, and the run went on (--allow-open-zones)
    clause: str
    checked_at: datetime


# ------------------------------------------------------------------------------------------ retention

@table("legal_holds", primary_key="hold_id")
@dataclass(frozen=True, kw_only=True)
class LegalHold:
    """A legal hold: why, by whom, and its scope (a subject only as tokens, never its value)."""

    hold_id: str
    reason: str                             # the case, written by a person; no data values
    placed_by: str
    placed_at: datetime
    dataset: str | None = None              # scope: None = every data set
    date_from: date | None = None           # scope: event / period dates, inclusive; None = open
    date_to: date | None = None
    subject_kind: str | None = None         # scope: subscriber | account | None (no subject restriction)
    subject_tokens: str | None = None       # JSON {key id: hex token}
    released_by: str | None = None
    released_at: datetime | None = None
    release_reason: str | None = None


@table("retention_actions")
@dataclass(frozen=True, kw_only=True)
class RetentionActionRow:
    """What one retention sweep did to one category's rows in one partition."""

    run_id: str                             # retention-<as of date>
    as_of: date
    dataset: str
    partition: str                          # e.g. event_date=2026-01-15
    category: str                           # the policy's retention category
    action: str                             # deleted | anonymized | held | kept
    rows: int
    due_on: date | None                     # deleted/anonymized/held: earliest due date; kept: the next one
    legal_basis: str
    clause: str
    hold_ids: str | None                    # held: the holds that stopped the deletion
    files: Integer
    dry_run: bool


@table("retention_proofs")
@dataclass(frozen=True, kw_only=True)
class RetentionProof:
    """One file a sweep rewrote or removed, re-read afterwards."""

    run_id: str
    dataset: str
    partition: str
    file_name: str                          # the part file rewritten or removed
    outcome: str                            # rewritten | removed
    rows_removed: int
    identifiers_checked: int                # distinct identifiers that only the removed rows held
    identifiers_found: int                  # of those, still in the file's bytes or values (must be 0)
    ok: bool
    checked_at: datetime


# ------------------------------------------------------------------------------------------ subjects' rights

# The request states (docs/design.md §12): open, extended (the last day moved, the subscriber told), and the two
# ways a request closes. Fulfilled and refused are written by the commands that answer it.
REQUEST_STATUSES = ("open", "extended", "fulfilled", "refused")
REQUEST_SUBJECT_KINDS = ("msisdn", "imsi")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK that `column` holds one of `values` (the project's own names, never input)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


@table("subject_requests", primary_key="request_id", checks=(
    _one_of("subject_right", SUBJECT_RIGHTS),
    _one_of("subject_kind", REQUEST_SUBJECT_KINDS),
    _one_of("status", REQUEST_STATUSES),
    "due >= received",
    "extended_to IS NULL OR extended_to > due",
))
@dataclass(frozen=True, kw_only=True)
class SubjectRequestRow:
    """A data subject's request under §6 (access, rectification, erasure, restriction, portability, objection):
    when it came, the last day to answer it, and what became of it. The subject only as tokens, never its value."""

    request_id: str                         # R-<12 hex>
    subject_right: str                      # access | rectification | erasure | restriction | portability | objection
    clause: str                             # the policy's clause of that right (§6.x)
    subject_kind: str                       # msisdn | imsi
    subject_tokens: str                     # JSON {key id: hex token} under every key held when recorded
    received: date
    due: date                               # last day to answer (inclusive): received + subject_rights.answer_within
    extended_to: date | None = None         # the last day as extended (at most received + answer + extension)
    extension_reason: str | None = None     # the reasons the subscriber was told (the latest extension's)
    extended_at: datetime | None = None     # when the latest extension was recorded (UTC)
    reference: str | None = None            # the case as a person named it (a ticket, a letter); no data values
    status: str                             # open | extended | fulfilled | refused
    recorded_at: datetime
    recorded_by: str | None = None
    fulfilled_at: datetime | None = None
    refused_at: datetime | None = None
    refusal_reason: str | None = None       # e.g. manifestly unfounded or excessive (§6 ¶5)
    answered_by: str | None = None          # who fulfilled or refused it
    zone_rows: str | None = None            # JSON {zone: rows of the subject found} when fulfilled
    zone_actions: str | None = None         # JSON {zone: what was done there} when fulfilled
    restricted_at: datetime | None = None   # restriction: processing restricted from then, until lifted
    lifted_at: datetime | None = None       # restriction lifted (`cdr-audit subject lift`)
    lifted_by: str | None = None
    lift_reason: str | None = None


# ------------------------------------------------------------------------------------------ the audit log

@table("audit_log", primary_key="seq", unique=("event_key",))
@dataclass(frozen=True, kw_only=True)
class AuditLogEntry:
    """One event of the hash-chained audit log (`transforms.audit_store.chain`)."""

    seq: int
    event_key: str                          # makes appends idempotent on re-run
    logged_at: datetime
    actor: str
    action: str
    target: str
    details: str                            # JSON: counts, names, hashes
    prev_hash: str
    hash: str


# Columns added to tables after stores were first written, in the order added. Each is nullable (the rows
# already there have none): a writer adds them when it opens an older store (`store.connect`), and a
# read-only reader of one sees them as NULL (`views.define_views`).
ADDED_COLUMNS: tuple[tuple[type, tuple[str, ...]], ...] = (
    # A file's rows not loaded by why, and its rows against the lateness window (docs/design.md §9); a delivery's
    # content (docs/design.md §1). One entry per table: a reader's stand-in view is made per entry.
    (SourceFile, ("rows_failing", "rows_duplicate", "rows_unparseable", "lateness_window_days",
                  "rows_before_lateness_window", "rows_after_night", "content_sha256")),
    # A killed run is marked abandoned, with the reason, by the next run's recovery (docs/design.md §10).
    (Run, ("status_reason",)),
    # One row per release and release table, coarse to fine; which release, from what (docs/design.md §4).
    (AggregateRelease, ("release_table", "clause", "other_cells_released", "events", "events_released",
                        "share_events_released", "release_kind", "release_number", "parts", "rows_aggregated",
                        "late_rows_pending", "window_closes_on")),
)
if len({row_type for row_type, _ in ADDED_COLUMNS}) < len(ADDED_COLUMNS):
    raise TypeError("ADDED_COLUMNS lists a table twice: one entry per table")
if any(not column_type(row_type, name)[1] for row_type, names in ADDED_COLUMNS for name in names):
    raise TypeError("a column added to a table with rows must be nullable")

# Rows of one retention sweep (one per as-of date), replaced whole when the sweep is re-run or resumed.
RETENTION_TABLES = ("retention_actions", "retention_proofs")
PER_RUN_TABLES = tuple(name for name, t in TABLES.items() if t.per_run)
SCHEMA = "\n".join(ddl(t) for t in TABLES.values())
