"""A failed task of a real DAG run leaves a chained `task_failed` event in the audit log (the unit tests of the
recording itself are in tests/transforms/entry/test_tasks.py)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import BIN, NIGHT, audit_rows
from tests.dags.test_nightly_dag import DAGS


def failures(lake) -> list[tuple]:
    return audit_rows(lake, "SELECT actor, target, details FROM audit_log WHERE action = 'task_failed' ORDER BY seq")


@pytest.mark.airflow
@pytest.mark.slow
def test_a_failing_dag_run_writes_task_failed(tmp_path):
    """`airflow dags test` with a landing folder that does not exist: plan_night fails for real (retries 0),
    its on_failure_callback chains the event; the folder's path (the message) is stored nowhere."""
    home, lake = tmp_path / "airflow_home", tmp_path / "lake"
    missing = tmp_path / "no-such-landing-4711"
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "CDR_AUDIT_LANDING": str(missing), "CDR_AUDIT_LAKE": str(lake),
           "CDR_AUDIT_TASK_RETRIES": "0", "CDR_AUDIT_DEMO_MODE": "1"}
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    run = subprocess.run([str(BIN / "airflow"), "dags", "test", "cdr_nightly_audit", NIGHT], env=env,
                         capture_output=True, text=True, timeout=600)
    out = run.stdout + run.stderr
    assert "state=failed" in out or run.returncode != 0, out[-4000:]

    events = {target: json.loads(details) for _, target, details in failures(lake)}
    assert "cdr_nightly_audit.plan_night" in events, (events, out[-4000:])
    plan = events["cdr_nightly_audit.plan_night"]
    assert plan["exception_type"] == "FileNotFoundError"
    assert plan["try_number"] == 1 and plan["map_index"] == -1 and plan["run_id"].startswith("manual__")
    logged = audit_rows(lake, "SELECT string_agg(details, '') FROM audit_log")[0][0]
    assert missing.name not in logged
