"""Audit store: `LAKE/audit/audit.duckdb`, its hash-chained log and Parquet exports.

One row per fact, never a value of personal data: file and column names (already
sanitized by the steps), counts, hashes, clauses. DuckDB takes one writer at a
time, so the steps that run per file (possibly in parallel Airflow tasks) never
open the database: each writes a *fragment* (JSON) under ``audit/_pending/RUN/``
and the single closing step merges them in one transaction (DESIGN §6, §8).

The audit log is tamper-evident: each row's hash covers its content and the
previous row's hash, so editing or deleting any row breaks every later link;
`verify_chain` recomputes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import duckdb

from transforms import lake as lake_mod
from transforms.lake import Lake

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    night DATE NOT NULL,
    trigger VARCHAR NOT NULL,              -- cli | airflow
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,               -- running | completed | completed_with_errors
    policy_id VARCHAR NOT NULL,
    policy_version VARCHAR NOT NULL,
    policy_sha256 VARCHAR NOT NULL,
    code_version VARCHAR NOT NULL,
    files_seen INTEGER,
    files_processed INTEGER,
    files_skipped_known INTEGER,
    files_rejected INTEGER,
    files_failed INTEGER,
    rows_read BIGINT,
    rows_loaded BIGINT,
    rows_rejected BIGINT
);
CREATE TABLE IF NOT EXISTS source_files (
    run_id VARCHAR NOT NULL,
    night DATE NOT NULL,
    file_name VARCHAR NOT NULL,            -- sanitized
    sha256 VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    lines BIGINT,                          -- physical lines incl. header and blank lines (NULL: Parquet)
    profile VARCHAR,
    status VARCHAR NOT NULL,               -- loaded | empty | rejected_file | duplicate_file | known | ignored | failed
    reason VARCHAR,
    rows_read BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    duplicate_of VARCHAR,                  -- sha256 of the file first seen with the same bytes
    billing_partitions INTEGER NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    CHECK (rows_read = rows_loaded + rows_rejected)
);
CREATE TABLE IF NOT EXISTS field_findings (
    run_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    column_index INTEGER NOT NULL,
    source_column VARCHAR NOT NULL,        -- sanitized name, never a value
    classification VARCHAR NOT NULL,       -- allowed | not_allowed | unknown
    action VARCHAR NOT NULL,               -- kept | derived | dropped
    canonical_columns VARCHAR NOT NULL,
    clause VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS validation_results (
    run_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    expectation VARCHAR NOT NULL,
    column_name VARCHAR,
    clause VARCHAR NOT NULL,
    success BOOLEAN NOT NULL,
    element_count BIGINT,
    unexpected_count BIGINT,               -- a count; the values themselves are never stored
    rows_quarantined BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS rejection_reasons (
    run_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    rows BIGINT NOT NULL                   -- a row with two faults counts under both
);
CREATE TABLE IF NOT EXISTS pseudonymization_log (
    run_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,              -- analytics
    column_name VARCHAR NOT NULL,
    method VARCHAR NOT NULL,               -- hmac-sha256 over the E.164 / normalized value
    key_id VARCHAR NOT NULL,               -- the key's id; the key itself is never stored
    rows BIGINT NOT NULL,
    distinct_values BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS analytics_findings (
    run_id VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,          -- the billing column
    output_column VARCHAR,                 -- what analytics holds instead (NULL: dropped)
    treatment VARCHAR NOT NULL,            -- the policy's analytics treatment
    action VARCHAR NOT NULL,               -- kept | pseudonymized | generalized | dropped
    clause VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS aggregate_releases (
    run_id VARCHAR NOT NULL,
    event_date DATE NOT NULL,
    dataset VARCHAR NOT NULL,              -- aggregates
    k INTEGER NOT NULL,
    groups_total BIGINT NOT NULL,
    groups_released BIGINT NOT NULL,
    groups_suppressed_primary BIGINT NOT NULL,   -- fewer than k subscribers
    groups_suppressed_secondary BIGINT NOT NULL, -- suppressed so no total minus its parts reveals one
    rows_suppressed BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS roaming_runs (
    run_id VARCHAR NOT NULL,
    month VARCHAR NOT NULL,                -- YYYY-MM: a month rebuilt, or the last month of the window assessed
    kind VARCHAR NOT NULL,                 -- month | window
    rows_read BIGINT,
    rows_counted BIGINT,
    rows_without_imsi BIGINT,
    rows_unclassified BIGINT,
    subscribers BIGINT,
    flagged BIGINT,
    not_flagged BIGINT,
    insufficient_history BIGINT,
    long_inactivity BIGINT,
    key_ids VARCHAR,
    path VARCHAR NOT NULL                  -- the roaming zone file written (relative to the lake)
);
CREATE TABLE IF NOT EXISTS legal_holds (
    hold_id VARCHAR PRIMARY KEY,
    reason VARCHAR NOT NULL,               -- e.g. "dispute 2026/114"; free text written by a person, no data values
    placed_by VARCHAR NOT NULL,
    placed_at TIMESTAMPTZ NOT NULL,
    dataset VARCHAR,                       -- scope: NULL = every data set
    date_from DATE,                        -- scope: event / period dates, inclusive; NULL = open
    date_to DATE,
    subject_kind VARCHAR,                  -- scope: subscriber | account | NULL (no subject restriction)
    subject_tokens VARCHAR,                -- JSON {key id: hex token}: the subject under every key held, never the value
    released_by VARCHAR,
    released_at TIMESTAMPTZ,
    release_reason VARCHAR
);
CREATE TABLE IF NOT EXISTS retention_actions (
    run_id VARCHAR NOT NULL,               -- retention-<as of date>
    as_of DATE NOT NULL,
    dataset VARCHAR NOT NULL,
    partition VARCHAR NOT NULL,            -- e.g. event_date=2026-01-15
    category VARCHAR NOT NULL,             -- the policy's retention category
    action VARCHAR NOT NULL,               -- deleted | anonymized | held | kept
    rows BIGINT NOT NULL,
    due_on DATE,                           -- deleted/anonymized/held: earliest due date; kept: next due date
    legal_basis VARCHAR NOT NULL,
    clause VARCHAR NOT NULL,
    hold_ids VARCHAR,                      -- held: the holds that stopped the deletion
    files INTEGER NOT NULL,
    dry_run BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS retention_proofs (
    run_id VARCHAR NOT NULL,
    dataset VARCHAR NOT NULL,
    partition VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL,            -- the part file rewritten or removed
    outcome VARCHAR NOT NULL,              -- rewritten | removed
    rows_removed BIGINT NOT NULL,
    identifiers_checked BIGINT NOT NULL,   -- distinct identifiers that only the removed rows held
    identifiers_found BIGINT NOT NULL,     -- of those, still present in the file's bytes or values (must be 0)
    ok BOOLEAN NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_log (
    seq BIGINT PRIMARY KEY,
    event_key VARCHAR NOT NULL UNIQUE,     -- makes appends idempotent on re-run
    logged_at TIMESTAMPTZ NOT NULL,
    actor VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    target VARCHAR NOT NULL,
    details VARCHAR NOT NULL,              -- JSON: counts, names, hashes
    prev_hash VARCHAR NOT NULL,
    hash VARCHAR NOT NULL
);
"""

