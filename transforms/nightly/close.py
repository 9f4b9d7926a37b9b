"""Closing a night: every fragment into `audit.duckdb` in one transaction (the store's single writer),
the audit log chained, the Parquet exports refreshed, the night's validation Data Docs built, and the
night's summary returned.

Files the plan skipped (already audited, same-night copies, ignored entries) and files whose task died
before leaving facts get their `source_files` rows here, so every landing file is accounted for and
`rows_read = rows_loaded + rows_rejected` holds for each.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from transforms.privacy.restricted import BLANKED, read_skipped
from transforms.audit_store import LogEvent, append_log, insert, now_utc, outcome_event, verify_chain, writing
from transforms.audit_store.deliveries import MissingSource, missing_sources
from transforms.audit_store.exports import export_parquet
from transforms.audit_store.tables import (
    PER_RUN_TABLES, AggregateRelease, AggregateWaiting, MarketingProfile, RejectionReason, RoamingRun, SourceFile,
)
from transforms.audit_store.views import define_views
from transforms.lake import Lake
from transforms.lake.commit import remove_tree
from transforms.nightly.facts import (
    AGGREGATES, AGGREGATES_WAITING, MARKETING, ROAMING, FileFacts, read_file_facts, read_night_rows,
)
from transforms.nightly.plan import NightPlan, PlannedFile, load_plan, plan_path
from transforms.policy import Policy
from transforms.privacy.redact import safe_error
from transforms.runs import night_subject
from transforms.runs.claims import release_claims
from transforms.runs.lease import release
from transforms.steps.validate import build_night_docs

# The file statuses a run counts as processed tonight, and as refused whole: nothing of a refused file is
# kept in any zone, so its rows are refused, never quarantined (docs/design.md §9).
PROCESSED = ("loaded", "quarantined", "empty", "rejected_file", "failed")
REJECTED_WHOLE = ("rejected_file", "duplicate_file")
# The key of the night's log event that says its Data Docs were not built, and why.
DOCS_ERROR = "data_docs_error"
# Files whose rows not loaded are in the quarantine zone.
QUARANTINING = ("loaded", "quarantined")


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
    rows_rejected: int              # = rows_quarantined + rows_refused + rows_failed
    rows_quarantined: int           # in files read row by row: kept in the quarantine zone with their reason
    rows_refused: int               # in files refused whole (unreadable, duplicate): nothing of them kept
    rows_failed: int                # in files that failed with an internal error: withdrawn from every zone
    lateness_window_days: int       # the policy's lateness.window_days
    rows_before_lateness_window: int   # loaded rows dated more than the window before the night
    rows_after_night: int              # loaded rows dated after the night
    audit_db: str
    exports: tuple[str, ...]
    chain_ok: bool
    data_docs: str = ""               # the GX Data Docs site
    data_docs_error: str | None = None   # why tonight's pages were not built (the night closed all the same)
    nothing_landed: str | None = None    # the warning of a night whose landing held no file to read (NightPlan)
    sources_missing: tuple[MissingSource, ...] = ()   # regular sources the night read no file of (v_missing_sources)


class NoPlan(RuntimeError):
    """The run's plan never finished (it was refused or failed): there is nothing to close."""


