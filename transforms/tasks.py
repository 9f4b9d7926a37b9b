"""Entry points for orchestrators: plain JSON in, plain JSON out, no Airflow imports.

The DAG's tasks call these with their params and the run's logical date, so
the DAG file stays wiring only and anything passed between tasks is a small
dict (paths and counts, never data).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict
from pathlib import Path

from transforms.lake import Lake
from transforms.nightly import (REPO_ROOT, PlannedFile, aggregate_night, audit_file, close_night, plan_night,
                                profile_for, roaming_night)
from transforms.policy import Policy, load_policy
from transforms.pseudonymize import KeyRing, keyring_from_connection, load_keyring

log = logging.getLogger("cdr_audit")

DEFAULT_LANDING = os.environ.get("CDR_AUDIT_LANDING", str(REPO_ROOT / "sample_data" / "night"))
DEFAULT_LAKE = os.environ.get("CDR_AUDIT_LAKE", str(REPO_ROOT / "lake"))
DEFAULT_POLICY = os.environ.get("CDR_AUDIT_POLICY", str(REPO_ROOT / "policy" / "a1_slovenia.yaml"))


def resolve(params: dict, logical_date: str) -> tuple[str, Path, Lake, Policy]:
    """The night, landing folder, lake and policy a run works on.

    `night` defaults to the run's logical date (the day whose extracts landed);
    `landing` may contain `{night}` for a folder per night.
    """
    night = (params.get("night") or logical_date)[:10]
    landing = Path(str(params.get("landing") or DEFAULT_LANDING).format(night=night))
    lake = Lake.at(params.get("lake") or DEFAULT_LAKE)
    return night, landing, lake, load_policy(params.get("policy") or DEFAULT_POLICY)


def keyring(connection: dict | None) -> KeyRing:
    """The HMAC keys: the Airflow connection's fields when there is one, else the environment."""
    if connection:
        return keyring_from_connection(connection.get("login"), connection.get("password"), connection.get("extra"))
    return load_keyring(os.environ)


def plan(params: dict, logical_date: str, run_id: str) -> list[dict]:
    """Open the run; return the files to audit (one mapped task each)."""
    night, landing, lake, policy = resolve(params, logical_date)
    night_plan = plan_night(landing, lake, policy, night=night, run_id=run_id, trigger="airflow")
    return [asdict(f) for f in night_plan.to_audit]


def audit_one(planned: dict, params: dict, logical_date: str, run_id: str, connection: dict | None = None) -> dict:
    """Audit one landing file; return its counts."""
    night, _, lake, policy = resolve(params, logical_date)
    planned_file = PlannedFile(**planned)
    override = profile_for(planned_file, params.get("profiles") or {})
    return asdict(audit_file(planned_file, lake, policy, run_id=run_id, night=night, keyring=keyring(connection),
                             profile_override=override, on_step=log.info))


def aggregate(params: dict, logical_date: str, run_id: str) -> list[dict]:
    """Recompute the k-anonymous aggregates of the event dates tonight touched."""
    _, _, lake, policy = resolve(params, logical_date)
    return aggregate_night(lake, policy, run_id=run_id)


def roaming(params: dict, logical_date: str, run_id: str, connection: dict | None = None) -> dict:
    """Rebuild tonight's roaming months and assess the fair-use window; return the counts."""
    _, _, lake, policy = resolve(params, logical_date)
    facts = roaming_night(lake, policy, keyring(connection), run_id=run_id)
    return {"months": [m["month"] for m in facts["months"]],
            **{k: facts["window"][k] for k in ("as_of_month", "flagged", "not_flagged", "insufficient_history",
                                               "long_inactivity")}}


def close(params: dict, logical_date: str, run_id: str) -> dict:
    """Merge the night into the audit store; return the summary."""
    _, _, lake, policy = resolve(params, logical_date)
    return asdict(close_night(lake, policy, run_id=run_id))


def retention(params: dict, as_of: str, connection: dict | None = None) -> dict:
    """Run the retention sweep as of a day; return its counts (rows per action, files, proofs)."""
    from datetime import date

    from transforms.retention import sweep

    lake = Lake.at(params.get("lake") or DEFAULT_LAKE)
    policy = load_policy(params.get("policy") or DEFAULT_POLICY)
    day = date.fromisoformat((params.get("as_of") or as_of)[:10])
    result = sweep(lake, policy, keyring(connection), day, dry_run=bool(params.get("dry_run")), progress=log.info)
    return {"run_id": result.run_id, "as_of": result.as_of, "dry_run": result.dry_run,
            "rows": {a: result.rows(a) for a in ("deleted", "anonymized", "held", "kept")},
            "files_rewritten": sum(p.outcome == "rewritten" for p in result.proofs),
            "files_removed": sum(p.outcome == "removed" for p in result.proofs),
            "proofs_ok": all(p.ok for p in result.proofs), "seconds": result.seconds}


def verify_audit_log(params: dict) -> dict:
    """Recompute the audit log's hash chain; fail when a link is broken."""
    from transforms import audit

    lake = Lake.at(params.get("lake") or DEFAULT_LAKE)
    con = audit.connect(lake, read_only=True)
    try:
        check = audit.verify_chain(con)
    finally:
        con.close()
    if not check.ok:
        raise RuntimeError(f"audit log chain broken at entry {check.first_bad_seq}: {check.problem}")
    return {"entries": check.entries, "ok": True}


_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$")


def record_task_failure(params: dict, facts: dict) -> bool:
    """Chain a `task_failed` event for a failed orchestrator task onto the audit log; False if already there.

    `facts` are plain values the orchestrator's failure callback extracted: dag_id, task_id, run_id,
    try_number, map_index and exception_type — the exception's class name only, never its message, which
    may quote input. The event key is unique per DAG, run, task, map index and try, so a callback that is
    delivered twice records the failure once.
    """
    from transforms import audit

    lake = Lake.at(params.get("lake") or DEFAULT_LAKE)
    dag_id, task_id, run_id = (str(facts.get(k) or "") for k in ("dag_id", "task_id", "run_id"))
    try_number = int(facts.get("try_number") or 0)
    map_index = int(facts["map_index"]) if facts.get("map_index") is not None else -1
    exc_type = str(facts.get("exception_type") or "")
    if not _TYPE_NAME.match(exc_type):
        exc_type = "unknown"   # a class name, or nothing: never free text
    event = audit.LogEvent(
        f"task_failed:{dag_id}:{run_id}:{task_id}:{map_index}:{try_number}", "airflow", "task_failed",
        f"{dag_id}.{task_id}",
        {"run_id": run_id, "try_number": try_number, "map_index": map_index, "exception_type": exc_type})
    with audit.writing(lake) as con:
        return audit.append_log(con, [event]) == 1