# Tables whose rows belong to one run and are replaced whole when a run is re-merged.
PER_RUN_TABLES = ("source_files", "field_findings", "validation_results", "rejection_reasons",
                  "pseudonymization_log", "analytics_findings", "aggregate_releases", "roaming_runs")
# Rows of one retention sweep (one per as-of date), replaced whole when the sweep is re-run or resumed.
RETENTION_TABLES = ("retention_actions", "retention_proofs")
EXPORTED_TABLES = ("runs", *PER_RUN_TABLES, "legal_holds", *RETENTION_TABLES, "audit_log")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def _jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serializable: {type(value).__name__}")


def write_json_atomic(path: Path, doc: Any) -> None:
    """Write `doc` as JSON so readers see the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(doc, default=_jsonable, ensure_ascii=False, sort_keys=True))
    lake_mod.commit_file(tmp, path)


def read_json(path: Path, default: Any = None) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def read_fragments(lake: Lake, run_id: str) -> list[dict]:
    folder = lake.fragments_dir(run_id)
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("file-*.json"))]


@dataclass(frozen=True)
class LogEvent:
    """One audit-log entry before it is chained."""

    event_key: str
    actor: str
    action: str
    target: str
    details: dict


def _event_hash(prev_hash: str, seq: int, at: str, e: LogEvent) -> str:
    body = json.dumps(
        {"seq": seq, "at": at, "actor": e.actor, "action": e.action, "target": e.target,
         "details": e.details, "event_key": e.event_key},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


@contextmanager
def writer_lock(lake: Lake):
    """Hold the audit store's single-writer lock (the nightly merge, the sweep and holds take turns).

    DuckDB refuses a second writing process outright; this lock makes the second one wait instead.
    """
    path = lake.zone("audit") / ".writer.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def writing(lake: Lake):
    """The audit store opened for writing, under the single-writer lock; closed on exit."""
    with writer_lock(lake):
        con = connect(lake)
        try:
            yield con
        finally:
            con.close()


def connect(lake: Lake, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open audit.duckdb (creating the schema when writable)."""
    path = lake.audit_db
    if read_only:
        if not path.exists():
            raise FileNotFoundError(f"no audit store at {path}; run `cdr-audit run` first")
        return duckdb.connect(str(path), read_only=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SCHEMA)
    return con


