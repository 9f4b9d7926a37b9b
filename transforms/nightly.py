"""The nightly audit run: plan the night, audit each file, close the night.

A record's path, in order:

1. `plan_night` lists the landing folder, fingerprints each file (sha256) and
   decides per file: audit it, or skip it because the same bytes were already
   audited (a re-run adds nothing twice) or already appear under another name
   tonight. It opens the run in the audit store.
2. `audit_file` runs the per-file steps — ingest → fieldcheck → validate →
   billing → quarantine → analytics (pseudonymized, generalized) — and leaves
   a fragment of audit facts. A payments / invoice-status extract (found by
   its header, or by its name `payments_*.csv`) takes the payments step
   instead → invoices (and quarantine). Files are independent, so Airflow maps
   this over the night's files in parallel.
3. `aggregate_night` recomputes the k-anonymous aggregates of every event
   date the night's files touched.
4. `close_night` merges every fragment into `audit.duckdb` in one transaction
   (the store's single writer), chains the audit-log entries, exports the
   tables to Parquet and returns the night's summary.

The CLI calls these four in sequence; the DAG wires them as tasks.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import stat
import subprocess
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from transforms import audit
from transforms.aggregate import aggregate_day
from transforms.analytics import build_analytics
from transforms.billing import load_billing, part_name
from transforms.fieldcheck import check_fields
from transforms.ingest import HEAD_BYTES, IngestResult, fingerprint, ingest_file
from transforms.lake import Lake, remove_tree, safe_run_id
from transforms.payments import load_payments
from transforms.policy import Policy
from transforms.profiles import PAYMENTS_PROFILE, is_payments_extract
from transforms.pseudonymize import KeyRing
from transforms.quarantine import quarantine_rows
from transforms.redact import safe_error, safe_name
from transforms.roaming import affected_months, assess_window, build_months, shift_month

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN_METHOD = "hmac-sha256"
log = logging.getLogger("cdr_audit")


@dataclass(frozen=True)
class PlannedFile:
    """One landing file and what tonight's run does with it."""

    path: str
    file_name: str          # sanitized, for the audit store
    sha256: str
    bytes: int
    lines: int | None       # physical lines, for the line accounting of ingest (None: Parquet)
    action: str             # audit | known | duplicate_file | ignored
    reason: str = ""
    duplicate_of: str | None = None


@dataclass(frozen=True)
class NightPlan:
    run_id: str
    night: str
    policy_sha256: str
    files: tuple[PlannedFile, ...]

    @property
    def to_audit(self) -> list[PlannedFile]:
        return [f for f in self.files if f.action == "audit"]


@dataclass(frozen=True)
class FileAudit:
    """What happened to one file: the small result the audit step records."""

    file_name: str
    sha256: str
    status: str             # loaded | empty | rejected_file | failed
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    reason: str = ""
    profile: str | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NightSummary:
    run_id: str
    night: str
    status: str
    files_seen: int
    files_processed: int
    files_skipped_known: int
    files_rejected: int
    files_failed: int
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    audit_db: str
    exports: tuple[str, ...]
    chain_ok: bool


