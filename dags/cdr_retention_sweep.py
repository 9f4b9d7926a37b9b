"""
### Retention sweep

Enforces the privacy policy's retention catalog (A1 Slovenija §5, §3.2, §3.3)
over every zone of the lake, once a day, right after the nightly audit has
closed (it is scheduled on the audit store asset the nightly DAG updates).

1. **sweep** gives every row of billing, quarantine, analytics, invoices and
   roaming its due date: billing CDRs until the invoice is paid (payments
   extract), at most the claim's limitation period; analytics never longer
   than their billing source; invoices 10 years after the invoice year;
   roaming aggregates 6 months after their month. Rows under an active legal
   hold (`cdr-audit hold place …`) are kept and recorded as held. Affected
   Parquet files are rewritten without the due rows (temp file + rename), and
   a proof pass re-reads them: no removed identifier may remain in any byte.
   One `retention_actions` row per data set, partition, category and action.
   Param `dry_run` lists the same without touching any zone.
2. **verify_audit_log** recomputes the audit log's hash chain.

Killed half way? Clear and re-run: the sweep's journal finishes what was
begun and records it once. Logic lives in `transforms/retention.py`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task
from cdr_common import AUDIT_STORE, hmac_connection

PARAMS = {
    "lake": Param("", type="string", description="Lake root. Empty: $CDR_AUDIT_LAKE or ./lake."),
    "policy": Param("", type="string", description="Policy YAML. Empty: policy/a1_slovenia.yaml."),
    "as_of": Param("", type="string", pattern=r"^(\d{4}-\d{2}-\d{2})?$",
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
    default_args={"owner": "data-protection", "retries": int(os.environ.get("CDR_AUDIT_TASK_RETRIES", "2")),
                  "retry_delay": timedelta(minutes=5), "retry_exponential_backoff": True,
                  "max_retry_delay": timedelta(minutes=60)},
)
def cdr_retention_sweep():
    @task(doc_md="Due dates, legal holds, rewrite of the affected Parquet files, byte-level proof, audit rows.")
    def sweep(params=None, dag_run=None) -> dict:
        from transforms import tasks

        from datetime import timezone

        return tasks.retention(dict(params), dag_run.run_after.astimezone(timezone.utc).date().isoformat(),
                               connection=hmac_connection())

    @task(doc_md="Recompute the audit log's hash chain after the sweep.")
    def verify_audit_log(params=None) -> dict:
        from transforms import tasks

        return tasks.verify_audit_log(dict(params))

    sweep() >> verify_audit_log()


cdr_retention_sweep()
