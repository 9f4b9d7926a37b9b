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
from datetime import datetime, timezone
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


def define_roaming_status(con: duckdb.DuckDBPyConnection, lake: Lake) -> None:
    """The view `roaming_status`: every window assessed, one row per subscriber token with its figures.

    The rows stay in the roaming zone's Parquet (`roaming/status/as_of=YYYY-MM/`), where the retention
    sweep deletes them after six months and proves it byte by byte; the audit store holds no token.
    The view names the lake's absolute path, refreshed at every merge.
    """
    con.execute("DROP VIEW IF EXISTS roaming_status")
    status = lake.zone("roaming") / "status"
    if any(status.glob("as_of=*/*.parquet")):
        con.execute("CREATE VIEW roaming_status AS SELECT * FROM read_parquet("
                    + lake_mod.sql_literal(status / "as_of=*" / "*.parquet") + ", hive_partitioning = false)")
    else:   # no window assessed yet: the same columns, no rows
        con.execute("CREATE VIEW roaming_status AS SELECT CAST(NULL AS VARCHAR) AS as_of_month,"
                    " CAST(NULL AS VARCHAR) AS hmac_key_id, CAST(NULL AS BLOB) AS subscriber_token,"
                    " CAST(NULL AS VARCHAR) AS state WHERE false")


def export_parquet(con: duckdb.DuckDBPyConnection, lake: Lake) -> list[str]:
    """Write each audit table to `audit/parquet/<table>.parquet` (atomic per file)."""
    out_dir = lake.zone("audit") / "parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in EXPORTED_TABLES:
        final = out_dir / f"{table}.parquet"
        tmp = out_dir / f".{table}.parquet.tmp"
        # Table names come from the constant above, never from input.
        con.execute(f"COPY (SELECT * FROM {table}) TO $dst (FORMAT parquet)", {"dst": str(tmp)})
        lake_mod.commit_file(tmp, final)
        written.append(str(final.relative_to(lake.root)))
    return written