def close_night(lake: Lake, policy: Policy, *, run_id: str, night: str | None = None) -> NightSummary:
    """Merge the night's fragments into audit.duckdb (one writer), export, summarize.

    A run whose plan failed (a busy night, zones open: docs/design.md §2, §10) left no plan: the close gives
    the night's lease up, so the next run need not wait for it to go stale, and raises `NoPlan`."""
    if not plan_path(lake, run_id).exists():
        if night is not None:
            release(lake, night_subject(night), run_id)
        raise NoPlan(f"run {run_id} has no plan (its plan_night failed): nothing to close; the night's lease"
                     " is given up")
    plan = load_plan(lake, run_id)
    if plan.policy_sha256 != policy.sha256:
        raise RuntimeError("the policy file changed during the run; re-run the night")
    now = now_utc()
    audited = {p: read_file_facts(lake, run_id, p) or _unfinished(plan, p, now) for p in plan.to_audit}
    skipped = [_skipped(plan, p, audited, now) for p in plan.files if p.action != "audit"]
    facts = [*audited.values(), *skipped]
    files = [f.source_file for f in facts]
    counts = {
        "files_processed": sum(f.status in PROCESSED for f in files),
        "files_skipped_known": sum(f.status == "known" for f in files),
        "files_rejected": sum(f.status in REJECTED_WHOLE for f in files),
        "files_failed": sum(f.status == "failed" for f in files),
    }
    totals = {k: sum(getattr(f, k) for f in files) for k in ("rows_read", "rows_loaded", "rows_rejected")}
    not_loaded = {"rows_quarantined": sum(f.rows_rejected for f in files if f.status in QUARANTINING),
                  "rows_refused": sum(f.rows_rejected for f in files if f.status in REJECTED_WHOLE),
                  "rows_failed": sum(f.rows_rejected for f in files if f.status == "failed")}
    lateness = {"lateness_window_days": policy.lateness.window_days,
                "rows_before_lateness_window": sum(f.rows_before_lateness_window or 0 for f in files),
                "rows_after_night": sum(f.rows_after_night or 0 for f in files)}
    run_status = "completed_with_errors" if counts["files_failed"] else "completed"
    events = [_file_event(run_id, p, f) for p, f in audited.items()]
    # Rows the derivations left out because their subject's processing is restricted (counts only; §6.4).
    restricted = read_skipped(lake, run_id)
    # ... and the cells where such a subject, the other party of someone else's record, was written NULL.
    blanked = read_skipped(lake, run_id, BLANKED)
    docs = _data_docs(lake, audited)
    finished = {"status": run_status, **totals, "files": len(files),
                **({"rows_restricted": restricted} if any(restricted.values()) else {}),
                **({"cells_blanked": blanked} if any(blanked.values()) else {}),
                **({"nothing_landed": True} if plan.nothing_landed else {}), **docs}
    with writing(lake) as con:
        con.execute("BEGIN TRANSACTION")
        for table in PER_RUN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        for table_rows in zip(*(f.rows() for f in facts)):          # one table at a time
            insert(con, [r for rows in table_rows for r in rows])
        # One row per release and table, ever: a release standing from before is recorded only if no run did.
        recorded = set(con.execute("SELECT event_date, release_number, release_table FROM aggregate_releases"
                                   " WHERE release_number IS NOT NULL").fetchall())
        insert(con, [r for r in read_night_rows(lake, run_id, AGGREGATES, AggregateRelease)
                     if (r.event_date, r.release_number, r.release_table) not in recorded])
        insert(con, list(read_night_rows(lake, run_id, AGGREGATES_WAITING, AggregateWaiting)))
        insert(con, list(read_night_rows(lake, run_id, ROAMING, RoamingRun)))
        insert(con, list(read_night_rows(lake, run_id, MARKETING, MarketingProfile)))
        define_views(con, lake, policy)   # roaming_status and the compliance views (docs/design.md §6)
        con.execute(
            "UPDATE runs SET finished_at = ?, status = ?, files_processed = ?, files_skipped_known = ?,"
            " files_rejected = ?, files_failed = ?, rows_read = ?, rows_loaded = ?, rows_rejected = ?"
            " WHERE run_id = ?", [now, run_status, *counts.values(), *totals.values(), run_id])
        # Regular sources the night read no file of (formats only, never a file name).
        missing = missing_sources(con, plan.night)
        events.append(outcome_event(f"run:{run_id}:finish", "pipeline", "run_finished", run_id, {
            **finished, **({"sources_missing": [m.source for m in missing]} if missing else {})}))
        append_log(con, events, now)
        con.execute("COMMIT")  # commit point: the night's facts become visible together
        release_claims(lake, run_id)     # source_files holds the files now; still under the store's lock
        chain = verify_chain(con)
        exports = export_parquet(con, lake, policy)
    remove_tree(lake.fragments_dir(run_id))
    remove_tree(lake.work_dir(run_id))
    release(lake, night_subject(plan.night), run_id)     # the night is free for the next run
    return NightSummary(run_id=run_id, night=plan.night, status=run_status, files_seen=len(files), **counts,
                        **totals, **not_loaded, **lateness, audit_db=str(lake.audit_db), exports=tuple(exports),
                        chain_ok=chain.ok, data_docs=str(lake.data_docs), data_docs_error=docs.get(DOCS_ERROR),
                        nothing_landed=plan.nothing_landed_warning, sources_missing=tuple(missing))