def append_log(con: duckdb.DuckDBPyConnection, events: Iterable[LogEvent], at: datetime | None = None) -> int:
    """Chain `events` onto the log; an event whose key is already there is skipped."""
    # Hash what verify_chain will read back: the time in UTC, the details as stored JSON.
    at_text = (at or now_utc()).astimezone(timezone.utc).isoformat()
    added = 0
    for e in events:
        if con.execute("SELECT 1 FROM audit_log WHERE event_key = ?", [e.event_key]).fetchone():
            continue
        last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        details = json.loads(json.dumps(e.details, default=_jsonable, sort_keys=True))
        e = LogEvent(e.event_key, e.actor, e.action, e.target, details)
        con.execute(
            "INSERT INTO audit_log VALUES (?, ?, CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, ?)",
            [seq, e.event_key, at_text, e.actor, e.action, e.target,
             json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
             prev, _event_hash(prev, seq, at_text, e)],
        )
        added += 1
    return added


@dataclass(frozen=True)
class ChainCheck:
    """Outcome of recomputing the audit-log hash chain."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(con: duckdb.DuckDBPyConnection) -> ChainCheck:
    """Recompute every link of the audit log from the first entry."""
    prev, expected_seq, n = GENESIS, 1, 0
    rows = con.execute(
        "SELECT seq, event_key, logged_at, actor, action, target, details, prev_hash, hash FROM audit_log ORDER BY seq"
    ).fetchall()
    for seq, key, at, actor, action, target, details, prev_hash, stored in rows:
        n += 1
        if seq != expected_seq:
            return ChainCheck(False, n, seq, f"sequence gap: expected {expected_seq}")
        if prev_hash != prev:
            return ChainCheck(False, n, seq, "previous-hash link does not match the entry before it")
        at_text = at.astimezone(timezone.utc).isoformat()
        event = LogEvent(key, actor, action, target, json.loads(details))
        if _event_hash(prev, seq, at_text, event) != stored:
            return ChainCheck(False, n, seq, "entry content does not match its hash")
        prev, expected_seq = stored, seq + 1
    return ChainCheck(True, n)


# Every column of the roaming zone's status files (transforms/roaming.py `_status_sql`), so the views over
# `roaming_status` work before any window was assessed (the empty stand-in has the same columns and types).
ROAMING_STATUS_COLUMNS = (
    ("as_of_month", "VARCHAR"), ("window_start_month", "VARCHAR"), ("window_months", "INTEGER"),
    ("hmac_key_id", "VARCHAR"), ("subscriber_token", "BLOB"), ("state", "VARCHAR"), ("first_month", "VARCHAR"),
    ("months_with_data", "BIGINT"), ("days_home", "BIGINT"), ("days_eu_roaming", "BIGINT"),
    ("days_other_roaming", "BIGINT"), ("days_active", "BIGINT"), ("voice_min_home", "DECIMAL(18,2)"),
    ("voice_min_eu_roaming", "DECIMAL(18,2)"), ("sms_out_home", "BIGINT"), ("sms_out_eu_roaming", "BIGINT"),
    ("data_bytes_home", "BIGINT"), ("data_bytes_eu_roaming", "BIGINT"), ("roaming_consumption_share", "DOUBLE"),
    ("presence_outweighs", "BOOLEAN"), ("consumption_outweighs", "BOOLEAN"),
    ("last_event_date", "DATE"),
    ("longest_inactive_days", "BIGINT"), ("long_inactivity", "BOOLEAN"),
)


def define_roaming_status(con: duckdb.DuckDBPyConnection, lake: Lake, *, temp: bool = False) -> None:
    """The view `roaming_status`: every window assessed, one row per subscriber token with its figures.

    The rows stay in the roaming zone's Parquet (`roaming/status/as_of=YYYY-MM/`), where the retention
    sweep deletes them after six months and proves it byte by byte; the audit store holds no token.
    The view names the lake's absolute path, refreshed at every write of the store.
    """
    kind = "TEMP VIEW" if temp else "VIEW"
    status = lake.zone("roaming") / "status"
    if any(status.glob("as_of=*/*.parquet")):
        source = ("read_parquet(" + lake_mod.sql_literal(status / "as_of=*" / "*.parquet")
                  + ", hive_partitioning = false, union_by_name = true)")
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        # Files written before a column existed lack it: the views read it as NULL rather than fail.
        missing = "".join(f", CAST(NULL AS {t}) AS {c}" for c, t in ROAMING_STATUS_COLUMNS if c not in present)
        con.execute(f"CREATE OR REPLACE {kind} roaming_status AS SELECT *{missing} FROM {source}")
    else:   # no window assessed yet: the same columns, no rows
        columns = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in ROAMING_STATUS_COLUMNS)
        con.execute(f"CREATE OR REPLACE {kind} roaming_status AS SELECT {columns} WHERE false")


# ------------------------------------------------------------------------------------------ compliance views
# One view per question a data-protection officer asks; docs/audit_schema.md lists their columns.
# Order matters: a view is defined after the views it reads. The SQL is constant (no input value in it).

_NIGHT_FILES = """
    SELECT * FROM source_files WHERE status <> 'known'
    QUALIFY row_number() OVER (PARTITION BY night, sha256, file_name ORDER BY processed_at DESC, run_id DESC) = 1"""

VIEWS: dict[str, tuple[str, str]] = {
    "v_night_files": (
        "Each night's files with their latest real outcome (a re-run records the files it skips as 'known').",
        _NIGHT_FILES),
    "v_audit_chain": (
        "The audit log's chain at a glance: entries, last link, and whether every prev_hash is the hash of the "
        "entry before it (links only; `cdr-audit verify` recomputes every hash).",
        f"""
    WITH links AS (
        SELECT seq, hash, prev_hash, logged_at,
               lag(hash, 1, '{GENESIS}') OVER (ORDER BY seq) AS expected_prev_hash,
               lag(seq, 1, 0) OVER (ORDER BY seq) AS previous_seq
        FROM audit_log)
    SELECT count(*) AS entries, min(seq) AS first_seq, max(seq) AS last_seq, arg_max(hash, seq) AS last_hash,
           max(logged_at) AS last_logged_at,
           coalesce(bool_and(prev_hash = expected_prev_hash AND seq = previous_seq + 1), true) AS links_ok,
           min(seq) FILTER (WHERE prev_hash <> expected_prev_hash OR seq <> previous_seq + 1) AS first_bad_seq
    FROM links"""),
    "v_last_run": (
        "The last run (by start time), its outcome and the chain's link check.",
        """
    SELECT r.run_id, r.night, r.trigger, r.started_at, r.finished_at, r.status,
           r.files_seen, r.files_processed, r.files_skipped_known, r.files_rejected, r.files_failed,
           r.rows_read, r.rows_loaded, r.rows_rejected AS rows_quarantined,
           r.policy_id, r.policy_version, r.policy_sha256, r.code_version,
           c.entries AS log_entries, c.last_seq AS log_last_seq, c.last_hash AS log_last_hash,
           c.links_ok AS chain_links_ok
    FROM (SELECT * FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1) r CROSS JOIN v_audit_chain c"""),
    "v_nightly_volumes": (
        "Per night: files and rows read, loaded (billing / invoices), quarantined, made into analytics rows, "
        "and the aggregate groups released.",
        """
    WITH files AS (
        SELECT night, count(*) AS files,
               count(*) FILTER (WHERE status = 'loaded') AS files_loaded,
               count(*) FILTER (WHERE status IN ('rejected_file', 'duplicate_file')) AS files_rejected,
               count(*) FILTER (WHERE status = 'failed') AS files_failed,
               CAST(sum(rows_read) AS BIGINT) AS rows_read, CAST(sum(rows_loaded) AS BIGINT) AS rows_loaded,
               CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile IS DISTINCT FROM 'payments'), 0) AS BIGINT)
                   AS rows_billing,
               CAST(coalesce(sum(rows_loaded) FILTER (WHERE profile = 'payments'), 0) AS BIGINT) AS rows_invoices,
               CAST(sum(rows_rejected) AS BIGINT) AS rows_quarantined
        FROM v_night_files GROUP BY night
    ), analytics AS (   -- one pseudonymization_log row per tokenized column, each with the file's row count
        SELECT f.night, CAST(sum(p.rows) AS BIGINT) AS rows_analytics
        FROM (SELECT run_id, sha256, file_name, max(rows) AS rows FROM pseudonymization_log GROUP BY ALL) p
        JOIN v_night_files f USING (run_id, sha256, file_name) GROUP BY f.night
    ), last_release AS (   -- the night's latest run that released aggregates
        SELECT r.night, a.run_id, sum(a.groups_released) AS groups, sum(a.groups_suppressed_primary
               + a.groups_suppressed_secondary) AS suppressed
        FROM aggregate_releases a JOIN runs r USING (run_id) GROUP BY r.night, a.run_id
        QUALIFY row_number() OVER (PARTITION BY r.night ORDER BY max(r.started_at) DESC) = 1
    ), runs_per_night AS (
        SELECT night, count(*) AS runs FROM runs GROUP BY night
    )
    SELECT f.night, coalesce(n.runs, 0) AS runs, f.files, f.files_loaded, f.files_rejected, f.files_failed,
           f.rows_read, f.rows_loaded, f.rows_billing, f.rows_invoices, f.rows_quarantined,
           coalesce(a.rows_analytics, 0) AS rows_analytics,
           CAST(coalesce(l.groups, 0) AS BIGINT) AS aggregate_groups_released,
           CAST(coalesce(l.suppressed, 0) AS BIGINT) AS aggregate_groups_suppressed
    FROM files f LEFT JOIN analytics a USING (night) LEFT JOIN last_release l USING (night)
    LEFT JOIN runs_per_night n USING (night)
    ORDER BY f.night"""),
    "v_policy_violations": (
        "Per night, file, column and clause: columns off the allowed list (not_allowed / unknown) and rules "
        "that rows failed, with the rows affected; quarantine reasons no validation rule names (whole-file "
        "duplicates, unreadable lines, payments checks) are listed with their row counts.",
        """
    SELECT f.night, f.run_id, f.file_name, 'off_list_column' AS kind, x.source_column AS column_name,
           x.clause, x.classification AS rule, x.action AS outcome, CAST(NULL AS BIGINT) AS rows_affected,
           CAST(0 AS BIGINT) AS rows_quarantined
    FROM field_findings x JOIN v_night_files f USING (run_id, sha256, file_name)
    WHERE x.classification <> 'allowed'
    UNION ALL
    SELECT f.night, f.run_id, f.file_name, 'failed_rule', v.column_name, v.clause, v.rule, v.expectation,
           v.unexpected_count, v.rows_quarantined
    FROM validation_results v JOIN v_night_files f USING (run_id, sha256, file_name)
    WHERE NOT v.success
    UNION ALL
    SELECT f.night, f.run_id, f.file_name, 'quarantine_reason', NULL, NULL, q.reason, 'quarantined', q.rows,
           q.rows
    FROM rejection_reasons q JOIN v_night_files f USING (run_id, sha256, file_name)
    WHERE NOT EXISTS (SELECT 1 FROM validation_results v WHERE v.run_id = q.run_id AND v.sha256 = q.sha256
                      AND v.file_name = q.file_name AND v.rule = q.reason AND NOT v.success)"""),
    "v_analytics_columns": (
        "What each billing column became in analytics (kept / pseudonymized / generalized / dropped), under "
        "which clause and HMAC key id, over how many files and nights.",
        """
    SELECT a.dataset, a.column_name, a.output_column, a.treatment, a.action, a.clause, p.key_id,
           count(DISTINCT (a.run_id, a.sha256, a.file_name)) AS files,
           min(f.night) AS first_night, max(f.night) AS last_night
    FROM analytics_findings a JOIN v_night_files f USING (run_id, sha256, file_name)
    LEFT JOIN pseudonymization_log p ON p.run_id = a.run_id AND p.sha256 = a.sha256
         AND p.file_name = a.file_name AND p.dataset = a.dataset
         AND p.column_name IN (a.column_name, a.output_column)
    GROUP BY ALL ORDER BY a.dataset, a.column_name, p.key_id"""),
    "v_retention_actions": (
        "Per retention sweep, data set, category and action: partitions, files and rows, with the clause.",
        """
    SELECT run_id, as_of, dataset, category, action, legal_basis, clause, count(*) AS partitions,
           CAST(sum(files) AS BIGINT) AS files, CAST(sum(rows) AS BIGINT) AS rows,
           min(due_on) AS earliest_due_on, max(due_on) AS latest_due_on,
           string_agg(DISTINCT hold_ids, ',') AS hold_ids, bool_or(dry_run) AS dry_run
    FROM retention_actions GROUP BY ALL ORDER BY as_of, dataset, category, action"""),
    "v_retention_due": (
        "What the latest sweep kept and when it falls due: rows due within 30 and 90 days of that sweep's "
        "as-of date and of today (overdue_today: due on or before today, waiting for the next sweep).",
        """
    WITH latest AS (SELECT max(as_of) AS as_of FROM retention_actions WHERE NOT dry_run)
    SELECT r.as_of, r.dataset, r.category, r.clause, count(*) AS partitions, CAST(sum(r.rows) AS BIGINT) AS rows_kept,
           min(r.due_on) AS next_due_on,
           CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= r.as_of + 30), 0) AS BIGINT) AS rows_due_30d_after_sweep,
           CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= r.as_of + 90), 0) AS BIGINT) AS rows_due_90d_after_sweep,
           CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= current_date), 0) AS BIGINT) AS rows_overdue_today,
           CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= current_date + 30), 0) AS BIGINT) AS rows_due_30d_from_today,
           CAST(coalesce(sum(r.rows) FILTER (WHERE r.due_on <= current_date + 90), 0) AS BIGINT) AS rows_due_90d_from_today
    FROM retention_actions r JOIN latest l USING (as_of)
    WHERE r.action = 'kept' AND NOT r.dry_run
    GROUP BY ALL ORDER BY r.dataset, r.category"""),
    "v_legal_holds_active": (
        "Holds not released: who placed them, why, their scope and the key ids of a subject (never its tokens).",
        """
    SELECT hold_id, reason, placed_by, placed_at, dataset, date_from, date_to, subject_kind,
           CASE WHEN subject_tokens IS NULL THEN NULL
                ELSE array_to_string(list_sort(json_keys(subject_tokens)), ',') END AS subject_key_ids,
           current_date - CAST(placed_at AS DATE) AS days_active
    FROM legal_holds WHERE released_at IS NULL ORDER BY placed_at, hold_id"""),
    "v_roaming_states": (
        "Per assessed window (as-of month): subscribers in each roaming state (counts only).",
        """
    SELECT as_of_month, state, count(*) AS subscribers,
           count(*) FILTER (WHERE long_inactivity) AS long_inactivity
    FROM roaming_status GROUP BY ALL ORDER BY as_of_month, state"""),
    "v_roaming_flagged": (
        "Flagged subscribers by pseudonymous token (hex) with the figures behind the flag. Holds tokens: not "
        "exported to audit/parquet, not shown in the HTML report.",
        """
    SELECT as_of_month, window_start_month, window_months, hmac_key_id,
           lower(hex(subscriber_token)) AS subscriber_token_hex, months_with_data, days_home, days_eu_roaming,
           days_other_roaming, days_active, roaming_consumption_share, voice_min_home, voice_min_eu_roaming,
           sms_out_home, sms_out_eu_roaming, data_bytes_home, data_bytes_eu_roaming, last_event_date,
           longest_inactive_days, long_inactivity
    FROM roaming_status WHERE state = 'flagged'
    ORDER BY as_of_month, hmac_key_id, subscriber_token_hex"""),
}
# Views whose rows hold subscriber tokens stay out of the Parquet exports: a snapshot under audit/ would
# outlive the roaming zone's six-month retention (the sweep proves deletions there, not in audit/).
NOT_EXPORTED_VIEWS = ("v_roaming_flagged",)
EXPORTED_VIEWS = tuple(v for v in VIEWS if v not in NOT_EXPORTED_VIEWS)


def define_views(con: duckdb.DuckDBPyConnection, lake: Lake, *, temp: bool = False) -> None:
    """(Re)create `roaming_status` and every compliance view (`VIEWS`); called wherever the store is written.

    `temp=True` defines them for this connection only (a read-only reader such as the report), so a store
    written by an older version, or a lake moved elsewhere, still shows the current views.
    """
    define_roaming_status(con, lake, temp=temp)
    kind = "TEMP VIEW" if temp else "VIEW"
    for name, (doc, sql) in VIEWS.items():
        # Names and SQL are the constants above, never input.
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")
        if not temp:
            # COMMENT takes no bound parameter; the text is the constant above, quotes doubled all the same.
            con.execute(f"COMMENT ON VIEW {name} IS '" + doc.replace("'", "''") + "'")


def export_parquet(con: duckdb.DuckDBPyConnection, lake: Lake, *, run_date: date | None = None) -> list[str]:
    """Snapshot every audit table and compliance view to `audit/parquet/<name>/run_date=YYYY-MM-DD/part.parquet`.

    Each run_date folder holds the whole table or view as it was at that day's last export (a snapshot, not
    the day's increment); an export the same day replaces that day's file in one rename, earlier days stay.
    run_date is the UTC date of the export. Files of the old flat layout (`<table>.parquet`) are removed.
    """
    run_date = run_date or now_utc().date()
    out_dir = lake.zone("audit") / "parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    define_views(con, lake)
    written = []
    for name in (*EXPORTED_TABLES, *EXPORTED_VIEWS):
        folder = out_dir / name / f"run_date={run_date.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        final, tmp = folder / "part.parquet", folder / f".part.parquet.tmp-{os.getpid()}"
        # Names come from the constants above, never from input.
        con.execute(f"COPY (SELECT * FROM {name}) TO $dst (FORMAT parquet)", {"dst": str(tmp)})
        lake_mod.commit_file(tmp, final)   # commit point for this name and day
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
        written.append(str(final.relative_to(lake.root)))
    return written


def schema_listing(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    """{table or view: [(column, DuckDB type)]} for every exported table and every compliance view.

    docs/audit_schema.md lists the same; a test compares the two so the document cannot drift.
    """
    listing = {}
    for name in (*EXPORTED_TABLES, *VIEWS):
        rows = con.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ?"
                           " ORDER BY ordinal_position", [name]).fetchall()
        listing[name] = [(c, t) for c, t in rows]
    return listing
