"""
### Retention sweep

Enforces the privacy policy's retention catalog (A1 Slovenija §5, §3.2, §3.3)
over every zone of the lake, once a day, right after the nightly audit has
closed (it is scheduled on the audit store asset the nightly DAG updates).

1. **sweep** gives every row of billing, quarantine, analytics, invoices and
   roaming its due date: billing CDRs until the invoice is paid (payments
   extract), at most the claim's limitation period; analytics never longer
   than their billing source; invoices and roaming aggregates for their
   category's `keep` in the policy's `retention` catalog, counted from the end
   of the invoice year and of the month. Rows under an active legal
   hold (`cdr-audit hold place …`) are kept and recorded as held. Affected
   Parquet files are rewritten without the due rows (temp file + rename), and
   a proof pass re-reads them: no removed identifier may remain in any byte.
   One `retention_actions` row per data set, partition, category and action.
   Param `dry_run` lists the same without touching any zone.
2. **verify_audit_log** recomputes the audit log's hash chain and checks it against every anchor of
   its head (`audit/anchors/`).

Killed half way? Clear and re-run: the sweep's journal finishes what was
begun and records it once. A task that fails (after its retries, with
exponential backoff) writes a `task_failed` event to the audit log. Logic
lives in `transforms/retention/`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from cdr_common import AUDIT_STORE, DATE_OR_EMPTY, STORE_WRITER_QUEUE, default_args, hmac_connection

PARAMS = {
    "lake": Param(None, type=["null", "string"], maxLength=4096,
                  description="Lake root. Empty: $CDR_AUDIT_LAKE or ./lake."),
    "policy": Param(None, type=["null", "string"], pattern=r"^(.*\.ya?ml)?$",
                    description="Policy YAML file. Empty: policy/a1_slovenia.yaml."),
    "as_of": Param(None, type=["null", "string"], pattern=DATE_OR_EMPTY,
                   description="The day the sweep acts for, YYYY-MM-DD. Empty: the day the run starts (UTC)."),
    "dry_run": Param(False, type="boolean", description="Only list what is due, held and kept; change nothing."),
}


@dag(
    schedule=[AUDIT_STORE],
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    params=PARAMS,
    doc_md=__doc__,
    tags=["cdr-audit", "privacy", "retention"],
    default_args=default_args("data-protection", timedelta(minutes=5), timedelta(minutes=60)),
)
def cdr_retention_sweep():
    @task(queue=STORE_WRITER_QUEUE)
    def sweep(params=None, dag_run=None) -> dict:
        """Due dates, legal holds, rewrite of the affected Parquet files, byte-level proof, audit rows.

        **If it fails:** a proof that found a removed identifier still in a file fails the task on
        purpose — do not clear it blindly; read `retention_proofs` and the log (names and counts only).
        Otherwise (disk, lock held by a long `cdr-audit hold` command) clear it: the journal resumes.
        """
        from datetime import timezone

        from transforms.entry import tasks

        return tasks.retention(dict(params), dag_run.run_after.astimezone(timezone.utc).date().isoformat(),
                               connection=hmac_connection())

    @task
    def verify_audit_log(params=None) -> dict:
        """Recompute the audit log's hash chain after the sweep and hold it to every anchor of its head.

        **If it fails:** a row of `audit_log` was edited or deleted (the last ones too: an anchor names
        a seq the log no longer has), or an anchor file was edited — a security incident, not a
        pipeline bug. Do not clear or re-run; keep `audit.duckdb` and `audit/anchors/` as they are and
        tell the DPO (the error names the first broken entry or the anchor file and seq).
        """
        from transforms.entry import tasks

        return tasks.verify_audit_log(dict(params))

    sweep() >> verify_audit_log()


cdr_retention_sweep()
