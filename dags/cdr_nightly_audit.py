"""
### Nightly CDR privacy audit

Takes the night's traffic and billing extracts from the landing folder and
proves they were handled the way the privacy policy says (A1 Slovenija, §3.2).

1. **plan_night** holds the lake to the policy's `access` (who may read each
   zone; it fails without retrying while a zone is readable beyond it, unless
   the param `allow_open_zones` is set, which the audit log records),
   fingerprints every landing file (sha256) and opens the run in
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
   files touched, then assesses the fair-use window (the policy's
   `roaming.observation_window_months`) ending with the last complete month:
   flagged, not flagged or insufficient history, with the figures behind
   each state.
5. **marketing_night** rebuilds the marketing profiles (`marketing/`) of every
   event date tonight's files touched: one row per subscriber whose consent to
   profiling stands (policy §3.4 ¶5), under marketing tokens that cannot be
   joined to analytics; called parties who consented too by their token, the
   others only counted. A subscriber who withdrew is gone from each day rebuilt.
6. **close_night** merges the per-file facts into the audit store (one writer),
   chains the audit log, exports the tables to Parquet and builds the night's
   GX Data Docs pages. It runs even when a file task failed, and records that
   file as failed. Its log warns of a night where nothing landed and of each
   regular source (a format read three nights running) the night read no file
   of (`v_missing_sources`); the run still succeeds.

Re-run a night by clearing the run; it is safe to kill and re-run. A run holds
a lease on its night, so a second run of the night (another DAG run, or the
CLI) waits for it; what a killed run staged is removed by the next run, which
marks it `abandoned` (docs/design.md §10). A task that
fails (after its retries, with exponential backoff) writes a `task_failed`
event to the audit log (`dag.task`, run, try, map index, exception type — never
the message); each task's own doc says what to check. Logic lives in
`transforms/`; this file only wires it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, task
from cdr_common import AUDIT_STORE, DATE_OR_EMPTY, FORMAT_NAME, STORE_WRITER_QUEUE, default_args, hmac_connection

PARAMS = {
    "landing": Param(None, type=["null", "string"], maxLength=4096,
                     description="Landing folder of the night's extracts; may contain {night}. "
                     "Empty: $CDR_AUDIT_LANDING or the bundled sample night."),
    "lake": Param(None, type=["null", "string"], maxLength=4096,
                  description="Lake root. Empty: $CDR_AUDIT_LAKE or ./lake."),
    "policy": Param(None, type=["null", "string"], pattern=r"^(.*\.ya?ml)?$",
                    description="Policy YAML file. Empty: policy/a1_slovenia.yaml."),
    "formats": Param({}, type="object", additionalProperties={"type": "string", "pattern": FORMAT_NAME},
                     description="Force a source format for files matching a glob, "
                     'e.g. {"pbx_*.csv": "asterisk_master_21"} (`cdr-audit formats list`). '
                     "Empty: recognised from the file's head."),
    "formats_dir": Param(None, type=["null", "string"], maxLength=4096,
                         description="A folder of your own source formats (YAML) beside the built-ins. "
                         "Empty: $CDR_AUDIT_FORMATS_DIR, or the built-ins only."),
    "timezones": Param({}, type="object", additionalProperties={"type": "string", "maxLength": 64},
                       description="The time zone of times without an offset in files matching a glob, "
                       'e.g. {"berlin_*.csv": "Europe/Berlin"}. Empty: each format\'s own.'),
    "night": Param(None, type=["null", "string"], pattern=DATE_OR_EMPTY,
                   description="Night to audit, YYYY-MM-DD. Empty: the run's logical date."),
    "allow_open_zones": Param(False, type="boolean",
                              description="Run even when a zone of the lake is readable beyond the policy's access "
                              "(by default the run refuses); the audit log records it. Fix the modes instead: "
                              "`cdr-audit permissions --apply --lake LAKE`."),
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
    default_args=default_args("data-engineering", timedelta(minutes=2), timedelta(minutes=30)),
)
def cdr_nightly_audit():
    @task(queue=STORE_WRITER_QUEUE)
    def plan_night(params=None, ds=None, run_id=None) -> list[dict]:
        """Fingerprint the landing files (sha256), skip bytes audited before, open the run in the audit store.

        **If it fails:** a zone of the lake is readable beyond the policy's access (`ZonesOpen` names the zones,
        the open entries and an example; it does not retry): run `cdr-audit permissions --apply --lake LAKE`, or
        trigger with `allow_open_zones` (recorded in the audit log). Or another live run holds the night's lease
        (`NightBusy` names it and since when: the retries wait for it), or the landing folder is missing or
        unreadable (check the `landing` param, `$CDR_AUDIT_LANDING` and that the night's extracts arrived), or the
        policy YAML does not load, or `audit.duckdb` is locked by a stuck writer. Fix, then clear this task;
        nothing was written yet.
        """
        from airflow.sdk.exceptions import AirflowFailException

        from transforms.entry import tasks
        from transforms.lake.permissions import ZonesOpen

        try:
            return tasks.plan(dict(params), ds, run_id)
        except ZonesOpen as exc:   # a retry finds the same modes: fail at once
            raise AirflowFailException(str(exc)) from exc

    # A mapped task does not take its function's docstring as doc_md: pass it.
    @task(map_index_template="{{ task.op_kwargs['planned']['file_name'] }}", doc_md="""
        One file: recognise its format → field check → GX validation → billing / quarantine → analytics.

        Off-list columns are dropped and reported by name; rejected rows go to quarantine with a reason.
        **If it fails:** the other files go on and close_night records this one as `failed`. Read the log
        (it names the step; it never prints values), e.g. an unknown format (force one with the `profiles`
        param) or no HMAC key (`cdr_audit_hmac` connection). Clear this map index, then close_night.
        """)
    def audit_file(planned: dict, params=None, ds=None, run_id=None) -> dict:
        from transforms.entry import tasks

        return tasks.audit_one(planned, dict(params), ds, run_id, connection=hmac_connection())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def aggregate_night(params=None, ds=None, run_id=None) -> dict:
        """k-anonymous daily aggregates of the event dates tonight's files touched (runs even if a file failed).

        **If it fails:** usually a billing partition that cannot be read (disk, permissions). The zones
        are untouched until the rename at the end; clear the task once fixed.
        """
        from transforms.entry import tasks

        return tasks.aggregate(dict(params), ds, run_id)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def roaming_night(params=None, ds=None, run_id=None) -> dict:
        """Monthly roaming aggregates of the months tonight touched, then the fair-use window assessment.

        **If it fails:** check the HMAC key (roaming keys subscribers by token) and the billing zone;
        the month files are replaced whole, so clearing and re-running is safe.
        """
        from transforms.entry import tasks

        return tasks.roaming(dict(params), ds, run_id, connection=hmac_connection())

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def marketing_night(params=None, ds=None, run_id=None) -> dict:
        """Marketing profiles of the event dates tonight touched, on consent only (runs even if a file failed).

        **If it fails:** check the HMAC key (profiles key subscribers by marketing token), the billing zone and
        the consent register (`consents/`); each day is replaced whole, so clearing and re-running is safe.
        """
        from transforms.entry import tasks

        return tasks.marketing(dict(params), ds, run_id, connection=hmac_connection())

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[AUDIT_STORE], queue=STORE_WRITER_QUEUE)
    def close_night(params=None, ds=None, run_id=None) -> dict:
        """Merge the per-file facts into audit.duckdb (the single writer), chain the log, export Parquet, build
        the night's Data Docs pages (a site that cannot be built is reported in the `run_finished` event and
        does not fail the task).

        Runs even when a file task failed and records that file as failed; when it succeeds the retention
        sweep starts. Skipped when plan_night failed (nothing was opened; the night's lease is given up).
        **If it fails:** the fragments stay under `audit/_pending/<run>/`; check free space
        and that no other process holds `audit.duckdb`, then clear this task — the merge is idempotent.
        """
        from airflow.sdk.exceptions import AirflowSkipException

        from transforms.entry import tasks
        from transforms.nightly.close import NoPlan

        try:
            return tasks.close(dict(params), ds, run_id)
        except NoPlan as exc:   # the plan failed and says why; the run has failed already
            raise AirflowSkipException(str(exc)) from exc

    files = audit_file.expand(planned=plan_night())
    files >> [aggregate_night(), roaming_night(), marketing_night()] >> close_night()


cdr_nightly_audit()
