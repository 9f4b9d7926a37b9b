"""Auditing one landing file: every per-file step in order, and the fragment of facts it leaves.

ingest → field check → validate → billing / quarantine → analytics (pseudonymized, generalized). A
fixed-header extract takes its own step instead (found by its header, or by its name): the payments /
invoice-status extract (`payments_*.csv`) → invoices, the consent extract (`consents_*.csv`) → the consent
register (and quarantine, both). Files are independent, so Airflow maps this over the
night's files in parallel. One broken file never stops the night: it is recorded as failed, with nothing
of it left in any zone.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from transforms.audit_store import now_utc
from transforms.audit_store import tables as t
from transforms.formats import FormatCatalog
from transforms.lake import Lake, safe_run_id
from transforms.lake.commit import remove_tree
from transforms.lake.partitions import withdraw_parts
from transforms.lake.permissions import make_dirs, settle_path
from transforms.nightly.facts import FileFacts, write_file_facts
from transforms.nightly.plan import PlannedFile
from transforms.policy import Policy
from transforms.privacy.analytics import AnalyticsResult, build_analytics
from transforms.privacy.restricted import ANALYTICS, read_restricted, write_skipped
from transforms.privacy.keys import KeyRing
from transforms.privacy.subject_index import index_committed
from transforms.privacy.redact import safe_error
from transforms.privacy.tokens import TOKEN_METHOD
from transforms.steps.billing import load_billing, restricted_filter
from transforms.steps.delivery import readable_copy
from transforms.steps.fieldcheck import check_fields
from transforms.steps.ingest import IngestResult, ingest_file
from transforms.steps.lateness import LatenessResult, count_lateness
from transforms.steps.consents import CONSENTS
from transforms.steps.extract import Extract, load_extract
from transforms.steps.payments import PAYMENTS
from transforms.steps.quarantine import quarantine_rows
from transforms.steps.reading import HEAD_BYTES
from transforms.steps.validate import DUPLICATE, validate_staged

log = logging.getLogger("cdr_audit")
# Zones a file's rows can reach; a file that fails is withdrawn from all of them.
FILE_ZONES = ("billing", "invoices", "consents", "quarantine", "analytics")
# The fixed-header extracts, each with its own step into its own zone (steps/extract.py).
EXTRACTS = (PAYMENTS, CONSENTS)


@dataclass(frozen=True)
class RowAccount:
    """A file read row by row: its rows not loaded by why, each row once (docs/design.md §9).

    A row repeating an earlier one of the file is a duplicate whatever else is wrong with it (the first copy
    carries the rule's verdict); the other rows not loaded failed a rule or a type; unparseable records never
    became rows. So rows read = loaded + failing + duplicate + unparseable.
    """

    rows_failing: int
    rows_duplicate: int
    rows_unparseable: int

    @property
    def rows_not_loaded(self) -> int:
        return self.rows_failing + self.rows_duplicate + self.rows_unparseable

    def columns(self) -> dict[str, int]:
        return {"rows_failing": self.rows_failing, "rows_duplicate": self.rows_duplicate,
                "rows_unparseable": self.rows_unparseable}


class _FileRecord:
    """Builds one file's audit rows: the keys every row shares, filled in once."""

    def __init__(self, planned: PlannedFile, run_id: str, night: str):
        self.planned, self.run_id, self.night = planned, run_id, night
        self.key = {"run_id": run_id, "sha256": planned.sha256, "file_name": planned.file_name}

    def source_file(self, *, status: str, rows_read: int, rows_loaded: int, rows_rejected: int, reason: str,
                    profile: str | None, billing_partitions: int = 0, account: RowAccount | None = None,
                    lateness: LatenessResult | None = None) -> t.SourceFile:
        p = self.planned
        if account is not None:
            if account.rows_not_loaded != rows_rejected:
                raise AssertionError("rows not loaded by why do not add up")   # never expected; recorded as failed
            if status == "loaded" and rows_read and not rows_loaded:
                status = "quarantined"       # read, and not one row loaded: never reported as loaded
        late = {} if lateness is None else dict(lateness_window_days=lateness.window_days,
                                                 rows_before_lateness_window=lateness.rows_before_window,
                                                 rows_after_night=lateness.rows_after_night)
        return t.SourceFile(run_id=self.run_id, night=date.fromisoformat(self.night), file_name=p.file_name,
                            sha256=p.sha256, content_sha256=p.content_sha256, bytes=p.bytes, lines=p.lines,
                            profile=profile, status=status,
                            reason=reason or None, rows_read=rows_read, rows_loaded=rows_loaded,
                            rows_rejected=rows_rejected, billing_partitions=billing_partitions,
                            processed_at=now_utc(), **(account.columns() if account else {}), **late)

    def reasons(self, by_reason: dict[str, int]) -> tuple[t.RejectionReason, ...]:
        return tuple(t.RejectionReason(**self.key, reason=r, rows=n) for r, n in by_reason.items())


def audit_file(planned: PlannedFile, lake: Lake, policy: Policy, formats: FormatCatalog, *, run_id: str, night: str,
               keyring: KeyRing, format_override: str | None = None, timezone: str | None = None,
               on_step: Callable[[str], None] | None = None) -> t.SourceFile:
    """Run one landing file through every per-file step, leave its fragment, return its `source_files` row.

    `format_override` forces a source format (or an extract's step, `payments` or `consents`) by name,
    `timezone` the zone of its times without an offset. `on_step` hears a short line after each step (counts and seconds).
    """
    step = _StepClock(on_step)
    record = _FileRecord(planned, run_id, night)
    work = lake.work_dir(run_id) / planned.sha256[:16]
    remove_tree(work)
    try:
        if planned.fault:
            facts = _refused_whole(record, planned.fault, planned.lines or 0, profile=None)
        else:
            # Read through an alias named by the sha256 (or the decompressed copy): no landing name reaches
            # DuckDB, which globs the paths it is given (docs/design.md §1).
            source = readable_copy(planned.fs_path, planned.sha256, planned.compression, work)
            extract = _extract_of(source, planned, format_override)
            if extract is not None:
                facts = _audit_extract(record, extract, source, lake, policy, work, step, keyring)
            else:
                ingest = ingest_file(source, policy, formats, work, shape=planned.shape,
                                     format_override=format_override, timezone=timezone)
                step(f"ingested {ingest.rows_read:,} rows as {ingest.profile or 'no known format'}")
                facts = _audit_ingested(ingest, record, lake, policy, formats, work, keyring, step)
    except Exception as exc:  # one broken file must not stop the night; the reason is recorded
        lines = planned.lines or 0
        facts = FileFacts(source_file=record.source_file(
            status="failed", rows_read=lines, rows_loaded=0, rows_rejected=lines,
            reason=f"internal error: {safe_error(exc)}", profile=None))
        _log_internal_error(lake, run_id, planned, exc)
        withdraw_parts(lake, FILE_ZONES, planned.sha256)
    write_file_facts(lake, run_id, planned, facts)
    remove_tree(work)
    return facts.source_file


def _extract_of(source: Path, planned: PlannedFile, format_override: str | None) -> Extract | None:
    """The extract whose step a file takes (None: a CDR file); a forced format decides, else its header
    (read from `source`, the content as read) or its landing name."""
    if format_override:
        return next((e for e in EXTRACTS if e.profile == format_override), None)
    with open(source, "rb") as fh:
        head = fh.read(HEAD_BYTES)
    # A header decides before a name: a consent extract renamed payments_*.csv is still consents.
    return (next((e for e in EXTRACTS if e.is_header(head)), None)
            or next((e for e in EXTRACTS if e.claims(head, planned.fs_path.name)), None))


def _refused_whole(record: _FileRecord, reason: str, lines: int, profile: str | None) -> FileFacts:
    """A file refused whole: nothing of it kept; its lines count as read and refused (docs/design.md §9)."""
    return FileFacts(
        source_file=record.source_file(status="rejected_file", rows_read=lines, rows_loaded=0, rows_rejected=lines,
                                       reason=reason, profile=profile),
        rejection_reasons=record.reasons({reason: lines} if lines else {}))


def _audit_extract(record: _FileRecord, extract: Extract, source: Path, lake: Lake, policy: Policy, work: Path,
                   step: "_StepClock", keyring: KeyRing) -> FileFacts:
    """A fixed-header extract: its zone and quarantine only (no field check, no CDR suite, no analytics); the
    invoices' subject index after their parts (docs/design.md §12)."""
    p = record.planned
    done = load_extract(extract, source, policy, lake, work, night=record.night, run_id=record.run_id,
                        shape=p.shape)
    index_committed(lake, done.zone_files, policy, keyring, work)
    step(f"{extract.profile}: {done.rows_loaded:,} rows committed to {extract.zone} in"
         f" {len(done.rows_by_partition)} partition(s), {done.rows_quarantined:,} quarantined")
    read_by_row = done.status == "loaded"       # an empty or refused extract was not read row by row
    account = RowAccount(rows_failing=done.rows_quarantined - done.rows_duplicate - done.rows_unparseable,
                         rows_duplicate=done.rows_duplicate, rows_unparseable=done.rows_unparseable)
    return FileFacts(
        source_file=record.source_file(status=done.status, rows_read=done.rows_read, rows_loaded=done.rows_loaded,
                                       rows_rejected=done.rows_quarantined, reason=done.reason,
                                       profile=extract.profile, account=account if read_by_row else None),
        rejection_reasons=record.reasons(done.quarantined_by_reason))


def _audit_ingested(ingest: IngestResult, record: _FileRecord, lake: Lake, policy: Policy, formats: FormatCatalog,
                    work: Path, keyring: KeyRing, step: "_StepClock") -> FileFacts:
    p = record.planned
    if ingest.status == "rejected_file":
        return _refused_whole(record, ingest.reason, ingest.rows_read, ingest.profile)
    if ingest.status != "staged":
        lines = ingest.rows_read
        return FileFacts(
            source_file=record.source_file(status="empty", rows_read=lines, rows_loaded=0, rows_rejected=lines,
                                           reason=ingest.reason, profile=ingest.profile),
            rejection_reasons=record.reasons({ingest.reason: lines} if lines else {}))
    fields = check_fields(ingest, policy, formats)
    validation = validate_staged(ingest.staged_path, policy, work, source_sha256=p.sha256, run_id=record.run_id,
                                 numbering=ingest.numbering, docs_dir=lake.data_docs)
    # A repeat counts as a duplicate whatever else is wrong with it: each row once (RowAccount).
    duplicates = validation.rejected_by_reason.get(DUPLICATE, 0)
    account = RowAccount(rows_failing=validation.rows_rejected - duplicates, rows_duplicate=duplicates,
                         rows_unparseable=ingest.rows_unparseable)
    step(f"validated: {validation.rows_valid:,} valid, {account.rows_failing:,} failing a rule,"
         f" {account.rows_duplicate:,} duplicate (and {account.rows_unparseable:,} unparseable at ingest)")
    lateness = count_lateness(validation.valid_dir, record.night, policy, work / "tmp")
    if lateness.rows_before_window or lateness.rows_after_night:
        step(f"event dates: {lateness.rows_before_window:,} rows more than {lateness.window_days} day(s) before the"
             f" night, {lateness.rows_after_night:,} after it (loaded as delivered)")
    billing = load_billing(validation.valid_dir, lake, source_sha256=p.sha256)
    quarantine_rows(validation.rejected_path, ingest.unparseable_path, lake, work, policy,
                    source_sha256=p.sha256, run_id=record.run_id, night=record.night)
    step(f"committed {billing.rows_written:,} rows to billing in {len(billing.rows_by_partition)} partition(s)")
    made = None
    if billing.rows_written:
        skip = restricted_filter(read_restricted(lake, record.run_id), ANALYTICS)
        made = build_analytics([str(lake.root / f) for f in billing.files], lake, policy, keyring,
                               work / "analytics", source_sha256=p.sha256, skip=skip)
        write_skipped(lake, record.run_id, f"{ANALYTICS}-{p.sha256[:16]}", {ANALYTICS: made.rows_restricted},
                      cells_blanked={ANALYTICS: made.cells_blanked})
        step(f"analytics: {made.rows:,} rows pseudonymized (key {made.key_id}) and generalized")
    by_reason = {**ingest.unparseable_by_reason}
    for reason, n in validation.rejected_by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    rejected = ingest.rows_unparseable + validation.rows_rejected
    if ingest.rows_read != billing.rows_written + rejected:
        raise AssertionError("row conservation broken")  # never expected; recorded as a failed file
    return FileFacts(
        source_file=record.source_file(status="loaded", rows_read=ingest.rows_read, rows_loaded=billing.rows_written,
                                       rows_rejected=rejected, reason="", profile=ingest.profile,
                                       billing_partitions=len(billing.rows_by_partition), account=account,
                                       lateness=lateness),
        field_findings=tuple(t.FieldFinding(**record.key, column_index=f.column_index, source_column=f.source_column,
                                            classification=f.classification, action=f.action,
                                            canonical_columns=f.canonical_columns, clause=f.clause)
                             for f in fields.findings),
        validation_results=tuple(t.ValidationResult(
            **record.key, rule=c.rule, expectation=c.expectation, column_name=c.column, clause=c.clause,
            success=c.success, element_count=c.element_count, unexpected_count=c.unexpected_count,
            rows_quarantined=c.rows_quarantined) for c in validation.checks),
        rejection_reasons=record.reasons(by_reason),
        **(_analytics_facts(record, made) if made else {}))


def _analytics_facts(record: _FileRecord, made: AnalyticsResult) -> dict:
    """What analytics made of the file's billing rows: the columns tokenized, what each column became."""
    return {
        "pseudonymization_log": tuple(t.Pseudonymization(
            **record.key, dataset="analytics", column_name=column, method=TOKEN_METHOD, key_id=made.key_id,
            rows=made.rows, distinct_values=distinct) for column, distinct in made.tokenized.items()),
        "analytics_findings": tuple(t.AnalyticsFinding(
            **record.key, dataset="analytics", column_name=c.column, output_column=c.output_column,
            treatment=c.treatment, action=c.action, clause=c.clause) for c in made.treatments),
        "analytics_event_dates": tuple(sorted(made.zone.rows_by_partition)),
    }


class _StepClock:
    """Reports each step of a file with the seconds it took."""

    def __init__(self, listener: Callable[[str], None] | None):
        self.listener, self.last = listener, time.monotonic()

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if self.listener:
            self.listener(f"{message} ({now - self.last:.1f} s)")
        self.last = now


def _log_internal_error(lake: Lake, run_id: str, planned: PlannedFile, exc: BaseException) -> None:
    """Keep the stack for engineers: code locations only, never the message (it may quote input)."""
    frames = "".join(traceback.format_tb(exc.__traceback__))
    text = f"{type(exc).__name__} while auditing {planned.file_name} (sha256 {planned.sha256})\n{frames}"
    path = lake.zone("audit") / "errors" / safe_run_id(run_id) / f"{planned.sha256[:16]}.txt"
    make_dirs(path.parent)
    path.write_text(text)
    settle_path(path)       # the audit zone's mode (docs/design.md §2)
    log.error("file failed; recorded as failed, the night goes on. %s", text)