def _data_docs(lake: Lake, audited: dict[PlannedFile, FileFacts]) -> dict:
    """Build the Data Docs pages of the night's validated files, once for the night (steps/gx_duckdb.py says
    why not per file). What it made goes into the night's log event: the pages, or why there are none.

    A site that cannot be built is a missing report page, not a missing audit fact: the counts are in
    `validation_results` either way, so the night still closes, and says so.
    """
    validated = [p.sha256 for p, f in audited.items() if f.validation_results]
    if not validated:
        return {}
    try:
        return {"data_docs_pages": build_night_docs(lake.data_docs, validated)}
    except Exception as exc:  # noqa: BLE001 — recorded, and the night closes (see above)
        return {DOCS_ERROR: f"Data Docs not built: {safe_error(exc)}"}


def _source_file(plan: NightPlan, p: PlannedFile, now, **outcome) -> SourceFile:
    return SourceFile(run_id=plan.run_id, night=date.fromisoformat(plan.night), file_name=p.file_name,
                      sha256=p.sha256, content_sha256=p.content_sha256, bytes=p.bytes, lines=p.lines,
                      processed_at=now, **outcome)


def _unfinished(plan: NightPlan, p: PlannedFile, now) -> FileFacts:
    """A file whose task died before leaving facts: its lines count as read and not loaded."""
    lines = p.lines or 0
    return FileFacts(source_file=_source_file(plan, p, now, profile=None, status="failed",
                                              reason="file task did not finish", rows_read=lines, rows_loaded=0,
                                              rows_rejected=lines, billing_partitions=0))


def _skipped(plan: NightPlan, p: PlannedFile, audited: dict[PlannedFile, FileFacts], now) -> FileFacts:
    """A file the plan skipped. It read nothing tonight; a same-night copy repeats its original's rows,
    all rejected."""
    original = next((f.source_file for q, f in audited.items() if q.sha256 == p.duplicate_of), None)
    rows = original.rows_read if p.action == "duplicate_file" and original else 0
    reasons = (RejectionReason(run_id=plan.run_id, sha256=p.sha256, file_name=p.file_name, reason="duplicate_file",
                               rows=rows),) if rows else ()
    return FileFacts(source_file=_source_file(plan, p, now, profile=None, status=p.action, reason=p.reason,
                                              rows_read=rows, rows_loaded=0, rows_rejected=rows,
                                              duplicate_of=p.duplicate_of, billing_partitions=0),
                     rejection_reasons=reasons)


def _file_event(run_id: str, p: PlannedFile, f: FileFacts) -> LogEvent:
    s = f.source_file
    return outcome_event(
        f"run:{run_id}:file:{p.sha256}:{hashlib.sha256(p.path_bytes).hexdigest()[:12]}",
        "pipeline", f"file_{s.status}", p.file_name,
        {"sha256": p.sha256, "rows_read": s.rows_read, "rows_loaded": s.rows_loaded,
         "rows_rejected": s.rows_rejected, "profile": s.profile,
         "not_allowed_columns": sum(x.classification in ("not_allowed", "unknown") for x in f.field_findings)})
