"""
### Nightly CDR privacy audit

Takes the night's traffic and billing extracts from the landing folder and
proves they were handled the way the privacy policy says (A1 Slovenija, §3.2).

1. **plan_night** fingerprints every landing file (sha256) and opens the run in
   `LAKE/audit/audit.duckdb`. Files whose bytes were audited before are skipped,
   so re-running a night adds nothing twice.
2. **audit_file** (one mapped task per file) detects the format, checks every
   column against the allowed billing-data list, validates rows with the Great
   Expectations suite, writes valid rows to `billing/` and rejected rows, with a
   reason, to `quarantine/`, then pseudonymized (keyed HMAC tokens) and
   generalized rows to `analytics/`. Off-list columns are dropped and reported
   by name. The HMAC key comes from the Airflow connection `cdr_audit_hmac`
   (login = key id, password = hex key) or the environment.
3. **aggregate_night** recomputes the k-anonymous daily aggregates of every
   event date tonight's files touched (`aggregates/`); groups under k
   subscribers are suppressed, and so are those a total minus its parts
   would reveal.
4. **roaming_night** rebuilds the monthly roaming presence and consumption
   aggregates (`roaming/`, subscriber tokens only) of every month tonight's
   files touched, then assesses the fair-use window (four months, Impl. Reg.
   2016/2286 Art. 4) ending with the last complete month: flagged, not
   flagged or insufficient history, with the figures behind each state.
5. **close_night** merges the per-file facts into the audit store (one writer),
   chains the audit log and exports the tables to Parquet. It runs even when a
   file task failed, and records that file as failed.

Re-run a night by clearing the run; it is safe to kill and re-run. Logic lives
in `transforms/`; this file only wires it.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from cdr_common import AUDIT_STORE, hmac_connection

PARAMS = {
    "landing": Param("", type="string", description="Landing folder of the night's extracts; may contain {night}. "
                     "Empty: $CDR_AUDIT_LANDING or the bundled sample night."),
    "lake": Param("", type="string", description="Lake root. Empty: $CDR_AUDIT_LAKE or ./lake."),
    "policy": Param("", type="string", description="Policy YAML. Empty: policy/a1_slovenia.yaml."),
    "profiles": Param({}, type="object", description="Force a source format for files matching a glob, "
                      'e.g. {"pbx_*.csv": "asterisk_master_21"}. Empty: detect from header and shape.'),
    "night": Param("", type=["string"], pattern=r"^(\d{4}-\d{2}-\d{2})?$",
                   description="Night to audit, YYYY-MM-DD. Empty: the run's logical date."),
}


@dag(
    # The interval [day 02:00, next day 02:00) UTC runs at its end, with the day as logical date.
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    params=PARAMS,
    doc_md=__doc__,
    tags=["cdr-audit", "privacy", "billing", "nightly"],
    # CDR_AUDIT_TASK_RETRIES=0 in tests and the demo, so a failure shows at once.
    default_args={"owner": "data-engineering", "retries": int(os.environ.get("CDR_AUDIT_TASK_RETRIES", "2")),
                  "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=30)},
)
def cdr_nightly_audit():
    @task(doc_md="Fingerprint landing files, skip known ones, open the run in the audit store.")
    def plan_night(params=None, ds=None, run_id=None) -> list[dict]:
        from transforms import tasks

        return tasks.plan(dict(params), ds, run_id)

    @task(doc_md="Ingest → field check → GX validation → billing / quarantine → analytics for one file.",
          map_index_template="{{ task.op_kwargs['planned']['file_name'] }}")
    def audit_file(planned: dict, params=None, ds=None, run_id=None) -> dict:
        from transforms import tasks

        return tasks.audit_one(planned, dict(params), ds, run_id, connection=hmac_connection())

    @task(doc_md="k-anonymous daily aggregates of the event dates tonight's files touched.",
          trigger_rule=TriggerRule.ALL_DONE)
    def aggregate_night(params=None, ds=None, run_id=None) -> list[dict]:
        from transforms import tasks

        return tasks.aggregate(dict(params), ds, run_id)

    @task(doc_md="Monthly roaming aggregates of the months tonight touched; fair-use window assessment.",
          trigger_rule=TriggerRule.ALL_DONE)
    def roaming_night(params=None, ds=None, run_id=None) -> dict:
        from transforms import tasks

        return tasks.roaming(dict(params), ds, run_id, connection=hmac_connection())

    @task(doc_md="Merge per-file facts into audit.duckdb, chain the log, export Parquet.",
          trigger_rule=TriggerRule.ALL_DONE, outlets=[AUDIT_STORE])
    def close_night(params=None, ds=None, run_id=None) -> dict:
        from transforms import tasks

        return tasks.close(dict(params), ds, run_id)

    files = audit_file.expand(planned=plan_night())
    files >> [aggregate_night(), roaming_night()] >> close_night()


cdr_nightly_audit()