def code_version() -> str:
    """Package version plus the git commit when run from a checkout."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("cdr-audit")
    except PackageNotFoundError:
        v = "0+unknown"
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{v}+g{sha}" if sha else v


def plan_night(landing: str | Path, lake: Lake, policy: Policy, *, night: str, run_id: str,
               trigger: str) -> NightPlan:
    """Fingerprint the landing files and open the run in the audit store."""
    date.fromisoformat(night)
    landing = Path(landing)
    if not landing.is_dir():
        raise FileNotFoundError(f"landing folder {landing} does not exist or is not a folder")
    lake.ensure()
    remove_tree(lake.fragments_dir(run_id))  # a retried plan starts the run's facts afresh
    with audit.writing(lake) as con:
        known = dict(con.execute(
            "SELECT sha256, any_value(run_id) FROM source_files"
            " WHERE status NOT IN ('known', 'ignored', 'failed', 'duplicate_file') AND run_id <> ? GROUP BY sha256",
            [run_id]).fetchall())
        files: list[PlannedFile] = []
        first_seen: dict[str, str] = {}
        for entry in sorted(os.scandir(landing), key=lambda e: e.name):
            name = safe_name(entry.name, 120)
            st = entry.stat(follow_symlinks=False)
            if entry.name.startswith(".") or not stat.S_ISREG(st.st_mode):
                what = "hidden or in-flight file" if entry.name.startswith(".") else "not a regular file"
                files.append(PlannedFile(entry.path, name, "", 0, 0, "ignored", f"{what}; not read"))
                continue
            sha, lines = fingerprint(Path(entry.path))
            if sha in known:
                files.append(PlannedFile(entry.path, name, sha, st.st_size, lines, "known",
                                         "same bytes already audited in an earlier run"))
            elif sha in first_seen:
                files.append(PlannedFile(entry.path, name, sha, st.st_size, lines, "duplicate_file",
                                         f"byte-identical to {first_seen[sha]}", duplicate_of=sha))
            else:
                first_seen[sha] = name
                files.append(PlannedFile(entry.path, name, sha, st.st_size, lines, "audit"))
        con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
        con.execute(
            "INSERT INTO runs (run_id, night, trigger, started_at, status, policy_id, policy_version,"
            " policy_sha256, code_version, files_seen) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?)",
            [run_id, night, trigger, audit.now_utc(), policy.id, policy.version, policy.sha256,
             code_version(), len(files)])
        audit.append_log(con, [audit.LogEvent(
            f"run:{run_id}:start", trigger, "run_started", run_id,
            {"night": night, "policy_sha256": policy.sha256, "policy_version": policy.version,
             "files_seen": len(files), "files_to_audit": sum(f.action == "audit" for f in files)})])
    plan = NightPlan(run_id, night, policy.sha256, tuple(files))
    audit.write_json_atomic(_plan_path(lake, run_id), plan)
    return plan


def _plan_path(lake: Lake, run_id: str) -> Path:
    return lake.fragments_dir(run_id) / "plan.json"


def load_plan(lake: Lake, run_id: str) -> NightPlan:
    doc = audit.read_json(_plan_path(lake, run_id))
    return NightPlan(doc["run_id"], doc["night"], doc["policy_sha256"],
                     tuple(PlannedFile(**f) for f in doc["files"]))


def profile_for(planned: PlannedFile, overrides: dict[str, str]) -> str | None:
    """The profile forced for a file by the first matching glob of `overrides` (pattern -> profile)."""
    name = Path(planned.path).name
    return next((prof for pattern, prof in overrides.items() if fnmatch.fnmatch(name, pattern)), None)


def _fragment_path(lake: Lake, run_id: str, planned: PlannedFile) -> Path:
    key = hashlib.sha256(f"{planned.sha256}:{planned.path}".encode()).hexdigest()[:24]
    return lake.fragments_dir(run_id) / f"file-{key}.json"


@dataclass(frozen=True)
class FileFacts:
    """Everything the audit store learns about one file: its fragment."""

    result: FileAudit
    findings: tuple = ()
    checks: tuple = ()
    billing_partitions: int = 0
    analytics: dict | None = None    # rows, key id, tokenized columns, treatments, event dates


def audit_file(planned: PlannedFile, lake: Lake, policy: Policy, *, run_id: str, night: str, keyring: KeyRing,
               profile_override: str | None = None, on_step: Callable[[str], None] | None = None) -> FileAudit:
    """Run one landing file through every per-file step and leave its audit fragment.

    `on_step` hears a short line after each step (counts and seconds), for progress displays.
    """
    step = _StepClock(on_step)
    work = lake.work_dir(run_id) / planned.sha256[:16]
    remove_tree(work)
    try:
        if _is_payments(planned, profile_override):
            facts = _audit_payments(planned, lake, policy, work, run_id=run_id, night=night, step=step)
        else:
            ingest = ingest_file(Path(planned.path), policy, work, sha256=planned.sha256, lines=planned.lines,
                                 profile_override=profile_override)
            step(f"ingested {ingest.rows_read:,} rows as {ingest.profile or 'no known format'}")
            facts = _audit_ingested(ingest, planned, lake, policy, work, run_id=run_id, night=night,
                                    keyring=keyring, step=step)
    except Exception as exc:  # one broken file must not stop the night; the reason is recorded
        facts = FileFacts(FileAudit(planned.file_name, planned.sha256, "failed", planned.lines or 0, 0,
                                    planned.lines or 0, reason=f"internal error: {safe_error(exc)}"))
        _log_internal_error(lake, run_id, planned, exc)
        _withdraw_parts(lake, planned.sha256)
    audit.write_json_atomic(_fragment_path(lake, run_id, planned), {"kind": "file", "planned": planned,
                                                                    **asdict(facts)})
    remove_tree(work)
    return facts.result


def _is_payments(planned: PlannedFile, profile_override: str | None) -> bool:
    """Whether a file takes the payments step; a forced profile decides, else its header or name."""
    if profile_override:
        return profile_override == PAYMENTS_PROFILE
    with open(planned.path, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    return is_payments_extract(head, Path(planned.path).name)


def _audit_payments(planned: PlannedFile, lake: Lake, policy: Policy, work: Path, *, run_id: str, night: str,
                    step: "_StepClock") -> FileFacts:
    """A payments extract: invoices zone and quarantine only (no field check, no CDR suite, no analytics)."""
    paid = load_payments(Path(planned.path), policy, lake, work, night=night, run_id=run_id,
                         sha256=planned.sha256, lines=planned.lines)
    step(f"payments: {paid.rows_loaded:,} invoices committed to invoices in {len(paid.rows_by_invoice_year)}"
         f" partition(s), {paid.rows_quarantined:,} quarantined")
    return FileFacts(FileAudit(planned.file_name, planned.sha256, paid.status, paid.rows_read, paid.rows_loaded,
                               paid.rows_quarantined, paid.reason, PAYMENTS_PROFILE, paid.quarantined_by_reason))


def _audit_ingested(ingest: IngestResult, planned: PlannedFile, lake: Lake, policy: Policy, work: Path, *,
                    run_id: str, night: str, keyring: KeyRing, step: "_StepClock") -> FileFacts:
    if ingest.status != "staged":
        lines = ingest.rows_read or ((planned.lines or 0) if ingest.status == "rejected_file" else 0)
        status = "empty" if ingest.status == "empty" else "rejected_file"
        return FileFacts(FileAudit(planned.file_name, planned.sha256, status, lines, 0, lines, ingest.reason,
                                   ingest.profile, {ingest.reason: lines} if lines else {}))
    fields = check_fields(ingest, policy)
    from transforms.validate import validate_staged  # pulls in GX; only files with rows need it

    validation = validate_staged(ingest.staged_path, policy, work, source_sha256=planned.sha256, run_id=run_id,
                                 docs_dir=lake.zone("reports") / "gx_data_docs")
    step(f"validated: {validation.rows_valid:,} valid, {validation.rows_rejected:,} failing a rule")
    billing = load_billing(validation.valid_dir, lake, work, source_sha256=planned.sha256)
    quarantine_rows(validation.rejected_path, ingest.unparseable_path, lake, work, policy,
                    source_sha256=planned.sha256, run_id=run_id, night=night)
    step(f"committed {billing.rows_written:,} rows to billing in {len(billing.rows_by_partition)} partition(s)")
    analytics = None
    if billing.rows_written:
        made = build_analytics([str(lake.root / f) for f in billing.files], lake, policy, keyring,
                               work / "analytics", source_sha256=planned.sha256)
        analytics = {"rows": made.rows, "key_id": made.key_id, "tokenized": made.tokenized,
                     "treatments": [asdict(t) for t in made.treatments],
                     "event_dates": sorted(made.zone.rows_by_partition)}
        step(f"analytics: {made.rows:,} rows pseudonymized (key {made.key_id}) and generalized")
    by_reason = {**ingest.unparseable_by_reason}
    for reason, n in validation.rejected_by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    rejected = ingest.rows_unparseable + validation.rows_rejected
    result = FileAudit(planned.file_name, planned.sha256, "loaded", ingest.rows_read, billing.rows_written,
                       rejected, "", ingest.profile, by_reason)
    if result.rows_read != result.rows_loaded + result.rows_rejected:
        raise AssertionError("row conservation broken")  # never expected; recorded as a failed file
    return FileFacts(result, fields.findings, validation.checks, len(billing.rows_by_partition), analytics)


def aggregate_night(lake: Lake, policy: Policy, *, run_id: str) -> list[dict]:
    """Recompute the k-anonymous aggregates of every event date tonight's files added analytics rows to.

    Each date is aggregated over all of its analytics rows (every file, every night so far), so a
    late file for an earlier day updates that day, and a re-run gives the same release.
    """
    dates = sorted({d for f in audit.read_fragments(lake, run_id) for d in (f.get("analytics") or {}).get(
        "event_dates", [])})
    releases = []
    for day in dates:
        result = aggregate_day(f"{lake.zone('analytics')}/event_date={day}/*.parquet", policy,
                               lake.work_dir(run_id) / f"aggregate-{day}", lake.zone("aggregates"))
        releases.append({"event_date": day, **asdict(result)})
    audit.write_json_atomic(lake.fragments_dir(run_id) / "aggregates.json", releases)
    return releases


def roaming_night(lake: Lake, policy: Policy, keyring: KeyRing, *, run_id: str) -> dict:
    """Rebuild the roaming months tonight's files touched, then assess the fair-use window (§3.2 ¶4).

    Each touched month is recomputed whole from billing, so a late file for an earlier month updates
    that month and a re-run gives the same files. The window assessed ends with the last complete
    month before the night's (the night's own month is still running).
    """
    plan = load_plan(lake, run_id)
    days = {d for f in audit.read_fragments(lake, run_id) for d in (f.get("analytics") or {}).get("event_dates", [])}
    months = affected_months(sorted(d.split("=", 1)[-1] for d in days))
    built = build_months(lake, policy, keyring, months, lake.work_dir(run_id) / "roaming") if months else None
    as_of_month = shift_month(plan.night[:7], -1)
    window = assess_window(lake, policy, as_of_month, lake.work_dir(run_id) / "roaming-window")
    facts = {"months": [asdict(m) for m in built.months] if built else [], "key_id": built.key_id if built else None,
             "months_seconds": built.seconds if built else 0.0, "window": asdict(window)}
    audit.write_json_atomic(lake.fragments_dir(run_id) / "roaming.json", facts)
    return facts


class _StepClock:
    """Reports each step of a file with the seconds it took."""

    def __init__(self, listener: Callable[[str], None] | None):
        self.listener, self.last = listener, time.monotonic()

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if self.listener:
            self.listener(f"{message} ({now - self.last:.1f} s)")
        self.last = now


def _withdraw_parts(lake: Lake, sha256: str) -> None:
    """A failed file leaves nothing in any zone: the audit counts it as not loaded, and a re-run redoes it."""
    for zone in ("billing", "invoices", "quarantine", "analytics"):
        for part in lake.zone(zone).glob(f"*/{part_name(sha256)}"):
            part.unlink()


def _log_internal_error(lake: Lake, run_id: str, planned: PlannedFile, exc: BaseException) -> None:
    """Keep the stack for engineers: code locations only, never the message (it may quote input)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    text = f"{type(exc).__name__} while auditing {planned.file_name} (sha256 {planned.sha256})\n{frames}"
    path = lake.zone("audit") / "errors" / safe_run_id(run_id) / f"{planned.sha256[:16]}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    log.error("file failed; recorded as failed, the night goes on. %s", text)


