"""A failed task leaves a chained `task_failed` event in the audit log: its ids and exception type, never
the message (it may quote input), and once however often the callback is delivered."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import BIN, NIGHT, audit_rows
from tests.dags.test_nightly_dag import DAGS
from transforms import audit
from transforms.lake import Lake
from transforms.tasks import record_task_failure

FACTS = {"dag_id": "cdr_nightly_audit", "task_id": "audit_file", "run_id": "manual__2026-11-22T02:00:00+00:00",
         "try_number": 2, "map_index": 3, "exception_type": "ValueError"}


def failures(lake) -> list[tuple]:
    return audit_rows(lake, "SELECT actor, target, details FROM audit_log WHERE action = 'task_failed' ORDER BY seq")


def test_records_ids_and_exception_type_once(tmp_path):
    lake = tmp_path / "lake"
    assert record_task_failure({"lake": str(lake)}, FACTS) is True
    assert record_task_failure({"lake": str(lake)}, FACTS) is False          # the callback delivered again
    (actor, target, details), = failures(lake)
    assert (actor, target) == ("airflow", "cdr_nightly_audit.audit_file")
    assert json.loads(details) == {"run_id": FACTS["run_id"], "try_number": 2, "map_index": 3,
                                   "exception_type": "ValueError"}

    # The next try of the same mapped task is a new event, chained after the first.
    assert record_task_failure({"lake": str(lake)}, {**FACTS, "try_number": 3}) is True
    assert [json.loads(d)["try_number"] for _, _, d in failures(lake)] == [2, 3]
    con = audit.connect(Lake.at(lake), read_only=True)
    try:
        assert audit.verify_chain(con).ok
    finally:
        con.close()


@pytest.mark.parametrize("given", ["ValueError: bad number 38640123456", "x" * 500, None, "",
                                   "Error\nwith 38640123456"])
def test_only_a_class_name_is_ever_stored(tmp_path, given):
    lake = tmp_path / "lake"
    record_task_failure({"lake": str(lake)}, {**FACTS, "exception_type": given})
    (_, _, details), = failures(lake)
    assert json.loads(details)["exception_type"] == "unknown"
    assert "38640123456" not in details


def test_unmapped_task_and_missing_facts(tmp_path):
    lake = tmp_path / "lake"
    record_task_failure({"lake": str(lake)}, {"dag_id": "cdr_retention_sweep", "task_id": "sweep", "run_id": "r1",
                                              "try_number": 1, "map_index": None, "exception_type": "OSError"})
    (_, target, details), = failures(lake)
    assert target == "cdr_retention_sweep.sweep" and json.loads(details)["map_index"] == -1


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
