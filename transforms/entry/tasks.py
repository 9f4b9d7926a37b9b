"""Entry points for orchestrators: plain JSON in, plain JSON out, no Airflow imports.

The DAGs' tasks call these with their params and the run's logical date, so the DAG files stay wiring
only and anything passed between tasks is a small dict (paths and counts, never data). Empty params fall
back to `CDR_AUDIT_LANDING`, `CDR_AUDIT_LAKE` and `CDR_AUDIT_POLICY`, then to the bundled sample night,
`./lake` and the bundled policy.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from dataclasses import asdict
from datetime import date
from pathlib import Path

from transforms.bundled import REPO_ROOT, SAMPLE_NIGHT
from transforms.lake import Lake
from transforms.lake.permissions import owner_only
from transforms.lake.records import to_plain
from transforms.policy import Policy, load_policy
from transforms.privacy.keys import KeyRing, keyring_from_connection, load_keyring

log = logging.getLogger("cdr_audit")


def _owner_only(task):
    """Each task works under umask 077: whatever it makes (DuckDB, Parquet, GX) is readable by nobody else until
    a commit point gives it its zone's modes (transforms/lake/permissions.py, docs/design.md §2)."""
    @functools.wraps(task)
    def run(*args, **kwargs):
        with owner_only():
            return task(*args, **kwargs)
    return run


def lake_of(params: dict) -> Lake:
    return Lake.at(params.get("lake") or os.environ.get("CDR_AUDIT_LAKE") or REPO_ROOT / "lake")


def policy_of(params: dict) -> Policy:
    return load_policy(params.get("policy") or os.environ.get("CDR_AUDIT_POLICY") or None)


def resolve(params: dict, logical_date: str) -> tuple[str, Path, Lake, Policy]:
    """The night, landing folder, lake and policy a run works on.

    `night` defaults to the run's logical date (the day whose extracts landed);
    `landing` may contain `{night}` for a folder per night.
    """
    night = (params.get("night") or logical_date)[:10]
    landing = str(params.get("landing") or os.environ.get("CDR_AUDIT_LANDING") or SAMPLE_NIGHT)
    return night, Path(landing.format(night=night)), lake_of(params), policy_of(params)


def keyring(connection: dict | None) -> KeyRing:
    """The HMAC keys: the Airflow connection's fields when there is one, else the environment."""
    if connection:
        return keyring_from_connection(connection.get("login"), connection.get("password"), connection.get("extra"))
    return load_keyring(os.environ)


def night_lease(lake: Lake, night: str, run_id: str):
    """Each task of a run holds the night's lease while it works (its heartbeat refreshed) and leaves it held
    for the next task; the close gives it up. Another live run holding it fails the task: `NightBusy` says
    who, and the task's retries wait (transforms.runs.lease)."""
    from transforms.runs import held, night_subject
    from transforms.runs.lease import RUN

    return held(lake, night_subject(night), run_id, bound=RUN, keep=True)


@_owner_only
def plan(params: dict, logical_date: str, run_id: str) -> list[dict]:
    """Open the run; return the files to audit (one mapped task each). Raises `ZonesOpen` when a zone is looser
    than the policy's access and the param `allow_open_zones` is not set (not worth retrying)."""
    from transforms.lake.permissions import prepare_lake
    from transforms.nightly.plan import plan_night

    night, landing, lake, policy = resolve(params, logical_date)
    prepare_lake(lake, policy.access)      # before the lease: its folder is made with the policy's modes
    with night_lease(lake, night, run_id):
        night_plan = plan_night(landing, lake, policy, night=night, run_id=run_id, trigger="airflow",
                                allow_open_zones=bool(params.get("allow_open_zones")))
    if night_plan.nothing_landed:
        log.warning("%s", night_plan.nothing_landed_warning)
    if night_plan.zones_open:
        log.warning("%d entries of the lake are looser than the policy's access; going on as told (param"
                    " allow_open_zones, recorded in the audit log)", night_plan.zones_open)
    return [asdict(f) for f in night_plan.to_audit]


@_owner_only
def audit_one(planned: dict, params: dict, logical_date: str, run_id: str, connection: dict | None = None) -> dict:
    """Audit one landing file; return its `source_files` row (counts and names)."""
    from transforms.audit_store import no_writing
    from transforms.formats import load_formats
    from transforms.nightly.audit_file import audit_file
    from transforms.nightly.plan import PlannedFile, override_for

    from transforms.entry.console import file_line

    night, _, lake, policy = resolve(params, logical_date)
    planned_file = PlannedFile(**planned)
    # Mapped over workers on any host: it leaves a fragment and may not open the store (docs/design.md §6).
    with night_lease(lake, night, run_id), no_writing("the audit_file task"):
        row = audit_file(planned_file, lake, policy, load_formats(policy, params.get("formats_dir") or None),
                         run_id=run_id, night=night, keyring=keyring(connection),
                         format_override=override_for(planned_file, params.get("formats") or {}),
                         timezone=override_for(planned_file, params.get("timezones") or {}), on_step=log.info)
    log.info(file_line(row))
    return to_plain(row)