def close_night(lake: Lake, policy: Policy, *, run_id: str) -> NightSummary:
    """Merge the night's fragments into audit.duckdb (one writer), export, summarize."""
    plan = load_plan(lake, run_id)
    if plan.policy_sha256 != policy.sha256:
        raise RuntimeError("the policy file changed during the run; re-run the night")
    fragments = {(f["planned"]["sha256"], f["planned"]["path"]): f for f in audit.read_fragments(lake, run_id)}
    original_rows = {}
    file_rows, finding_rows, check_rows, reason_rows, events = [], [], [], [], []
    pseudonym_rows, treatment_rows = [], []
    roaming = audit.read_json(lake.fragments_dir(run_id) / "roaming.json", default=None)
    roaming_rows = []
    if roaming:
        w = roaming["window"]
        roaming_rows = [[run_id, m["month"], "month", m["rows_read"], m["rows_counted"], m["rows_without_imsi"],
                         m["rows_unclassified"], m["subscribers"], None, None, None, None, roaming["key_id"],
                         m["path"]] for m in roaming["months"]]
        roaming_rows.append([run_id, w["as_of_month"], "window", None, None, None, None, w["subscribers"],
                             w["flagged"], w["not_flagged"], w["insufficient_history"], w["long_inactivity"],
                             ",".join(w["key_ids"]) or None, w["path"]])
    releases = audit.read_json(lake.fragments_dir(run_id) / "aggregates.json", default=[])
    release_rows = [[run_id, r["event_date"], "aggregates", r["k"], r["groups_total"], r["groups_released"],
                     r["groups_suppressed_primary"], r["groups_suppressed_secondary"], r["rows_suppressed"]]
                    for r in releases]
    now = audit.now_utc()
    for p in plan.files:
        frag = fragments.get((p.sha256, p.path))
        if p.action == "audit":
            if frag is None:   # its task died before leaving facts: say so, and count its lines as not loaded
                lines = p.lines or 0
                r = {"status": "failed", "reason": "file task did not finish", "rows_read": lines,
                     "rows_loaded": 0, "rows_rejected": lines, "profile": None, "rejected_by_reason": {}}
                partitions = 0
            else:
                r, partitions = frag["result"], frag["billing_partitions"]
            original_rows[p.sha256] = r["rows_read"]
            file_rows.append([run_id, plan.night, p.file_name, p.sha256, p.bytes, p.lines, r["profile"], r["status"],
                              r["reason"] or None, r["rows_read"], r["rows_loaded"], r["rows_rejected"], None,
                              partitions, now])
            for f in (frag or {}).get("findings", []):
                finding_rows.append([run_id, p.sha256, p.file_name, f["column_index"], f["source_column"],
                                     f["classification"], f["action"], f["canonical_columns"], f["clause"]])
            for c in (frag or {}).get("checks", []):
                check_rows.append([run_id, p.sha256, p.file_name, c["rule"], c["expectation"], c["column"],
                                   c["clause"], c["success"], c["element_count"], c["unexpected_count"],
                                   c["rows_quarantined"]])
            for reason, n in r["rejected_by_reason"].items():
                reason_rows.append([run_id, p.sha256, p.file_name, reason, n])
            made = (frag or {}).get("analytics")
            if made:
                for column, distinct in made["tokenized"].items():
                    pseudonym_rows.append([run_id, p.sha256, p.file_name, "analytics", column, TOKEN_METHOD,
                                           made["key_id"], made["rows"], distinct])
                for t in made["treatments"]:
                    treatment_rows.append([run_id, p.sha256, p.file_name, "analytics", t["column"],
                                           t["output_column"], t["treatment"], t["action"], t["clause"]])
            events.append(audit.LogEvent(
                f"run:{run_id}:file:{p.sha256}:{hashlib.sha256(p.path.encode()).hexdigest()[:12]}",
                "pipeline", f"file_{r['status']}", p.file_name,
                {"sha256": p.sha256, "rows_read": r["rows_read"], "rows_loaded": r["rows_loaded"],
                 "rows_rejected": r["rows_rejected"], "profile": r["profile"],
                 "not_allowed_columns": sum(f["classification"] != "allowed"
                                            for f in (frag or {}).get("findings", []))}))
    for p in plan.files:
        if p.action == "audit":
            continue
        # Skipped files read nothing tonight; a same-night copy repeats its original's rows, all rejected.
        rows = original_rows.get(p.duplicate_of, 0) if p.action == "duplicate_file" else 0
        status = {"known": "known", "duplicate_file": "duplicate_file", "ignored": "ignored"}[p.action]
        file_rows.append([run_id, plan.night, p.file_name, p.sha256, p.bytes, p.lines, None, status, p.reason, rows, 0,
                          rows, p.duplicate_of, 0, now])
        if rows:
            reason_rows.append([run_id, p.sha256, p.file_name, "duplicate_file", rows])
    totals = {k: sum(r[i] for r in file_rows) for k, i in (("read", 9), ("loaded", 10), ("rejected", 11))}
    status_of = [r[7] for r in file_rows]
    counts = {
        "files_processed": sum(s in ("loaded", "empty", "rejected_file", "failed") for s in status_of),
        "files_skipped_known": status_of.count("known"),
        "files_rejected": sum(s in ("rejected_file", "duplicate_file") for s in status_of),
        "files_failed": status_of.count("failed"),
    }
    run_status = "completed_with_errors" if counts["files_failed"] else "completed"
    with audit.writing(lake) as con:
        con.execute("BEGIN TRANSACTION")
        for table in audit.PER_RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        _insert(con, "source_files", file_rows)
        _insert(con, "field_findings", finding_rows)
        _insert(con, "validation_results", check_rows)
        _insert(con, "rejection_reasons", reason_rows)
        _insert(con, "pseudonymization_log", pseudonym_rows)
        _insert(con, "analytics_findings", treatment_rows)
        _insert(con, "aggregate_releases", release_rows)
        _insert(con, "roaming_runs", roaming_rows)
        audit.define_views(con, lake)   # roaming_status and the compliance views (DESIGN §6)
        con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, files_processed = ?, files_skipped_known = ?,"
            " files_rejected = ?, files_failed = ?, rows_read = ?, rows_loaded = ?, rows_rejected = ?"
            " WHERE run_id = ?",
            [now, run_status, *counts.values(), totals["read"], totals["loaded"], totals["rejected"], run_id])
        events.append(audit.LogEvent(
            f"run:{run_id}:finish", "pipeline", "run_finished", run_id,
            {"status": run_status, "rows_read": totals["read"], "rows_loaded": totals["loaded"],
             "rows_rejected": totals["rejected"], "files": len(file_rows)}))
        audit.append_log(con, events, now)
        con.execute("COMMIT")  # commit point: the night's facts become visible together
        chain = audit.verify_chain(con)
        exports = audit.export_parquet(con, lake)
    remove_tree(lake.fragments_dir(run_id))
    remove_tree(lake.work_dir(run_id))
    return NightSummary(run_id=run_id, night=plan.night, status=run_status, files_seen=len(file_rows), **counts,
                        rows_read=totals["read"], rows_loaded=totals["loaded"], rows_rejected=totals["rejected"],
                        audit_db=str(lake.audit_db), exports=tuple(exports), chain_ok=chain.ok)


def _insert(con, table: str, rows: list[list]) -> None:
    if rows:
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