@_owner_only
def aggregate(params: dict, logical_date: str, run_id: str) -> dict:
    """Release the k-anonymous aggregates of the days whose window closed, once (docs/design.md §4)."""
    from transforms.nightly.aggregate_night import aggregate_night

    from transforms.entry.console import aggregate_lines

    night, _, lake, policy = resolve(params, logical_date)
    with night_lease(lake, night, run_id):
        releases = aggregate_night(lake, policy, run_id=run_id, night=night)
    for line in aggregate_lines(releases):
        log.info(line)
    return to_plain(releases)


@_owner_only
def roaming(params: dict, logical_date: str, run_id: str, connection: dict | None = None) -> dict:
    """Rebuild tonight's roaming months and assess the fair-use window; return the counts."""
    from transforms.nightly.roaming_night import roaming_night

    from transforms.entry.console import roaming_line

    night, _, lake, policy = resolve(params, logical_date)
    with night_lease(lake, night, run_id):
        done = roaming_night(lake, policy, keyring(connection), run_id=run_id)
    log.info(roaming_line(done))
    w = done.window
    return {"months": [m.month for m in done.months.months] if done.months else [],
            "as_of_month": w.as_of_month, **w.by_state, "long_inactivity": w.long_inactivity}


@_owner_only
def marketing(params: dict, logical_date: str, run_id: str, connection: dict | None = None) -> dict:
    """Rebuild the marketing profiles of the event dates tonight touched (on consent only); return the counts."""
    from transforms.nightly.marketing_night import marketing_night

    from transforms.entry.console import marketing_line

    night, _, lake, policy = resolve(params, logical_date)
    with night_lease(lake, night, run_id):
        built = marketing_night(lake, policy, keyring(connection), run_id=run_id)
    log.info(marketing_line(built))
    return {"days": [d.event_date for d in built.days], "subscribers": sum(d.subscribers for d in built.days),
            "rows_removed": sum(d.rows_removed for d in built.days), "consents_standing": built.consents_standing}


@_owner_only
def close(params: dict, logical_date: str, run_id: str) -> dict:
    """Merge the night into the audit store; return the summary."""
    from transforms.nightly.close import close_night

    night, _, lake, policy = resolve(params, logical_date)
    with night_lease(lake, night, run_id):
        summary = close_night(lake, policy, run_id=run_id, night=night)   # the close gives the lease up
    if summary.nothing_landed:
        log.warning("%s", summary.nothing_landed)
    for m in summary.sources_missing:
        log.warning("night %s: %s", summary.night, m.words())
    return asdict(summary)


@_owner_only
def retention(params: dict, as_of: str, connection: dict | None = None) -> dict:
    """Run the retention sweep as of a day; return its counts (rows per action, files, proofs)."""
    from transforms.retention.sweep import ACTIONS, sweep

    day = date.fromisoformat((params.get("as_of") or as_of)[:10])
    result = sweep(lake_of(params), policy_of(params), keyring(connection), day, dry_run=bool(params.get("dry_run")),
                   progress=log.info)
    return {"run_id": result.run_id, "as_of": result.as_of, "dry_run": result.dry_run,
            "rows": {a: result.rows(a) for a in ACTIONS},
            "files_rewritten": sum(p.outcome == "rewritten" for p in result.proofs),
            "files_removed": sum(p.outcome == "removed" for p in result.proofs),
            "proofs_ok": all(p.ok for p in result.proofs), "seconds": result.seconds}


@_owner_only
def verify_audit_log(params: dict) -> dict:
    """Recompute the audit log's hash chain and hold it to every anchor; fail when a link is broken or an
    anchored entry is missing or changed (docs/design.md §6)."""
    from transforms.audit_store import verify_store

    check = verify_store(lake_of(params))
    if not check.ok:
        raise RuntimeError("audit log check failed: " + "; ".join(check.problems()))
    log.info("audit log chain intact: %d entries; %s", check.chain.entries, check.anchors.words())
    return {"entries": check.chain.entries, "anchors": check.anchors.checked,
            "hmac_verified": check.anchors.hmac_verified, "hmac_unchecked": check.anchors.hmac_unchecked,
            "ok": True}


_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")


@_owner_only
def record_task_failure(params: dict, facts: dict) -> bool:
    """Chain a `task_failed` event for a failed orchestrator task onto the audit log; False if already there.

    `facts` are plain values the orchestrator's failure callback extracted: dag_id, task_id, run_id,
    try_number, map_index and exception_type — the exception's class name only, never its message, which
    may quote input. The event key is unique per DAG, run, task, map index and try, so a callback that is
    delivered twice records the failure once.
    """
    from transforms.audit_store import LogEvent, append_log, writing

    dag_id, task_id, run_id = (str(facts.get(k) or "") for k in ("dag_id", "task_id", "run_id"))
    try_number = int(facts.get("try_number") or 0)
    map_index = int(facts["map_index"]) if facts.get("map_index") is not None else -1
    exc_type = str(facts.get("exception_type") or "")
    if not _TYPE_NAME.match(exc_type):
        exc_type = "unknown"   # a class name, or nothing: never free text
    event = LogEvent(
        f"task_failed:{dag_id}:{run_id}:{task_id}:{map_index}:{try_number}", "airflow", "task_failed",
        f"{dag_id}.{task_id}",
        {"run_id": run_id, "try_number": try_number, "map_index": map_index, "exception_type": exc_type})
    with writing(lake_of(params)) as con:
        return append_log(con, [event]) == 1
